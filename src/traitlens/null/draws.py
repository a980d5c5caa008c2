"""Null directions for a steering vector: what any perturbation of its size does.

Two kinds, each placed on the vector's layers with the vector's per-layer norms and used in the
vector's mode at its alpha, both signs of every direction:

- ``random``: Gaussian directions in the residual space;
- ``shuffled``: mean differences of the bank's item contrasts for the vector's dimension with
  each pair's sides swapped at random (a direction fitted the same way on labels that mean
  nothing).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from traitlens.errors import TraitlensError
from traitlens.instrument.items import ItemBank, Trait
from traitlens.steering.vector import SteeringVector

__all__ = ["KINDS", "MAX_DRAWS", "check_draws", "random_draws", "shuffled_draws", "draws"]

KINDS = ("random", "shuffled")
MAX_DRAWS = 1000


def check_draws(draws: object) -> int:
    """The number of null draws, or a one-line error."""
    if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= MAX_DRAWS:
        raise TraitlensError(f"draws must be an integer from 1 to {MAX_DRAWS}, not {draws!r}")
    return draws


def _check_vector(vector: SteeringVector) -> None:
    if not vector.offsets:
        raise TraitlensError("the vector has no layers: there is nothing to match a null to")
    if any(float(v.norm()) == 0 or not torch.isfinite(v).all() for v in vector.offsets.values()):
        raise TraitlensError("the vector has a layer with a zero or non-finite norm: there is nothing to match")


def _placed(vector: SteeringVector, directions: dict[int, torch.Tensor], kind: str, index: int) -> SteeringVector:
    """``directions`` rescaled to the vector's norm at each of its layers, the rest of it kept."""
    offsets = {
        layer: (d / d.norm().clamp_min(1e-12) * vector.offsets[layer].norm()).to(vector.offsets[layer].dtype)
        for layer, d in directions.items()
    }
    return replace(
        vector, offsets=offsets, trait="", method=f"null:{kind}", recommended_alpha=None,
        extra={**vector.extra, "null": {"kind": kind, "draw": index}},
    )  # fmt: skip


def _signed(made: list[SteeringVector], count: int) -> list[SteeringVector]:
    out: list[SteeringVector] = []
    for vector in made:
        out += [vector, replace(vector.scaled(-1.0), trait="", recommended_alpha=None)]
    return out[:count]


def random_draws(vector: SteeringVector, count: int, seed: int = 0) -> list[SteeringVector]:
    """``count`` Gaussian directions (half of them the negatives of the others)."""
    _check_vector(vector)
    g = torch.Generator().manual_seed(seed)
    made = [
        _placed(vector, {layer: torch.randn(vector.d_model, generator=g) for layer in vector.layers}, "random", k)
        for k in range((count + 1) // 2)
    ]
    return _signed(made, count)


def shuffled_draws(model, vector: SteeringVector, bank: ItemBank, count: int, seed: int = 0) -> list[SteeringVector]:
    """``count`` mean differences of the train items' contrasts with each pair's sides swapped
    at random (half of them the negatives of the others)."""
    from traitlens.probe.collect import collect
    from traitlens.probe.contrast import item_pairs

    _check_vector(vector)
    dimension = Trait.parse(vector.trait).dimension  # one clear error for a trait that names no dimension
    contrast = item_pairs(bank.select("train", dimension)).for_dimension(dimension)
    acts = collect(model, contrast, layers=vector.layers, hook=vector.hook)
    g = torch.Generator().manual_seed(seed)
    made = []
    for k in range((count + 1) // 2):
        flip = (torch.rand(len(contrast.pairs), generator=g) < 0.5).float()[:, None]
        directions = {}
        for layer in vector.layers:
            first, second = acts.at(layer)
            a, b = flip * second + (1 - flip) * first, flip * first + (1 - flip) * second
            directions[layer] = (b - a).mean(0)
        made.append(_placed(vector, directions, "shuffled", k))
    return _signed(made, count)


def draws(model, vector: SteeringVector, count: int, kinds=KINDS, bank: ItemBank | None = None, seed: int = 0):
    """``count`` draws split over ``kinds`` (the first kind takes any remainder)."""
    from traitlens.instrument.items import default_items

    check_draws(count)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise TraitlensError(f"unknown null kind {unknown[0] if unknown else ''!r}: use {', '.join(KINDS)}")
    shares = [count // len(kinds) + (1 if i < count % len(kinds) else 0) for i in range(len(kinds))]
    out: list[SteeringVector] = []
    for kind, n in zip(kinds, shares, strict=True):
        if n == 0:
            continue
        if kind == "random":
            out += random_draws(vector, n, seed)
        else:
            out += shuffled_draws(model, vector, bank or default_items(), n, seed)
    return out
