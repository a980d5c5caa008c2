from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError, load_model
from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.models import registry


def test_tiny_model_shape_and_fingerprint_are_deterministic(tiny):
    again = load_model("tiny")
    assert (tiny.n_layers, tiny.d_model) == (4, 64)
    assert tiny.fingerprint == again.fingerprint
    assert tiny.fingerprint.weights_hash.startswith("sha256:")
    assert "blocks.3.hook_resid_post" in tiny.bridge.hook_dict


def test_fingerprint_mismatch_names_both_models(tiny):
    other = type(tiny.fingerprint)(**{**tiny.fingerprint.to_dict(), "d_model": 128})
    assert "d_model=128" in tiny.fingerprint.mismatch(other)
    assert tiny.fingerprint.mismatch(tiny.fingerprint) is None


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(TraitlensError, match="unknown model spec 'no-such-model'"):
        load_model("no-such-model")


def test_missing_and_corrupt_gguf_are_clear_errors(tmp_path: Path):
    with pytest.raises(TraitlensError, match="not found"):
        load_model(str(tmp_path / "absent.gguf"))
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    with pytest.raises(TraitlensError, match="not a valid GGUF"):
        load_model(str(corrupt))


def test_wrong_checksum_is_refused(tmp_path: Path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not the real weights")
    with pytest.raises(TraitlensError, match="checksum mismatch"):
        registry._load_gguf(fake, "x", expected_sha=registry.SMOLLM2_SHA256)


def test_cli_bad_inputs_end_in_one_line_and_exit_2(tmp_path: Path):
    assert_clean_error(run_cli("model", "info", "--model", "nope"), "unknown model spec")
    corrupt = tmp_path / "c.gguf"
    corrupt.write_bytes(b"\0" * 64)
    assert_clean_error(run_cli("model", "info", "--model", str(corrupt)), "not a valid GGUF")
    assert_clean_error(run_cli("model", "info", "--no-such-flag"), "--no-such-flag")


def test_cli_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("traitlens ")


def test_chat_template_has_exactly_one_bos(tiny):
    ids = chat_ids(tiny.tokenizer, chat_messages("hello"))
    bos = tiny.tokenizer.bos_token_id
    assert ids[0] == bos and ids[1] != bos


@pytest.mark.parametrize("backend", ["hf", "bridge"])
def test_cached_and_uncached_greedy_generation_agree_on_tiny(tiny, backend):
    prompts = [chat_ids(tiny.tokenizer, chat_messages(p)) for p in ("hi", "a longer question?")]
    cached = generate(tiny, prompts, max_new_tokens=12, backend=backend, use_cache=True)
    uncached = generate(tiny, prompts, max_new_tokens=12, backend=backend, use_cache=False)
    assert [g.new_ids for g in cached] == [g.new_ids for g in uncached]
    assert all(len(g.new_ids) > 0 for g in cached)


def test_left_padded_batch_generates_like_single_prompts(tiny):
    prompts = [chat_ids(tiny.tokenizer, chat_messages(p)) for p in ("hi", "a much longer prompt here")]
    together = generate(tiny, prompts, max_new_tokens=8, batch_size=2)
    alone = [generate(tiny, [p], max_new_tokens=8)[0] for p in prompts]
    assert [g.new_ids for g in together] == [g.new_ids for g in alone]


class _NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise _NetworkUsed(f"network call attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_loading_tiny_makes_no_network_call(no_network):
    load_model("tiny")


# --- the real default model -------------------------------------------------------------


@pytest.mark.slow
def test_loading_default_model_makes_no_network_call(no_network):
    loaded = load_model("smollm2-135m-instruct")
    assert (loaded.n_layers, loaded.d_model) == (30, 576)
    assert loaded.fingerprint.weights_hash == "sha256:" + registry.SMOLLM2_SHA256


@pytest.mark.slow
def test_default_chat_prompt_has_one_bos_and_answers_in_english(smollm):
    ids = chat_ids(smollm.tokenizer, chat_messages("What is the capital of France?"))
    assert ids[0] == smollm.tokenizer.bos_token_id == smollm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[1] != ids[0]
    (reply,) = generate(smollm, [ids], max_new_tokens=20)
    assert "Paris" in reply.text


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "bridge"])
def test_cached_and_uncached_generation_agree_on_default_model(smollm, backend):
    ids = chat_ids(smollm.tokenizer, chat_messages("Name three colours of the rainbow."))
    cached = generate(smollm, [ids], max_new_tokens=24, backend=backend, use_cache=True)
    uncached = generate(smollm, [ids], max_new_tokens=24, backend=backend, use_cache=False)
    assert cached[0].new_ids == uncached[0].new_ids
    assert len(cached[0].new_ids) >= 8


@pytest.mark.slow
def test_direct_gguf_loader_matches_transformers_loader(smollm):
    from transformers import AutoModelForCausalLM

    path = registry._package_dir(registry.SMOLLM2_PACKAGE, "") / registry.SMOLLM2_FILE
    reference = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
    ).eval()
    ids = torch.tensor([chat_ids(smollm.tokenizer, chat_messages("Hello there"))])
    with torch.no_grad():
        ours = smollm.fast_model(ids).logits
        theirs = reference(ids).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
