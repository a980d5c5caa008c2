"""Small statistics used by scoring: bootstrap intervals and Fleiss' kappa."""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_ci", "ratio_bootstrap_ci", "fleiss_kappa", "sigmoid"]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean, resampling items with replacement."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def ratio_bootstrap_ci(hits, totals, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Interval of sum(hits)/sum(totals), resampling items (each with its own count)."""
    hits, totals = np.asarray(hits, float), np.asarray(totals, float)
    if hits.size == 0 or totals.sum() == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, hits.size, size=(n_boot, hits.size))
    ratios = hits[picks].sum(1) / np.maximum(totals[picks].sum(1), 1e-12)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def fleiss_kappa(counts) -> float:
    """Agreement of raters (runs) over subjects (items): ``counts[i, k]`` raters put item i in
    category k. Rows may have different numbers of raters (Fleiss' kappa for unequal panels:
    per-item agreement over the raters it has, category shares pooled over all ratings); items
    with fewer than two ratings carry no agreement and are left out. NaN when nothing is left."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.size == 0:
        return float("nan")
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) == 0:
        return float("nan")
    raters = counts.sum(axis=1)
    p_category = counts.sum(axis=0) / raters.sum()
    p_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    p_bar, p_expected = p_item.mean(), (p_category**2).sum()
    if np.isclose(p_expected, 1.0):
        return 1.0 if np.isclose(p_bar, 1.0) else float("nan")
    return float((p_bar - p_expected) / (1 - p_expected))
