"""``edit``: baseline assessment -> candidate recipes -> frontier on the train items -> steered
re-assessment on the eval items -> report and exported vector. The pipeline behind
``traitlens edit`` and ``make edit``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlens.assess import AssessmentResult, assess, work_units
from traitlens.assess.validity import WORDING_FLAG
from traitlens.edit.calibrate import DEFAULT_ALPHAS, Calibration
from traitlens.edit.frontier import Frontier, check_select, run_frontier
from traitlens.edit.recipe import DEFAULT_RECIPES, Recipe, parse_recipes, recipe_layers
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS, ItemBank, Trait, default_items
from traitlens.instrument.personas import persona_prompt
from traitlens.memo import ScoreStore
from traitlens.null import NullResult, check_draws, null_test
from traitlens.options import RunOptions
from traitlens.paired import paired_shift
from traitlens.probe.api import DimensionProbe
from traitlens.probe.sources import ContrastSources
from traitlens.steering.inject import Steering
from traitlens.steering.vector import SteeringVector

__all__ = ["EditResult", "edit", "default_recipes", "check_options"]


@dataclass
class EditResult:
    trait: Trait
    baseline: AssessmentResult  # eval items, the readouts chosen on train
    steered: AssessmentResult  # eval items, same readouts
    steered_by_readout: dict[str, AssessmentResult]
    probe: DimensionProbe
    calibration: Calibration
    vector: SteeringVector  # at alpha = 1; apply at calibration.chosen.alpha
    bench: dict[str, Any] | None
    seconds: float
    calibration_items: tuple = ()  # ids of the train items calibration saw
    frontier: Frontier | None = None
    recipe: Recipe | None = None
    persona: AssessmentResult | None = None  # eval items under the target pole's persona prompt
    extra: dict[str, dict[str, AssessmentResult]] = field(default_factory=dict)  # instrument -> condition
    null: NullResult | None = None  # the chosen vector against random directions of its size and cost

    @property
    def dimension(self) -> str:
        return self.trait.dimension

    @property
    def alpha(self) -> float:
        return self.calibration.chosen.alpha

    @property
    def layer(self) -> int:
        return self.calibration.chosen.layer

    def share(self, result: AssessmentResult) -> float:
        return result.dimensions[self.dimension].share(self.trait.target)

    def target_items(self, result: AssessmentResult) -> dict[str, float]:
        """Each item's probability of the target pole, by item id."""
        return result.pole_by_item(self.trait.target)

    @property
    def wording_shift(self) -> float | None:
        """How far the edit moved the target pole's content-free share on the eval items (the
        wording, whatever the question), or ``None`` where it was not measured."""
        free = self.steered.validity.get("steered_content_free", {}).get(self.dimension)
        if free is None:
            return None
        first = self.trait.target == DIMENSIONS[self.dimension][0]
        return free["wording_shift"] if first else -free["wording_shift"]

    @property
    def off_target_shift(self) -> float:
        """The largest move of another dimension's share on the eval items."""
        others = [d for d in self.baseline.dimensions if d != self.dimension and d in self.steered.dimensions]
        moves = [abs(self.steered.dimensions[d].share_first - self.baseline.dimensions[d].share_first) for d in others]
        return max(moves, default=0.0)

    def flags(self) -> list[str]:
        """What makes this edit's trait shift suspect: it moved the wording more than
        ``WORDING_FLAG``, or another dimension more than its own."""
        out = []
        wording, shift = self.wording_shift, self.share(self.steered) - self.share(self.baseline)
        if wording is not None and abs(wording) > WORDING_FLAG:
            out.append(f"wording: the content-free share moved {100 * wording:+.1f} pts")
        if self.off_target_shift > abs(shift):
            out.append(
                f"off-target: another dimension moved {100 * self.off_target_shift:.1f} pts, more than the target"
            )
        return out

    def shift_test(self, before: AssessmentResult, after: AssessmentResult) -> dict[str, float]:
        """The target pole's shift from ``before`` to ``after``, paired over the same items."""
        a, b = self.target_items(before), self.target_items(after)
        ids = sorted(a.keys() & b.keys())
        test = paired_shift([a[i] for i in ids], [b[i] for i in ids])
        return {k: [round(x, 4) for x in v] if isinstance(v, list) else round(v, 4) for k, v in test.items()}

    @property
    def already_target(self) -> bool:
        """The model already had the target letter before the edit."""
        return self.baseline.dimensions[self.dimension].letter == self.trait.target

    @property
    def flipped(self) -> bool:
        """The edit turned the letter from the source pole into the target pole."""
        return not self.already_target and self.steered.dimensions[self.dimension].letter == self.trait.target

    def summary(self) -> dict[str, Any]:
        return {
            "trait": str(self.trait),
            "dimension": self.dimension,
            "layer": self.layer,
            "alpha": self.alpha,
            "before_type": self.baseline.type,
            "after_type": self.steered.type,
            "before_share": round(self.share(self.baseline), 4),
            "after_share": round(self.share(self.steered), 4),
            "target_pole": self.trait.target,
            "split": "eval (alpha and readouts chosen on train)",
            "readouts": {d: r.readout for d, r in self.baseline.dimensions.items()},
            "train_before_share": round(self.calibration.baseline_share, 4),
            "train_after_share": round(self.calibration.chosen.target_share, 4),
            "recipe": self.recipe.to_dict() | {"layers": self.vector.layers} if self.recipe else None,
            "shift": round(self.share(self.steered) - self.share(self.baseline), 4),
            "shift_test": self.shift_test(self.baseline, self.steered),
            "wording_shift": None if self.wording_shift is None else round(self.wording_shift, 4),
            "off_target_shift_eval": round(self.off_target_shift, 4),
            "flags": self.flags(),
            "null": self._null_summary(),
            "persona_prompt_share": round(self.share(self.persona), 4) if self.persona else None,
            "persona_prompt_shift": round(self.share(self.persona) - self.share(self.baseline), 4)
            if self.persona
            else None,
            "persona_prompt_shift_test": self.shift_test(self.baseline, self.persona) if self.persona else None,
            "extra_instruments": self._extra_summary(),
            "flipped": self.flipped,
            "already_target_before": self.already_target,
            "goal_met_in_calibration": self.calibration.goal_met,
            "perplexity_before": round(self.calibration.baseline_perplexity, 3),
            "perplexity_after": round(self.calibration.chosen.perplexity, 3),
            "perplexity_change": round(self.calibration.chosen.ppl_ratio - 1, 4),
            "seconds": round(self.seconds, 1),
        }

    def _null_summary(self) -> dict[str, Any] | None:
        """The target share's place in the null: the vector's shift, the null's percentiles and p."""
        if self.null is None:
            return None
        first = DIMENSIONS[self.dimension][0]
        entry = self.null.metrics[f"share_{first}"]
        sign = 1 if self.trait.target == first else -1
        return {
            "draws": self.null.draws,
            "metric": f"share_{first}",
            "towards_target": round(sign * entry["vector"], 4),
            "percentiles": entry["percentiles"],
            "p": entry["p"],
        }

    def _extra_summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {condition: round(self.share(result), 4) for condition, result in runs.items()}
            | {"n_items": runs["before"].dimensions[self.dimension].n_items}
            | {"shift_test": self.shift_test(runs["before"], runs["after"])}
            for name, runs in self.extra.items()
        }


def default_recipes(pair_files: Sequence[str | Path] = ()) -> list[Recipe]:
    names = list(DEFAULT_RECIPES) + (["pairs-band"] if pair_files else [])
    return parse_recipes(names)


def check_options(alpha: float | None, goal: float, guard: float) -> None:
    """The edit's numbers, checked the same way for the CLI and the Python API."""
    if alpha is not None and not math.isfinite(alpha):
        raise TraitlensError(f"alpha must be a finite number, not {alpha}")
    if not 0 < goal < 1:
        raise TraitlensError(f"goal must be between 0 and 1, not {goal}")
    if not math.isfinite(guard) or guard <= 0:
        raise TraitlensError(f"guard must be a positive number, not {guard}")


def _check_inputs(model, alpha, layer, recipes: Sequence[Recipe], alphas) -> None:
    if not alphas or any(not math.isfinite(a) or a <= 0 for a in alphas):
        raise TraitlensError("alphas must be positive finite numbers")
    if layer is not None and not 0 <= layer < model.n_layers:
        raise TraitlensError(f"layer {layer} out of range: {model.name} has layers 0..{model.n_layers - 1}")
    for recipe in recipes:  # explicit layer bands must fit the model: say so before any model work
        if recipe.placement[0].isdigit():
            recipe_layers(recipe, None, model.n_layers)


@dataclass(frozen=True)
class _Plan:
    """What one edit was asked to do (checked at the API boundary)."""

    trait: Trait
    layer: int | None
    alpha: float | None
    goal: float
    guard: float
    recipes: list[Recipe]
    pair_files: Sequence[str | Path]
    items: ItemBank
    extra_items: dict[str, ItemBank]
    permutations: int
    alphas: Sequence[float]
    run_bench: Callable | None
    null: int
    select: str


def edit(
    model,
    trait: str | Trait,
    *,
    layer: int | None = None,
    alpha: float | None = None,
    goal: float = 0.5,
    guard: float = 0.25,
    recipes: Sequence[Recipe] | str | None = None,
    pair_files: Sequence[str | Path] = (),
    items: ItemBank | None = None,
    extra_items: dict[str, ItemBank] | None = None,
    permutations: int = 100,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    run_bench: Callable | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    options: RunOptions | None = None,
    null: int = 0,
    select: str = "share",
) -> EditResult:
    """Edit ``trait`` (a ``Trait``, or its letters: "JP" = from J towards P) and measure what moved.

    Every recipe in ``recipes`` (default: ``default_recipes``) is climbed on the train items up to
    the perplexity guard; each recipe's best point is read for its wording shift and ``select``
    picks the winner: ``share``, the largest train share, or ``net``, the largest train share less
    that wording shift (``traitlens.edit.frontier``; with ``alpha`` given, only the first recipe
    at that strength). Before, after and the persona-prompt baseline are then
    read on the eval items and on every ``extra_items`` instrument, which the choice never saw.
    ``options`` says how the passes run (default: a memo over the shared score store, so passes
    asked twice are computed once and the next edit of the same model reads its unsteered passes
    back, bit for bit; lower-layer reuse in calibration). ``RunOptions(fast=True)`` (opt-in, not
    bit-identical) takes the scorer's fast path and the persona replies' decoding levers; its
    agreement with the exact path is in ``benchmarks/RESULTS.md``. ``null`` > 0 sets the chosen
    vector beside that many random directions of its size and perplexity cost on the eval items
    (``traitlens.null``), read with the same fixed readouts."""
    trait = Trait.parse(trait)
    check_options(alpha, goal, guard)
    if null:
        check_draws(null)
    check_select(select)
    recipes = parse_recipes(recipes) if isinstance(recipes, str) else list(recipes or default_recipes(pair_files))
    if alpha is not None:
        recipes = recipes[:1]
    _check_inputs(model, alpha, layer, recipes, alphas)
    bank = items or default_items()
    bank.select("train", trait.dimension)  # calibration needs training items: say so before any model work
    plan = _Plan(
        trait, layer, alpha, goal, guard, recipes, pair_files, bank, extra_items or {}, permutations, alphas, run_bench,
        null, select,
    )  # fmt: skip
    return _edit(model, plan, options or RunOptions.cached(ScoreStore.default()), progress)


def _edit(model, plan: _Plan, options: RunOptions, progress) -> EditResult:
    start = time.perf_counter()
    trait, alpha, recipes = plan.trait, plan.alpha, plan.recipes
    dimension = trait.dimension
    bank_all = plan.items
    train, bank = bank_all.select("train"), bank_all.select("eval")
    tick = (lambda name, total: progress(name, total)) if progress else (lambda name, total: None)

    def read(items, **kwargs) -> AssessmentResult:
        return assess(model, items, options=options, **kwargs)

    # Honest splits: the readouts (by validity), recipe and alpha are chosen on the train items;
    # before and after are reported on the eval items, read the same way.
    train_baseline = read(train, split="all", progress=tick("baseline (train)", work_units(train, "logprob")))
    fixed = {d: r.readout for d, r in train_baseline.dimensions.items()}
    baseline = read(bank, readout=fixed, validity=True, progress=tick("baseline (eval)", work_units(bank, "logprob")))
    sources = ContrastSources(model, bank_all, plan.pair_files, progress=progress, options=options)
    calibration, frontier, vectors = run_frontier(
        model,
        trait,
        recipes,
        sources,
        train,
        train_baseline,
        goal=plan.goal,
        guard=plan.guard,
        alphas=(alpha,) if alpha is not None else plan.alphas,
        exact=alpha is not None,
        permutations=plan.permutations,
        layer=plan.layer,
        progress=tick("frontier (train)", len(recipes) * (len(plan.alphas) + 2)),
        options=options,
        select=plan.select,
    )
    pole_prompt = persona_prompt(trait.target)
    frontier.persona_prompt_share = (
        read(train.select("all", dimension), split="all", readout=fixed, system=pole_prompt)
        .dimensions[dimension]
        .share(trait.target)
    )
    recipe = next(r for r in recipes if r.name == frontier.chosen_recipe)
    vector = vectors[recipe.name]
    vector.recommended_alpha = calibration.chosen.alpha
    steering = Steering.of(vector, calibration.chosen.alpha)
    # Before and after are read the same way: the readouts calibration held fixed.
    steered = read(bank, readout=fixed, intervention=steering, progress=tick("steered assessment", 2 * len(bank)))
    persona = read(bank, readout=fixed, system=pole_prompt)
    by_readout = {  # views of the same steered passes: the wording is read once, above
        r: read(bank, readout=r, intervention=steering, content_free=False) for r in ("label", "option", "pmi")
    }
    extra = {}
    for name, instrument in plan.extra_items.items():
        if not any(i.dimension == dimension for i in instrument):
            continue
        subset = instrument.select("all", dimension)
        extra[name] = {
            "before": read(subset, split="all", readout=fixed),
            "after": read(subset, split="all", readout=fixed, intervention=steering),
            "persona_prompt": read(subset, split="all", readout=fixed, system=pole_prompt),
        }
    bench = plan.run_bench(model, steering) if plan.run_bench else None
    against = None
    if plan.null:
        tick = progress("null draws", plan.null + 2) if progress else None
        against = null_test(
            model, steering, draws_n=plan.null, items=bank_all, readouts=fixed, options=options, progress=tick
        )
    return EditResult(
        trait,
        baseline,
        steered,
        by_readout,
        frontier.probes[recipe.name],
        calibration,
        vector,
        bench,
        time.perf_counter() - start,
        tuple(i.id for i in train if i.dimension == dimension),
        frontier,
        recipe,
        persona,
        extra,
        against,
    )
