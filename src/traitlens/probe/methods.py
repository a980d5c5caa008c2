"""Direction methods behind one interface: ``fit(pos, neg) -> Direction``.

``pos`` and ``neg`` are [n, d_model] activations of the two poles (rows paired where a method
needs pairs). Every direction is a unit vector in residual space pointing from ``neg`` to
``pos``, with the statistics needed to scale an edit along it.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from traitlens.errors import TraitlensError

__all__ = ["Direction", "DirectionMethod", "MeanDifference", "PairedPCA", "LogisticProbe", "METHODS", "get_method"]


@dataclass
class Direction:
    vector: torch.Tensor  # [d_model], unit norm, points towards the positive pole
    method: str
    mean_pos: float  # mean projection of each pole onto the direction
    mean_neg: float
    spread: float  # pooled standard deviation of the projections within a pole
    resid_norm: float  # typical (mean) L2 norm of the residual stream here
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Distance between the poles' mean projections."""
        return self.mean_pos - self.mean_neg

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() @ self.vector

    def stats(self) -> dict[str, float]:
        d = asdict(self)
        d.pop("vector")
        d.pop("extra")
        return d


def _with_stats(vector: torch.Tensor, method: str, pos: torch.Tensor, neg: torch.Tensor, **extra) -> Direction:
    vector = vector.float()
    vector = vector / vector.norm().clamp_min(1e-12)
    p, n = pos.float() @ vector, neg.float() @ vector
    spread = float(torch.sqrt((p.var(unbiased=True) + n.var(unbiased=True)) / 2)) if len(p) > 1 else 0.0
    norm = float(torch.cat([pos, neg]).float().norm(dim=-1).mean())
    return Direction(vector, method, float(p.mean()), float(n.mean()), spread, norm, extra)


def _check(pos: torch.Tensor, neg: torch.Tensor, paired: bool = False) -> None:
    if pos.ndim != 2 or neg.ndim != 2 or pos.shape[1] != neg.shape[1]:
        raise TraitlensError(
            f"activations must be [n, d_model] with one d_model, got {tuple(pos.shape)} and {tuple(neg.shape)}"
        )
    if min(len(pos), len(neg)) < 2:
        raise TraitlensError("need at least two examples of each pole to fit a direction")
    if paired and len(pos) != len(neg):
        raise TraitlensError("paired method needs as many positive as negative examples")


class DirectionMethod(Protocol):
    name: str

    def fit(self, pos: torch.Tensor, neg: torch.Tensor) -> Direction: ...


class MeanDifference:
    name = "meandiff"

    def fit(self, pos: torch.Tensor, neg: torch.Tensor) -> Direction:
        _check(pos, neg)
        return _with_stats(pos.float().mean(0) - neg.float().mean(0), self.name, pos, neg)


class PairedPCA:
    """First principal component of the paired differences ``pos_i - neg_i`` (uncentred, so a
    consistent shift dominates), signed to agree with the mean difference."""

    name = "pca"

    def fit(self, pos: torch.Tensor, neg: torch.Tensor) -> Direction:
        _check(pos, neg, paired=True)
        diffs = (pos - neg).double()
        _, singular, vh = torch.linalg.svd(diffs, full_matrices=False)
        vector = vh[0].float()
        if float(vector @ diffs.mean(0).float()) < 0:
            vector = -vector
        explained = float(singular[0] ** 2 / (singular**2).sum())
        return _with_stats(vector, self.name, pos, neg, explained_variance=explained)


class LogisticProbe:
    """Logistic regression on standardised features, its inverse-regularisation chosen by inner
    cross-validation (with few samples in many dimensions a heavily regularised probe collapses
    onto the mean difference; letting the data pick C is what makes the two comparable).
    The weight vector is mapped back to residual space by dividing by the feature scales."""

    name = "probe"

    def __init__(
        self, Cs: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), inner_folds: int = 3, seed: int = 0
    ):
        self.Cs, self.inner_folds, self.seed = Cs, inner_folds, seed

    def fit(self, pos: torch.Tensor, neg: torch.Tensor, groups: np.ndarray | None = None) -> Direction:
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import GroupKFold, StratifiedKFold

        _check(pos, neg)
        x = torch.cat([pos, neg]).double().numpy()
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        mean, scale = x.mean(0), x.std(0) + 1e-8
        z = (x - mean) / scale
        folds = min(self.inner_folds, len(pos), len(neg))
        if groups is not None and len(set(groups)) >= folds:
            cv = list(GroupKFold(n_splits=folds).split(z, y, np.r_[groups, groups]))
            inner = "grouped"
        else:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
            inner = "stratified"
        model = LogisticRegressionCV(Cs=list(self.Cs), cv=cv, max_iter=2000, scoring="neg_log_loss")
        with warnings.catch_warnings():  # sklearn 1.9 announces API changes we do not depend on
            warnings.simplefilter("ignore", FutureWarning)
            model.fit(z, y)
        weights = torch.from_numpy(model.coef_[0] / scale).float()
        c_value = float(np.ravel(model.C_)[0])
        return _with_stats(weights, self.name, pos, neg, C=c_value, inner_cv=inner)


METHODS: dict[str, type] = {"probe": LogisticProbe, "meandiff": MeanDifference, "pca": PairedPCA}


def get_method(name: str) -> DirectionMethod:
    if name not in METHODS:
        raise TraitlensError(f"unknown method '{name}': use {', '.join(METHODS)}")
    return METHODS[name]()
