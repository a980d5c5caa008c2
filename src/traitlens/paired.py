"""Paired statistics for a shift measured on the same items twice (before and after an edit, or
under two conditions): the per-item differences carry the test, not two separate shares.

``paired_shift`` gives the mean shift with a bootstrap CI over items, a two-sided sign-flip
permutation p (exact for up to ``EXACT_ITEMS`` items: every sign pattern), the design's minimum
detectable shift from the observed SD of the differences (``paired_mdd``), and a verdict that
never says "no effect": below detection it says "not detected (MDD x)".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["EXACT_ITEMS", "paired_shift", "paired_mdd", "sign_flip_p", "verdict"]

EXACT_ITEMS = 16  # up to 2^16 sign patterns are enumerated; beyond, they are sampled
Z_ALPHA, Z_POWER = 1.959964, 0.841621  # two-sided 5%, 80% power


def paired_mdd(sd: float, n: int) -> float:
    """The smallest mean paired difference that ``n`` items with difference SD ``sd`` detect
    (two-sided 5%, 80% power, normal approximation)."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float((Z_ALPHA + Z_POWER) * sd / math.sqrt(n))


def sign_flip_p(diffs: Sequence[float], resamples: int = 20000, seed: int = 0) -> float:
    """Two-sided p of the mean difference under the null that each item's sign is a coin flip."""
    d = np.asarray(diffs, float)
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(d.mean())
    if n <= EXACT_ITEMS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(resamples, n))
        signs = np.vstack([np.ones(n), signs])  # the observed pattern counts itself
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= observed - 1e-12))


def paired_shift(before: Sequence[float], after: Sequence[float], resamples: int = 2000, seed: int = 0) -> dict:
    """The mean of ``after - before`` over items, with its paired tests (see the module)."""
    a, b = np.asarray(before, float), np.asarray(after, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} vs {b.shape}")
    d = b - a
    n = d.size
    if n == 0:
        return {"shift": math.nan, "ci": [math.nan, math.nan], "p": math.nan, "n": 0, "sd": math.nan, "mdd": math.nan}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    return {
        "shift": float(d.mean()),
        "ci": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
        "p": sign_flip_p(d, seed=seed),
        "n": int(n),
        "sd": sd,
        "mdd": paired_mdd(sd, n),
    }


def verdict(test: dict, alpha: float = 0.05, points: bool = True) -> str:
    """``moved +x (p)`` or ``not detected (MDD y)``: a shift below detection is not "no effect"."""
    scale, unit = (100, " pts") if points else (1, "")
    if math.isfinite(test.get("p", math.nan)) and test["p"] < alpha:
        return f"moved {scale * test['shift']:+.1f}{unit} (p = {test['p']:.3g})"
    return f"not detected (MDD {scale * test['mdd']:.1f}{unit})"
