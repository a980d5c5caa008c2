from __future__ import annotations

import math
import zlib

import pytest
import torch

from traitlens import TraitlensError
from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.steering import (
    MODES,
    Steering,
    SteeringVector,
    apply_steering,
    compose,
    fused_steer,
    reference_steer,
)


def _vector(model, layers=(1,), seed=0, scale=3.0, hook="resid_post") -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    offsets = {
        layer: scale * torch.randn(model.d_model, generator=g) / math.sqrt(model.d_model) * 4 for layer in layers
    }
    return SteeringVector(offsets, hook=hook, model=model.fingerprint.to_dict(), trait="JP")


def _ids(model, *texts):
    return [chat_ids(model.tokenizer, chat_messages(t)) for t in texts]


def _logits(model, ids):
    with torch.inference_mode():
        return model.hf_model(torch.tensor([ids])).logits[0]


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1, 64), (2, 7, 64), (3, 5, 576), (1, 33, 1000), (4, 1, 8192)])
def test_fused_equals_reference(device, mode, dtype, shape):
    g = torch.Generator().manual_seed(zlib.crc32(repr((mode, shape)).encode()))  # str hash() varies per run
    h = torch.randn(shape, generator=g).to(dtype).to(device)
    v = torch.randn(shape[-1], generator=g).to(device)
    mask = (torch.rand(shape[:-1], generator=g) > 0.3).float().to(device)
    expected = reference_steer(h, v, mask, 0.7, mode)
    got = fused_steer(h, v, mask, 0.7, mode)
    assert got.device == h.device and got.dtype == h.dtype
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=3e-2, rtol=2e-2)
    torch.testing.assert_close(got, expected, **tol)


def test_steering_moves_logits_as_the_vector_predicts(tiny):
    ids = _ids(tiny, "hello there")[0]
    token = 101
    unembed = tiny.hf_model.lm_head.weight[token].detach()
    vector = SteeringVector({tiny.n_layers - 1: unembed / unembed.norm() * 10}, model=tiny.fingerprint.to_dict())
    previous = None
    for alpha in (0.0, 0.5, 1.0, 2.0):
        with apply_steering(tiny, vector, alpha, fold=False):
            logit = _logits(tiny, ids)[-1, token].item()
        if previous is not None:
            assert logit > previous
        previous = logit
    with apply_steering(tiny, vector, 5.0, fold=False):
        assert int(_logits(tiny, ids)[-1].argmax()) == token


@pytest.mark.parametrize("fold", [False, "auto"])
def test_alpha_zero_is_bit_identical_and_handles_remove_cleanly(tiny, fold):
    ids = _ids(tiny, "a question")[0]
    base = _logits(tiny, ids)
    vector = _vector(tiny, layers=(0, 2))
    with apply_steering(tiny, vector, 0.0, fold=fold):
        assert torch.equal(_logits(tiny, ids), base)
    handle = apply_steering(tiny, vector, 1.5, fold=fold)
    assert not torch.equal(_logits(tiny, ids), base)
    handle.remove()
    handle.remove()
    assert torch.equal(_logits(tiny, ids), base)


def test_bias_fold_equals_the_hook(tiny):
    ids = _ids(tiny, "fold me")[0]
    vector = _vector(tiny, layers=(1, 3))
    with apply_steering(tiny, vector, 0.8, fold=False) as hooked:
        via_hook = _logits(tiny, ids)
    with apply_steering(tiny, vector, 0.8, fold="auto") as folded:
        via_fold = _logits(tiny, ids)
    assert hooked.hooked_layers == [1, 3] and folded.folded_layers == [1, 3] and not folded.hooked_layers
    torch.testing.assert_close(via_fold, via_hook, atol=1e-5, rtol=1e-5)
    pre = _vector(tiny, layers=(2,), hook="resid_pre")
    with apply_steering(tiny, pre, 0.8, fold=False):
        pre_hook = _logits(tiny, ids)
    with apply_steering(tiny, pre, 0.8) as folded:
        pre_fold = _logits(tiny, ids)
    assert folded.folded_layers == [1]
    torch.testing.assert_close(pre_fold, pre_hook, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["all", "response"])
def test_cached_and_uncached_steered_generation_agree(tiny, positions):
    prompts = _ids(tiny, "steer this", "and this longer one")
    steering = Steering(_vector(tiny, layers=(1,), scale=6.0), 1.0, positions=positions, fold=False)
    cached = generate(tiny, prompts, max_new_tokens=10, steering=steering, use_cache=True)
    uncached = generate(tiny, prompts, max_new_tokens=10, steering=steering, use_cache=False)
    plain = generate(tiny, prompts, max_new_tokens=10)
    assert [g.new_ids for g in cached] == [g.new_ids for g in uncached]
    assert [g.new_ids for g in cached] != [g.new_ids for g in plain]


def test_response_positions_leave_the_prompt_untouched(tiny):
    prompt = _ids(tiny, "the prompt part")[0]
    full = prompt + [65, 66, 67, 68]
    captured = {}

    def grab(module, args, output):
        captured["h"] = (output[0] if isinstance(output, tuple) else output).detach().clone()

    layer = tiny.hf_model.model.layers[3]
    hook = layer.register_forward_hook(grab)
    try:
        _logits(tiny, full)
        base = captured["h"]
        with apply_steering(tiny, _vector(tiny, layers=(1,)), 2.0, positions="response", prompt_length=len(prompt)):
            _logits(tiny, full)
        steered = captured["h"]
    finally:
        hook.remove()
    n = len(prompt)
    assert torch.equal(steered[0, :n], base[0, :n])
    assert (steered[0, n:] - base[0, n:]).abs().max() > 1e-3


@pytest.mark.parametrize("positions", ["all", "response"])
def test_left_padded_batch_equals_single_sequences(tiny, positions):
    prompts = _ids(tiny, "short", "a considerably longer prompt than the first")
    steering = Steering(_vector(tiny, layers=(2,), scale=5.0), 1.0, positions=positions, fold=False)
    together = generate(tiny, prompts, max_new_tokens=8, batch_size=2, steering=steering)
    alone = [generate(tiny, [p], max_new_tokens=8, steering=steering)[0] for p in prompts]
    assert [g.new_ids for g in together] == [g.new_ids for g in alone]


def test_vector_arithmetic_and_composition(tiny):
    a, b = _vector(tiny, layers=(1, 2), seed=1), _vector(tiny, layers=(2, 3), seed=2)
    both = a + b
    assert both.layers == [1, 2, 3]
    torch.testing.assert_close(both.offsets[2], a.offsets[2] + b.offsets[2])
    torch.testing.assert_close((2 * a).offsets[1], 2 * a.offsets[1])
    assert (-a).trait == "PJ"
    torch.testing.assert_close((a - a).offsets[1], torch.zeros(tiny.d_model))
    with pytest.raises(TraitlensError, match="different hook points"):
        compose([a, _vector(tiny, hook="resid_pre")])


def test_bad_steering_input_is_refused(tiny):
    vector = _vector(tiny)
    with pytest.raises(TraitlensError, match="alpha must be a finite number"):
        apply_steering(tiny, vector, float("nan"))
    other = SteeringVector(
        {1: torch.ones(tiny.d_model)}, model={**tiny.fingerprint.to_dict(), "weights_hash": "sha256:feed"}
    )
    with pytest.raises(TraitlensError, match="steering vector made for"):
        apply_steering(tiny, other, 1.0)
    fingerprint = tiny.fingerprint.to_dict()
    with pytest.raises(TraitlensError, match="d_model 32"):
        apply_steering(tiny, SteeringVector({1: torch.ones(32)}, model=fingerprint), 1.0)
    with pytest.raises(TraitlensError, match="layer 9 out of range"):
        apply_steering(tiny, SteeringVector({9: torch.ones(tiny.d_model)}, model=fingerprint), 1.0)
    with pytest.raises(TraitlensError, match="non-finite"):
        SteeringVector({1: torch.full((tiny.d_model,), float("inf"))})
    with pytest.raises(TraitlensError, match="needs the prompt length"):
        apply_steering(tiny, vector, 1.0, positions="response")


@pytest.mark.parametrize("order", ["lifo", "fifo"])
def test_overlapping_folds_undo_in_any_order(tiny, order):
    """Defect 13: two handles folded into one layer and removed out of order left the first
    vector's bias on the model for good."""
    ids = _ids(tiny, "hello there")[0]
    plain = _logits(tiny, ids)
    a, b = _vector(tiny, seed=1), _vector(tiny, seed=2)
    expected = {}
    for name, vector in {"both": compose([a, b]), "a": a, "b": b}.items():
        with apply_steering(tiny, vector, 1.0, fold=False):
            expected[name] = _logits(tiny, ids)
    first = apply_steering(tiny, a, 1.0, fold=True)
    second = apply_steering(tiny, b, 1.0, fold=True)
    assert first.folded_layers == second.folded_layers == [1]
    torch.testing.assert_close(_logits(tiny, ids), expected["both"], atol=1e-4, rtol=1e-4)
    (first if order == "fifo" else second).remove()
    torch.testing.assert_close(_logits(tiny, ids), expected["b" if order == "fifo" else "a"], atol=1e-4, rtol=1e-4)
    (second if order == "fifo" else first).remove()
    assert torch.equal(_logits(tiny, ids), plain)
    assert tiny.hf_model.model.layers[1].mlp.down_proj.bias is None


def test_a_failed_apply_leaves_nothing_registered(tiny):
    """Defect 14: a failure after the column pre-hook was registered left it on the model."""
    stack = tiny.hf_model.model
    before = (len(stack._forward_pre_hooks), [len(layer._forward_hooks) for layer in stack.layers])
    with pytest.raises(TraitlensError, match="cannot fold"):
        apply_steering(tiny, _vector(tiny, layers=(1, 2)), 1.0, positions="prompt", prompt_length=3, fold=True)
    after = (len(stack._forward_pre_hooks), [len(layer._forward_hooks) for layer in stack.layers])
    assert after == before


def test_vectors_must_say_which_model_they_are_for(tiny):
    """Defect 15: a vector without a fingerprint steered any model with the same d_model, a
    partial fingerprint raised KeyError, and compose kept the first part's empty fingerprint."""
    bare = SteeringVector({1: torch.ones(tiny.d_model)})
    with pytest.raises(TraitlensError, match="no model fingerprint"):
        apply_steering(tiny, bare, 1.0)
    partial = SteeringVector({1: torch.ones(tiny.d_model)}, model={"name": "tiny", "d_model": tiny.d_model})
    with pytest.raises(TraitlensError, match="fingerprint is incomplete"):
        apply_steering(tiny, partial, 1.0)
    assert compose([bare, _vector(tiny)]).model == tiny.fingerprint.to_dict()
    other = SteeringVector({1: torch.ones(tiny.d_model)}, model={**tiny.fingerprint.to_dict(), "weights_hash": "x"})
    with pytest.raises(TraitlensError, match="different models"):
        compose([bare, _vector(tiny), other])


def test_gradients_flow_through_a_steered_layer():
    """Defect 17: where gradients are required the reference ops run, so they flow; inference
    takes the fused path, equal to the reference."""
    from traitlens.steering import kernels

    h = torch.randn(2, 3, 8, requires_grad=True)
    v = torch.randn(8)
    out = kernels.fused_steer(h, v, torch.ones(2, 3), 0.5, "add_norm")
    out.sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()
    with torch.no_grad():
        fused = kernels.fused_steer(h, v, torch.ones(2, 3), 0.5, "add")
        torch.testing.assert_close(fused, kernels.reference_steer(h, v, torch.ones(2, 3), 0.5))
