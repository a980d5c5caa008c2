"""Studies: spec validation, Ray execution with a content-hash cache that survives a kill,
failed units, report-only re-rendering, and the paired statistics behind the analyses."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_error, run_cli

from traitlens.study import execute, load_spec, write_report
from traitlens.study.stats import ItemMatrix, holm, mcnemar, paired_difference, slope_test

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "studies" / "smoke.toml"


def _spec(tmp_path: Path, body: str) -> Path:
    (tmp_path / "vectors").symlink_to(ROOT / "results" / "vectors", target_is_directory=True)
    path = tmp_path / "bad.toml"
    path.write_text('models = ["tiny"]\nvector_root = "vectors"\n' + body)
    return path


def test_a_null_key_adds_one_null_unit_per_vector_at_its_recommended_alpha(tmp_path):
    body = 'null = 3\n[interventions]\nvectors = ["JP", "PJ"]\nmultiples = [0.5, 1.0]\npersonas = ["P"]\n'
    every = load_spec(_spec(tmp_path, body)).units()
    units = [u for u in every if u.target == "null"]
    assert sorted((u.condition.name, u.condition.multiple, u.n) for u in units) == [("JP", 1.0, 3), ("PJ", 1.0, 3)]
    # Readouts are chosen once, on the first model, for every questionnaire reading of the study.
    assert {u.readouts_from for u in every if u.target in ("null", "bank:eval")} == {"tiny"}


@pytest.mark.parametrize(
    "body, key, reason",
    [
        ('colour = "red"\n', "colour", "unknown key"),
        ("seeds = [0, 1]\n", "seeds", "no seeds"),
        ('[interventions]\nvectors = ["XY"]\n', "interventions.vectors", "no vector 'XY' for tiny"),
        ("[interventions]\nnone = false\n", "interventions", "empty grid"),
        ('[interventions]\nvectors = ["JP"]\nmultiples = [nan]\n', "interventions.multiples", "not finite"),
        ('[interventions]\nvectors = ["JP"]\nmultiples = [1, 1.0]\n', "interventions", "duplicate units"),
        ('[interventions]\npersonas = ["Q"]\n', "interventions.personas", "unknown pole 'Q'"),
        ("[suites.vibes]\nn = 3\n", "suites.vibes", "unknown suite"),
        ("[suites.privacy]\nn = 0\n", "suites.privacy.n", "positive integer"),
        ('[suites.privacy]\nat = "sometimes"\n', "suites.privacy.at", "not one of"),
        ('[suites.privacy]\nkinds = ["robot"]\n', "suites.privacy.kinds", "non-empty list"),
        ('[suites.privacy]\nfast = "yes"\n', "suites.privacy.fast", "true or false"),
        ('[instruments]\nitems = ["missing.jsonl"]\n', "instruments.items", "file not found"),
        ("null = 0\n", "null", "positive integer"),
        ('null = "many"\n', "null", "positive integer"),
    ],
)
def test_bad_spec_fails_before_any_model_loads(tmp_path, body, key, reason):
    path = _spec(tmp_path, body)
    result = run_cli("study", str(path), "--out", str(tmp_path / "out"), "--executor", "local")
    assert_clean_error(result, str(path), key, reason)
    assert not (tmp_path / "out").exists()


def test_a_fast_suite_runs_in_fast_mode_under_its_own_key(tmp_path, monkeypatch):
    """``fast = true`` runs that suite's units in the opt-in fast decoding, gives them keys of
    their own (an exact result is never read back for a fast unit, nor the reverse), leaves the
    exact units' keys as they were, and the report says which suites ran fast."""
    import traitlens.bench as bench
    from traitlens.study.units import unit_key

    body = '[instruments]\nbank = ""\n[suites.jailbreak]\nn = 2\nfast = true\n[suites.overrefusal]\nn = 2\n'
    spec = load_spec(_spec(tmp_path, body))
    seen = []
    real = bench.run_suites
    monkeypatch.setattr(bench, "run_suites", lambda *a, **k: seen.append((a[1][0], k["options"].fast)) or real(*a, **k))
    run = execute(spec, tmp_path / "out", executor="local")
    assert sorted(seen) == [("jailbreak", True), ("overrefusal", False)]
    fast = next(u for u in spec.units() if u.target == "suite:jailbreak")
    assert fast.fast and fast.describe()["fast"] is True
    exact = type(fast)(fast.model, fast.condition, fast.target, fast.n, fast.source)
    identities = {fast.model: "tiny"}
    assert "fast" not in exact.describe() and unit_key(exact, identities) != unit_key(fast, identities)
    write_report(run, tmp_path / "out")
    assert "opt-in fast mode" in (tmp_path / "out" / "study.md").read_text()


def test_unit_keys_cover_the_package_code_and_data(tmp_path, monkeypatch):
    """A unit's key changes with any file of the package (code, item bank, judges): a resumed
    study never reads back a result of other code."""
    from traitlens.study import units

    unit = load_spec(SMOKE).units()[0]
    identities = {unit.model: "tiny"}
    before = units.unit_key(unit, identities)
    digest = units.package_digest.__wrapped__
    monkeypatch.setattr(units, "package_digest", lambda: "other code")
    assert units.unit_key(unit, identities) != before
    tree = tmp_path / "pkg"
    (tree / "data").mkdir(parents=True)
    (tree / "scorer.py").write_text("x = 1\n")
    (tree / "data" / "items.jsonl").write_text("{}\n")
    first = digest(tree)
    (tree / "data" / "items.jsonl").write_text("{} \n")
    second = digest(tree)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "scorer.pyc").write_bytes(b"\0")
    assert first != second == digest(tree)


def test_unknown_model_and_bad_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('models = ["gpt-9"]\n')
    assert_clean_error(run_cli("study", str(path)), "models", "unknown model 'gpt-9'")
    path.write_text("models = [\n")
    assert_clean_error(run_cli("study", str(path)), "not valid TOML")


def test_unreachable_address_is_one_line(tmp_path):
    result = run_cli("study", str(SMOKE), "--out", str(tmp_path / "o"), "--address", "127.0.0.1:9")
    assert_clean_error(result, "cannot reach a Ray cluster at 127.0.0.1:9")


def _unit_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / "units").glob("*.json")} if (out / "units").is_dir() else {}


def test_killed_ray_study_resumes_without_recomputing(tmp_path):
    """The smoke study on Ray is killed (SIGKILL, the whole process group) after a few units;
    the rerun reads those back untouched and computes only the rest."""
    out = tmp_path / "smoke"
    code = "from traitlens.cli.app import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "study", str(SMOKE), "--out", str(out), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while len(_unit_files(out)) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _unit_files(out)
    spec = load_spec(SMOKE)
    total = len(spec.units())
    assert 4 <= len(before) < total, "the kill should land mid-study"
    assert not (out / "study.json").exists()
    run = execute(spec, out, executor="ray", workers=2)
    assert run.executor["kind"] == "ray" and not run.failed
    assert run.computed == total - len(before)
    cached = {r["key"] for r in run.results if r["cached"]}
    assert cached == {name[:-5] for name in before}
    after = _unit_files(out)
    assert all(after[name] == content for name, content in before.items())  # read back, never rewritten
    data = write_report(run, out)
    assert {"spec", "executor", "units", "analyses"} <= set(data)
    assert set(data["analyses"]) == {
        "dose_response",
        "jailbreak_by_pole",
        "steering_vs_prompting",
        "models",
        "model_pairs",
        "null",
        "paper",
    }
    row = data["units"][0]
    assert {"model", "intervention", "target", "n", "metric", "value", "ci", "seconds", "cached"} <= set(row)
    # A finished study re-renders without loading a model, everything from the cache.
    import traitlens.study.units as units

    def no_model(spec):
        raise AssertionError("a report-only run must not load a model")

    original, units._model = units._model, no_model
    try:
        again = execute(spec, out, executor="ray", dry=True)
    finally:
        units._model = original
    assert again.computed == 0 and len(again.results) == total
    write_report(again, out)
    assert "## Dose-response (tiny)" in (out / "study.md").read_text()


def test_a_crashing_unit_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    import importlib

    execute_module = importlib.import_module("traitlens.study.execute")  # the package exports a function of that name
    real = execute_module.run_unit

    def flaky(unit):
        if unit.target == "suite:jailbreak" and unit.condition.kind == "persona":
            raise RuntimeError("the judge fell over")
        return real(unit)

    monkeypatch.setattr(execute_module, "run_unit", flaky)
    spec = load_spec(SMOKE)
    run = execute(spec, tmp_path / "s", executor="local")
    assert len(run.failed) == 2 and all("the judge fell over" in f["error"] for f in run.failed)
    assert len(run.results) == len(spec.units()) - 2
    write_report(run, tmp_path / "s")
    assert "**Failed units**" in (tmp_path / "s" / "study.md").read_text()
    monkeypatch.setattr(execute_module, "run_unit", real)
    rerun = execute(spec, tmp_path / "s", executor="local")  # failures are not cached: retried
    assert rerun.computed == 2 and not rerun.failed
    privacy = next(r["result"] for r in rerun.results if r["unit"].target == "suite:privacy")
    assert [row["metric"] for row in privacy["rows"]] == ["mcc", "f1_calibrated"]  # analysed row first
    bank = [r["result"] for r in rerun.results if r["unit"].target == "bank:eval"]
    assert len({tuple(row["readout"] for row in b["rows"]) for b in bank}) == 1  # one readout per dimension


def test_another_spec_in_the_same_directory_keeps_its_units_apart(tmp_path):
    out = tmp_path / "s"
    first = load_spec(SMOKE)
    execute(first, out, executor="local")
    changed = tmp_path / "changed.toml"
    changed.write_text(SMOKE.read_text().replace("n = 6", "n = 5").replace('vector_root = "../results/vectors"', ""))
    (tmp_path / "vectors").symlink_to(ROOT / "results" / "vectors", target_is_directory=True)
    second = load_spec(changed)
    run = execute(second, out, executor="local")
    privacy = [r for r in run.results if r["unit"].target == "suite:privacy"]
    assert privacy and not any(r["cached"] for r in privacy)  # a different n: a different unit
    assert all(r["cached"] for r in run.results if r["unit"].target != "suite:privacy")
    assert {r["result"]["rows"][0]["n"] for r in privacy} == {5}


def test_persona_prompt_reaches_every_bench_prompt(tiny):
    from traitlens.bench.choices import chat_prompts
    from traitlens.instrument.personas import PersonaPrompt, persona_prompt

    plain = tiny.tokenizer.decode(chat_prompts(tiny, ["hello"])[0])
    prompted = tiny.tokenizer.decode(chat_prompts(tiny, ["hello"], PersonaPrompt("P"))[0])
    assert persona_prompt("P") in prompted and persona_prompt("P") not in plain


def test_slope_test_finds_a_planted_slope_and_not_a_null():
    rng = np.random.default_rng(0)
    shares = [0.3, 0.5, 0.7]
    planted = ItemMatrix([(rng.random(200) < p).astype(float) for p in (0.2, 0.4, 0.6)])
    test = slope_test(shares, planted, resamples=300)
    assert test["p"] < 0.01 and test["ci"][0] > 0 and abs(test["slope_per_10pts"] - 0.1) < 0.04
    null = ItemMatrix([(rng.random(200) < 0.4).astype(float) for _ in shares])
    assert slope_test(shares, null, resamples=300)["p"] > 0.05


def test_paired_f1_difference_and_mcnemar_and_holm():
    truth = [1, 1, 1, 1, 0, 0, 0, 0]
    predictions = [[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]
    diff = paired_difference(ItemMatrix(predictions, truth, judged="f1"), 0, 1, resamples=200)
    assert diff["delta"] == pytest.approx(1.0 - 2 * 2 / 6)
    mcc = paired_difference(ItemMatrix(predictions, truth), 0, 1, resamples=200)  # MCC by default
    assert mcc["delta"] == pytest.approx(1.0 - 8 / 192**0.5)  # tp 2, tn 4, fn 2 before
    assert mcnemar([1] * 10 + [0] * 10, [0] * 10 + [0] * 10) == {
        "only_first": 10,
        "only_second": 0,
        "p": pytest.approx(2 / 2**10),
        "n_pairs": 20,
    }
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    with_nan = holm([0.01, math.nan, 0.04, 0.03])  # an untestable effect is not in the family
    assert math.isnan(with_nan[1]) and [with_nan[k] for k in (0, 2, 3)] == pytest.approx([0.03, 0.06, 0.06])


def test_an_undefined_slope_is_not_significant():
    """Shares without spread give a NaN slope: its p is NaN, not 1/(R+1)."""
    matrix = ItemMatrix([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    test = slope_test([0.5, 0.5, 0.5], matrix, resamples=50)
    assert math.isnan(test["slope_per_10pts"]) and math.isnan(test["p"])


def test_smoke_spec_expands_to_the_documented_grid():
    spec = load_spec(SMOKE)
    labels = {c.label for c in spec.conditions["tiny"]}
    assert labels == {"none", "JP x0.5", "JP x1", "PJ x0.5", "PJ x1", "persona J", "persona P"}
    jailbreak = [u for u in spec.units() if u.target == "suite:jailbreak"]
    assert {u.condition.label for u in jailbreak} == {"none", "JP x1", "PJ x1", "persona J", "persona P"}
    assert json.dumps([u.describe() for u in spec.units()])  # serialisable


def test_model_pairs_pair_items_and_find_a_planted_shift():
    from types import SimpleNamespace

    from traitlens.study.analyses import NONE, Table, model_pairs

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, 40)
    shares = {"base": base, "control": base + rng.normal(0, 0.02, 40), "safety": base + 0.15}

    def result(model):
        per_item = {"EI": list(shares[model]), "SN": list(base)}
        rows = [{"metric": "share_E", "value": float(np.mean(shares[model]))}]
        return {"rows": rows, "details": {"type": "ISTJ", "items": per_item}}

    units = [SimpleNamespace(model=m, condition=NONE, target="bank:eval") for m in shares]
    spec = SimpleNamespace(models=list(shares), suites={}, instruments=[("bank:eval", None)])
    run = SimpleNamespace(spec=spec, results=[{"unit": u, "result": result(u.model)} for u in units])
    pairs = {(p["from"], p["to"], p["metric"]): p for p in model_pairs(Table(run))}
    assert len(pairs) == 3 * 2  # three pairs of models, two dimensions
    planted = pairs[("control", "safety", "share_E")]
    assert planted["ci"][0] > 0.1 and abs(planted["delta"] - 0.15) < 0.03 and planted["n_items"] == 40
    null = pairs[("base", "control", "share_E")]
    assert null["ci"][0] < 0 < null["ci"][1]
    assert pairs[("base", "safety", "share_S")]["delta"] == 0


def test_a_checkpoint_path_is_relative_to_the_spec(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "s.toml"
    path.write_text('models = ["tiny", "../ckpt"]\n')
    monkeypatch.chdir(ROOT)  # anywhere but beside the spec
    spec = load_spec(path)
    assert Path(spec.models[1]).resolve() == (tmp_path / "ckpt").resolve()
    assert set(spec.conditions) == set(spec.models)
