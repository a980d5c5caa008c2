"""The reverse direction: a safety direction, steering along it, personality re-assessed."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError
from traitlens.reverse import SafetyPrompts, fit_safety_direction, reverse, safety_prompts


def test_the_direction_method_finds_a_planted_direction(tiny, monkeypatch):
    """Activations are planted: harmful prompts sit +6 along a known unit vector at every layer."""
    from traitlens.reverse import direction as module

    g = torch.Generator().manual_seed(0)
    planted = torch.randn(tiny.d_model, generator=g)
    planted /= planted.norm()

    def fake(model, prompts, batch_size=16):
        noise = torch.randn(len(prompts), model.n_layers, model.d_model, generator=g)
        shift = torch.tensor([6.0 if p.startswith("harm") else 0.0 for p in prompts])
        return noise + shift[:, None, None] * planted

    monkeypatch.setattr(module, "prompt_activations", fake)
    prompts = SafetyPrompts([f"harm {k}" for k in range(40)], [f"calm {k}" for k in range(40)], "planted")
    found = fit_safety_direction(tiny, prompts)
    unit = found.vector.unit(found.layer)
    assert float(unit @ planted) > 0.9
    assert all(d > 2 for d in found.separation.values())  # held-out prompts it was not built from


def test_prompts_split_into_build_and_held_out_without_overlap():
    prompts = safety_prompts(None)
    build, held = prompts.split(False), prompts.split(True)
    assert not set(build.harmful) & set(held.harmful) and held.harmful and held.harmless
    assert len(build.harmful) + len(held.harmful) == len(prompts.harmful)


def test_reverse_runs_end_to_end_on_the_tiny_model(tiny, monkeypatch):
    from traitlens.assess import api

    measured = []
    real = api.measure_validity
    monkeypatch.setattr(
        api, "measure_validity", lambda s, items, *a, **k: measured.append(items) or real(s, items, *a, **k)
    )
    result = reverse(tiny, safety_prompts(None), strengths=(0.3,), max_new_tokens=6)
    assert measured and all(i.split == "train" for items in measured for i in items)  # readouts chosen on train
    names = [c.name for c in result.conditions]
    assert names == ["none", "alpha +0.3", "ablate"]
    data = result.to_dict()
    assert set(data["conditions"][0]["shares"]) == {"EI", "SN", "TF", "JP"}
    assert 0 <= data["conditions"][1]["refusal_harmful"] <= 1 and data["checks"]["mdd_harmful"] > 0
    assert data["conditions"][0]["perplexity_change"] == 0.0 and data["conditions"][1]["perplexity_change"] != 0.0
    json.dumps(data)


def test_reverse_bad_input(tmp_path):
    with pytest.raises(TraitlensError, match="data directory not found"):
        safety_prompts(tmp_path / "none")
    assert_clean_error(run_cli("reverse", "--model", "tiny", "--strengths", "a,b"), "--strengths")
    assert_clean_error(run_cli("reverse", "--model", "tiny", "--data", str(tmp_path / "none")), "not found")


def test_cli_reverse_writes_its_report(tmp_path):
    out = tmp_path / "rev"
    result = run_cli(
        "reverse", "--model", "tiny", "--strengths", "0.2", "--no-ablate", "--max-new-tokens", "4", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"reverse.json", "reverse.md", "reverse.png"}
