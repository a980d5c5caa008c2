"""What every safety suite returns, and the statistics they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["SuiteResult", "Suite", "f1_score", "bootstrap_metric", "cluster_bootstrap", "accuracy", "subset"]


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

    def to_dict(self, with_records: bool = False) -> dict[str, Any]:
        out = {
            "metric": self.metric,
            "value": round(self.value, 6),
            "higher_is_better": self.higher_is_better,
            "ci95": [round(self.ci95[0], 6), round(self.ci95[1], 6)],
            "n": self.n,
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
