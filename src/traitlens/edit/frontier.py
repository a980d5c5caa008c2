"""The edit frontier: trait shift against perplexity for every candidate recipe.

Each recipe (where the direction comes from, how it is fitted, where and how it is injected; see
``recipe``) gets its own alpha curve on the train items, climbed until the perplexity guard breaks.
The Pareto front over all points shows the most trait any recipe buys at each perplexity cost.
Each recipe's best point within the guard is then read once more for its wording shift (how far
it moves the target pole's share when no question is asked), and the winner is chosen by
``select``: ``share`` (default) takes the largest train share; ``net`` takes the largest train
share less that wording shift. ``net`` is not the default because the wording shift is not only
wording: E->I moves its content-free share as far as its answers, yet an independent
questionnaire sees it transfer (``results/vectors/NOTES.md``). Everything is measured on the
train split: the eval split judges only the winner, afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from traitlens.edit.calibrate import (
    Calibration,
    CurvePoint,
    _Evaluator,
    best_within_guard,
    climb,
    goal_for,
    off_target,
)
from traitlens.edit.recipe import Recipe, recipe_layers, recipe_vector
from traitlens.errors import TraitlensError
from traitlens.instrument.items import ItemBank, Trait
from traitlens.options import RunOptions
from traitlens.perplexity_guard import perplexity
from traitlens.probe.api import DimensionProbe, probe_dimension
from traitlens.probe.collect import collect
from traitlens.probe.sources import ContrastSources
from traitlens.steering.vector import SteeringVector

__all__ = [
    "SELECT",
    "check_select",
    "RecipeRun",
    "Frontier",
    "pareto",
    "search_frontier",
    "choose",
    "run_frontier",
    "probe_for",
]

SELECT = ("net", "share")


def check_select(select: str, what: str = "selection") -> str:
    """``select`` if it names a selection rule, else one clear error naming ``what`` was given."""
    if select not in SELECT:
        raise TraitlensError(f"unknown {what} '{select}': use {' or '.join(SELECT)}")
    return select


@dataclass
class RecipeRun:
    recipe: Recipe
    layers: list[int] = field(default_factory=list)
    probe: dict = field(default_factory=dict)  # best layer and its held-out accuracy / separation
    points: list[CurvePoint] = field(default_factory=list)
    skipped: str = ""  # why the recipe was not evaluated (e.g. no pairs for this dimension)

    @property
    def best(self) -> CurvePoint | None:
        return best_within_guard(self.points) if self.points else None

    def to_dict(self) -> dict:
        best = self.best
        return {
            "recipe": self.recipe.to_dict(),
            "layers": self.layers,
            "probe": self.probe,
            "skipped": self.skipped,
            "best": best.to_dict() if best else None,
            "points": [p.to_dict() for p in self.points],
        }


@dataclass
class Frontier:
    runs: list[RecipeRun]
    chosen_recipe: str
    probes: dict[str, DimensionProbe] = field(default_factory=dict, repr=False)
    persona_prompt_share: float | None = None  # train share under the target pole's persona prompt
    select: str = "share"  # how the winner was chosen (see ``choose``)

    def points(self) -> list[CurvePoint]:
        return [p for run in self.runs for p in run.points]

    def to_dict(self) -> dict:
        return {
            "chosen_recipe": self.chosen_recipe,
            "select": self.select,
            "persona_prompt_train_share": self.persona_prompt_share,
            "recipes": [r.to_dict() for r in self.runs],
            "pareto": [p.to_dict() for p in pareto(self.points())],
        }


def pareto(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    """Points no other point beats on both share (higher) and perplexity (lower), by perplexity."""
    front, best_share = [], float("-inf")
    for point in sorted(points, key=lambda p: (p.ppl_ratio, -p.target_share)):
        if point.target_share > best_share:
            front.append(point)
            best_share = point.target_share
    return front


def search_frontier(
    candidates: dict[str, SteeringVector], evaluate: Callable, alphas: Sequence[float], exact: bool = False
) -> tuple[dict[str, list[CurvePoint]], str]:
    """Climb every candidate's alpha curve; the winner is the best point within the guard."""
    curves = {name: climb(evaluate, vector, alphas, name, exact) for name, vector in candidates.items()}
    everything = [p for points in curves.values() for p in points]
    return curves, best_within_guard(everything).recipe


def choose(runs: Sequence[RecipeRun], select: str = "share") -> RecipeRun:
    """The winning recipe: its best point within the guard has the largest train share (``share``)
    or the largest share less its wording shift (``net``); recipes with no point within the guard
    compete only when no recipe has one."""
    check_select(select)
    ran = [r for r in runs if r.points]
    safe = [r for r in ran if r.best.guard_ok]
    if not safe:  # no recipe holds the guard: the one that broke it least
        return min(ran, key=lambda r: r.best.ppl_ratio)
    score = (lambda p: p.net_share) if select == "net" else (lambda p: p.target_share)
    return max(safe, key=lambda r: (round(score(r.best), 6), -r.best.ppl_ratio))


def probe_for(model, contrast, method: str, permutations: int) -> DimensionProbe:
    acts = collect(model, contrast)
    return probe_dimension(acts, method, permutations, seed=0, with_probe=method == "probe")


def _best_layer(probe: DimensionProbe) -> int:
    # Ranked on the training split's cross-validation: the eval items judge the edit.
    return max(probe.layers, key=lambda r: (r.informative, r.cv_separation)).layer


def run_frontier(
    model,
    trait: Trait,
    recipes: Sequence[Recipe],
    sources: ContrastSources,
    train: ItemBank,
    train_baseline,
    *,
    goal: float = 0.5,
    guard: float = 0.25,
    alphas: Sequence[float],
    exact: bool = False,
    permutations: int = 100,
    layer: int | None = None,
    progress: Callable[[int], None] | None = None,
    options: RunOptions | None = None,
    select: str = "share",
) -> tuple[Calibration, Frontier, dict[str, SteeringVector]]:
    """Every recipe's curve on ``train``; returns the calibration of the winner (chosen by
    ``select``, see the module), the frontier and each recipe's vector at alpha = 1. ``layer`` pins
    every single-layer recipe to that layer."""
    start = time.perf_counter()
    dimension = trait.dimension
    readouts = {d: r.readout for d, r in train_baseline.dimensions.items()}
    base_share = train_baseline.dimensions[dimension].share(trait.target)
    goal = goal_for(base_share, goal)
    base_ppl = perplexity(model)
    evaluate = _Evaluator(model, trait, train, readouts[dimension], base_ppl, guard, goal, progress, options)
    runs, vectors, probes = [], {}, {}
    for recipe in recipes:
        run = RecipeRun(recipe)
        runs.append(run)
        missing = [s for s in recipe.sources if not sources.available(s, dimension)]
        if missing:
            run.skipped = f"no {', '.join(missing)} pairs for {dimension}"
            continue
        probe = probe_for(model, sources.get(recipe.sources, dimension), recipe.method, permutations)
        best = layer if layer is not None else _best_layer(probe)
        run.layers = recipe_layers(recipe, best, model.n_layers)
        result = next(r for r in probe.layers if r.layer == best)
        run.probe = {
            "layer": best,
            "heldout_accuracy": round(result.heldout_accuracy, 4),
            "heldout_separation": round(result.heldout_separation, 4),
            "n_train_pairs": probe.n_train,
            "n_heldout_pairs": probe.n_heldout,
        }
        probes[recipe.name] = probe
        vectors[recipe.name] = recipe_vector(model, trait, recipe, probe.directions, run.layers)
    if not vectors:
        raise TraitlensError(f"no recipe could be built for {dimension}: {'; '.join(r.skipped for r in runs)}")
    curves, _ = search_frontier(vectors, evaluate, alphas, exact)
    for run in runs:
        run.points = curves.get(run.recipe.name, [])
        if run.points:  # the report shows every recipe's wording shift, whichever rule chooses
            run.best.wording_shift = evaluate.wording(vectors[run.recipe.name], run.best.alpha)
    winner = choose(runs, select).recipe.name
    calibration = Calibration(trait, goal, guard, readouts[dimension], base_share, base_ppl)
    calibration.points = [p for run in runs for p in run.points]
    chosen = next(run for run in runs if run.recipe.name == winner).best
    chosen.off_target_shift = off_target(
        model, trait, train, readouts, train_baseline, vectors[winner], chosen.alpha, options
    )
    calibration.chosen = chosen
    calibration.seconds = time.perf_counter() - start
    return calibration, Frontier(runs, winner, probes, select=select), vectors
