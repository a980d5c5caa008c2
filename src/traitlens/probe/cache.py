"""On-disk cache of collected activations (safetensors, written atomically).

Keyed by model fingerprint, contrast-set hash, hook point, reduction and layers, so a second run
is instant, and stored per batch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from traitlens._io import atomic_write
from traitlens.models.fingerprint import ModelFingerprint
from traitlens.models.registry import cache_dir

__all__ = ["ActivationStore"]


@dataclass(frozen=True)
class ActivationStore:
    root: Path

    @classmethod
    def for_run(
        cls, fingerprint: ModelFingerprint, contrast_hash: str, hook: str, reduce: str, layers: list[int]
    ) -> ActivationStore:
        key = json.dumps([fingerprint.weights_hash, contrast_hash, hook, reduce, layers])
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return cls(cache_dir() / "activations" / digest)

    def _chunk_path(self, index: int) -> Path:
        return self.root / f"chunk_{index:05d}.safetensors"

    def load_chunk(self, index: int) -> torch.Tensor | None:
        path = self._chunk_path(index)
        if not path.is_file():
            return None
        try:
            return load_file(path)["activations"]
        except (SafetensorError, KeyError, OSError):
            return None  # a damaged entry is recomputed, never trusted

    def save_chunk(self, index: int, activations: torch.Tensor) -> None:
        tensors = {"activations": activations.contiguous()}
        try:
            atomic_write(self._chunk_path(index), lambda tmp: save_file(tensors, str(tmp)))
        except OSError:
            pass  # a read-only cache only costs recomputation
