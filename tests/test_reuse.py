"""Reuse of the layers below an edit (``traitlens.accel.lower_layers``): replayed passes must give
exactly the numbers of full passes, for every way a vector is installed, so that calibration
chooses the same layer and alpha with it as without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from traitlens import load_model
from traitlens.accel.lower_layers import LowerLayers, forward
from traitlens.assess.scorer import ModelScorer
from traitlens.memo import ScoreMemo, ScoreStore
from traitlens.options import RunOptions
from traitlens.perplexity_guard import perplexity
from traitlens.steering import Steering, SteeringVector
from traitlens.steering.inject import first_affected_layer


def _vector(model, layers, hook="resid_post"):
    g = torch.Generator().manual_seed(5)
    offsets = {layer: torch.randn(model.d_model, generator=g) * 3.0 for layer in layers}
    return SteeringVector(offsets, model=model.fingerprint.to_dict(), trait="JP", hook=hook)


def _prompts(n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randint(5, 200, (int(torch.randint(4, 14, (1,), generator=g)),), generator=g).tolist() for _ in range(n)
    ]


def _scores(model, steering, options=None):
    """Option log-likelihoods (a shared prompt pass, then a continuation from its copied cache),
    next-token log-probabilities and perplexity: every pass calibration makes."""
    prompts = _prompts()
    answers = [[7, 9, 11], [13], [17, 19], [23, 29, 31, 37], [41, 43]]
    twice = [p for p in prompts for _ in range(2)]
    both = [a for pair in zip(answers, answers[::-1], strict=True) for a in pair]
    scorer = ModelScorer(model, batch_size=3, options=options)
    with steering.attach(model):
        loglik = scorer.continuation_loglik(twice, both)
        nexts = scorer.next_token_logprobs(prompts, [3, 4, 5])
    ppl = perplexity(model, intervention=steering, window=64, options=options)
    return loglik, nexts, ppl


@pytest.mark.parametrize(
    ("layers", "hook", "options"),
    [
        ((2,), "resid_post", {}),  # folded into layer 2's MLP bias
        ((1, 3), "resid_post", {"mode": "project"}),  # hooks on two layers (projection cannot fold)
        ((2,), "resid_pre", {}),  # resid_pre[2] folds into layer 1
        ((2,), "resid_pre", {"fold": False}),  # a pre-hook on layer 2 itself
    ],
)
def test_replayed_passes_equal_full_passes(tiny, layers, hook, options):
    vector = _vector(tiny, layers, hook)
    reference = [_scores(tiny, Steering(vector, alpha, **options)) for alpha in (0.5, 1.5)]
    reuse = LowerLayers(tiny.hf_model, first_affected_layer(vector))
    assert reuse.start > 0  # something is skipped, or the test proves nothing
    through = RunOptions().through(reuse)
    replayed = [_scores(tiny, Steering(vector, 0.5, **options), through)]
    first = (reuse.misses, reuse.hits)
    replayed.append(_scores(tiny, Steering(vector, 1.5, **options), through))
    assert first[0] > 0 and reuse.misses == first[0]  # the second alpha ran on replays only
    assert reuse.hits - first[1] == sum(first)
    for (a_loglik, a_next, a_ppl), (b_loglik, b_next, b_ppl) in zip(reference, replayed, strict=True):
        assert np.array_equal(a_loglik, b_loglik)
        assert np.array_equal(a_next, b_next)
        assert a_ppl == b_ppl
    assert not np.array_equal(reference[0][0], reference[1][0])  # the alphas did differ


def test_the_first_affected_layer_follows_the_hook(tiny):
    assert first_affected_layer(_vector(tiny, (2, 3))) == 2
    assert first_affected_layer(_vector(tiny, (2,), "resid_pre")) == 1
    assert first_affected_layer(_vector(tiny, (0,), "resid_pre")) == 0


def test_a_replayed_cache_cannot_continue_through_a_full_pass(tiny):
    ids = torch.tensor([_prompts(1)[0]])
    module = tiny.hf_model
    reuse = LowerLayers(module, 2)
    with torch.inference_mode():
        forward(module, reuse, input_ids=ids, use_cache=True)  # captured
        cache = forward(module, reuse, input_ids=ids, use_cache=True).past_key_values  # replayed: zeros below
        with pytest.raises(RuntimeError, match="replay"):
            forward(module, reuse, input_ids=torch.tensor([[5]]), past_key_values=cache, use_cache=True)


def test_without_a_replay_and_for_other_modules_passes_are_plain(tiny):
    module = tiny.hf_model
    reuse = LowerLayers(module, 1)
    other = LowerLayers(load_model("tiny").hf_model, 1)
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        forward(module, None, input_ids=ids)
        forward(module, other, input_ids=ids)  # another module's replay: not this one's
        assert reuse.misses == other.misses == 0
        forward(module, reuse, input_ids=ids)
        forward(module, reuse, inputs_embeds=module.model.embed_tokens(ids))  # no ids: not keyed
    assert (reuse.misses, reuse.hits) == (1, 0)
    with pytest.raises(ValueError, match="layer index"):
        LowerLayers(module, tiny.n_layers)


def _forwards(model):
    """Counts the model's forward passes through a process-wide hook, not one on the model: a hook
    on it would make it count as touched, and nothing computed on a touched model is memoised."""
    from torch.nn.modules.module import register_module_forward_hook

    calls = []
    handle = register_module_forward_hook(lambda module, *_: calls.append(1) if module is model.hf_model else None)
    return calls, handle


def _shares(result):
    return {d: (r.share_first, r.readout) for d, r in result.dimensions.items()}


def test_score_memo_computes_a_repeated_question_once_and_keeps_states_apart(tiny):
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items

    bank = default_items().select("eval", "JP")
    steer = {a: Steering(_vector(tiny, (2,)), a) for a in (0.5, 1.5)}
    plain = [
        assess(tiny, bank, readout="option"),
        *(assess(tiny, bank, readout="option", intervention=s) for s in steer.values()),
    ]
    plain_pmi = assess(tiny, bank, readout="pmi")
    calls, handle = _forwards(tiny)
    try:
        run = RunOptions.cached()
        again = assess(tiny, bank, readout="pmi", options=run)  # the option passes and their prior
        computed = len(calls)
        first = assess(tiny, bank, readout="option", options=run)  # the same option passes, read another way
        assert len(calls) == computed  # ... computed once
        memo = [first, *(assess(tiny, bank, readout="option", intervention=s, options=run) for s in steer.values())]
        assert len(calls) > computed  # each steered state is its own computation
    finally:
        handle.remove()
    assert [_shares(r) for r in memo] == [_shares(r) for r in plain]  # bit for bit, states kept apart
    assert _shares(again) == _shares(plain_pmi)


def test_score_memo_skips_interventions_without_a_fingerprint(tiny):
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items

    class Anonymous:
        def __init__(self, steering):
            self.steering = steering

        def attach(self, model):
            return self.steering.attach(model)

        def describe(self):
            return {}

    bank = default_items().select("eval", "JP")
    anonymous = [Anonymous(Steering(_vector(tiny, (2,)), a)) for a in (0.5, 1.5)]
    run = RunOptions.cached()
    shares = [_shares(assess(tiny, bank, readout="option", intervention=a, options=run)) for a in anonymous]
    assert shares[0] != shares[1]


def test_score_store_keeps_results_across_blocks_bit_for_bit_and_keys_what_they_depend_on(tiny, tmp_path):
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items

    bank = default_items().select("eval", "JP")
    store = ScoreStore(tmp_path / "scores")
    steer = Steering(_vector(tiny, (2,)), 0.5)
    run = RunOptions.cached(store)
    first = [
        assess(tiny, bank, readout="option", options=run),
        assess(tiny, bank, readout="option", intervention=steer, options=run, content_free=False),
    ]
    entries = sorted(store.root.rglob("*.safetensors"))
    assert len(entries) == 2  # one per state
    calls, handle = _forwards(tiny)
    try:
        run = RunOptions.cached(store)  # a later run: nothing in memory, everything on disk
        again = [
            assess(tiny, bank, readout="option", options=run),
            assess(tiny, bank, readout="option", intervention=steer, options=run, content_free=False),
        ]
        assert calls == []
        other = assess(
            tiny,
            bank,
            readout="option",
            intervention=Steering(_vector(tiny, (2,)), 0.7),
            options=RunOptions.cached(store),
            content_free=False,  # the option passes only: one entry per state
        )
        assert calls  # another strength is another state: computed, not read
    finally:
        handle.remove()
    assert [_shares(r) for r in again] == [_shares(r) for r in first]
    assert _shares(other) != _shares(first[1])
    entries[0].write_bytes(entries[0].read_bytes()[:-3] + b"xyz")  # damaged: recomputed, never trusted
    assert store.load(entries[0].stem) is None
    calls, handle = _forwards(tiny)
    try:
        run = RunOptions.cached(store)
        repaired = [
            assess(tiny, bank, readout="option", options=run),
            assess(tiny, bank, readout="option", intervention=steer, options=run, content_free=False),
        ]
    finally:
        handle.remove()
    assert calls and [_shares(r) for r in repaired] == [_shares(r) for r in first]
    assert store.load(entries[0].stem) is not None  # written again


def test_edit_with_a_score_store_reads_back_the_same_edit(tiny, tmp_path):
    from traitlens.assess.scorer import ModelScorer
    from traitlens.edit.pipeline import edit

    store = ScoreStore(tmp_path / "scores")
    cold = edit(tiny, "JP", recipes="default", alphas=(0.1, 0.3), permutations=10, options=RunOptions.cached(store))
    computed = []
    original = ModelScorer._forward

    def counting(self, *args, **kwargs):
        computed.append(1)
        return original(self, *args, **kwargs)

    ModelScorer._forward = counting
    try:
        warm = edit(tiny, "JP", recipes="default", alphas=(0.1, 0.3), permutations=10, options=RunOptions.cached(store))
    finally:
        ModelScorer._forward = original
    assert computed == []  # every scoring pass was read back
    assert {k: v for k, v in warm.summary().items() if k != "seconds"} == {
        k: v for k, v in cold.summary().items() if k != "seconds"
    }
    assert [p.to_dict() for p in warm.calibration.points] == [p.to_dict() for p in cold.calibration.points]


def test_persona_answers_are_kept_in_the_store_only_for_the_untouched_model(tiny, tmp_path, monkeypatch):
    """With an edit's memo and store the persona source's greedy replies are kept like a scoring
    pass: a later block reads them back without generating; with anything attached to the model
    (a steering fold) the store is not consulted, and a damaged entry is generated again."""
    import traitlens.probe.persona as persona
    from traitlens.instrument.items import default_items

    bank = default_items().select("all", "JP")
    bank = type(bank)(list(bank)[:3], bank.source)
    store = ScoreStore(tmp_path / "scores")
    runs = []
    original = persona.generate
    monkeypatch.setattr(persona, "generate", lambda *a, **k: runs.append(1) or original(*a, **k))
    first = persona.persona_pairs(tiny, bank, max_new_tokens=6, options=RunOptions.cached(store))
    generated = len(runs)
    assert generated and len(list(store.root.rglob("*.safetensors"))) == 1
    again = persona.persona_pairs(tiny, bank, max_new_tokens=6, options=RunOptions.cached(store))
    assert len(runs) == generated and again == first  # read back: no generation
    with Steering(_vector(tiny, (1,)), 2.0).attach(tiny):
        steered = persona.persona_pairs(tiny, bank, max_new_tokens=6, options=RunOptions.cached(store))
    assert len(runs) == 2 * generated and steered != first
    entry = next(store.root.rglob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    repaired = persona.persona_pairs(tiny, bank, max_new_tokens=6, options=RunOptions.cached(store))
    assert len(runs) == 3 * generated and repaired == first


def test_a_model_steered_behind_assess_back_is_never_stored_or_memoised_as_plain(tiny, tmp_path, monkeypatch):
    """assess on a model with a vector attached outside it (so its state is not "none") stores
    nothing under the plain model's keys: a later plain run, in the same process and from the same
    store, reads the plain shares, not the steered ones."""
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items

    bank = default_items().select("eval", "JP")
    store = ScoreStore(tmp_path / "scores")
    run = RunOptions.cached(store)
    with Steering(_vector(tiny, (1,)), 4.0, fold=False).attach(tiny):
        steered = assess(tiny, bank, readout="pmi", options=run)
    assert not list((tmp_path / "scores").rglob("*.safetensors"))
    plain = assess(tiny, bank, readout="pmi", options=run)
    fresh = assess(tiny, bank, readout="pmi")
    assert steered.dimensions["JP"].share_first != plain.dimensions["JP"].share_first
    assert plain.dimensions["JP"].share_first == fresh.dimensions["JP"].share_first


def test_asking_for_hidden_states_leaves_the_model_untouched(tiny):
    """transformers leaves recording hooks behind after ``output_hidden_states=True``; they change
    no forward pass, so the model still counts as untouched (its scores stay storable), while a
    steering hook does not."""
    with torch.inference_mode():
        tiny.hf_model(input_ids=torch.tensor([[5, 6, 7]]), output_hidden_states=True)
    assert tiny.untouched()
    with Steering(_vector(tiny, (1,)), 1.0, fold=False).attach(tiny):
        assert not tiny.untouched()
    assert tiny.untouched()


def test_calibration_replays_the_lower_layers_only_when_the_options_say_so(tiny, monkeypatch):
    """The wiring, not the arithmetic: an edit's alpha curve goes through a ``LowerLayers``
    replay with the default options and never with ``reuse_layers=False``; the same curve both ways."""
    from traitlens.edit.pipeline import edit

    runs = []
    original = LowerLayers.run
    monkeypatch.setattr(LowerLayers, "run", lambda self, **inputs: runs.append(1) or original(self, **inputs))
    curves = {}
    for options in (RunOptions.cached(), RunOptions(memo=ScoreMemo(), reuse_layers=False)):
        runs.clear()
        result = edit(tiny, "JP", recipes="default", alpha=0.3, permutations=10, options=options)
        assert bool(runs) == options.reuse_layers
        curves[options.reuse_layers] = [p.to_dict() for p in result.calibration.points]
    assert curves[True] == curves[False]
