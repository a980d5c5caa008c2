"""``SteeringVector``: per-layer displacements in residual space, with the metadata to reuse them.

``offsets[layer]`` is the displacement added at ``alpha = 1``: a unit trait direction times the
layer's scale (its typical residual norm, or the poles' projection gap), so one alpha means the
same thing across layers and models. Arithmetic acts on the offsets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from traitlens.errors import TraitlensError

__all__ = ["SteeringVector", "compose", "SCALE_MODES", "HOOK_POINTS"]

SCALE_MODES = ("resid_norm", "gap")
HOOK_POINTS = ("resid_pre", "resid_post")


@dataclass
class SteeringVector:
    offsets: dict[int, torch.Tensor]
    hook: str = "resid_post"
    model: dict[str, Any] = field(default_factory=dict)  # ModelFingerprint.to_dict()
    trait: str = ""  # e.g. "JP": from J towards P
    method: str = ""
    scale_mode: str = "resid_norm"
    scales: dict[int, float] = field(default_factory=dict)  # offsets[layer] = scales[layer] * unit
    stats: dict[int, dict[str, float]] = field(default_factory=dict)
    recommended_alpha: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hook not in HOOK_POINTS:
            raise TraitlensError(f"steering hook must be one of {', '.join(HOOK_POINTS)}, not '{self.hook}'")
        if not self.offsets:
            raise TraitlensError("a steering vector needs at least one layer")
        dims = {v.shape for v in self.offsets.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise TraitlensError(f"steering offsets must be 1-D and of one size, got {sorted(map(tuple, dims))}")
        for layer, v in self.offsets.items():
            if not torch.isfinite(v).all():
                raise TraitlensError(f"steering vector has non-finite values at layer {layer}")
        self.offsets = {int(k): v.detach().float().contiguous() for k, v in sorted(self.offsets.items())}

    @property
    def layers(self) -> list[int]:
        return list(self.offsets)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.offsets.values())).shape[0])

    def unit(self, layer: int) -> torch.Tensor:
        v = self.offsets[layer]
        return v / v.norm().clamp_min(1e-12)

    def scaled(self, factor: float) -> SteeringVector:
        if not math.isfinite(factor):
            raise TraitlensError(f"scale factor must be finite, not {factor}")
        return replace(
            self,
            offsets={k: v * factor for k, v in self.offsets.items()},
            scales={k: s * abs(factor) for k, s in self.scales.items()},
            recommended_alpha=None,
        )

    def __mul__(self, factor: float) -> SteeringVector:
        return self.scaled(factor)

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        trait = self.trait[::-1] if len(self.trait) == 2 else self.trait
        return replace(self.scaled(-1.0), trait=trait)

    def __add__(self, other: SteeringVector) -> SteeringVector:
        return compose([self, other])

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return compose([self, -other])


def compose(vectors: list[SteeringVector]) -> SteeringVector:
    """Several edits at once. Rule: where two vectors touch the same layer their displacements
    add (superposition at alpha = 1); each keeps its own layers otherwise. All must share the
    hook point and the model."""
    if not vectors:
        raise TraitlensError("nothing to compose")
    first = vectors[0]
    for v in vectors[1:]:
        if v.hook != first.hook:
            raise TraitlensError(f"cannot compose vectors at different hook points ({first.hook}, {v.hook})")
        if v.d_model != first.d_model:
            raise TraitlensError("cannot compose vectors made for different models")
    # The composite is for the model its parts name; parts that name none add nothing to it.
    fingerprints = [v.model for v in vectors if v.model]
    if len({fp.get("weights_hash") for fp in fingerprints}) > 1:
        raise TraitlensError("cannot compose vectors made for different models")
    model = fingerprints[0] if fingerprints else {}
    offsets: dict[int, torch.Tensor] = {}
    for v in vectors:
        for layer, offset in v.offsets.items():
            offsets[layer] = offsets[layer] + offset if layer in offsets else offset.clone()
    scales = {layer: float(o.norm()) for layer, o in offsets.items()}
    return SteeringVector(
        offsets,
        first.hook,
        model,
        "+".join(v.trait for v in vectors),
        "compose",
        "absolute",
        scales,
        {},
        None,
        {"parts": [v.trait for v in vectors]},
    )
