"""The random-direction null of a steering vector: each reported effect beside what directions of
the same size and the same perplexity cost do (``draws``), with the vector's empirical p.

Every draw is placed on the vector's layers at its per-layer norms, then rescaled until its
perplexity change matches the vector's (a few bisection steps on a scale factor), so the null is
matched in norm first and in cost last; both are recorded. The questionnaire is read with the
readouts chosen once on the train items and held fixed for the vector and every draw; the
layers below the vector are computed once per input for all of them (the draws share its
layers). Suites, when asked for, run once per draw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from traitlens.accel.lower_layers import LowerLayers
from traitlens.assess import assess
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS, ItemBank, Trait, default_items
from traitlens.null.draws import KINDS, check_draws, draws
from traitlens.options import RunOptions
from traitlens.paired import paired_shift
from traitlens.perplexity_guard import perplexity
from traitlens.steering.inject import Steering, first_affected_layer

__all__ = ["QUESTIONNAIRE", "NullResult", "null_test", "compare", "summarise", "match_scale", "check_suites"]

QUESTIONNAIRE = "questionnaire"
MATCH_STEPS = 4  # perplexity evaluations per draw beyond the first
MATCH_TOLERANCE = 0.1  # of the vector's perplexity change


def summarise(effect: float, null: Sequence[float]) -> dict[str, Any]:
    """The vector's effect among the null's: two-sided empirical p (its rank by size, the vector
    counted among the draws) and the null's 2.5 / 50 / 97.5 percentiles."""
    values = np.asarray(null, float)
    p = (1 + int(np.sum(np.abs(values) >= abs(effect) - 1e-12))) / (1 + values.size)
    return {
        "vector": round(float(effect), 6),
        "null": [round(float(v), 6) for v in values],
        "p": round(p, 6),
        "percentiles": [round(float(np.percentile(values, q)), 6) for q in (2.5, 50, 97.5)],
    }


def match_scale(ratio_at: Callable[[float], float], target: float, steps: int = MATCH_STEPS) -> tuple[float, float]:
    """(scale, ratio): the scale factor whose perplexity ratio is nearest ``target`` after at most
    ``steps`` evaluations beyond the one at 1.

    A perturbation's excess log-perplexity grows like a power of its scale (about the square for a
    small one), so each step is a secant on ``log(log ratio)`` against ``log scale``, starting
    from the square law; the steps stay inside the bracket the evaluations so far have found,
    and fall back to bisecting it (or doubling) wherever the law does not apply (a ratio at or
    below 1). Typically one or two evaluations beyond the first."""
    tolerance = MATCH_TOLERANCE * abs(target - 1) + 1e-3
    seen: list[tuple[float, float]] = [(1.0, ratio_at(1.0))]
    low, high = 0.0, math.inf
    for _ in range(steps):
        scale, ratio = seen[-1]
        if abs(ratio - target) <= tolerance or target <= 1:
            break
        if ratio > target:
            high = min(high, scale)
        else:
            low = max(low, scale)
        guess = _power_law_step(seen, target)
        if guess is None or not low < guess < high:
            guess = (low + high) / 2 if math.isfinite(high) else 2 * max(low, scale)
        seen.append((guess, ratio_at(guess)))
    return min(seen, key=lambda point: abs(point[1] - target))


def _power_law_step(seen: list[tuple[float, float]], target: float) -> float | None:
    """The scale at which ``log ratio = c * scale**k`` meets ``target``, with ``k`` fitted on the
    last two evaluations (2 when there is one); ``None`` where a ratio is at or below 1."""
    usable = [(s, math.log(math.log(r))) for s, r in seen[-2:] if s > 0 and r > 1]
    if not usable or len(usable) < len(seen[-2:]):
        return None
    (s1, y1) = usable[-1]
    k = 2.0
    if len(usable) == 2 and abs(math.log(usable[0][0]) - math.log(s1)) > 1e-9:
        k = (usable[0][1] - y1) / (math.log(usable[0][0]) - math.log(s1))
        if not 0.5 <= k <= 4:
            k = 2.0
    return s1 * math.exp((math.log(math.log(target)) - y1) / k)


def compare(
    measure: Callable[[Steering | None], dict[str, float]],
    ratio: Callable[[Steering], float],
    steering: Steering,
    made: Sequence,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The comparison itself, on any ``measure`` (metrics under an intervention, ``None``: none)
    and ``ratio`` (its perplexity over the unsteered one): every metric's effect and its null
    (``summarise``), and how closely each draw's perplexity was matched to the vector's."""
    base = measure(None)
    effect = {k: v - base[k] for k, v in measure(steering).items()}
    target = ratio(steering)
    null_effects: dict[str, list[float]] = {k: [] for k in effect}
    scales, ratios = [], []
    for draw in made:

        def at(scale: float, draw=draw) -> Steering:
            return replace(steering, vector=draw.scaled(scale) if scale != 1.0 else draw)

        scale, achieved = match_scale(lambda c, at=at: ratio(at(c)), target)
        scales.append(round(scale, 4))
        ratios.append(round(achieved, 6))
        for k, v in measure(at(scale)).items():
            null_effects[k].append(v - base[k])
    metrics = {k: summarise(effect[k], null_effects[k]) for k in effect}
    return metrics, {"vector_ratio": round(target, 6), "null_ratios": ratios, "null_scales": scales}


def check_suites(suites: Sequence[str]) -> list[str]:
    from traitlens.bench.api import SUITES

    names = [s.strip() for s in suites if s.strip()]
    unknown = [s for s in names if s != QUESTIONNAIRE and s not in SUITES]
    if not names or unknown:
        raise TraitlensError(
            f"unknown suite {unknown[0] if unknown else ''!r}: use {QUESTIONNAIRE} or {', '.join(SUITES)}"
        )
    return names


@dataclass
class NullResult:
    vector: dict[str, Any]
    draws: int
    kinds: list[str]
    readouts: dict[str, str]
    metrics: dict[str, dict[str, Any]]
    perplexity: dict[str, Any]
    n_items: int
    wording: dict[str, Any] = field(default_factory=dict)  # the vector's content-free shift per dimension
    shift_test: dict[str, Any] = field(default_factory=dict)  # its target pole's shift, paired over items
    seconds: float = 0.0
    matched: list[str] = field(default_factory=lambda: ["norm", "perplexity"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "vector": self.vector,
            "draws": self.draws,
            "kinds": self.kinds,
            "matched": self.matched,
            "readouts": self.readouts,
            "n_items": self.n_items,
            "metrics": self.metrics,
            "perplexity": self.perplexity,
            "wording": self.wording,
            "shift_test": self.shift_test,
            "seconds": round(self.seconds, 1),
        }


def _shift_test(trait: str, before, after) -> dict[str, Any]:
    """The trait's target pole's shift, paired over the eval items (none for a vector whose trait
    names no dimension, such as an imported one)."""
    try:
        pole = Trait.parse(trait).target
    except TraitlensError:
        return {}
    a, b = before.pole_by_item(pole), after.pole_by_item(pole)
    ids = sorted(a.keys() & b.keys())
    return {"pole": pole} | paired_shift([a[i] for i in ids], [b[i] for i in ids])


def _shares(result) -> dict[str, float]:
    return {f"share_{DIMENSIONS[d][0]}": r.share_first for d, r in result.dimensions.items()}


def null_test(
    model,
    steering: Steering,
    *,
    draws_n: int = 32,
    kinds: Sequence[str] = KINDS,
    suites: Sequence[str] = (QUESTIONNAIRE,),
    items: ItemBank | None = None,
    data=None,
    limit: int | None = None,
    options: RunOptions | None = None,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
    readouts: dict[str, str] | None = None,
) -> NullResult:
    """``steering``'s effect on the questionnaire's eval items (and on ``suites``) beside
    ``draws_n`` null directions matched to it in norm and perplexity (see the module).
    ``readouts``: one per dimension, held fixed (default: chosen on the bank's train items)."""
    check_draws(draws_n)
    suites = check_suites(suites)
    start = time.perf_counter()
    options = options or RunOptions.cached()
    bank_all = items or default_items()
    bank = bank_all.select("eval")
    made = draws(model, steering.vector, draws_n, tuple(kinds), bank_all, seed)
    fixed = readouts or {
        d: r.readout for d, r in assess(model, bank_all, split="train", options=options).dimensions.items()
    }
    reuse = LowerLayers(model.hf_model, first_affected_layer(steering.vector)) if options.reuse_layers else None
    run = options.through(reuse)
    base_ppl = perplexity(model, options=run)

    def measure(intervention) -> dict[str, float]:
        out: dict[str, float] = {}
        if QUESTIONNAIRE in suites:
            result = assess(model, bank, readout=fixed, intervention=intervention, options=run, content_free=False)
            out |= _shares(result)
        others = [s for s in suites if s != QUESTIONNAIRE]
        if others:
            from traitlens.bench import run_suites

            results = run_suites(model, others, intervention, data, limit, options=RunOptions(fast=options.fast))
            out |= {f"{name}_{r.metric}": r.value for name, r in results.items()}
        if progress:
            progress(1)
        return out

    def ratio(intervention) -> float:
        return perplexity(model, intervention=intervention, options=run) / base_ppl

    metrics, matched = compare(measure, ratio, steering, made)
    wording, shift_test = {}, {}
    if QUESTIONNAIRE in suites:  # the vector's own passes are memoised: only the content-free ones run
        before = assess(model, bank, readout=fixed, options=run, content_free=False)
        steered = assess(model, bank, readout=fixed, intervention=steering, options=run)
        wording = steered.validity.get("steered_content_free", {})
        shift_test = _shift_test(steering.vector.trait, before, steered)
    return NullResult(
        vector=steering.describe(),
        draws=len(made),
        kinds=list(kinds),
        readouts=fixed,
        metrics=metrics,
        perplexity=matched,
        n_items=len(bank),
        wording=wording,
        shift_test=shift_test,
        seconds=time.perf_counter() - start,
    )
