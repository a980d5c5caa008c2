"""The opt-in fast scoring path (``RunOptions(fast=True)``, ``edit --fast``): the same numbers as a plain
forward to float32 rounding, a shared prefix run once, its own memo keys, and a guard for
models whose logits are not the unembedding of the final norm."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from helpers import plain_loglik

from traitlens.accel.lower_layers import expanded
from traitlens.accel.scoring import unembedding_outside
from traitlens.assess.scorer import ModelScorer
from traitlens.memo import ScoreMemo
from traitlens.options import RunOptions
from traitlens.steering import SteeringVector, apply_steering

FAST = RunOptions(fast=True)
HEADER = list(range(3, 33))  # 30 tokens every prompt starts with, like a chat template's system turn


def _prompts_and_answers():
    """Prompts sharing ``HEADER`` (own parts of different lengths), each with answers of different
    lengths; one prompt has more answers than a fast batch holds, as a content-free question does."""
    own = [[40, 41], [42, 43, 44, 45, 46], [47], [48, 49, 50]]
    prompts, answers = [], []
    for k, tail in enumerate(own):
        for j in range(2 if k else 9):
            prompts.append(HEADER + tail)
            answers.append([51 + (j + k) % 7] * (1 + (j * 3 + k) % 5))
    return prompts, answers


def _forward_shapes(monkeypatch) -> list[tuple[int, int]]:
    shapes: list[tuple[int, int]] = []
    original = ModelScorer._forward

    def spy(self, ids, mask, keep, cache=None, use_cache=False):
        shapes.append(tuple(ids.shape))
        return original(self, ids, mask, keep, cache, use_cache)

    monkeypatch.setattr(ModelScorer, "_forward", spy)
    return shapes


@pytest.mark.parametrize("fold", [None, False, "auto"], ids=["unsteered", "hook", "fold"])
def test_fast_continuations_equal_a_plain_forward(tiny, fold, monkeypatch):
    prompts, answers = _prompts_and_answers()
    vector = SteeringVector(
        {1: 4 * torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(0))}, model=tiny.fingerprint.to_dict()
    )
    shapes = _forward_shapes(monkeypatch)
    with apply_steering(tiny, vector, 1.0, fold=fold) if fold is not None else nullcontext():
        got = ModelScorer(tiny, batch_size=2, options=FAST).continuation_logprobs(prompts, answers)
        expected = [plain_loglik(tiny, p, a) for p, a in zip(prompts, answers, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert shapes.count((1, len(HEADER))) == 1  # the shared header ran once, as one row
    assert max(rows for rows, _ in shapes) <= 4  # batches of at most twice batch_size answers


def test_fast_next_token_logprobs_equal_the_exact_path_in_the_callers_order(tiny):
    prompts = [HEADER + [40 + k] * (1 + k % 4) for k in range(7)]
    exact = ModelScorer(tiny, batch_size=3).next_token_logprobs(prompts, [5, 6, 7])
    scorer = ModelScorer(tiny, batch_size=3, options=FAST)
    assert scorer.fast and not ModelScorer(tiny).fast
    fast = scorer.next_token_logprobs(prompts, [5, 6, 7])
    np.testing.assert_allclose(fast, exact, atol=1e-4)


def test_fast_results_are_memoised_apart_from_exact_ones(tiny):
    prompts, answers = _prompts_and_answers()
    memo = ScoreMemo()
    ModelScorer(tiny, state="none", options=RunOptions(memo=memo)).continuation_loglik(prompts, answers)
    ModelScorer(tiny, state="none", options=RunOptions(fast=True, memo=memo)).continuation_loglik(prompts, answers)
    ModelScorer(tiny, state="none", options=RunOptions(fast=True, memo=memo)).continuation_loglik(prompts, answers)
    assert len(memo) == 2


def test_an_expanded_cache_leaves_its_source_as_it_was(tiny):
    with torch.inference_mode():
        cache = tiny.hf_model(input_ids=torch.tensor([HEADER]), use_cache=True).past_key_values
        before = [layer.keys.clone() for layer in cache.layers]
        rows = expanded(cache, torch.zeros(3, dtype=torch.long))
        tiny.hf_model(input_ids=torch.full((3, 2), 7), past_key_values=rows, use_cache=True)
    assert rows.layers[0].keys.shape[0] == 3 and rows.get_seq_length() == len(HEADER) + 2
    assert cache.get_seq_length() == len(HEADER)
    for layer, keys in zip(cache.layers, before, strict=True):
        assert torch.equal(layer.keys, keys)


def test_logits_that_are_not_the_unembedding_of_the_norm_stop_the_fast_path(tiny):
    prompts, answers = _prompts_and_answers()

    def doubled(module, args, out):
        out.logits = out.logits * 2

    handle = tiny.hf_model.register_forward_hook(doubled)
    try:
        with pytest.raises(RuntimeError, match="use the exact path"):
            ModelScorer(tiny, options=FAST).continuation_logprobs(prompts, answers)
    finally:
        handle.remove()


def test_soft_capped_logits_take_the_exact_tail(tiny, monkeypatch):
    prompts, answers = _prompts_and_answers()
    monkeypatch.setattr(tiny.hf_model.config, "final_logit_softcapping", 30.0, raising=False)
    scorer = ModelScorer(tiny, options=FAST)
    assert not unembedding_outside(tiny.hf_model)
    expected = [plain_loglik(tiny, p, a) for p, a in zip(prompts, answers, strict=True)]
    np.testing.assert_allclose(scorer.continuation_logprobs(prompts, answers), expected, atol=1e-4)


def test_fast_persona_replies_keep_each_prompts_reply_and_take_the_levers(tiny, monkeypatch):
    import traitlens.probe.persona as persona
    from traitlens.generation import Generation
    from traitlens.instrument.items import default_items

    seen: list[dict] = []

    def fake_generate(model, prompts, **kwargs):
        seen.append(kwargs)
        return [Generation(list(p), [], f"reply {sum(p)}") for p in prompts]

    monkeypatch.setattr(persona, "generate", fake_generate)
    bank = default_items().select("train", "JP")
    exact = persona.persona_pairs(tiny, bank)
    fast = persona.persona_pairs(tiny, bank, options=FAST)
    assert [(p.first.answer, p.second.answer) for p in fast.pairs] == [
        (p.first.answer, p.second.answer) for p in exact.pairs
    ]
    half = len(seen) // 2
    assert not any(kw["levers"].any for kw in seen[:half])
    assert all(kw["levers"].candidates and kw["levers"].compact and kw["levers"].share_prefix for kw in seen[half:])


def test_a_fast_edit_follows_the_exact_curve_and_choice(tiny):
    from traitlens.edit.pipeline import edit

    kwargs = {"recipes": "default", "alphas": (0.1, 0.3), "permutations": 10}
    exact = edit(tiny, "JP", options=RunOptions.cached(), **kwargs)
    fast = edit(tiny, "JP", options=RunOptions.cached(fast=True), **kwargs)
    assert (fast.recipe.name, fast.layer, fast.alpha) == (exact.recipe.name, exact.layer, exact.alpha)
    curve = {(p.recipe, p.layer, p.alpha): p for p in exact.calibration.points}
    assert len(curve) == len(fast.calibration.points) > 1
    for point in fast.calibration.points:
        twin = curve[(point.recipe, point.layer, point.alpha)]
        assert point.target_share == pytest.approx(twin.target_share, abs=1e-3)
        assert point.perplexity == pytest.approx(twin.perplexity, rel=1e-4)
    assert fast.share(fast.steered) == pytest.approx(exact.share(exact.steered), abs=1e-3)
