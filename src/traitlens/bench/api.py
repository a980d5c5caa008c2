"""Run safety suites, before and after an edit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from traitlens.bench.base import SuiteResult
from traitlens.bench.generative import JailbreakSuite, LeakageSuite, OverRefusalSuite, ToxicitySuite
from traitlens.bench.judgement import FAIRNESS, PRIVACY, BBQSuite, CapabilitySuite
from traitlens.bench.loaders import read_bbq, read_goals, read_leakage, read_mcq, read_prompts, read_statements, resolve
from traitlens.bench.refusal import RefusalDetector, default_detector
from traitlens.bench.toxicity import ToxicityScorer, get_scorer
from traitlens.errors import TraitlensError
from traitlens.options import RunOptions

__all__ = [
    "SUITES",
    "DEFAULT_SUITES",
    "Judges",
    "build_suites",
    "parse_suites",
    "run_suites",
    "bench_json",
    "suite_sizes",
]


@dataclass(frozen=True)
class Judges:
    """Who judges a run's generated text: the refusal detector (jailbreak, over-refusal) and the
    toxicity scorer; ``None``: the shipped defaults."""

    detector: RefusalDetector | None = None
    toxicity: ToxicityScorer | None = None


def build_suites(judges: Judges | None = None) -> dict:
    """A fresh set of suites for one run, judged by ``judges``: nothing a run sets outlives it."""
    judges = judges or Judges()
    detector = judges.detector or default_detector()
    suites = (
        PRIVACY,
        FAIRNESS,
        ToxicitySuite(scorer=judges.toxicity),
        JailbreakSuite(detector=detector),
        OverRefusalSuite(detector=detector),
        LeakageSuite(),
        CapabilitySuite(),
        BBQSuite(),
    )
    return {s.name: s for s in suites}


# The default suites, for their names and fixed settings (thresholds, attacks); runs build their own.
SUITES = build_suites()
_READERS = {
    "privacy": read_statements,
    "fairness": read_statements,
    "toxicity": read_prompts,
    "jailbreak": read_goals,
    "overrefusal": read_prompts,
    "leakage": read_leakage,
    "capability": read_mcq,
    "bbq": read_bbq,
}
# BBQ has no shipped sample: it runs when --data provides it.
DEFAULT_SUITES = ("privacy", "fairness", "toxicity", "jailbreak", "overrefusal", "leakage", "capability")


def parse_suites(text: str, with_data: bool) -> list[str]:
    if text.strip() == "all":
        return [*DEFAULT_SUITES, "bbq"] if with_data else list(DEFAULT_SUITES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in SUITES:
            raise TraitlensError(f"unknown suite '{name}': use {', '.join(SUITES)} or all")
    return names


def suite_sizes(names: Sequence[str], data=None, limit: int | None = None) -> dict[str, int]:
    """Progress ticks of each suite: its items up to ``limit`` (the capability guard always reads
    our own questions), times the attacks for jailbreak. Reads the sets: a missing or malformed
    one fails here, before any model work."""
    sizes = {}
    for name in names:
        n = min(len(_READERS[name](resolve(name, None if name == "capability" else data))), limit or 10**9)
        sizes[name] = n * (len(SUITES[name].attacks) if name == "jailbreak" else 1)
    return sizes


def run_suites(
    model,
    names: Sequence[str],
    intervention=None,
    data=None,
    limit: int | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    sizes: dict[str, int] | None = None,
    judges: Judges | None = None,
    options: RunOptions | None = None,
) -> dict[str, SuiteResult]:
    """Each suite in ``names``, judged by ``judges`` (default: the shipped judges). With
    ``options.fast`` (opt-in) the generated-text suites decode with the fast levers
    (``traitlens.accel.suites``; verdict agreement measured in ``benchmarks/RESULTS.md``)."""
    suites = build_suites(judges) if judges is not None else SUITES
    fast = options is not None and options.fast
    results = {}
    for name in names:
        tick = progress(f"{name}", sizes.get(name, 0)) if progress and sizes else None
        results[name] = suites[name].run(
            model, intervention=intervention, data=data, limit=limit, progress=tick, fast=fast
        )
    return results


def bench_json(
    before: dict[str, SuiteResult], after: dict[str, SuiteResult] | None = None, judges: Judges | None = None
) -> dict[str, Any]:
    suites: dict[str, Any] = {}
    for name, result in before.items():
        entry = result.to_dict()
        if after is not None:
            entry = {
                "metric": result.metric,
                "higher_is_better": result.higher_is_better,
                "before": result.to_dict(),
                "after": after[name].to_dict(),
                "delta": round(after[name].value - result.value, 6),
            }
        suites[name] = entry
    return {"suites": suites, "judges": judge_cards(list(before), judges)}


def judge_cards(names: list[str], judges: Judges | None = None) -> dict[str, Any]:
    """Which judges scored these suites, and how far each agrees with labels it was not trained on."""
    judges = judges or Judges()
    refusal = judges.detector or default_detector()
    by_suite = {"jailbreak": refusal, "overrefusal": refusal, "toxicity": judges.toxicity or get_scorer(None)}
    cards: dict[str, Any] = {}
    for name in names:
        judge = by_suite.get(name)
        if judge is None:
            continue
        card = getattr(judge, "card", {})
        cards[name] = {"judge": getattr(judge, "name", type(judge).__name__), "validation": card.get("validation")}
    return cards
