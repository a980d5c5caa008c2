"""``edit``: baseline assessment -> trait direction -> calibration -> steered re-assessment ->
report and exported vector. The pipeline behind ``traitlens edit`` and ``make edit``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from traitlens.assess import AssessmentResult, assess, work_units
from traitlens.errors import TraitlensError
from traitlens.items import ItemBank, default_items, parse_dimension
from traitlens.probe.api import DimensionProbe, default_contrast, probe_dimension
from traitlens.probe.collect import collect
from traitlens.steering.calibrate import DEFAULT_ALPHAS, Calibration, CurvePoint, calibrate
from traitlens.steering.inject import Steering
from traitlens.steering.vector import SteeringVector

__all__ = ["EditResult", "edit", "CANDIDATE_LAYERS"]

CANDIDATE_LAYERS = 3  # best probe layers tried when --layer is not given


@dataclass
class EditResult:
    trait: str
    dimension: str
    baseline: AssessmentResult  # eval items, the readouts chosen on train
    steered: AssessmentResult  # eval items, same readouts
    steered_by_readout: dict[str, AssessmentResult]
    probe: DimensionProbe
    calibration: Calibration
    vector: SteeringVector  # at alpha = 1; apply at calibration.chosen.alpha
    bench: dict[str, Any] | None
    seconds: float
    calibration_items: tuple = ()  # ids of the train items calibration saw

    @property
    def alpha(self) -> float:
        return self.calibration.chosen.alpha

    @property
    def layer(self) -> int:
        return self.calibration.chosen.layer

    def share(self, result: AssessmentResult) -> float:
        return result.dimensions[self.dimension].share(self.trait[1])

    @property
    def already_target(self) -> bool:
        """The model already had the target letter before the edit."""
        return self.baseline.dimensions[self.dimension].letter == self.trait[1]

    @property
    def flipped(self) -> bool:
        """The edit turned the letter from the source pole into the target pole."""
        return not self.already_target and self.steered.dimensions[self.dimension].letter == self.trait[1]

    def summary(self) -> dict[str, Any]:
        return {
            "trait": self.trait,
            "dimension": self.dimension,
            "layer": self.layer,
            "alpha": self.alpha,
            "before_type": self.baseline.type,
            "after_type": self.steered.type,
            "before_share": round(self.share(self.baseline), 4),
            "after_share": round(self.share(self.steered), 4),
            "target_pole": self.trait[1],
            "split": "eval (alpha and readouts chosen on train)",
            "readouts": {d: r.readout for d, r in self.baseline.dimensions.items()},
            "train_before_share": round(self.calibration.baseline_share, 4),
            "train_after_share": round(self.calibration.chosen.target_share, 4),
            "flipped": self.flipped,
            "already_target_before": self.already_target,
            "goal_met_in_calibration": self.calibration.goal_met,
            "perplexity_before": round(self.calibration.baseline_perplexity, 3),
            "perplexity_after": round(self.calibration.chosen.perplexity, 3),
            "perplexity_change": round(self.calibration.chosen.ppl_ratio - 1, 4),
            "seconds": round(self.seconds, 1),
        }


def _candidate_layers(probe: DimensionProbe, layer: int | None, n_layers: int) -> list[int]:
    if layer is not None:
        if not 0 <= layer < n_layers:
            raise TraitlensError(f"layer {layer} out of range: the model has layers 0..{n_layers - 1}")
        return [layer]
    # Ranked on the training split's cross-validation: the eval items are what the edit is judged on.
    ranked = sorted(probe.layers, key=lambda r: (r.informative, r.cv_separation), reverse=True)
    return sorted(r.layer for r in ranked[:CANDIDATE_LAYERS])


def _single_point(
    model, trait, probe, layer, alpha, items, baseline, scale_mode, goal, guard
) -> tuple[Calibration, dict]:
    """--alpha given: evaluate exactly that edit, no search."""
    from traitlens.capability import perplexity
    from traitlens.items import DIMENSIONS
    from traitlens.steering.calibrate import _Evaluator, vector_for

    dimension = next(d for d, poles in DIMENSIONS.items() if set(poles) == set(trait))
    base_ppl = perplexity(model)
    readout = baseline.dimensions[dimension].readout
    vector = vector_for(model, trait, layer, probe.directions[layer], scale_mode)
    point = _Evaluator(model, trait, dimension, items, readout, base_ppl, guard, goal, None)(vector, alpha)
    calibration = Calibration(
        trait, goal, guard, readout, baseline.dimensions[dimension].share(trait[1]), base_ppl, [point], point
    )
    return calibration, {layer: vector}


def edit(
    model,
    trait: str,
    *,
    layer: int | None = None,
    alpha: float | None = None,
    goal: float = 0.5,
    guard: float = 0.25,
    method: str = "meandiff",
    scale_mode: str = "resid_norm",
    items: ItemBank | None = None,
    permutations: int = 100,
    alphas=DEFAULT_ALPHAS,
    run_bench: Callable | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> EditResult:
    """Edit ``trait`` ("JP" = from J towards P) and measure what moved."""
    import math

    start = time.perf_counter()
    dimension, _, _ = parse_dimension(trait)
    trait = trait.strip().upper()
    if alpha is not None and not math.isfinite(alpha):
        raise TraitlensError(f"alpha must be a finite number, not {alpha}")
    if layer is not None and not 0 <= layer < model.n_layers:
        raise TraitlensError(f"layer {layer} out of range: {model.name} has layers 0..{model.n_layers - 1}")
    bank_all = items or default_items()
    bank_all.select("train", dimension)  # calibration needs training items: say so before any model work
    train, bank = bank_all.select("train"), bank_all.select("eval")
    tick = (lambda name, total: progress(name, total)) if progress else (lambda name, total: None)
    # Honest splits: the readouts (by validity) and alpha are chosen on the train items; before
    # and after are reported on the eval items, read the same way.
    train_baseline = assess(model, train, split="all", progress=tick("baseline (train)", work_units(train, "logprob")))
    fixed = {d: r.readout for d, r in train_baseline.dimensions.items()}
    baseline = assess(
        model, bank, readout=fixed, validity=True, progress=tick("baseline (eval)", work_units(bank, "logprob"))
    )
    contrast = default_contrast().for_dimension(dimension)
    acts = collect(model, contrast, progress=tick(f"collect {dimension}", 2 * len(contrast)))
    # Only directions and held-out separation drive the edit: skip the logistic probe's CV.
    probe = probe_dimension(acts, method, permutations, seed=0, with_probe=method == "probe")
    layers = _candidate_layers(probe, layer, model.n_layers)
    if alpha is not None:
        calibration, vectors = _single_point(
            model, trait, probe, layers[0], alpha, train, train_baseline, scale_mode, goal, guard
        )
    else:
        calibration, vectors = calibrate(
            model,
            trait,
            probe.directions,
            layers,
            train,
            train_baseline,
            goal=goal,
            guard=guard,
            alphas=alphas,
            scale_mode=scale_mode,
            progress=tick("calibrate (train)", len(layers) * (len(alphas) + 3)),
        )
    chosen: CurvePoint = calibration.chosen
    vector = vectors[chosen.layer]
    vector.recommended_alpha = chosen.alpha
    steering = Steering(vector, chosen.alpha)
    # Before and after are read the same way: the readouts calibration held fixed.
    fixed = {d: r.readout for d, r in baseline.dimensions.items()}
    steered = assess(
        model, bank, readout=fixed, intervention=steering, progress=tick("steered assessment", 2 * len(bank))
    )
    by_readout = {r: assess(model, bank, readout=r, intervention=steering) for r in ("label", "option", "pmi")}
    bench = run_bench(model, steering) if run_bench else None
    return EditResult(
        trait,
        dimension,
        baseline,
        steered,
        by_readout,
        probe,
        calibration,
        vector,
        bench,
        time.perf_counter() - start,
        tuple(i.id for i in train if i.dimension == dimension),
    )
