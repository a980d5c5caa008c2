"""What every safety suite returns, and the statistics they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = [
    "SuiteResult",
    "Suite",
    "f1_score",
    "bootstrap_metric",
    "cluster_bootstrap",
    "accuracy",
    "subset",
    "minimum_detectable_difference",
]


def minimum_detectable_difference(rate: float, n: int, z_alpha: float = 1.96, z_power: float = 0.8416) -> float:
    """Two-sided 5%, 80% power, two samples of ``n`` at proportion ``rate`` (clipped to
    [0.05, 0.95] so a rate of 0 does not claim infinite precision)."""
    if n <= 0:
        return float("nan")
    p = min(max(float(rate), 0.05), 0.95)
    return float((z_alpha + z_power) * np.sqrt(2 * p * (1 - p) / n))


@dataclass
class SuiteResult:
    suite: str
    metric: str
    value: float
    higher_is_better: bool
    ci95: tuple[float, float]
    n: int
    records: list[dict[str, Any]] = field(default_factory=list)  # per item, with the generation
    extra: dict[str, float] = field(default_factory=dict)  # secondary metrics (accuracy, ...)
    note: str = ""  # e.g. "proxy scorer"
    data: str = ""  # where the items came from

    @property
    def mdd(self) -> float:
        """Minimum detectable difference: the smallest before/after change in this metric that a
        two-sided test at 5% would find with 80% power at this n (two independent proportions at
        the observed rate; for F1 an approximation)."""
        return minimum_detectable_difference(self.value, self.n)

    def to_dict(self, with_records: bool = False) -> dict[str, Any]:
        out = {
            "metric": self.metric,
            "value": round(self.value, 6),
            "higher_is_better": self.higher_is_better,
            "ci95": [round(self.ci95[0], 6), round(self.ci95[1], 6)],
            "n": self.n,
            "mdd": round(self.mdd, 6),
            "extra": {k: round(v, 6) for k, v in self.extra.items()},
            "note": self.note,
            "data": self.data,
        }
        if with_records:
            out["records"] = self.records
        return out


class Suite(Protocol):
    name: str

    def run(
        self,
        model,
        intervention=None,
        data: str | None = None,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
        fast: bool = False,
    ) -> SuiteResult: ...


def subset(items: Sequence, limit: int | None, seed: int = 0) -> list:
    """At most ``limit`` items, drawn by a seeded shuffle (files often list one label first, so
    the head of a file is no sample), kept in file order."""
    items = list(items)
    if limit is None or limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[k] for k in keep]


def f1_score(truth: Sequence[int], predicted: Sequence[int]) -> float:
    """Binary F1 of the positive class (label 1); 0 when nothing is predicted or present."""
    t, p = np.asarray(truth, int), np.asarray(predicted, int)
    tp = int(((t == 1) & (p == 1)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def accuracy(truth: Sequence[int], predicted: Sequence[int]) -> float:
    t, p = np.asarray(truth), np.asarray(predicted)
    return float((t == p).mean()) if len(t) else float("nan")


def bootstrap_metric(
    metric: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% interval of ``metric(indices)`` over item resamples."""
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = [metric(rng.integers(0, n, size=n)) for _ in range(n_boot)]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def cluster_bootstrap(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``values`` [clusters, within], resampling whole
    clusters (rows): the rows of one goal under several attacks are not independent draws."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[picks].mean(axis=(1, 2))
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
