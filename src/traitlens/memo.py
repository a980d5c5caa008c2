"""One memo layer for scoring: results kept in memory for a run and, with a store, on disk
for later runs. Nothing here computes; it only keeps what a caller computed, under a key made
of everything the numbers depend on.

``ScoreMemo`` is what a run passes around (in ``RunOptions.memo``): a pipeline that asks the same
question twice (the validity checks and the baseline both read the plain label readout; the
steered assessment and its per-readout views score the same options) computes it once, and the
answer is the first computation's, bit for bit. Given a ``ScoreStore``, every result is also
kept on disk, so the next edit of the same model (any trait) reads its unsteered passes back.
A stored entry's key adds the environment below (library versions, the CPU, threads, and the
source of the code that computes scores), so a cached result is the result.

Store entries are safetensors files written atomically with their checksum, verified on every
read: a damaged or foreign entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from traitlens._io import cache_dir, load_checked, save_checked
from traitlens.errors import TraitlensError

__all__ = ["ScoreMemo", "ScoreStore", "environment"]

# The modules whose code decides a scoring pass's numbers: any change to them is a new store.
_SOURCES = (
    "traitlens.assess.scorer",
    "traitlens.accel.batching",
    "traitlens.accel.scoring",
    "traitlens.chat",
    "traitlens.models",
    "traitlens.accel.precision",
    "traitlens.accel.lower_layers",
)  # an intervention's own code is in its fingerprint (``Steering.fingerprint``)


@cache
def _source_hash(names: tuple[str, ...] = _SOURCES) -> str:
    import importlib

    h = hashlib.sha256()
    for name in names:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()[:16]


def environment(code: tuple[str, ...] = ()) -> str:
    """What else a pass's bits depend on: versions, the CPU, the thread count, our code (the
    scoring modules and any ``code`` modules named)."""
    import transformers

    sources = _source_hash() + (_source_hash(tuple(code)) if code else "")
    return repr((torch.__version__, transformers.__version__, platform.machine(), torch.get_num_threads(), sources))


@dataclass(frozen=True)
class ScoreStore:
    root: Path

    @classmethod
    def default(cls) -> ScoreStore:
        """Beside the activation cache (``$TRAITLENS_CACHE``, default ``~/.cache/traitlens``)."""
        return cls(cache_dir() / "scores")

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> np.ndarray | None:
        return load_checked(self._path(key), "scores")

    def load_texts(self, key: str) -> list[str] | None:
        """Texts kept by ``save_texts`` (UTF-8 JSON under the same checksum), or ``None``."""
        raw = self.load(key)
        if raw is None or raw.dtype != np.uint8:
            return None
        try:
            texts = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return texts if isinstance(texts, list) and all(isinstance(t, str) for t in texts) else None

    def save_texts(self, key: str, texts: list[str]) -> None:
        self.save(key, np.frombuffer(json.dumps(texts).encode("utf-8"), dtype=np.uint8))

    def save(self, key: str, value: np.ndarray) -> None:
        """Atomic (a killed run leaves no partial entry); a read-only or full disk only costs
        recomputation next time."""
        try:
            save_checked(self._path(key), "scores", np.ascontiguousarray(value))
        except (OSError, TraitlensError):
            pass


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ScoreMemo:
    """Results of scoring passes by key: the last ``size`` in memory, every one in ``store``
    (when given) for later runs. One memo serves one run (an edit, a playground, a study
    worker); pass it in ``RunOptions.memo``."""

    def __init__(self, store: ScoreStore | None = None, size: int = 256) -> None:
        self.store, self.size = store, size
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def arrays(self, what: tuple, compute: Callable[[], np.ndarray], on_hit: Callable[[], None] = lambda: None):
        """``compute()``'s array for key ``what`` (a tuple whose ``repr`` names every input),
        computed once; ``on_hit`` runs when it was already known (progress bars tick)."""
        key = _digest(repr(what))
        if key in self._kept:
            self._kept.move_to_end(key)
            on_hit()
            return self._kept[key].copy()
        stored = _digest(f"{key}{environment()}") if self.store is not None else None
        value = self.store.load(stored) if stored is not None else None
        if value is None:
            value = compute()
            if stored is not None:
                self.store.save(stored, value)
        else:
            on_hit()
        self._kept[key] = value
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return value.copy()

    def texts(
        self, what: tuple, code: tuple[str, ...], count: int, compute: Callable[[], list[str]], on_hit=lambda: None
    ) -> list[str]:
        """``compute()``'s ``count`` texts for key ``what``, kept in the store only (generated
        text is long and read once per run); ``code`` names the modules their tokens depend on."""
        if self.store is None:
            return compute()
        key = _digest(f"{what!r}{environment(code)}")
        kept = self.store.load_texts(key)
        if kept is not None and len(kept) == count:
            on_hit()
            return kept
        texts = compute()
        self.store.save_texts(key, texts)
        return texts
