"""On-disk store of scoring results, shared by every run on this machine.

Every edit of a model repeats the same unsteered passes: the train and eval baselines, the
readouts' validity checks (content-free questions, persona prompts) and the options' priors,
about half of ``traitlens edit --no-bench`` on the default model. Inside ``score_memo(store)`` a
scorer keeps each result here as well as in memory, so the next edit of the same model (any
trait) reads them back. An entry is keyed by everything the numbers depend on: the weights, the
dtype, what is attached to the model, the exact token ids and batching (in ``ModelScorer``), and
the environment below (library versions, threads, and the source of the code that computes
them); a hit returns the bits that were computed, so a cached result is the result.

Entries are safetensors files written atomically with their checksum, verified on every read: a
damaged or foreign entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from traitlens._io import load_checked, save_checked
from traitlens.errors import TraitlensError
from traitlens.models.registry import cache_dir

__all__ = ["ScoreStore", "environment"]

# The modules whose code decides a scoring pass's numbers: any change to them is a new store.
_SOURCES = (
    "traitlens.assess.scorer",
    "traitlens.batching",
    "traitlens.chat",
    "traitlens.models",
    "traitlens.models.precision",
    "traitlens.models.reuse",
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
