"""Paired tests for shifts on the same items (``traitlens.paired``) and the study's small-n and
multiplicity rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from traitlens.paired import paired_mdd, paired_shift, sign_flip_p, verdict
from traitlens.study.stats import ItemMatrix, paired_difference, pearson_ci


def _correlated(n=40, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    item = rng.uniform(0.1, 0.9, n)  # items differ a lot; the condition moves each a little
    before = item + rng.normal(0, 0.02, n)
    return before, before + shift + rng.normal(0, 0.03, n)


def test_a_planted_shift_is_detected_and_pure_noise_is_not():
    moved = paired_shift(*_correlated(shift=0.05))
    assert moved["p"] < 0.01 and moved["ci"][0] > 0 and moved["n"] == 40
    assert verdict(moved).startswith("moved +")
    still = paired_shift(*_correlated(shift=0.0, seed=3))
    assert still["p"] > 0.05 and still["ci"][0] < 0 < still["ci"][1]
    assert verdict(still).startswith("not detected (MDD ")


def test_the_paired_mdd_is_below_the_unpaired_one_on_correlated_data():
    before, after = _correlated()
    paired = paired_shift(before, after)["mdd"]
    unpaired = 2.8016 * math.sqrt((before.var(ddof=1) + after.var(ddof=1)) / len(before))
    assert paired < unpaired / 5
    assert paired == pytest.approx(paired_mdd(float(np.std(after - before, ddof=1)), len(before)))


def test_the_sign_flip_p_is_exact_for_few_items():
    # Four positive differences of one size: 2 of the 16 sign patterns are as extreme.
    assert sign_flip_p([0.1, 0.1, 0.1, 0.1]) == pytest.approx(2 / 16)
    assert sign_flip_p([0.1, -0.1]) == 1.0


def test_a_paired_metric_difference_has_a_permutation_p_and_a_paired_mdd():
    before, after = _correlated(shift=0.05)
    test = paired_difference(ItemMatrix([before, after]), 0, 1)
    assert test["p"] < 0.01 and test["delta"] == pytest.approx(float(np.mean(after - before)))
    assert test["mdd"] < 0.05


def test_a_correlation_refuses_fewer_than_five_units():
    small = pearson_ci([0.1, 0.2, 0.3], [1.0, 2.0, 3.1])
    assert small["ci"] is None and small["note"] == "n too small" and math.isnan(small["p"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    big = pearson_ci(x, 2 * x + rng.normal(0, 0.1, 12))
    assert big["ci"][0] > 0.9 and big["p"] < 0.01 and big["n"] == 12


def test_jailbreak_differences_are_clustered_by_goal():
    """Attacks on one goal are not independent: the pooled test runs over goals, one mean
    difference each, so copying every cell under a new attack does not make it more significant."""
    from traitlens.study.analyses import _goal_differences

    goals = range(6)
    one = [[g, "caesar", int(g < 4)] for g in goals], [[g, "caesar", 0] for g in goals]
    many = (
        [[g, a, int(g < 4)] for g in goals for a in ("caesar", "code_wrap", "prefix_injection")],
        [[g, a, 0] for g in goals for a in ("caesar", "code_wrap", "prefix_injection")],
    )
    assert _goal_differences(*one) == _goal_differences(*many) == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert sign_flip_p(_goal_differences(*many)) == sign_flip_p(_goal_differences(*one)) == pytest.approx(2 / 16)
