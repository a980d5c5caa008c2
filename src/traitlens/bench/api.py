"""Run safety suites, before and after an edit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from traitlens.bench.base import SuiteResult
from traitlens.bench.common import fast_decoding
from traitlens.bench.generative import JailbreakSuite, LeakageSuite, OverRefusalSuite, ToxicitySuite
from traitlens.bench.judgement import FAIRNESS, PRIVACY, BBQSuite, CapabilitySuite
from traitlens.bench.toxicity import get_scorer
from traitlens.errors import TraitlensError

__all__ = ["SUITES", "DEFAULT_SUITES", "parse_suites", "run_suites", "bench_json", "suite_size"]

SUITES = {
    s.name: s
    for s in (
        PRIVACY,
        FAIRNESS,
        ToxicitySuite(),
        JailbreakSuite(),
        OverRefusalSuite(),
        LeakageSuite(),
        CapabilitySuite(),
        BBQSuite(),
    )
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


def suite_size(name: str, n_items: int) -> int:
    """Progress ticks of a suite: generations (jailbreak: per attack)."""
    return n_items * (len(SUITES[name].attacks) if name == "jailbreak" else 1)


def run_suites(
    model,
    names: Sequence[str],
    intervention=None,
    data=None,
    limit: int | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    sizes: dict[str, int] | None = None,
    fast: bool = False,
) -> dict[str, SuiteResult]:
    """Each suite in ``names``; ``fast`` (opt-in) runs the generated-text suites in
    ``fast_decoding`` mode (measured verdict agreement in ``benchmarks/RESULTS.md``)."""
    results = {}
    with fast_decoding(fast):
        for name in names:
            tick = progress(f"{name}", sizes.get(name, 0)) if progress and sizes else None
            results[name] = SUITES[name].run(model, intervention=intervention, data=data, limit=limit, progress=tick)
    return results


def bench_json(before: dict[str, SuiteResult], after: dict[str, SuiteResult] | None = None) -> dict[str, Any]:
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
    return {"suites": suites, "judges": judge_cards(list(before))}


def judge_cards(names: list[str]) -> dict[str, Any]:
    """Which judges scored these suites, and how far each agrees with labels it was not trained on."""
    cards: dict[str, Any] = {}
    for name in names:
        suite = SUITES.get(name)
        judge = getattr(suite, "detector", None) or (
            (getattr(suite, "scorer", None) or get_scorer(None)) if name == "toxicity" else None
        )
        if judge is None:
            continue
        card = getattr(judge, "card", {})
        cards[name] = {"judge": getattr(judge, "name", type(judge).__name__), "validation": card.get("validation")}
    return cards
