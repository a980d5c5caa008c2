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

from traitlens._io import cache_dir, load_checked, save_checked
from traitlens.errors import TraitlensError
from traitlens.models.fingerprint import ModelFingerprint

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
        """The batch's activations; ``None`` (recompute) when absent, damaged or not its rows."""
        tensor = load_checked(self._chunk_path(key), "activations", "pt")
        return tensor if tensor is not None and tensor.shape[0] == rows else None

    def save_chunk(self, key: str, activations: torch.Tensor) -> None:
        """Written to a temporary name and renamed (a killed run leaves no partial entry), with
        the tensor's checksum, verified on every read. Two processes writing the same entry at
        once each rename a complete file, and the contents are the same."""
        try:
            save_checked(self._chunk_path(key), "activations", activations, "pt")
        except (OSError, TraitlensError):
            pass  # a read-only or full cache only costs recomputation
