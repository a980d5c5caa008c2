"""Safety benchmarks before and after an edit: privacy, fairness, toxicity, jailbreak,
over-refusal, leakage, capability (and BBQ with public data)."""

from traitlens.bench.api import DEFAULT_SUITES, SUITES, Judges, bench_json, parse_suites, run_suites, suite_sizes
from traitlens.bench.base import SuiteResult

__all__ = [
    "SUITES",
    "DEFAULT_SUITES",
    "Judges",
    "SuiteResult",
    "bench_json",
    "parse_suites",
    "run_suites",
    "suite_sizes",
]
