from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_clean_error, run_cli
from safetensors.torch import save_file

from traitlens import TraitlensError
from traitlens.steering import SteeringVector
from traitlens.steering.artifact import FILES, load_vector, save_vector, tensor_name, withdraw, withdrawn
from traitlens.steering.inject import load_intervention


def _vector(model, layers=(1, 2)) -> SteeringVector:
    g = torch.Generator().manual_seed(3)
    return SteeringVector(
        {layer: torch.randn(model.d_model, generator=g) for layer in layers},
        model=model.fingerprint.to_dict(),
        trait="JP",
        method="meandiff",
        scales={layer: 2.0 for layer in layers},
        stats={layer: {"mean_pos": 1.0} for layer in layers},
        recommended_alpha=0.15,
    )


def test_round_trip_keeps_tensors_and_metadata(tiny, tmp_path):
    vector = _vector(tiny)
    save_vector(vector, tmp_path / "v", {"note": "hello"})
    loaded = load_vector(tmp_path / "v")
    assert loaded.layers == vector.layers
    for layer in vector.layers:
        assert torch.equal(loaded.offsets[layer], vector.offsets[layer])
    assert (loaded.trait, loaded.method, loaded.recommended_alpha, loaded.hook) == (
        "JP",
        "meandiff",
        0.15,
        "resid_post",
    )
    assert loaded.scales == vector.scales and loaded.model == vector.model and loaded.extra["note"] == "hello"


def _broken(tmp_path, tiny, damage):
    directory = tmp_path / "v"
    save_vector(_vector(tiny), directory)
    damage(directory)
    return directory


def _truncate(d):
    path = d / FILES["directions"]
    path.write_bytes(path.read_bytes()[:40])


def _bad_json(d):
    (d / FILES["meta"]).write_text("{ not json")


def _missing_tensor(d):
    save_file({tensor_name(1): torch.zeros(64)}, str(d / FILES["directions"]))


def _nan(d):
    save_file(
        {tensor_name(1): torch.full((64,), float("nan")), tensor_name(2): torch.zeros(64)}, str(d / FILES["directions"])
    )


def _unlisted_tensor(d):
    tensors = {tensor_name(1): torch.zeros(64), tensor_name(2): torch.zeros(64), tensor_name(3): torch.ones(64)}
    save_file(tensors, str(d / FILES["directions"]))


def _n_layers_disagree(d):
    meta = json.loads((d / FILES["meta"]).read_text())
    meta["n_layers"] = meta["model"]["n_layers"] + 5
    (d / FILES["meta"]).write_text(json.dumps(meta))


def _layer_beyond_model(d):
    meta = json.loads((d / FILES["meta"]).read_text())
    meta["layers"] = [1, meta["model"]["n_layers"] + 2]
    (d / FILES["meta"]).write_text(json.dumps(meta))


def _wrong_version(d):
    meta = json.loads((d / FILES["meta"]).read_text())
    meta["format_version"] = 99
    (d / FILES["meta"]).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, message",
    [
        (_truncate, "not a readable safetensors file"),
        (_bad_json, "invalid JSON"),
        (_missing_tensor, "no tensor 'layer.2' for listed layer 2"),
        (_nan, "NaN or infinite"),
        (_wrong_version, "format version 99"),
        (_unlisted_tensor, "holds tensor 'layer.3' that meta.json does not list"),  # defect 15
        (_n_layers_disagree, "disagrees with the model fingerprint"),  # defect 15
        (_layer_beyond_model, "outside the model's layers"),  # defect 15
    ],
)
def test_corrupted_artifacts_are_refused_clearly(tiny, tmp_path, damage, message):
    with pytest.raises(TraitlensError, match=message):
        load_vector(_broken(tmp_path, tiny, damage))


def test_pickle_files_are_refused(tmp_path):
    (tmp_path / "vector.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(TraitlensError, match="pickle"):
        load_vector(tmp_path / "vector.pt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "steering.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(TraitlensError, match="pickle"):
        load_vector(tmp_path / "dir")


def test_vector_for_another_model_is_refused(tiny, tmp_path):
    vector = _vector(tiny)
    vector.model = {**vector.model, "weights_hash": "sha256:0123456789abcdef", "name": "other"}
    save_vector(vector, tmp_path / "other")
    with pytest.raises(TraitlensError, match="made for other"):
        load_intervention(tmp_path / "other", tiny)
    result = run_cli("assess", "--model", "tiny", "--vector", str(tmp_path / "other"), "--out", str(tmp_path / "out"))
    assert_clean_error(result, "made for other")
    assert not (tmp_path / "out").exists()


def test_cli_assess_with_a_vector_runs_and_warns_when_it_is_withdrawn(tiny, tmp_path):
    save_vector(_vector(tiny), tmp_path / "v")
    withdraw(tmp_path / "v", "moves the\nwording")  # one line, whatever was passed
    with pytest.raises(TraitlensError, match="needs a reason"):
        withdraw(tmp_path / "v", "  ")
    assert withdrawn(load_vector(tmp_path / "v")) == "moves the wording"
    assert withdrawn(_vector(tiny)) is None
    result = run_cli(
        "assess", "--model", "tiny", "--vector", str(tmp_path / "v"), "--alpha", "0.5", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    assert "is withdrawn: moves the wording" in " ".join(result.stderr.split())
    data = json.loads((tmp_path / "o" / "assessment.json").read_text())
    assert data["settings"]["intervention"]["alpha"] == 0.5


def test_library_readme_lists_each_edit_and_keeps_the_notes(tiny, tmp_path):
    from vector_library import write_library_readme

    root = tmp_path / "vectors" / "tiny"
    summary = {"layer": 2, "alpha": 0.2, "before_share": 0.4, "after_share": 0.55, "perplexity_change": 0.1}
    summary |= {"flipped": True, "already_target_before": False, "goal_met_in_calibration": True}
    save_vector(_vector(tiny), root / "JP", {"edit_summary": summary})
    missed = summary | {"flipped": False, "goal_met_in_calibration": False}
    save_vector(_vector(tiny), root / "EI", {"edit_summary": missed, "alpha_curve": [{"guard_ok": False}]})
    save_vector(_vector(tiny), root / "IE", {"edit_summary": missed, "alpha_curve": [{"guard_ok": True}]})
    (root.parent / "NOTES.md").write_text("Hand-written notes survive.\n")
    text = write_library_readme(root).read_text()
    row = text.split("| [J -> P](tiny/JP/report.md) |")[1].splitlines()[0]
    assert (
        "| 0.2 | P 40.0% -> 55.0% | +15.0 pts | not measured (an earlier run) | - | - | - | flipped | +10.0% |" in row
    )
    assert "| P -> J | not generated |" in text
    assert "| not flipped |" in text.split("[E -> I]")[1].splitlines()[0]
    words = {"words32": {"before": 0.5, "after": 0.62, "persona_prompt": 0.55}}
    test = {"shift": 0.15, "ci": [0.05, 0.25], "p": 0.004, "n": 16, "sd": 0.2, "mdd": 0.14}
    evidence = {"shift_test": test, "wording_shift": 0.08, "null": {"p": 0.03, "draws": 32}}
    evidence["flags"] = ["wording: the content-free share moved +8.0 pts"]
    with_prompt = summary | {"persona_prompt_shift": 0.05, "extra_instruments": words} | evidence
    save_vector(_vector(tiny), root / "PJ", {"edit_summary": with_prompt})
    text = write_library_readme(root).read_text()
    row = text.split("[P -> J]")[1].splitlines()[0]
    assert (
        "| +15.0 pts | moved +15.0 pts (p = 0.004); wording +8.0 pts (net +7.0); null p 0.030 (32 draws); **FLAG** wording |"
        in row
    )
    assert "| +5.0 pts | +12.0 / +5.0 |" in row
    assert text.endswith("Hand-written notes survive.\n")


def test_library_takes_a_separate_null_runs_evidence_only_for_the_vector_it_ran_on(tiny, tmp_path):
    from dataclasses import replace

    from vector_library import library_table

    root, nulls = tmp_path / "vectors" / "tiny", tmp_path / "null"
    summary = {"alpha": 0.2, "before_share": 0.4, "after_share": 0.55, "perplexity_change": 0.1}
    save_vector(replace(_vector(tiny), recommended_alpha=0.2), root / "JP", {"edit_summary": summary})
    test = {"pole": "P", "shift": 0.15, "ci": [0.05, 0.25], "p": 0.004, "n": 16, "sd": 0.2, "mdd": 0.14}
    run = {
        "vector": {"layers": [1, 2], "alpha": 0.2},
        "draws": 32,
        "metrics": {"share_J": {"vector": -0.15, "p": 0.03}},
        "shift_test": test,
        "wording": {"JP": {"wording_shift": -0.08}},  # the J share's: P moved +8
    }
    (nulls / "JP").mkdir(parents=True)
    (nulls / "JP" / "null.json").write_text(json.dumps(run))
    row = library_table(root, nulls).split("[J -> P]")[1].splitlines()[0]
    assert "moved +15.0 pts (p = 0.004); wording +8.0 pts (net +7.0); null p 0.030 (32 draws) |" in row
    withdraw(root / "JP", "moves wording")
    assert "| **WITHDRAWN**: moves wording; moved +15.0 pts" in library_table(root, nulls)
    run["vector"]["alpha"] = 0.3  # a run on another alpha says nothing of the shipped vector
    (nulls / "JP" / "null.json").write_text(json.dumps(run))
    row = library_table(root, nulls).split("[J -> P]")[1].splitlines()[0]
    assert "| **WITHDRAWN**: moves wording |" in row and "null p" not in row


def test_artifact_docstring_states_the_llama_cpp_layer_convention_the_code_uses():
    """Defect 18: the docstring said llama.cpp calls block L "layer L+1"; export writes direction.L."""
    from traitlens.steering import artifact

    assert "L+1" not in artifact.__doc__ and "direction.L" in artifact.__doc__
