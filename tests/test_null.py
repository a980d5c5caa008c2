"""The random-direction null (``traitlens.null``): its arithmetic, its draws, and a planted
direction that must stand out of it while a random one must not."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens.instrument.items import DIMENSIONS, default_items
from traitlens.null import check_draws, null_test, summarise
from traitlens.null.draws import random_draws
from traitlens.null.run import compare, match_scale
from traitlens.steering import Steering, SteeringVector


def test_summarise_ranks_the_effect_among_the_draws():
    null = np.random.default_rng(0).normal(0, 0.01, 99)
    far, inside = summarise(0.1, null), summarise(0.001, null)
    assert far["p"] == pytest.approx(1 / 100) and far["vector"] > far["percentiles"][2]
    assert inside["p"] > 0.5 and inside["percentiles"][0] < inside["vector"] < inside["percentiles"][2]
    assert len(far["null"]) == 99


@pytest.mark.parametrize(
    "curve, target",
    [
        (lambda c: 1 + 0.04 * c**2, 1.16),  # c ~ 2
        (lambda c: 1 + 0.04 * c**2, 1.02),  # c ~ 0.71: below 1
        (lambda c: math.exp(0.01 * c**3), 1.6),  # steeper than the square law
        (lambda c: 1 + 0.3 * c**1.2, 1.05),  # shallower
    ],
)
def test_match_scale_meets_the_target_ratio_in_few_evaluations(curve, target):
    calls = []
    scale, ratio = match_scale(lambda c: calls.append(c) or curve(c), target)
    assert abs(ratio - target) <= 0.1 * (target - 1) + 1e-3
    assert ratio == curve(scale) and len(calls) <= 3, calls


def test_match_scale_falls_back_to_a_bracket_where_the_power_law_does_not_hold():
    curve = lambda c: 0.99 + 0.002 * c**4  # noqa: E731 (below 1 at scale 1: no power law)
    scale, ratio = match_scale(curve, 1.1, steps=8)
    assert abs(ratio - 1.1) <= 0.011 and ratio == curve(scale)
    assert match_scale(curve, 0.95) == (1.0, curve(1.0))  # a target at or below 1: nothing to match


def test_random_draws_keep_the_layers_norms_and_both_signs(tiny):
    vector = SteeringVector({1: torch.ones(tiny.d_model), 3: 2 * torch.ones(tiny.d_model)}, trait="JP")
    draws = random_draws(vector, 5, seed=1)
    assert len(draws) == 5 and all(d.layers == [1, 3] for d in draws)
    for d in draws:
        assert float(d.offsets[3].norm()) == pytest.approx(float(vector.offsets[3].norm()), rel=1e-5)
    assert torch.equal(draws[1].offsets[1], -draws[0].offsets[1])  # each direction with its negative


@pytest.mark.parametrize("draws", [0, 1001, True, 2.5])
def test_bad_draws_are_one_clear_error(draws):
    from traitlens.errors import TraitlensError

    with pytest.raises(TraitlensError, match="draws must be an integer from 1 to 1000"):
        check_draws(draws)


def test_a_planted_direction_stands_out_of_its_null_and_a_random_one_does_not():
    """On a model whose J share falls along one axis only, and whose perplexity grows with the
    offset's norm: the vector along the axis lands beyond its null, a random one inside it."""
    d = 64
    axis = torch.zeros(d)
    axis[0] = 1.0

    def measure(steering):
        if steering is None:
            return {"share_J": 0.5}
        offset = steering.vector.offsets[2] * steering.alpha
        return {"share_J": 0.5 - 0.02 * float(offset @ axis)}

    def ratio(steering):
        return 1 + 0.01 * float(steering.vector.offsets[2].norm()) ** 2

    planted = SteeringVector({2: 5 * axis}, trait="JP")
    made = random_draws(planted, 40, seed=0)
    metrics, matched = compare(measure, ratio, Steering(planted, 1.0), made)
    share = metrics["share_J"]
    assert share["vector"] == pytest.approx(-0.1) and share["vector"] < share["percentiles"][0]
    assert share["p"] == pytest.approx(1 / 41, abs=1e-6)
    assert all(r == pytest.approx(matched["vector_ratio"]) for r in matched["null_ratios"])  # same norm, same cost
    other = torch.randn(d, generator=torch.Generator().manual_seed(7))
    random = SteeringVector({2: other / other.norm() * 5}, trait="JP")
    inside = compare(measure, ratio, Steering(random, 1.0), random_draws(random, 40, seed=1))[0]["share_J"]
    assert inside["percentiles"][0] <= inside["vector"] <= inside["percentiles"][2] and inside["p"] > 0.05


def test_the_null_runs_on_a_model_with_its_readouts_held_fixed(tiny):
    vector = SteeringVector(
        {2: 4 * torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(2))},
        model=tiny.fingerprint.to_dict(), trait="JP",
    )  # fmt: skip
    fixed = {d: "pmi" for d in DIMENSIONS}
    result = null_test(tiny, Steering(vector, 1.0), draws_n=2, kinds=("random",), readouts=fixed)
    assert set(result.metrics) == {"share_E", "share_S", "share_T", "share_J"} and result.readouts == fixed
    assert result.draws == 2 and len(result.perplexity["null_ratios"]) == 2
    assert result.to_dict()["matched"] == ["norm", "perplexity"]
    assert set(result.wording) == set(DIMENSIONS) and all("wording_shift" in w for w in result.wording.values())
    test = result.shift_test  # JP's target pole P, paired over the J/P eval items
    jp = [i for i in default_items().select("eval") if i.dimension == "JP"]
    assert test["pole"] == "P" and test["n"] == len(jp) and test["ci"][0] <= test["shift"] <= test["ci"][1]
    share_j = result.metrics["share_J"]["vector"]  # the P share's shift is minus the J share's
    assert test["shift"] == pytest.approx(-share_j, abs=1e-3)


def test_cli_null_writes_its_json_and_refuses_bad_input(tiny, tmp_path):
    from traitlens.steering.artifact import save_vector

    offset = torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(3))
    save_vector(SteeringVector({2: offset}, model=tiny.fingerprint.to_dict(), trait="JP"), tmp_path / "v")
    for args, needle in (
        (["--draws", "0"], "draws must be an integer"),
        (["--suites", "questionnaire,vibes"], "unknown suite 'vibes'"),
    ):
        result = run_cli(
            "null", "--vector", str(tmp_path / "v"), "--model", "tiny", "--out", str(tmp_path / "x"), *args
        )
        assert_clean_error(result, needle)
        assert not (tmp_path / "x").exists()
    result = run_cli(
        "null", "--vector", str(tmp_path / "v"), "--model", "tiny", "--alpha", "1", "--draws", "2", "--kinds",
        "random,shuffled", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "o" / "null.json").read_text())
    assert data["draws"] == 2 and data["matched"] == ["norm", "perplexity"]
    assert set(data["metrics"]["share_J"]) == {"vector", "null", "p", "percentiles"}
    assert len(data["metrics"]["share_J"]["null"]) == 2  # one random, one label-shuffled
    assert (tmp_path / "o" / "null.md").is_file() and (tmp_path / "o" / "null.png").is_file()


def test_edit_with_a_null_reports_the_target_share_in_it(tiny, tmp_path):
    from traitlens.edit import edit
    from traitlens.edit.report import edit_markdown, write_edit_outputs
    from traitlens.options import RunOptions

    result = edit(tiny, "JP", recipes="default", alpha=0.3, permutations=10, options=RunOptions.cached(), null=2)
    null = result.summary()["null"]
    assert null["draws"] == 2 and null["metric"] == "share_J" and 0 < null["p"] <= 1
    assert result.null.readouts == {d: r.readout for d, r in result.baseline.dimensions.items()}  # held fixed
    assert "Random-direction null (2 draws" in edit_markdown(result)
    write_edit_outputs(result, tmp_path / "run", None)
    assert json.loads((tmp_path / "run" / "null.json").read_text())["draws"] == 2
