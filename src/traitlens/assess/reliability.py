"""Internal consistency of a dimension's items: Cronbach's alpha and McDonald's omega.

Both need several respondents answering the same items. A single model is one respondent, so
the respondents are the model under different conditions (each pole's persona prompt, no
prompt): items that measure one trait move together across those conditions. Every item is
scored as the probability of the dimension's first pole, so all items are keyed the same way.

``scores`` is a [respondents, items] array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cronbach_alpha", "mcdonald_omega", "paraphrase_agreement"]

_MAX_ITERATIONS = 200


def _matrix(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 2 or scores.shape[1] < 2:
        raise ValueError("reliability needs at least two respondents and two items")
    return scores


def cronbach_alpha(scores) -> float:
    """k/(k-1) * (1 - sum of item variances / variance of the total); NaN when the totals do
    not vary at all."""
    scores = _matrix(scores)
    k = scores.shape[1]
    total = scores.sum(axis=1).var(ddof=1)
    if total <= 0:
        return float("nan")
    return float(k / (k - 1) * (1 - scores.var(axis=0, ddof=1).sum() / total))


def mcdonald_omega(scores) -> float:
    """Omega total of a one-factor model, fitted by iterated principal-axis factoring of the
    item covariance matrix: (sum of loadings)^2 / ((sum of loadings)^2 + sum of unique
    variances). NaN when no item varies."""
    scores = _matrix(scores)
    cov = np.cov(scores, rowvar=False)
    diagonal = np.diag(cov).copy()
    if diagonal.sum() <= 0:
        return float("nan")
    communality = diagonal * 0.5
    loadings = np.zeros_like(diagonal)
    for _ in range(_MAX_ITERATIONS):
        reduced = cov.copy()
        np.fill_diagonal(reduced, communality)
        values, vectors = np.linalg.eigh(reduced)
        loadings = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        updated = np.minimum(loadings**2, diagonal)
        if np.allclose(updated, communality, atol=1e-10):
            break
        communality = updated
    if loadings.sum() < 0:  # the eigenvector's sign is arbitrary
        loadings = -loadings
    common = loadings.sum() ** 2
    unique = np.clip(diagonal - loadings**2, 0.0, None).sum()
    return float(common / (common + unique))


def paraphrase_agreement(first, second) -> dict[str, float]:
    """Per-item first-pole probabilities of items and their paraphrases: the Pearson r, the share
    of items answered on the same side of 50%, and the mean absolute difference."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("paraphrase agreement needs two equally long lists of at least two items")
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return {
        "n": int(a.size),
        "r": r,
        "same_side": float(np.mean((a > 0.5) == (b > 0.5))),
        "mean_abs_diff": float(np.mean(np.abs(a - b))),
    }
