from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens.edit.calibrate import CurvePoint, best_within_guard, climb
from traitlens.edit.frontier import RecipeRun, choose, pareto, search_frontier
from traitlens.edit.pipeline import edit
from traitlens.edit.recipe import parse_recipe, parse_recipes, recipe_layers
from traitlens.edit.report import write_edit_outputs
from traitlens.errors import TraitlensError
from traitlens.steering.artifact import load_vector
from traitlens.steering.vector import SteeringVector


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


def test_climb_goes_up_to_the_guard_and_bisects_towards_it():
    """Issue 13: the largest move within the guard, not the smallest that crosses the goal.
    Guard 1.25 with ratio 1 + 4 a^2 breaks past a = 0.25."""
    evaluate = _FakeEvaluator()
    points = climb(evaluate, _OneLayer(), (0.05, 0.1, 0.15, 0.2, 0.3, 0.4))
    assert 0.4 not in evaluate.seen  # stopped climbing once the guard broke at 0.3
    best = best_within_guard(points)
    assert best.guard_ok and 0.25 <= best.alpha < 0.3  # bisected into (0.2, 0.3)
    assert best.target_share == max(p.target_share for p in points if p.guard_ok)
    assert [p.alpha for p in points] == sorted(p.alpha for p in points)


def test_climb_exact_evaluates_only_the_given_alpha():
    evaluate = _FakeEvaluator(ppl_curve=100.0)
    points = climb(evaluate, _OneLayer(), (0.3,), exact=True)
    assert evaluate.seen == [0.3] and len(points) == 1 and not points[0].guard_ok


def test_best_within_guard_falls_back_to_the_mildest_break():
    points = [CurvePoint(1, a, 0.6, 10, r, False, True) for a, r in ((0.1, 1.4), (0.2, 1.3))]
    assert best_within_guard(points).alpha == 0.2


def _vector(direction):
    return SteeringVector({2: direction})


def test_frontier_finds_and_prefers_a_planted_direction():
    """A planted direction u moves the trait in proportion to the cosine with it; every recipe
    costs the same perplexity per alpha. The frontier must pick the planted recipe, and every
    point on its Pareto front above the baseline must come from it."""
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(64, generator=gen)
    u /= u.norm()
    noise = torch.randn(64, generator=gen)
    noise -= (noise @ u) * u
    noise /= noise.norm()
    candidates = {
        "noise": _vector(noise),
        "half": _vector((u + noise) / 2**0.5),
        "planted": _vector(u.clone()),
        "anti": _vector(-u),
    }

    def evaluate(vector, alpha):
        v = vector.offsets[2]
        share = 0.4 + 0.8 * alpha * float(v @ u / v.norm())
        ratio = 1 + 3 * alpha**2
        return CurvePoint(2, alpha, share, 10 * ratio, ratio, ratio <= 1.25, share > 0.5)

    curves, winner = search_frontier(candidates, evaluate, (0.05, 0.1, 0.2, 0.3, 0.4))
    assert winner == "planted"
    front = pareto([p for points in curves.values() for p in points])
    assert all(p.recipe == "planted" for p in front if p.target_share > 0.4 + 1e-9)
    assert max(p.target_share for p in curves["planted"] if p.guard_ok) > max(
        p.target_share for p in curves["half"] if p.guard_ok
    )


def test_the_winner_has_the_largest_share_or_when_asked_the_largest_share_net_of_its_wording():
    def run(name, share, wording, guard_ok=True):
        point = CurvePoint(2, 0.2, share, 10, 1.1 if guard_ok else 1.5, guard_ok, True, recipe=name)
        point.wording_shift = wording
        return RecipeRun(parse_recipe(name), [2], points=[point])

    runs = [run("default", 0.70, 0.25), run("persona", 0.62, 0.02), run("band", 0.90, 0.0, guard_ok=False)]
    assert choose(runs, "net").recipe.name == "persona"  # 0.60 net of its wording, against 0.45
    assert choose(runs, "share").recipe.name == "default"  # the broken band never competes
    assert choose(runs[2:], "net").recipe.name == "band"  # nothing holds the guard: the mildest break
    with pytest.raises(TraitlensError, match="unknown selection 'best'"):
        choose(runs, "best")


def test_pareto_keeps_only_undominated_points():
    pts = [CurvePoint(1, 0.1, s, 10, r, True, False) for s, r in ((0.5, 1.0), (0.6, 1.1), (0.55, 1.2), (0.7, 1.3))]
    assert [(p.target_share, p.ppl_ratio) for p in pareto(pts)] == [(0.5, 1.0), (0.6, 1.1), (0.7, 1.3)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("nonsense", "unknown recipe 'nonsense'"),
        ("items+vibes/meandiff/best/add", "unknown source 'vibes'"),
        ("items/lda/best/add", "unknown method 'lda'"),
        ("items/meandiff/best/multiply", "unknown mode 'multiply'"),
        ("items/meandiff/14-12/add", "layer band 14-12 is empty"),
        ("items/meandiff/middle/add", "placement 'middle'"),
        ("items/meandiff/best\n/add", "placement"),
        ("default,default", "listed twice"),
        ("", "no recipes given"),
    ],
)
def test_bad_recipes_are_one_clear_error(text, message):
    with pytest.raises(TraitlensError, match=message):
        parse_recipes(text)


def test_recipe_layers_bands_and_bounds():
    assert recipe_layers(parse_recipe("band"), 5, 30) == [3, 4, 5, 6, 7]
    assert recipe_layers(parse_recipe("band"), 0, 30) == [0, 1, 2]  # clipped to the model
    assert recipe_layers(parse_recipe("items/meandiff/10-12/add"), None, 30) == [10, 11, 12]
    with pytest.raises(TraitlensError, match="outside the model's 0..3"):
        recipe_layers(parse_recipe("items/meandiff/2-5/add"), None, 4)


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
        (["--trait", "JP", "--alpha", "nan"], "alpha must be a finite number"),
        (["--trait", "JP", "--goal", "1.5"], "goal must be between 0 and 1"),
        (["--trait", "JP", "--model", "tiny", "--layer", "12"], "layer 12 out of range"),
        (["--trait", "JP", "--recipes", "default,vibes"], "unknown recipe 'vibes'"),
        (["--trait", "JP", "--recipes", "items/meandiff/9-3/add"], "layer band 9-3 is empty"),
        (["--trait", "JP", "--model", "tiny", "--recipes", "items/meandiff/2-9/add"], "outside the model's"),
        (["--trait", "JP", "--pairs", "nowhere.jsonl"], "file not found: nowhere.jsonl"),
        (["--trait", "JP", "--select", "best"], "unknown --select 'best'"),
    ],
)
def test_cli_edit_bad_input_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    assert_clean_error(run_cli("edit", *args, "--out", str(out), "--export", str(tmp_path / "vec")), message)
    assert not out.exists() and not (tmp_path / "vec").exists()


def test_edit_frontier_on_tiny_ships_the_winning_recipe(tiny, tmp_path):
    """Several recipes (a band, a norm-preserving mode, a persona source) climb on the train items;
    the shipped vector is the winner's, with its recipe in meta.json, and loading it applies the
    recipe's mode; the persona-prompt baseline and an extra instrument are reported."""
    from traitlens.instrument.items import default_items
    from traitlens.steering.inject import load_intervention

    extra = {"bank-again": default_items().select("eval")}
    result = edit(tiny, "JP", recipes="band,norm,persona", alphas=(0.1, 0.3), permutations=10, extra_items=extra)
    names = [run.recipe.name for run in result.frontier.runs]
    assert names == ["band", "norm", "persona"] and all(run.points for run in result.frontier.runs)
    chosen = result.calibration.chosen
    assert chosen.recipe == result.frontier.chosen_recipe == result.recipe.name
    bests = [run.best for run in result.frontier.runs]  # each read for its wording; the default picks the share
    assert result.frontier.select == "share" and all(b.wording_shift is not None for b in bests)
    safe = [b for b in bests if b.guard_ok]
    if safe:
        assert chosen.target_share == max(b.target_share for b in safe)
    band = next(run for run in result.frontier.runs if run.recipe.name == "band")
    assert len(band.layers) >= 3 and band.layers == list(range(band.layers[0], band.layers[-1] + 1))
    summary = result.summary()
    assert summary["persona_prompt_share"] is not None and "bank-again" in summary["extra_instruments"]
    write_edit_outputs(result, tmp_path / "run", tmp_path / "vec")
    assert (tmp_path / "run" / "frontier.png").is_file() and (tmp_path / "vec" / "frontier.png").is_file()
    meta = json.loads((tmp_path / "vec" / "meta.json").read_text())
    assert meta["recipe"]["name"] == result.recipe.name and meta["recommended_alpha"] == chosen.alpha
    assert {"recommended_alpha", "edit_summary"} <= set(meta) and "perplexity_change" in meta["edit_summary"]
    steering = load_intervention(tmp_path / "vec", tiny)
    assert steering.mode == result.recipe.mode and steering.vector.layers == result.vector.layers
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Frontier (train items)" in report and "persona prompt" in report


def test_norm_recipe_cannot_be_exported_to_other_tools(tiny, tmp_path):
    from traitlens.steering.interop import export_gguf

    vector = SteeringVector({2: torch.ones(tiny.d_model)}, extra={"recipe": {"mode": "add_norm"}})
    with pytest.raises(TraitlensError, match="mode 'add_norm'"):
        export_gguf(vector, tmp_path / "v.gguf")
    assert not (tmp_path / "v.gguf").exists()


def test_cli_edit_keeps_scores_only_when_asked_to(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAITLENS_CACHE", str(tmp_path / "cache"))
    args = ["--model", "tiny", "--trait", "JP", "--recipes", "default", "--alpha", "0.2", "--no-bench", "--no-export"]
    off = run_cli("edit", *args, "--no-score-cache", "--out", str(tmp_path / "off"))
    assert off.returncode == 0, off.stderr
    assert not list((tmp_path / "cache").rglob("scores/**/*.safetensors"))
    on = run_cli("edit", *args, "--out", str(tmp_path / "on"))
    assert on.returncode == 0, on.stderr
    assert list((tmp_path / "cache" / "scores").rglob("*.safetensors"))
    off_summary = json.loads((tmp_path / "off" / "edit.json").read_text())["summary"]
    on_summary = json.loads((tmp_path / "on" / "edit.json").read_text())["summary"]
    assert {k: v for k, v in off_summary.items() if k != "seconds"} == {
        k: v for k, v in on_summary.items() if k != "seconds"
    }
