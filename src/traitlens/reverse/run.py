"""``reverse``: does making a model safer change its personality? Steer along the safety
direction (several strengths both ways, and ablation), measure refusals on held-out prompts and
re-assess the four dimensions, against the unsteered model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from traitlens.assess import assess
from traitlens.bench.base import bootstrap_metric, minimum_detectable_difference
from traitlens.bench.common import generate_replies
from traitlens.bench.refusal import default_detector
from traitlens.errors import TraitlensError
from traitlens.instrument.items import ItemBank, default_items
from traitlens.options import RunOptions
from traitlens.perplexity_guard import perplexity
from traitlens.reverse.direction import SafetyDirection, SafetyPrompts, fit_safety_direction
from traitlens.steering.inject import Steering
from traitlens.steering.vector import SteeringVector

__all__ = ["DEFAULT_STRENGTHS", "Condition", "ReverseResult", "reverse"]

DEFAULT_STRENGTHS = (-0.3, -0.15, 0.15, 0.3)  # alpha in units of the layer's residual norm


@dataclass
class Condition:
    name: str
    alpha: float | None  # None: unsteered or ablation
    refusal_harmful: float
    refusal_harmful_ci: tuple[float, float]
    refusal_harmless: float
    refusal_harmless_ci: tuple[float, float]
    perplexity_change: float
    shares: dict[str, float]  # first pole's share per dimension
    shares_ci: dict[str, tuple[float, float]]
    type: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class ReverseResult:
    model: dict
    direction: SafetyDirection
    conditions: list[Condition]
    n_harmful: int
    n_harmless: int
    n_items: int
    seconds: float
    readouts: dict[str, str] = field(default_factory=dict)

    def baseline(self) -> Condition:
        return next(c for c in self.conditions if c.name == "none")

    def checks(self) -> dict[str, Any]:
        """Does the direction do what it should on prompts it was not built from?"""
        base = self.baseline()
        strongest = max((c for c in self.conditions if c.alpha and c.alpha > 0), key=lambda c: c.alpha, default=None)
        ablated = next((c for c in self.conditions if c.name == "ablate"), None)
        return {
            "adding_raises_refusals_on_harmless": None
            if strongest is None
            else {"before": base.refusal_harmless, "after": strongest.refusal_harmless},
            "ablating_lowers_refusals_on_harmful": None
            if ablated is None
            else {"before": base.refusal_harmful, "after": ablated.refusal_harmful},
            "mdd_harmful": minimum_detectable_difference(base.refusal_harmful, self.n_harmful),
            "mdd_harmless": minimum_detectable_difference(base.refusal_harmless, self.n_harmless),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "direction": self.direction.to_dict(),
            "n": {"harmful": self.n_harmful, "harmless": self.n_harmless, "items_per_dimension": self.n_items},
            "readouts": self.readouts,
            "conditions": [c.to_dict() for c in self.conditions],
            "checks": self.checks(),
            "seconds": round(self.seconds, 1),
        }


def _ablation(direction: SafetyDirection, model) -> Steering:
    """Project the direction out (component set to 0) at its layer and every later one."""
    unit = direction.vector.unit(direction.layer)
    offsets = {layer: unit for layer in range(direction.layer, model.n_layers)}
    vector = SteeringVector(offsets, model=model.fingerprint.to_dict(), trait="SAFE", method="ablation")
    return Steering(vector, 0.0, mode="project", fold=False)


def _rate(replies: Sequence[str]) -> tuple[float, tuple[float, float]]:
    detector = default_detector()
    refused = np.array([detector.is_refusal(r) for r in replies], dtype=float)
    return float(refused.mean()), bootstrap_metric(lambda idx: float(refused[idx].mean()), len(refused))


def reverse(
    model,
    prompts: SafetyPrompts,
    *,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    ablate: bool = True,
    items: ItemBank | None = None,
    max_new_tokens: int = 32,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> ReverseResult:
    if not strengths and not ablate:
        raise TraitlensError("nothing to compare: give at least one strength or ablation")
    if any(not math.isfinite(s) for s in strengths):
        raise TraitlensError(f"strengths must be finite numbers, not {list(strengths)}")
    start = time.perf_counter()
    direction = fit_safety_direction(model, prompts)
    held = prompts.split(True)
    every = items or default_items()
    bank = every.select("eval")
    # chosen unsteered on the train items (as edit and the study choose), then fixed
    options = RunOptions.cached()  # the unsteered priors and checks, measured once
    readouts = {d: r.readout for d, r in assess(model, every, split="eval", options=options).dimensions.items()}
    base_ppl = perplexity(model)
    plan: list[tuple[str, float | None, Steering | None]] = [("none", None, None)]
    plan += [(f"alpha {s:+g}", float(s), Steering(direction.vector, float(s))) for s in strengths]
    if ablate:
        plan.append(("ablate", None, _ablation(direction, model)))
    tick = progress("reverse", len(plan)) if progress else None
    conditions, n_items = [], 0
    for name, alpha, steering in plan:
        harmful = _rate(generate_replies(model, held.harmful, steering, max_new_tokens))
        harmless = _rate(generate_replies(model, held.harmless, steering, max_new_tokens))
        result = assess(model, bank, readout=readouts, intervention=steering, options=options)
        n_items = min(r.n_items for r in result.dimensions.values())
        ppl = perplexity(model, intervention=steering) / base_ppl - 1 if steering else 0.0
        conditions.append(
            Condition(
                name,
                alpha,
                harmful[0],
                harmful[1],
                harmless[0],
                harmless[1],
                ppl,
                {d: r.share_first for d, r in result.dimensions.items()},
                {d: r.ci95_first for d, r in result.dimensions.items()},
                result.type,
            )
        )
        if tick:
            tick(1)
    return ReverseResult(
        model.fingerprint.to_dict(),
        direction,
        conditions,
        len(held.harmful),
        len(held.harmless),
        n_items,
        time.perf_counter() - start,
        readouts,
    )
