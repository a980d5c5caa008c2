"""How far a judge agrees with labels: precision, recall, F1, Cohen's kappa, MCC and balanced
accuracy, with bootstrap intervals; ROC AUC for scores. Chance-corrected figures (kappa, MCC,
balanced accuracy) are reported because F1 alone rewards a judge that says "yes" to everything."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["binary_agreement", "confusion_metrics", "roc_auc"]


def confusion_metrics(truth: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    t, p = np.asarray(truth, int), np.asarray(predicted, int)
    tp, tn = float(((t == 1) & (p == 1)).sum()), float(((t == 0) & (p == 0)).sum())
    fp, fn = float(((t == 0) & (p == 1)).sum()), float(((t == 1) & (p == 0)).sum())
    n = tp + tn + fp + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    observed = (tp + tn) / n if n else float("nan")
    expected = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / n**2 if n else float("nan")
    kappa = (observed - expected) / (1 - expected) if n and expected < 1 else 0.0
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / denominator if denominator else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "kappa": float(kappa),
        "mcc": float(mcc),
        "balanced_accuracy": (recall + specificity) / 2,
        "accuracy": observed,
        "predicted_positive": (tp + fp) / n if n else float("nan"),
    }


def binary_agreement(truth: Sequence[int], predicted: Sequence[int], n_boot: int = 1000, seed: int = 0) -> dict:
    """The figures of ``confusion_metrics`` with 95% bootstrap intervals for F1 and kappa."""
    t, p = np.asarray(truth, int), np.asarray(predicted, int)
    out: dict = {k: round(v, 6) for k, v in confusion_metrics(t, p).items()}
    out["n"] = int(len(t))
    if len(t):
        rng = np.random.default_rng(seed)
        draws = [confusion_metrics(t[idx], p[idx]) for idx in rng.integers(0, len(t), size=(n_boot, len(t)))]
        for key in ("f1", "kappa"):
            values = [d[key] for d in draws]
            out[f"{key}_ci"] = [
                round(float(np.percentile(values, 2.5)), 6),
                round(float(np.percentile(values, 97.5)), 6),
            ]
    return out


def roc_auc(truth: Sequence[int], scores: Sequence[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(np.asarray(truth, int), np.asarray(scores, float))), 6)
