"""Calibration: the furthest a recipe's edit moves a dimension while capability holds.

For one steering vector, alpha climbs a grid (in units of the layer's typical residual norm: the
useful range on small models is ~0.05-0.4) until the perplexity guard breaks; the bracket between
the last safe strength and the first broken one is then bisected, so the edit ends close to the
guard. The strength with the largest target share among those within the guard wins (not the
smallest that crosses a goal: a barely-crossing edit moves little off the items that chose it).
Every evaluated point is kept: the report shows the whole curve, not only the winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from traitlens.accel.lower_layers import LowerLayers
from traitlens.assess import assess
from traitlens.instrument.items import ItemBank, Trait
from traitlens.options import RunOptions
from traitlens.perplexity_guard import perplexity
from traitlens.steering.inject import Steering, first_affected_layer
from traitlens.steering.vector import SteeringVector

__all__ = [
    "DEFAULT_ALPHAS",
    "CurvePoint",
    "Calibration",
    "climb",
    "best_within_guard",
    "goal_for",
    "off_target",
]

DEFAULT_ALPHAS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
BISECTION_STEPS = 2
GOAL_MARGIN = 0.10  # when the baseline already passes the goal, a real move is this much more


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
    recipe: str = ""
    wording_shift: float | None = None  # the target pole's content-free share change (measured on a recipe's best)

    @property
    def net_share(self) -> float:
        """The target share less what the wording alone moved (the share any question would get)."""
        return self.target_share - (self.wording_shift or 0.0)

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Calibration:
    trait: Trait
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
            "trait": str(self.trait),
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


def goal_for(baseline_share: float, goal: float) -> float:
    """The share that counts as a real move: past ``goal``, or baseline + margin when the model
    already has the target letter."""
    return min(baseline_share + GOAL_MARGIN, 0.95) if baseline_share > goal else goal


class _Evaluator:
    def __init__(self, model, trait: Trait, items: ItemBank, readout, baseline_ppl, guard, goal, tick, options):
        self.model, self.trait, self.dimension, self.items = model, trait, trait.dimension, items
        self.readout, self.baseline_ppl, self.guard, self.goal, self.tick = readout, baseline_ppl, guard, goal, tick
        self.options: RunOptions = options or RunOptions()
        self.reuse: LowerLayers | None = None
        self.reuse_of: SteeringVector | None = None

    def _reuse(self, vector: SteeringVector) -> LowerLayers | None:
        """One replay per vector (the last one evaluated): its alpha curve computes the layers
        below the vector once per input and runs only the layers it changes
        (``traitlens.accel.lower_layers``); ``None`` when the options turn reuse off."""
        if not self.options.reuse_layers:
            return None
        if self.reuse is None or self.reuse_of is not vector:
            self.reuse, self.reuse_of = LowerLayers(self.model.hf_model, first_affected_layer(vector)), vector
        return self.reuse

    def target_share(self, result) -> float:
        return result.dimensions[self.dimension].share(self.trait.target)

    def __call__(self, vector: SteeringVector, alpha: float) -> CurvePoint:
        steering = Steering.of(vector, alpha)
        options = self.options.through(self._reuse(vector))
        result = assess(
            self.model,
            self.items.select("all", self.dimension),
            split="all",
            readout=self.readout,
            intervention=steering,
            options=options,
            content_free=False,  # a curve point needs the share only; the edit reads wording once, at the end
        )
        ppl = perplexity(self.model, intervention=steering, options=options)
        ratio = ppl / self.baseline_ppl
        share = self.target_share(result)
        if self.tick:
            self.tick(1)
        return CurvePoint(vector.layers[0], alpha, share, ppl, ratio, ratio <= 1 + self.guard, share > self.goal)

    def wording(self, vector: SteeringVector, alpha: float) -> float:
        """How far ``vector`` at ``alpha`` moves the target pole's content-free share on the items
        (the wording, whatever the question); the steered item passes are the curve point's."""
        result = assess(
            self.model,
            self.items.select("all", self.dimension),
            split="all",
            readout=self.readout,
            intervention=Steering.of(vector, alpha),
            options=self.options.through(self._reuse(vector)),
        )
        shift = result.validity["steered_content_free"][self.dimension]["wording_shift"]
        return shift if self.trait.target == result.dimensions[self.dimension].poles[0] else -shift


def climb(
    evaluate: _Evaluator, vector: SteeringVector, alphas: Sequence[float], recipe: str = "", exact: bool = False
) -> list[CurvePoint]:
    """Evaluate ``alphas`` in increasing order until the guard breaks, then bisect towards it
    (``exact``: only the given alphas)."""
    points: list[CurvePoint] = []
    for alpha in sorted(alphas):
        point = evaluate(vector, alpha)
        point.recipe = recipe
        points.append(point)
        if not point.guard_ok:
            break
    if not points[-1].guard_ok and not exact:
        low = max((p.alpha for p in points if p.guard_ok), default=0.0)
        high = points[-1].alpha
        for _ in range(BISECTION_STEPS):
            mid = (low + high) / 2
            point = evaluate(vector, mid)
            point.recipe = recipe
            points.append(point)
            low, high = (mid, high) if point.guard_ok else (low, mid)
    return sorted(points, key=lambda p: p.alpha)


def best_within_guard(points: Sequence[CurvePoint]) -> CurvePoint:
    """The largest target share within the guard (ties: lower perplexity); when no point holds
    the guard, the one that broke it least."""
    safe = [p for p in points if p.guard_ok]
    if not safe:
        return min(points, key=lambda p: p.ppl_ratio)
    return max(safe, key=lambda p: (round(p.target_share, 6), -p.ppl_ratio))


def off_target(
    model, trait: Trait, items: ItemBank, readout_by_dim: dict[str, str], baseline, vector, alpha, options=None
) -> float:
    others = [d for d in baseline.dimensions if d != trait.dimension]
    if not others:
        return 0.0
    shifts = []
    for dim in others:
        result = assess(
            model,
            items.select("all", dim),
            split="all",
            readout=readout_by_dim[dim],
            intervention=Steering.of(vector, alpha),
            options=options,
            content_free=False,
        )
        shifts.append(abs(result.dimensions[dim].share_first - baseline.dimensions[dim].share_first))
    return max(shifts)
