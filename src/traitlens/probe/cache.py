"""On-disk cache of collected activations (safetensors, written atomically).

Keyed by model fingerprint, hook point, reduction and layers, so a second run is instant; each
batch is stored under a hash of its own sequences, so an interrupted run resumes where it
stopped, and a run with another batch size or another contrast set never reads rows that are
not its own (it recomputes, or reuses the batches that are the same).
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
    def for_run(cls, fingerprint: ModelFingerprint, hook: str, reduce: str, layers: list[int]) -> ActivationStore:
        key = json.dumps([fingerprint.weights_hash, hook, reduce, layers])
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return cls(cache_dir() / "activations" / digest)

    @staticmethod
    def chunk_key(sequences: list[tuple[list[int], int, int]]) -> str:
        """The content of a batch: each sequence's token ids and the answer span reduced."""
        return hashlib.sha256(json.dumps(sequences).encode()).hexdigest()[:24]

    def _chunk_path(self, key: str) -> Path:
        return self.root / f"chunk_{key}.safetensors"

    def load_chunk(self, key: str, rows: int) -> torch.Tensor | None:
        path = self._chunk_path(key)
        if not path.is_file():
            return None
        try:
            tensor = load_file(path)["activations"]
        except (SafetensorError, KeyError, OSError):
            return None  # a damaged entry is recomputed, never trusted
        return tensor if tensor.shape[0] == rows else None

    def save_chunk(self, key: str, activations: torch.Tensor) -> None:
        tensors = {"activations": activations.contiguous()}
        try:
            atomic_write(self._chunk_path(key), lambda tmp: save_file(tensors, str(tmp)))
        except OSError:
            pass  # a read-only cache only costs recomputation
