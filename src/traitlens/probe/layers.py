"""Layer-wise probing of one dimension: grouped cross-validation, held-out accuracy, a
max-statistic permutation test, and the choice of the best layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from traitlens.probe.methods import Direction, DirectionMethod, LogisticProbe, MeanDifference

__all__ = [
    "LayerResult",
    "grouped_folds",
    "permutation_test",
    "probe_layer",
    "choose_best_layer",
    "cv_separation",
    "separation",
]


@dataclass
class LayerResult:
    layer: int
    cv_accuracy: float  # logistic probe, folds grouped by item
    auc: float  # of the probe's cross-validated decisions
    cv_separation: float  # d' of out-of-fold mean-difference projections, train split: chooses the layer
    heldout_accuracy: float  # the method's direction on the eval split, midpoint threshold
    heldout_separation: float  # d' of eval projections: mean gap / pooled std (never used to choose)
    cosine_probe_meandiff: float
    perm_statistic: float  # grouped-CV accuracy of the mean-difference classifier
    perm_p: float  # corrected for choosing among layers (max statistic over layers)
    null_p95: float
    informative: bool

    def to_dict(self) -> dict:
        return {k: (None if v != v else round(v, 6)) if isinstance(v, float) else v for k, v in asdict(self).items()}


def grouped_folds(groups: np.ndarray, n_folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over pairs; all pairs of one group (both poles of an item) land in one fold."""
    n_folds = min(n_folds, len(set(groups)))
    index = np.arange(len(groups))
    return [(tr, te) for tr, te in GroupKFold(n_splits=n_folds).split(index, groups=groups)]


def _probe_cv(pos: torch.Tensor, neg: torch.Tensor, groups: np.ndarray, folds) -> tuple[float, float]:
    scores, labels = [], []
    for train, test in folds:
        direction = LogisticProbe().fit(pos[train], neg[train], groups=groups[train])
        mid = (direction.mean_pos + direction.mean_neg) / 2
        scores += [direction.project(pos[test]) - mid, direction.project(neg[test]) - mid]
        labels += [np.ones(len(test)), np.zeros(len(test))]
    s, y = torch.cat(scores).numpy(), np.concatenate(labels)
    return float(((s > 0) == (y == 1)).mean()), float(roc_auc_score(y, s))


def _meandiff_cv_accuracy(pos: np.ndarray, neg: np.ndarray, folds, flips: np.ndarray) -> np.ndarray:
    """Grouped-CV accuracy of the nearest-mean classifier for every row of sign ``flips``
    ([n_perm, n_pairs], +1 keeps a pair's labels, -1 swaps them). Vectorised over permutations."""
    diffs, mids = pos - neg, (pos + neg) / 2
    correct = np.zeros(len(flips))
    total = 0
    for train, test in folds:
        w = flips[:, train] @ diffs[train] / len(train)  # [P, d]
        centre = mids[train].mean(0)  # invariant to label swaps
        proj_pos = (pos[test] - centre) @ w.T  # [t, P]
        proj_neg = (neg[test] - centre) @ w.T
        s = flips[:, test].T  # [t, P]
        correct += ((s * proj_pos) > 0).sum(0) + ((s * proj_neg) < 0).sum(0)
        total += 2 * len(test)
    return correct / total


def permutation_test(
    acts_pos: list[np.ndarray], acts_neg: list[np.ndarray], groups: np.ndarray, n_permutations: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Observed statistic per layer, p-values corrected by the max over layers, null 95th pct.

    Labels are shuffled by group: all pairs of a group swap poles together."""
    folds = grouped_folds(groups)
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(groups, return_inverse=True)
    flips = rng.choice([-1.0, 1.0], size=(n_permutations, len(uniq)))[:, inverse]
    ones = np.ones((1, len(groups)))
    observed = np.array([_meandiff_cv_accuracy(p, n, folds, ones)[0] for p, n in zip(acts_pos, acts_neg, strict=True)])
    null_max = np.max(
        [_meandiff_cv_accuracy(p, n, folds, flips) for p, n in zip(acts_pos, acts_neg, strict=True)], axis=0
    )
    p_values = (1 + (null_max[None, :] >= observed[:, None] - 1e-12).sum(1)) / (1 + n_permutations)
    return observed, p_values, float(np.percentile(null_max, 95))


def cv_separation(pos: np.ndarray, neg: np.ndarray, folds) -> float:
    """Grouped-CV d' on the training pairs: each fold's pairs projected on the mean difference
    of the other folds, centred on their midpoint, pooled. Chooses layers without the eval split."""
    scores_pos, scores_neg = [], []
    for train, test in folds:
        w = (pos[train] - neg[train]).mean(0)
        w = w / max(float(np.linalg.norm(w)), 1e-12)
        centre = ((pos[train] + neg[train]) / 2).mean(0)
        scores_pos.append((pos[test] - centre) @ w)
        scores_neg.append((neg[test] - centre) @ w)
    p, n = np.concatenate(scores_pos), np.concatenate(scores_neg)
    pooled = max(float(np.sqrt((p.var(ddof=1) + n.var(ddof=1)) / 2)), 1e-8)
    return float((p.mean() - n.mean()) / pooled)


def separation(direction: Direction, pos: torch.Tensor, neg: torch.Tensor) -> float:
    """d' of the two groups' projections on ``direction``: mean gap / pooled std."""
    p, n = direction.project(pos), direction.project(neg)
    pooled = float(torch.sqrt((p.var() + n.var()) / 2).clamp_min(1e-8))
    return float((p.mean() - n.mean()) / pooled)


def _heldout(direction: Direction, pos: torch.Tensor, neg: torch.Tensor) -> tuple[float, float]:
    mid = (direction.mean_pos + direction.mean_neg) / 2
    p, n = direction.project(pos), direction.project(neg)
    accuracy = float(torch.cat([p > mid, n <= mid]).float().mean())
    return accuracy, separation(direction, pos, neg)


def probe_layer(
    layer: int,
    train: tuple[torch.Tensor, torch.Tensor],
    heldout: tuple[torch.Tensor, torch.Tensor],
    groups: np.ndarray,
    method: DirectionMethod,
    perm: tuple[float, float, float],
    with_probe: bool = True,
) -> tuple[LayerResult, Direction]:
    """``with_probe=False`` skips the logistic probe's cross-validation (cv_accuracy, auc and the
    cosine are NaN): the fast path when only directions and held-out separation are needed."""
    pos, neg = train
    nan = float("nan")
    folds = grouped_folds(groups)
    cv_accuracy, auc = _probe_cv(pos, neg, groups, folds) if with_probe else (nan, nan)
    # The probe's inner search for C must keep a group's pairs together, like every other fold.
    direction = method.fit(pos, neg, groups=groups) if isinstance(method, LogisticProbe) else method.fit(pos, neg)
    meandiff = direction if isinstance(method, MeanDifference) else MeanDifference().fit(pos, neg)
    if isinstance(method, LogisticProbe):
        probe_dir = direction
    else:
        probe_dir = LogisticProbe().fit(pos, neg, groups=groups) if with_probe else None
    heldout_accuracy, separation = _heldout(direction, *heldout)
    statistic, p_value, null_p95 = perm
    result = LayerResult(
        layer,
        cv_accuracy,
        auc,
        cv_separation(pos.double().numpy(), neg.double().numpy(), folds),
        heldout_accuracy,
        separation,
        float(probe_dir.vector @ meandiff.vector) if probe_dir is not None else nan,
        statistic,
        p_value,
        null_p95,
        p_value < 0.05,
    )
    return result, direction


def choose_best_layer(results: list[LayerResult]) -> LayerResult:
    """Best cross-validated separation on the training split among layers that beat chance (all
    layers if none does). The eval split plays no part, so the chosen layer's held-out figures
    are unbiased estimates."""
    candidates = [r for r in results if r.informative] or results
    return max(candidates, key=lambda r: (r.cv_separation, r.perm_statistic))
