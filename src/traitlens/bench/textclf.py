"""A linear text classifier over hashed word and character n-grams, shipped as plain numbers.

Features: lower-cased text (the first ``MAX_CHARS`` characters), word unigrams and bigrams and
character 3- to 5-grams, each hashed with CRC-32 into ``N_FEATURES`` buckets, log-scaled counts,
each row scaled to unit length. The model is one weight per bucket and a bias: a safetensors
file (never a pickle) with a JSON card beside it that records how it was trained, how well it
did on data it was not trained on, and the file's SHA-256, checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from traitlens._io import atomic_write, write_json
from traitlens.errors import TraitlensError

__all__ = ["N_FEATURES", "MAX_CHARS", "featurize", "LinearTextModel", "fit_linear", "fit_features", "load_model_file"]

N_FEATURES = 2**18
MAX_CHARS = 600
_WORD = re.compile(r"[a-z0-9']+")


def _grams(text: str) -> list[bytes]:
    text = " ".join(text.lower().replace("’", "'").split())[:MAX_CHARS]
    words = _WORD.findall(text)
    grams = [b"w:" + w.encode() for w in words]
    grams += [b"b:" + f"{a} {b}".encode() for a, b in zip(words, words[1:], strict=False)]
    padded = f" {text} "
    for n in (3, 4, 5):
        grams += [b"c:" + padded[i : i + n].encode() for i in range(len(padded) - n + 1)]
    return grams


def featurize(texts: Sequence[str]):
    """[n, N_FEATURES] sparse CSR matrix of log-scaled, unit-length hashed n-gram counts."""
    from scipy import sparse

    rows, cols, values = [], [], []
    for row, text in enumerate(texts):
        counts: dict[int, int] = {}
        for gram in _grams(text):
            bucket = zlib.crc32(gram) % N_FEATURES
            counts[bucket] = counts.get(bucket, 0) + 1
        if not counts:
            continue
        buckets = np.fromiter(counts, dtype=np.int64, count=len(counts))
        weights = np.log1p(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        weights /= np.linalg.norm(weights)
        rows.append(np.full(len(buckets), row))
        cols.append(buckets)
        values.append(weights)
    if not rows:
        return sparse.csr_matrix((len(texts), N_FEATURES))
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), N_FEATURES)
    )


@dataclass
class LinearTextModel:
    weights: np.ndarray  # [N_FEATURES] float32
    bias: float
    card: dict[str, Any] = field(default_factory=dict)

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        return self.decision_features(featurize(texts))

    def decision_features(self, features) -> np.ndarray:
        return np.asarray(features @ self.weights.astype(np.float64)).reshape(-1) + self.bias

    def probability(self, texts: Sequence[str]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(texts)))

    def save(self, path: str | Path) -> Path:
        """``path`` (.safetensors) and its card ``path`` with ``.json``; the card holds the checksum."""
        from safetensors.numpy import save_file

        path = Path(path)
        tensors = {"weights": self.weights.astype(np.float32), "bias": np.array([self.bias], dtype=np.float32)}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
        card = dict(self.card, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), n_features=N_FEATURES)
        write_json(path.with_suffix(".json"), card)
        return path


def fit_linear(
    texts: Sequence[str], labels: Sequence[int], c: float = 4.0, card: dict | None = None, balanced: bool = False
) -> LinearTextModel:
    """L2-regularised logistic regression (liblinear: deterministic for the same data);
    ``balanced`` weights the classes inversely to their frequency."""
    return fit_features(featurize(texts), labels, c, card, balanced)


def fit_features(features, labels: Sequence[int], c: float, card: dict | None = None, balanced: bool = False):
    """``fit_linear`` on an already featurized matrix (cross-validation featurizes once)."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=int)
    if labels.min() == labels.max():
        raise TraitlensError("training data has only one class (no positives or no negatives)")
    weights = "balanced" if balanced else None
    model = LogisticRegression(C=c, solver="liblinear", random_state=0, max_iter=1000, class_weight=weights)
    model.fit(features, labels)
    return LinearTextModel(model.coef_[0].astype(np.float32), float(model.intercept_[0]), card or {})


def load_model_file(path: str | Path) -> LinearTextModel:
    """Load a shipped or user-trained model; a damaged file is named, never half-trusted."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    card_path = path.with_suffix(".json")
    for p in (path, card_path):
        if not p.is_file():
            raise TraitlensError(f"judge weights not found: {p}")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{card_path}: invalid JSON ({exc.msg})") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != card.get("sha256"):
        raise TraitlensError(f"{path}: checksum mismatch (file damaged or replaced; run `make judges` to rebuild)")
    try:
        tensors = load_file(str(path))
        weights, bias = tensors["weights"], float(tensors["bias"][0])
    except (SafetensorError, KeyError, OSError, IndexError) as exc:
        raise TraitlensError(f"{path}: not a judge weights file ({exc})") from None
    if weights.shape != (N_FEATURES,) or not np.isfinite(weights).all():
        raise TraitlensError(f"{path}: weights of shape {weights.shape}, expected ({N_FEATURES},) finite values")
    return LinearTextModel(weights, bias, card)
