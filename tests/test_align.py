"""``traitlens align``: two LoRA steps on the tiny model give a loadable model that differs from
the base; bad data, a used output directory and an interrupted run leave nothing behind."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens.align import AlignConfig, align
from traitlens.errors import TraitlensError


@pytest.fixture()
def files(tmp_path):
    safety = tmp_path / "safety.json"
    neutral = tmp_path / "neutral.json"
    refusal = "I can't help with that: it could hurt people."
    safety.write_text(
        json.dumps([{"instruction": f"Explain how to hurt {i}.", "input": "", "output": refusal} for i in range(12)])
    )
    neutral.write_text(json.dumps({"instructions": [f"Name a colour, number {i}." for i in range(12)]}))
    return safety, neutral


def test_two_steps_on_tiny_save_a_loadable_model_that_differs(tmp_path, files):
    from traitlens.models import load_model

    config = AlignConfig(steps=2, batch_size=2, learning_rate=5e-2, n_safety=6, n_neutral=6, answer_tokens=8)
    records = align("tiny", tmp_path / "out", *files, config)
    assert [r["arm"] for r in records] == ["safety", "control"]
    assert all(len(r["losses"]) == 2 for r in records)
    assert records[0]["examples"] > records[1]["examples"]  # safety = its demonstrations + the neutral set
    assert {"loss.png", "report.md", "safety", "control"} <= {p.name for p in (tmp_path / "out").iterdir()}
    base = load_model("tiny")
    tuned = load_model(str(tmp_path / "out" / "safety"))
    assert tuned.n_layers == base.n_layers
    differs = any(
        not torch.equal(a, b)
        for a, b in zip(base.hf_model.state_dict().values(), tuned.hf_model.state_dict().values(), strict=True)
    )
    assert differs
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_used_output_directory_is_refused(tmp_path, files):
    out = tmp_path / "out"
    (out / "safety").mkdir(parents=True)
    (out / "safety" / "config.json").write_text("{}")
    result = run_cli(
        "align", "--model", "tiny", "--out", str(out), "--safety", str(files[0]), "--neutral", str(files[1])
    )
    assert_clean_error(result, "already exists and is not empty")
    assert (out / "safety" / "config.json").read_text() == "{}"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"not": "a list"}', "expected a JSON list"),
        ("[]", "no usable safety examples"),
        ('[{"instruction": 3, "output": "x"}]', "record 0 needs string"),
        ("[{", "invalid JSON"),
    ],
)
def test_bad_safety_file_fails_before_any_model_loads(tmp_path, files, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    result = run_cli("align", "--model", "tiny", "--out", str(out), "--safety", str(bad), "--neutral", str(files[1]))
    assert_clean_error(result, message)
    assert not out.exists()


def test_interrupted_training_leaves_nothing_half_written(tmp_path, files, monkeypatch):
    import trl

    def boom(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trl.SFTTrainer, "train", boom)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        align("tiny", out, *files, AlignConfig(steps=1, batch_size=2, n_safety=4, n_neutral=4, answer_tokens=4))
    assert not (out / "safety").exists()
    assert not list(out.glob(".*")) if out.exists() else True


def test_a_model_without_decoder_layers_cannot_be_trained():
    from traitlens.align.train import lora_targets

    with pytest.raises(TraitlensError, match="cannot find the decoder layers"):
        lora_targets(torch.nn.Linear(2, 2))


def test_neutral_set_is_topped_up_with_traitlens_own(tmp_path):
    from traitlens.align.neutral import builtin_instructions
    from traitlens.align.study import _neutral

    path = tmp_path / "neutral.json"
    path.write_text(json.dumps({"instructions": [f"Name a colour, number {i}." for i in range(12)]}))
    examples = _neutral(path, 40)
    own = [e.instruction for e in examples if not e.instruction.startswith("Name a colour")]
    assert len(examples) == 40 and len(own) >= 40 - 12
    assert len({e.instruction for e in examples}) == 40 and own == builtin_instructions()[: len(own)]
    assert [e.instruction for e in _neutral(None, 5)] == builtin_instructions(5)
