"""Speculative greedy decoding (``engine="speculative"``): a draft proposes, the model verifies,
and the tokens are the model's own greedy tokens, whatever the draft proposes."""

from __future__ import annotations

import copy

import pytest
import torch

from traitlens.accel.decoding import speculative_greedy
from traitlens.generation import generate
from traitlens.steering import Steering, SteeringVector


def _prompts(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randint(5, 200, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist() for _ in range(n)
    ]


def _perturbed(module: torch.nn.Module, scale: float) -> torch.nn.Module:
    """A copy of ``module`` whose weights are noisy: a draft that is often wrong."""
    other = copy.deepcopy(module)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in other.parameters():
            param.add_(scale * param.std() * torch.randn(param.shape, generator=g))
    return other


@pytest.mark.parametrize("scale", [0.0, 0.3, 3.0], ids=["exact-draft", "noisy-draft", "wrong-draft"])
@pytest.mark.parametrize("lookahead", [1, 4])
def test_speculative_tokens_are_the_models_greedy_tokens(tiny, scale, lookahead):
    draft = _perturbed(tiny.hf_model, scale)
    for prompt in _prompts():
        expected = generate(tiny, [prompt], max_new_tokens=20)[0].new_ids
        stops = [-1]
        if scale == 0.3:  # a stop token the model first emits late: drafting and rollback run before it
            cut = next(k for k in range(8, 20) if expected[k] not in expected[:k])
            stops, expected = [expected[cut]], expected[: cut + 1]
            assert len(expected) >= 9
        got = speculative_greedy(tiny.hf_model, draft, prompt, 20, stops, lookahead=lookahead)
        assert got == expected


def test_generate_speculative_steers_the_model_and_its_draft(tiny):
    from traitlens import load_model
    from traitlens.accel.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bfloat16 on this CPU")
    draft = load_model("tiny", dtype="bfloat16")
    g = torch.Generator().manual_seed(3)
    vector = SteeringVector({1: 4 * torch.randn(tiny.d_model, generator=g)}, model=tiny.fingerprint.to_dict())
    steering = Steering(vector, 1.0)
    prompts = _prompts(3, seed=1)
    plain = generate(tiny, prompts, max_new_tokens=12, steering=steering)
    fast = generate(tiny, prompts, max_new_tokens=12, steering=steering, engine="speculative", draft=draft)
    assert [g.new_ids for g in fast] == [g.new_ids for g in plain]
    assert [g.new_ids for g in plain] != [g.new_ids for g in generate(tiny, prompts, max_new_tokens=12)]
    assert not tiny.hf_model._forward_hooks and not draft.hf_model._forward_hooks


def test_speculative_needs_a_draft_and_all_position_steering(tiny):
    prompts = _prompts(1)
    with pytest.raises(ValueError, match="needs a draft"):
        generate(tiny, prompts, engine="speculative")
    with pytest.raises(ValueError, match="needs a draft"):
        generate(tiny, prompts, draft=tiny)
    vector = SteeringVector({1: torch.ones(tiny.d_model)}, model=tiny.fingerprint.to_dict())
    with pytest.raises(ValueError, match="all positions only"):
        generate(tiny, prompts, engine="speculative", draft=tiny, steering=Steering(vector, 1.0, positions="response"))
    with pytest.raises(ValueError, match="lookahead"):
        speculative_greedy(tiny.hf_model, tiny.hf_model, prompts[0], 4, [-1], lookahead=0)


@pytest.mark.slow
def test_cli_chat_speculative_gives_the_float32_reply_of_the_default_model():
    from helpers import assert_clean_error, run_cli

    from traitlens.accel.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bfloat16 on this CPU")
    plain = run_cli("chat", "Describe a sunny day.", "--max-new-tokens", "24")
    fast = run_cli("chat", "Describe a sunny day.", "--max-new-tokens", "24", "--speculative")
    assert plain.returncode == 0 and fast.returncode == 0, fast.stderr
    assert len(plain.stdout.split()) > 5 and fast.stdout == plain.stdout
    bad = run_cli("chat", "hi", "--model", "tiny", "--speculative", "--dtype", "bfloat16")
    assert_clean_error(bad, "--speculative verifies in float32")
