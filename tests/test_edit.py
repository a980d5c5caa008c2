from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens.steering.artifact import load_vector
from traitlens.steering.calibrate import CurvePoint, _search_layer
from traitlens.steering.edit import edit
from traitlens.steering.report import write_edit_outputs


class _FakeEvaluator:
    """Target share rises linearly with alpha; perplexity ratio rises quadratically."""

    def __init__(self, slope=2.0, ppl_curve=4.0, goal=0.5, guard=0.25):
        self.slope, self.ppl_curve, self.goal, self.guard = slope, ppl_curve, goal, guard
        self.seen = []

    def __call__(self, vector, alpha):
        self.seen.append(alpha)
        share = 0.2 + self.slope * alpha
        ratio = 1 + self.ppl_curve * alpha**2
        return CurvePoint(vector.layers[0], alpha, share, 10 * ratio, ratio, ratio <= 1 + self.guard, share > self.goal)


class _OneLayer:
    layers = [3]


def test_search_finds_the_smallest_passing_alpha_and_keeps_the_curve():
    evaluate = _FakeEvaluator()
    points = _search_layer(evaluate, _OneLayer(), (0.05, 0.1, 0.15, 0.2, 0.25))
    passing = [p for p in points if p.goal_met and p.guard_ok]
    assert min(p.alpha for p in passing) == pytest.approx(0.1625)  # bisected inside (0.15, 0.2]
    assert 0.25 not in evaluate.seen  # stopped climbing after the first success
    assert [p.alpha for p in points] == sorted(p.alpha for p in points)


def test_search_stops_when_the_guard_breaks():
    evaluate = _FakeEvaluator(slope=0.5, ppl_curve=20.0)
    points = _search_layer(evaluate, _OneLayer(), (0.05, 0.1, 0.15, 0.2))
    assert not any(p.goal_met and p.guard_ok for p in points)
    assert points[-1].alpha == 0.15 and not points[-1].guard_ok


def test_search_looks_below_a_goal_point_that_breaks_the_guard():
    """Defect 8: the first step past the goal also broke the guard, and the search gave up
    although a strength between the last safe step and it does both (share 0.45 + alpha,
    perplexity ratio 1 + 4 alpha: alpha in (0.05, 0.0625] passes)."""

    class Linear(_FakeEvaluator):
        def __call__(self, vector, alpha):
            self.seen.append(alpha)
            share, ratio = 0.45 + alpha, 1 + 4 * alpha
            return CurvePoint(3, alpha, share, 10 * ratio, ratio, ratio <= 1.25, share > 0.5)

    points = _search_layer(Linear(), _OneLayer(), (0.04, 0.08, 0.12))
    passing = [p for p in points if p.goal_met and p.guard_ok]
    assert passing and all(0.05 < p.alpha <= 0.0625 for p in passing)


def test_edit_pipeline_on_tiny_exports_a_loadable_vector(tiny, tmp_path):
    result = edit(tiny, "PJ", layer=2, alpha=0.3, permutations=20)
    assert result.layer == 2 and result.alpha == 0.3
    # Defect 9: before and after are read by the readouts calibration held fixed, not re-chosen.
    for dim, before in result.baseline.dimensions.items():
        after = result.steered.dimensions[dim]
        assert after.readout == before.readout and after.readout_reason == "requested"
    assert result.steered.settings["intervention"]["layers"] == [2]
    write_edit_outputs(result, tmp_path / "run", tmp_path / "vec")
    assert {"report.md", "edit.json", "shares.png", "curve.png"} <= {p.name for p in (tmp_path / "run").iterdir()}
    vector = load_vector(tmp_path / "vec")
    assert vector.trait == "PJ" and vector.recommended_alpha == 0.3 and vector.layers == [2]
    assert torch.equal(vector.offsets[2], result.vector.offsets[2])
    summary = json.loads((tmp_path / "run" / "edit.json").read_text())["summary"]
    assert summary["target_pole"] == "J" and "perplexity_change" in summary


def test_edit_vector_points_towards_the_target_pole(tiny):
    to_p = edit(tiny, "JP", layer=1, alpha=0.1, permutations=20)
    to_j = edit(tiny, "PJ", layer=1, alpha=0.1, permutations=20)
    torch.testing.assert_close(to_p.vector.offsets[1], -to_j.vector.offsets[1])
    direction = to_p.probe.directions[1]  # points to J, the dimension's first pole
    assert float(to_p.vector.offsets[1] @ direction.vector) < 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trait", "JX"], "unknown trait 'JX'"),
        (["--trait", "JP", "--alpha", "nan"], "--alpha must be a finite number"),
        (["--trait", "JP", "--goal", "1.5"], "--goal must be between 0 and 1"),
        (["--trait", "JP", "--model", "tiny", "--layer", "12"], "layer 12 out of range"),
    ],
)
def test_cli_edit_bad_input_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    assert_clean_error(run_cli("edit", *args, "--out", str(out), "--export", str(tmp_path / "vec")), message)
    assert not out.exists() and not (tmp_path / "vec").exists()
