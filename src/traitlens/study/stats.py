"""Paired statistics for study analyses: every condition of a study sees the same items, so
differences and slopes are tested within items (paired bootstrap, within-item permutation,
exact McNemar), and a family of tests is Holm-corrected."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from traitlens.bench.agreement import confusion_metrics
from traitlens.paired import paired_mdd

__all__ = [
    "ItemMatrix",
    "slope_per_10",
    "slope_test",
    "paired_difference",
    "mcnemar",
    "holm",
    "pearson_ci",
    "mdd_proportion",
]


def _f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = float(((truth == 1) & (pred == 1)).sum())
    denom = float((truth == 1).sum() + (pred == 1).sum())
    return 2 * tp / denom if denom else 0.0


def _mcc(truth: np.ndarray, pred: np.ndarray) -> float:
    return confusion_metrics(truth, pred)["mcc"]


_JUDGED = {"mcc": _mcc, "f1": _f1}  # metrics of predictions against a shared truth


class ItemMatrix:
    """Per-item values of one metric under several conditions: ``values[c, i]`` (a prediction,
    with the shared ``truth``, scored by ``judged``: MCC by default, F1 for the paper's figures;
    a score whose mean is the metric otherwise)."""

    def __init__(
        self, values: Sequence[Sequence[float]], truth: Sequence[int] | None = None, judged: str = "mcc"
    ) -> None:
        self.values = np.asarray(values, dtype=float)
        self.truth = None if truth is None else np.asarray(truth, dtype=float)
        self.judged = judged

    @classmethod
    def from_items(cls, items: Sequence[dict], judged: str = "mcc") -> ItemMatrix:
        lengths = {len(i.get("pred", i.get("x", []))) for i in items}
        if len(lengths) != 1:
            raise ValueError("conditions saw different items; paired statistics need the same ones")
        if "pred" in items[0]:
            return cls([i["pred"] for i in items], items[0]["truth"], judged)
        return cls([i["x"] for i in items])

    def metric(self, values: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
        """The metric per condition (optionally on resampled item ``columns``)."""
        v = self.values if values is None else values
        if columns is not None:
            v = v[:, columns]
        if self.truth is None:
            return v.mean(axis=1)
        truth = self.truth if columns is None else self.truth[columns]
        return np.array([_JUDGED[self.judged](truth, row) for row in v])


def slope_per_10(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``y`` per 10 points (0.10) of ``x``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    var = float(((x - x.mean()) ** 2).sum())
    return float(((x - x.mean()) * (y - y.mean())).sum() / var * 0.10) if var > 0 else float("nan")


def slope_test(shares: Sequence[float], matrix: ItemMatrix, resamples: int = 1000, seed: int = 0) -> dict:
    """Slope of the metric against the trait share across conditions: bootstrap CI over items
    (paired: an item is resampled under every condition at once) and a permutation p-value that
    shuffles each item's values across conditions (the null: the condition changes nothing).
    An undefined slope (NaN: no spread in the shares, an undefined metric) has p NaN, and
    shuffles whose slope is undefined count neither way."""
    rng = np.random.default_rng(seed)
    observed = slope_per_10(shares, matrix.metric())
    n = matrix.values.shape[1]
    boots = [slope_per_10(shares, matrix.metric(columns=rng.integers(0, n, n))) for _ in range(resamples)]
    boots = np.asarray([b for b in boots if math.isfinite(b)])
    ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))] if len(boots) else [math.nan] * 2
    if not math.isfinite(observed):
        return {"slope_per_10pts": observed, "ci": ci, "p": math.nan, "n_items": n}
    extreme = defined = 0
    for _ in range(resamples):
        shuffled = np.take_along_axis(matrix.values, rng.permuted(np.indices(matrix.values.shape)[0], axis=0), 0)
        slope = slope_per_10(shares, matrix.metric(shuffled))
        if math.isfinite(slope):
            defined += 1
            extreme += abs(slope) >= abs(observed) - 1e-12
    return {"slope_per_10pts": observed, "ci": ci, "p": (extreme + 1) / (defined + 1), "n_items": n}


def paired_difference(matrix: ItemMatrix, a: int, b: int, resamples: int = 1000, seed: int = 0) -> dict:
    """Metric under condition ``b`` minus under ``a``, paired over items: a bootstrap CI, a
    permutation p (each item's two conditions swapped at random: valid for any metric, F1
    included) and the design's MDD (from the bootstrap SE of the paired difference)."""
    rng = np.random.default_rng(seed)
    both = ItemMatrix(matrix.values[[a, b]], matrix.truth, matrix.judged)
    values = both.metric()
    n = both.values.shape[1]
    delta = float(values[1] - values[0])
    diffs = []
    for _ in range(resamples):
        m = both.metric(columns=rng.integers(0, n, n))
        diffs.append(m[1] - m[0])
    extreme = 0
    for _ in range(resamples):
        swap = rng.random(n) < 0.5
        swapped = both.values.copy()
        swapped[:, swap] = swapped[::-1][:, swap]
        m = both.metric(values=swapped)
        extreme += abs(m[1] - m[0]) >= abs(delta) - 1e-12
    finite = [d for d in diffs if math.isfinite(d)]
    return {
        "delta": delta,
        "ci": [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))] if finite else [math.nan] * 2,
        "p": (extreme + 1) / (resamples + 1),
        "mdd": paired_mdd(float(np.std(finite, ddof=1)) * math.sqrt(n), n) if len(finite) > 1 else math.nan,
        "n_items": n,
    }


def mcnemar(a: Sequence[int], b: Sequence[int]) -> dict:
    """Exact two-sided McNemar test on paired binary outcomes."""
    a, b = np.asarray(a, int), np.asarray(b, int)
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    k, n = min(only_a, only_b), only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"only_first": only_a, "only_second": only_b, "p": p, "n_pairs": len(a)}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given). A NaN p (an untestable effect)
    stays NaN and does not count in the family's size."""
    finite = [k for k, p in enumerate(pvalues) if math.isfinite(p)]
    order = [finite[k] for k in np.argsort([pvalues[k] for k in finite], kind="stable")]
    m, adjusted, running = len(finite), [math.nan] * len(pvalues), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


MIN_UNITS = 5  # fewer independent units than this: no interval, no test


def pearson_ci(x: Sequence[float], y: Sequence[float], resamples: int = 1000, seed: int = 0) -> dict:
    """Pearson r with a bootstrap CI over the paired points (conditions) and a permutation p;
    with fewer than ``MIN_UNITS`` points (r = +-1 is then easy) no CI and no p: "n too small"."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < MIN_UNITS:
        return {"r": math.nan, "ci": None, "p": math.nan, "n": len(x), "note": "n too small"}
    if x.std() == 0 or y.std() == 0:
        return {"r": math.nan, "ci": None, "p": math.nan, "n": len(x), "note": "no spread"}
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), len(x))
        if x[idx].std() > 0 and y[idx].std() > 0:
            rs.append(float(np.corrcoef(x[idx], y[idx])[0, 1]))
    r = float(np.corrcoef(x, y)[0, 1])
    shuffled = [abs(np.corrcoef(x, rng.permutation(y))[0, 1]) for _ in range(resamples)]
    p = (1 + sum(s >= abs(r) - 1e-12 for s in shuffled)) / (1 + resamples)
    ci = [float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))]
    return {"r": r, "ci": ci, "p": float(p), "n": len(x)}


def mdd_proportion(p: float, n: int) -> float:
    """Smallest difference between two proportions near ``p`` that n items per arm detect
    (two-sided 5%, 80% power); paired designs with correlated items detect somewhat less."""
    p = min(max(p, 0.05), 0.95)
    return (1.96 + 0.84) * math.sqrt(2 * p * (1 - p) / max(n, 1))
