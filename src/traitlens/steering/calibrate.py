"""Calibration: the smallest edit that moves a dimension past a goal while capability holds.

For each candidate layer, alpha climbs a fine grid (in units of the layer's typical residual
norm: the useful range on small models is ~0.05-0.3) until the target pole's share on the eval
items passes ``goal`` or the perplexity guard breaks; the bracket around the first success is
then bisected (and when the first step past the goal also breaks the guard, the bracket below it
is searched for a strength that does both). Among layers that succeed, the one that moves the other dimensions least wins.
Every evaluated point is kept: the report shows the whole curve, not only the winner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from traitlens.assess import assess
from traitlens.capability import perplexity
from traitlens.items import DIMENSIONS, ItemBank
from traitlens.probe.methods import Direction
from traitlens.steering.inject import Steering
from traitlens.steering.vector import SteeringVector

__all__ = ["DEFAULT_ALPHAS", "CurvePoint", "Calibration", "vector_for", "calibrate"]

DEFAULT_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.18, 0.22, 0.26, 0.30, 0.35, 0.40)
BISECTION_STEPS = 2
BRACKET_STEPS = 3  # halvings of a bracket whose upper end met the goal but broke the guard
GOAL_MARGIN = 0.10  # when the baseline already passes the goal, require this much more


@dataclass
class CurvePoint:
    layer: int
    alpha: float
    target_share: float
    perplexity: float
    ppl_ratio: float
    guard_ok: bool
    goal_met: bool
    off_target_shift: float | None = None  # max |share change| of the other dimensions

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Calibration:
    trait: str
    goal: float
    guard: float
    readout: str
    baseline_share: float
    baseline_perplexity: float
    points: list[CurvePoint] = field(default_factory=list)
    chosen: CurvePoint | None = None
    seconds: float = 0.0

    @property
    def goal_met(self) -> bool:
        return self.chosen is not None and self.chosen.goal_met

    def to_dict(self) -> dict:
        return {
            "trait": self.trait,
            "goal": self.goal,
            "guard": self.guard,
            "readout": self.readout,
            "baseline_share": self.baseline_share,
            "baseline_perplexity": self.baseline_perplexity,
            "goal_met": self.goal_met,
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "points": [p.to_dict() for p in self.points],
            "seconds": round(self.seconds, 1),
        }


def vector_for(
    model, trait: str, layer: int, direction: Direction, scale_mode: str = "resid_norm", method: str = ""
) -> SteeringVector:
    """Offset at alpha = 1: the unit direction towards the edit's target pole times the scale."""
    dimension = next(d for d, poles in DIMENSIONS.items() if set(poles) == set(trait))
    sign = 1.0 if trait[1] == DIMENSIONS[dimension][0] else -1.0  # directions point to the first pole
    scale = direction.resid_norm if scale_mode == "resid_norm" else abs(direction.gap)
    return SteeringVector(
        {layer: sign * scale * direction.vector},
        hook="resid_post",
        model=model.fingerprint.to_dict(),
        trait=trait,
        method=method or direction.method,
        scale_mode=scale_mode,
        scales={layer: scale},
        stats={layer: direction.stats()},
    )


class _Evaluator:
    def __init__(self, model, trait, dimension, items: ItemBank, readout, baseline_ppl, guard, goal, tick):
        self.model, self.trait, self.dimension, self.items = model, trait, dimension, items
        self.readout, self.baseline_ppl, self.guard, self.goal, self.tick = readout, baseline_ppl, guard, goal, tick

    def target_share(self, result) -> float:
        return result.dimensions[self.dimension].share(self.trait[1])

    def __call__(self, vector: SteeringVector, alpha: float) -> CurvePoint:
        steering = Steering(vector, alpha)
        result = assess(
            self.model,
            self.items.select("all", self.dimension),
            split="all",
            readout=self.readout,
            intervention=steering,
        )
        ppl = perplexity(self.model, intervention=steering)
        ratio = ppl / self.baseline_ppl
        share = self.target_share(result)
        if self.tick:
            self.tick(1)
        return CurvePoint(vector.layers[0], alpha, share, ppl, ratio, ratio <= 1 + self.guard, share > self.goal)


def _search_layer(evaluate: _Evaluator, vector: SteeringVector, alphas: Sequence[float]) -> list[CurvePoint]:
    points: list[CurvePoint] = []
    for alpha in alphas:
        point = evaluate(vector, alpha)
        points.append(point)
        if point.goal_met or not point.guard_ok:
            break
    last = points[-1]
    low, high = max((p.alpha for p in points if p.alpha < last.alpha), default=0.0), last.alpha
    success = last if last.goal_met and last.guard_ok else None
    if success is None and last.goal_met:
        # The first step past the goal also broke the guard: a strength between the last safe
        # step and this one may do both, so search that bracket before giving up.
        for _ in range(BRACKET_STEPS):
            mid = (low + high) / 2
            point = evaluate(vector, mid)
            points.append(point)
            if point.goal_met and point.guard_ok:
                success = point
                break
            if point.guard_ok:
                low = mid
            else:
                high = mid
    if success is None:
        return sorted(points, key=lambda p: p.alpha)
    high = success.alpha
    for _ in range(BISECTION_STEPS):  # the smallest strength that still reaches the goal
        mid = (low + high) / 2
        point = evaluate(vector, mid)
        points.append(point)
        if point.goal_met and point.guard_ok:
            high = mid
        else:
            low = mid
    return sorted(points, key=lambda p: p.alpha)


def _off_target(model, trait, items: ItemBank, readout_by_dim: dict[str, str], baseline, vector, alpha) -> float:
    others = [d for d in baseline.dimensions if set(DIMENSIONS[d]) != set(trait)]
    if not others:
        return 0.0
    shifts = []
    for dim in others:
        result = assess(
            model,
            items.select("all", dim),
            split="all",
            readout=readout_by_dim[dim],
            intervention=Steering(vector, alpha),
        )
        shifts.append(abs(result.dimensions[dim].share_first - baseline.dimensions[dim].share_first))
    return max(shifts)


def calibrate(
    model,
    trait: str,
    directions: dict[int, Direction],
    layers: Sequence[int],
    items: ItemBank,
    baseline,
    *,
    goal: float = 0.5,
    guard: float = 0.25,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    scale_mode: str = "resid_norm",
    progress: Callable[[int], None] | None = None,
) -> tuple[Calibration, dict[int, SteeringVector]]:
    """Search alpha (and the layer among ``layers``); ``baseline`` is the unsteered assessment
    on ``items`` (its readout per dimension is kept fixed along the curve)."""
    start = time.perf_counter()
    dimension = next(d for d, poles in DIMENSIONS.items() if set(poles) == set(trait))
    readouts = {d: r.readout for d, r in baseline.dimensions.items()}
    already = baseline.dimensions[dimension].share(trait[1])
    if already > goal:  # the letter is already the target: ask for a real move instead
        goal = min(already + GOAL_MARGIN, 0.95)
    base_ppl = perplexity(model)
    evaluate = _Evaluator(model, trait, dimension, items, readouts[dimension], base_ppl, guard, goal, progress)
    calibration = Calibration(
        trait, goal, guard, readouts[dimension], baseline.dimensions[dimension].share(trait[1]), base_ppl
    )
    vectors = {layer: vector_for(model, trait, layer, directions[layer], scale_mode) for layer in layers}
    winners = []
    for layer in layers:
        points = _search_layer(evaluate, vectors[layer], alphas)
        calibration.points += points
        ok = [p for p in points if p.goal_met and p.guard_ok]
        if ok:
            best = min(ok, key=lambda p: p.alpha)
            best.off_target_shift = _off_target(model, trait, items, readouts, baseline, vectors[layer], best.alpha)
            winners.append(best)
    if winners:
        calibration.chosen = min(winners, key=lambda p: (round(p.off_target_shift or 0.0, 2), p.alpha))
    else:  # goal not reached within the guard: report the furthest safe move
        safe = [p for p in calibration.points if p.guard_ok] or calibration.points
        calibration.chosen = max(safe, key=lambda p: p.target_share)
    calibration.seconds = time.perf_counter() - start
    return calibration, vectors
