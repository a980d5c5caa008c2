"""Alpha, omega and paraphrase agreement on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from traitlens.assess.reliability import cronbach_alpha, mcdonald_omega, paraphrase_agreement


def _one_factor(n: int, loadings, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=(n, 1))
    return trait * np.asarray(loadings)[None, :] + noise * rng.normal(size=(n, len(loadings)))


def test_alpha_matches_its_closed_form_for_parallel_items():
    """k parallel items with unit loadings and noise SD s: alpha = k / (k + s^2) in the limit."""
    scores = _one_factor(20000, [1.0] * 8, noise=1.0)
    assert cronbach_alpha(scores) == pytest.approx(8 / 9, abs=0.01)


def test_omega_recovers_the_loadings_of_a_congeneric_scale():
    loadings = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    scores = _one_factor(20000, loadings, noise=0.6)
    expected = loadings.sum() ** 2 / (loadings.sum() ** 2 + 6 * 0.36)
    assert mcdonald_omega(scores) == pytest.approx(expected, abs=0.01)
    assert mcdonald_omega(-scores) == pytest.approx(expected, abs=0.01)  # sign of the eigenvector


def test_unrelated_items_are_unreliable():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(5000, 10))
    assert abs(cronbach_alpha(noise)) < 0.05
    assert mcdonald_omega(noise) < 0.1
    assert np.isnan(cronbach_alpha(np.ones((5, 4))))
    with pytest.raises(ValueError, match="two respondents and two items"):
        cronbach_alpha(np.ones((1, 4)))


def test_paraphrase_agreement():
    out = paraphrase_agreement([0.2, 0.7, 0.9, 0.4], [0.3, 0.6, 0.8, 0.6])
    assert out["n"] == 4 and out["same_side"] == 0.75
    assert out["mean_abs_diff"] == pytest.approx(0.125)
    assert out["r"] == pytest.approx(np.corrcoef([0.2, 0.7, 0.9, 0.4], [0.3, 0.6, 0.8, 0.6])[0, 1])
    with pytest.raises(ValueError):
        paraphrase_agreement([0.1], [0.2])
