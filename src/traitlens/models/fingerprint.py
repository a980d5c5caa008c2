"""Model identity that every artifact (cache entry, vector, report) carries."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["ModelFingerprint", "hash_state_dict"]


@dataclass(frozen=True)
class ModelFingerprint:
    name: str
    architecture: str
    n_layers: int
    d_model: int
    weights_hash: str  # "sha256:<hex>" of the weights file, or of the parameters in name order

    @property
    def short(self) -> str:
        """A compact id for file names and cache keys."""
        return self.weights_hash.split(":")[-1][:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFingerprint:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    def mismatch(self, other: ModelFingerprint) -> str | None:
        """Why an artifact made for ``other`` cannot be used on this model, or None."""
        if (self.n_layers, self.d_model) != (other.n_layers, other.d_model):
            return (
                f"made for {other.name} (n_layers={other.n_layers}, d_model={other.d_model}), "
                f"not {self.name} (n_layers={self.n_layers}, d_model={self.d_model})"
            )
        if self.weights_hash != other.weights_hash:
            return f"made for {other.name} ({other.short}), not {self.name} ({self.short})"
        return None


def hash_state_dict(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return "sha256:" + digest.hexdigest()
