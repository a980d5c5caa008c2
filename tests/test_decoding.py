"""The decoding loop against Hugging Face's ``generate``: bit-identical tokens on the default
path (plain, left-padded batches, rows ending early, steered by fold and by hook), and the
opt-in levers behaving as documented."""

from __future__ import annotations

import pytest
import torch

from traitlens.accel.batching import pad_left
from traitlens.accel.decoding import Levers, greedy
from traitlens.generation import generate
from traitlens.steering import Steering, SteeringVector


def _prompts(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randint(5, 200, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist() for _ in range(n)
    ]


def _reference(model, prompts, max_new_tokens, stops):
    pad = model.tokenizer.pad_token_id
    ids, mask = pad_left(prompts, pad)
    with torch.inference_mode():
        out = model.hf_model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=sorted(stops),
        )
    rows = []
    for row in out[:, ids.shape[1] :].tolist():
        cut = next((k + 1 for k, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:cut])
    return rows


def test_loop_matches_generate_with_rows_that_end_early(tiny):
    prompts = _prompts()
    free = greedy(tiny.hf_model, *pad_left(prompts, tiny.tokenizer.pad_token_id), 12, [-1], 0)
    # stop tokens the model actually emits, so some rows end early and others run on
    common = {row[3] for row in free} | {row[6] for row in free}
    stops = sorted(common)[:2]
    ours = greedy(tiny.hf_model, *pad_left(prompts, tiny.tokenizer.pad_token_id), 12, stops, 0)
    assert ours == _reference(tiny, prompts, 12, set(stops))
    assert len({len(r) for r in ours}) > 1  # the check covered early endings


def _vector(model, layers=(1, 2), scale=4.0):
    g = torch.Generator().manual_seed(3)
    offsets = {layer: torch.randn(model.d_model, generator=g) * scale for layer in layers}
    return SteeringVector(offsets, model=model.fingerprint.to_dict(), trait="JP")


@pytest.mark.parametrize("positions", ["all", "response", "prompt"])
def test_steered_loop_matches_steered_generate(tiny, positions):
    prompts = _prompts(5, seed=1)
    steering = Steering(_vector(tiny), 1.0, positions=positions)
    fast = generate(tiny, prompts, max_new_tokens=10, batch_size=3, steering=steering)
    slow = generate(tiny, prompts, max_new_tokens=10, batch_size=3, steering=steering, engine="generate")
    plain = generate(tiny, prompts, max_new_tokens=10, batch_size=3)
    assert [g.new_ids for g in fast] == [g.new_ids for g in slow]
    assert [g.new_ids for g in fast] != [g.new_ids for g in plain]  # the steering did something


def test_bucketing_keeps_the_order_of_prompts(tiny):
    prompts = _prompts(7, seed=2)
    alone = [generate(tiny, [p], max_new_tokens=6)[0].new_ids for p in prompts]
    bucketed = generate(tiny, prompts, max_new_tokens=6, batch_size=3, levers=Levers(bucket=True, compact=True))
    assert [g.prompt_ids for g in bucketed] == prompts
    same = sum(a == b.new_ids for a, b in zip(alone, bucketed, strict=True))
    assert same >= len(prompts) - 1  # batching may flip a near-tie, not the order


def test_stop_rule_ends_rows_early(tiny):
    prompts = _prompts(4, seed=3)
    full = generate(tiny, prompts, max_new_tokens=12)
    cut = generate(tiny, prompts, max_new_tokens=12, levers=Levers(stop_when=lambda ids: ids[0] % 2 == 0))
    for a, b in zip(full, cut, strict=True):
        if a.new_ids[0] % 2 == 0:
            assert b.new_ids == a.new_ids[:4]  # checked every 4 tokens
        else:
            assert b.new_ids == a.new_ids


@pytest.fixture
def cheap_calls(monkeypatch):
    """The prefill planner told a forward call costs a few tokens' time: on the tiny model's
    short prompts a shared prefix of a few tokens then pays for its call."""
    import traitlens.accel.decoding.plan as plan

    monkeypatch.setattr(plan, "CALL_COST", 12)


@pytest.mark.parametrize("positions", [None, "all", "response", "prompt"])
def test_a_shared_prefix_runs_once_and_decodes_the_same(tiny, positions, cheap_calls):
    """Prompts that start alike (a chat template's system turn): the prefix runs at batch 1 and
    every row continues from a copy of its cache, padding after it; tokens match the plain path
    up to a near-tie (other matrix shapes), and position-dependent steering sees the same columns."""
    head = _prompts(1, seed=7)[0] + [11, 12, 13]
    prompts = [head + tail for tail in _prompts(5, seed=8)]
    steering = Steering(_vector(tiny), 1.0, positions=positions) if positions else None
    plain = generate(tiny, prompts, max_new_tokens=10, batch_size=5, steering=steering)
    calls = []
    handle = tiny.hf_model.register_forward_pre_hook(
        lambda m, a, k: calls.append(k["input_ids"].shape), with_kwargs=True
    )
    try:
        shared = generate(
            tiny, prompts, max_new_tokens=10, batch_size=5, steering=steering, levers=Levers(share_prefix=True)
        )
    finally:
        handle.remove()
    assert calls[0] == (1, len(head))  # the prefix, once
    assert calls[1][0] == 5 and calls[1][1] == max(len(p) for p in prompts) - len(head)
    same = sum(a.new_ids == b.new_ids for a, b in zip(plain, shared, strict=True))
    assert same >= len(prompts) - 1
    assert [g.prompt_ids for g in shared] == prompts


@pytest.mark.parametrize("positions", [None, "response"])
def test_parts_prefill_apart_and_decode_as_one_batch(tiny, positions, cheap_calls):
    """Two families of prompts (two templates) of different lengths: each part is prefilled with
    its own prefix and padding, the caches are merged (left-padded) and decoded together."""
    heads = [_prompts(1, seed=9)[0] + list(range(21, 33)), _prompts(1, seed=10)[0] + list(range(41, 57))]
    prompts = [heads[0] + t for t in _prompts(3, seed=11)] + [heads[1] + t for t in _prompts(4, seed=12)]
    steering = Steering(_vector(tiny), 1.0, positions=positions) if positions else None
    plain = generate(tiny, prompts, max_new_tokens=10, batch_size=7, steering=steering)
    widths = []
    handle = tiny.hf_model.register_forward_pre_hook(
        lambda m, a, k: widths.append(tuple(k["input_ids"].shape)), with_kwargs=True
    )
    try:
        merged = generate(
            tiny, prompts, max_new_tokens=10, batch_size=7, steering=steering,
            levers=Levers(share_prefix=True, prefill_size=3, compact=True),
        )  # fmt: skip
    finally:
        handle.remove()
    assert widths[0][0] == 1 and widths[0][1] >= len(heads[0])  # part 1: its prefix, once, at batch 1
    assert sum(1 for w in widths if w[1] > 1) == 5  # 3 parts: 2 prefixes + 3 prefills, no more
    assert all(w[0] <= 7 and w[1] == 1 for w in widths[5:])  # then one batch decodes every row
    same = sum(a.new_ids == b.new_ids for a, b in zip(plain, merged, strict=True))
    assert same >= len(prompts) - 1
    assert [g.prompt_ids for g in merged] == prompts


def test_levers_refuse_paths_they_do_not_apply_to(tiny):
    with pytest.raises(ValueError, match="greedy"):
        generate(tiny, _prompts(2), max_new_tokens=4, temperature=0.7, levers=Levers(compact=True))
    with pytest.raises(ValueError, match="engine"):
        generate(tiny, _prompts(2), max_new_tokens=4, engine="turbo")
    with pytest.raises(ValueError, match="prefill_size"):
        Levers(share_prefix=True, prefill_size=0)


def test_bfloat16_casts_the_fast_path_only():
    from traitlens import load_model
    from traitlens.accel.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bfloat16 on this CPU")
    model = load_model("tiny", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.bridge.parameters())
    fm = model.hf_model
    assert fm.lm_head.weight is fm.model.embed_tokens.weight or not fm.config.tie_word_embeddings
    steering = Steering(_vector(model), 1.0)
    out = generate(model, _prompts(3), max_new_tokens=5, steering=steering)
    assert all(len(g.new_ids) <= 5 for g in out)


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [("float64", "cpu", "unknown dtype"), ("float16", "cpu", "GPUs only"), ("bfloat16", "cuda", "no CUDA")],
)
def test_dtypes_that_cannot_run_are_refused(name, device, message):
    from traitlens.accel.precision import check_dtype
    from traitlens.errors import TraitlensError

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TraitlensError, match=message):
        check_dtype(name, device)


def test_refusal_decided_needs_an_opener_and_the_judges_verdict():
    from traitlens.bench.common import refusal_decided
    from traitlens.bench.refusal import PatternRefusalDetector
    from traitlens.models.registry import default_tokenizer

    tok = default_tokenizer()
    rule = refusal_decided(tok, PatternRefusalDetector(), min_tokens=4)
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert rule(ids("I'm sorry, but I cannot help with that request."))
    assert not rule(ids("Sure, here is how you bake bread at home."))
    assert not rule(ids("I'm"))  # too early to tell


def test_fast_suites_run_and_agree_on_the_tiny_model(tiny):
    from traitlens.bench import run_suites
    from traitlens.options import RunOptions

    names = ["overrefusal", "jailbreak"]
    slow = run_suites(tiny, names, None, None, 6)
    fast = run_suites(tiny, names, None, None, 6, options=RunOptions(fast=True))
    for name in names:
        assert fast[name].n == slow[name].n
    # a random model never opens with a refusal: nothing stops early, so verdicts can only
    # differ through batching, and on six prompts they do not
    same = [a == b for a, b in zip(slow["overrefusal"].records, fast["overrefusal"].records, strict=True)]
    assert sum(same) >= 5


def test_fast_decoding_batches_group_prompts_by_length_then_by_tokens():
    """Each decoding batch holds the prompts nearest in length (every row attends over the
    longest one's width), in token order inside (prompts that start alike prefill together)."""
    from traitlens.accel.suites import decoding_batches

    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(5, 9, (int(n),), generator=g).tolist() for n in torch.randint(1, 40, (23,), generator=g)]
    batches = decoding_batches(prompts, 8)
    assert sorted(k for b in batches for k in b) == list(range(len(prompts)))
    assert [len(b) for b in batches] == [8, 8, 7]
    for low, high in zip(batches, batches[1:], strict=False):
        assert max(len(prompts[k]) for k in low) <= min(len(prompts[k]) for k in high)
    for batch in batches:
        assert [prompts[k] for k in batch] == sorted(prompts[k] for k in batch)


def test_compiled_engine_matches_the_loop_on_the_tiny_model(tiny):
    prompts = _prompts(3, seed=4)
    steering = Steering(_vector(tiny), 1.0)
    for intervention in (None, steering):
        eager = generate(tiny, prompts, max_new_tokens=8, batch_size=3, steering=intervention)
        fast = generate(tiny, prompts, max_new_tokens=8, batch_size=3, steering=intervention, engine="compiled")
        assert [g.new_ids for g in fast] == [g.new_ids for g in eager]
    with pytest.raises(ValueError, match="all positions"):
        generate(
            tiny,
            prompts,
            max_new_tokens=4,
            engine="compiled",
            steering=Steering(_vector(tiny), 1.0, positions="response"),
        )


@pytest.mark.parametrize("options", [{"fold": False}, {"mode": "project"}], ids=["hooked-add", "project"])
def test_compiled_and_speculative_steps_follow_hooks_attached_after_an_unsteered_call(tiny, options):
    """A compiled step traced without hooks must not keep running without them: the same
    model's later steered calls give the eager steered tokens, and unsteered ones again after."""
    from traitlens import load_model

    prompts = _prompts(3, seed=4)
    steering = Steering(_vector(tiny), 1.0, **options)

    def ids(**kw):
        return [g.new_ids for g in generate(tiny, prompts, max_new_tokens=8, batch_size=3, **kw)]

    plain = ids(engine="compiled")  # traced with no hooks attached
    eager = ids(steering=steering)
    assert eager != plain
    assert ids(steering=steering, engine="compiled") == eager
    assert ids(engine="compiled") == plain == ids()
    draft = load_model("tiny")
    one = {"max_new_tokens": 8, "engine": "speculative", "draft": draft}
    assert generate(tiny, prompts[:1], **one)[0].new_ids == plain[0]
    assert generate(tiny, prompts[:1], steering=steering, **one)[0].new_ids == eager[0]


@pytest.mark.parametrize("command", ["bench", "assess", "edit"])
def test_cli_refuses_a_dtype_it_cannot_run(command, tmp_path):
    from helpers import assert_clean_error, run_cli

    extra = ["--trait", "JP"] if command == "edit" else []
    result = run_cli(command, "--model", "tiny", *extra, "--dtype", "float16", "--out", str(tmp_path / "o"))
    assert_clean_error(result, "float16")
    assert not (tmp_path / "o").exists()


def test_roomy_layer_holds_what_a_dynamic_layer_holds():
    from transformers.cache_utils import DynamicLayer

    from traitlens.accel.decoding.kvcache import RoomyLayer

    g = torch.Generator().manual_seed(0)
    first = torch.randn(3, 2, 5, 4, generator=g)
    plain = DynamicLayer()
    plain.update(first, -first)
    roomy = RoomyLayer(first, -first, room=2)
    for _ in range(4):  # past its room: it grows
        column = torch.randn(3, 2, 1, 4, generator=g)
        a, b = plain.update(column, -column), roomy.update(column, -column)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    keep = torch.tensor([2, 0])
    plain.batch_select_indices(keep)
    roomy.batch_select_indices(keep)
    assert torch.equal(plain.keys, roomy.keys) and roomy.get_seq_length() == plain.get_seq_length() == 9
    plain.reorder_cache(torch.tensor([1, 0]))
    roomy.reorder_cache(torch.tensor([1, 0]))
    assert torch.equal(plain.values, roomy.values)


def test_a_roomy_cache_decodes_the_same_tokens(tiny):
    prompts = _prompts(6, seed=13)
    ids, mask = pad_left(prompts, tiny.tokenizer.pad_token_id)
    from traitlens.accel.decoding import greedy_parts

    plain = greedy_parts(tiny.hf_model, [((), ids, mask)], 10, [], 0)
    roomy = greedy_parts(tiny.hf_model, [((), ids, mask)], 10, [], 0, roomy=True, compact=True)
    assert plain == roomy


def _plan_cost(parts, call_cost):
    return sum(call_cost * (1 + bool(prefix)) + len(prefix) + ids.numel() for prefix, ids, _ in parts)


def _best_cost(prompts, size, call_cost):
    """The least cost over every split into contiguous groups, each with or without its prefix."""
    from traitlens.accel.batching import shared_prefix

    best = [0.0] + [float("inf")] * len(prompts)
    for end in range(1, len(prompts) + 1):
        for start in range(max(0, end - size), end):
            group = prompts[start:end]
            longest = max(map(len, group))
            options = [call_cost + len(group) * longest]
            if len(group) > 1:
                shared = len(shared_prefix(group))
                options.append(2 * call_cost + shared + len(group) * (longest - shared))
            best[end] = min(best[end], best[start] + min(options))
    return best[-1]


@pytest.mark.parametrize("seed", range(12))
def test_the_prefill_plan_is_the_cheapest_split(seed):
    """Against brute force over every contiguous split: the plan's modelled cost is the least,
    its parts keep the prompts' order and tokens, and no part exceeds the size."""
    from traitlens.accel.decoding.plan import plan_parts

    g = torch.Generator().manual_seed(seed)
    heads = [torch.randint(5, 50, (int(n),), generator=g).tolist() for n in torch.randint(0, 30, (3,), generator=g)]
    prompts = sorted(
        heads[int(torch.randint(0, 3, (1,), generator=g))] + torch.randint(5, 50, (int(n),), generator=g).tolist()
        for n in torch.randint(1, 12, (9,), generator=g)
    )
    call_cost, size = [0, 5, 44][seed % 3], [3, 4, 32][seed % 3]
    parts = plan_parts(prompts, 0, size, call_cost=call_cost)
    assert _plan_cost(parts, call_cost) == _best_cost(prompts, size, call_cost)
    assert all(ids.shape[0] <= size for _, ids, _ in parts)
    rebuilt = [
        list(prefix) + row[m.bool()].tolist() for prefix, ids, mask in parts for row, m in zip(ids, mask, strict=True)
    ]
    assert rebuilt == prompts


def test_the_prefill_plan_keeps_small_groups_together():
    """Pairs of prompts that share a few dozen tokens each (one goal's words after a chat
    template) do not each pay two calls: with the measured call cost they prefill as one part,
    sharing only the template; prompts with a long common template get their own part."""
    from traitlens.accel.decoding.plan import plan_parts

    system = list(range(100, 125))
    pairs = [system + [200 + k] * 10 + [k, k + 1] for k in range(8)]
    pairs = sorted(p + [300 + j] for p in pairs for j in range(2))
    template = system + list(range(400, 470))
    long = [template + [k] for k in range(10)]
    parts = plan_parts(pairs + long, 0, 32)
    assert [ids.shape[0] for _, ids, _ in parts] == [16, 10]
    assert [len(prefix) for prefix, _, _ in parts] == [len(system), len(template)]


def test_parts_that_cannot_merge_decode_apart_from_their_one_prefill(tiny, monkeypatch):
    """A cache that cannot be merged (a sliding-window layer keeps only its window) decodes part
    by part, from the prefill it already has: no prompt is run twice."""
    import traitlens.accel.decoding.loop as loop

    prompts = _prompts(5, seed=14)
    parts = [((), *pad_left(prompts[:3], 0)), ((), *pad_left(prompts[3:], 0))]
    merged = loop.greedy_parts(tiny.hf_model, parts, 8, [], 0, roomy=True)
    monkeypatch.setattr(loop, "_merge", lambda *a: None)
    widths = []
    handle = tiny.hf_model.register_forward_pre_hook(
        lambda m, a, k: widths.append(k["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        apart = loop.greedy_parts(tiny.hf_model, parts, 8, [], 0, roomy=True)
    finally:
        handle.remove()
    assert sum(1 for w in widths if w > 1) == 2  # one prefill per part
    assert sum(a == b for a, b in zip(merged, apart, strict=True)) >= len(prompts) - 1
    assert [len(r) for r in apart] == [8] * len(prompts)


def test_compaction_moves_only_the_rows_above_the_new_batch_into_the_holes():
    from transformers.cache_utils import DynamicLayer

    from traitlens.accel.decoding.kvcache import RoomyLayer
    from traitlens.accel.decoding.loop import _fill_holes

    done = torch.tensor([False, True, False, False, True, False])
    keep = _fill_holes(done)
    assert keep.tolist() == [0, 5, 2, 3]  # slot 1 takes row 5; rows 0, 2, 3 stay put
    keys, values = torch.randn(6, 2, 5, 4), torch.randn(6, 2, 5, 4)
    plain, roomy = DynamicLayer(), RoomyLayer(keys, values, room=3)
    plain.update(keys, values)
    buffer = roomy._keys
    for layer in (plain, roomy):
        layer.reorder_cache(keep)
    assert roomy._keys.data_ptr() == buffer.data_ptr()  # compacted in place
    assert torch.equal(plain.keys, roomy.keys) and torch.equal(plain.values, roomy.values)
    roomy.reorder_cache(torch.tensor([2, 0, 1]))  # any other order: gathered
    assert torch.equal(roomy.keys, plain.keys[[2, 0, 1]])


def test_compacting_a_roomy_cache_as_rows_finish_decodes_the_same_tokens(tiny):
    from traitlens.accel.decoding import greedy_parts

    ids, mask = pad_left(_prompts(8, seed=21), tiny.tokenizer.pad_token_id)
    rule = lambda tokens: len(tokens) >= 2 and tokens[-1] % 3 == 0  # noqa: E731  rows end at different steps
    plain = greedy_parts(tiny.hf_model, [((), ids, mask)], 12, [], 0, stop_when=rule, check_every=1)
    assert len({len(row) for row in plain}) > 1 and min(map(len, plain)) < 12
    roomy = greedy_parts(
        tiny.hf_model, [((), ids, mask)], 12, [], 0, stop_when=rule, check_every=1, roomy=True, compact=True
    )
    assert roomy == plain


def test_candidate_head_picks_the_full_products_argmax():
    """The bfloat16 ranking's top candidates, scored again in float32, give the full product's
    argmax (with a bias too), and a change to the weights rebuilds the bfloat16 copy."""
    from traitlens.accel.decoding.head import CandidateHead

    torch.manual_seed(0)
    head = torch.nn.Linear(64, 3000, bias=True)
    hidden = torch.randn(40, 64) * 3
    picker = CandidateHead(head)
    with torch.no_grad():
        assert torch.equal(picker.argmax(hidden), head(hidden).argmax(-1))
        head.weight.mul_(-1)  # in place: the bfloat16 copy must follow
        assert torch.equal(picker.argmax(hidden), head(hidden).argmax(-1))


def test_candidate_head_decodes_the_same_tokens(tiny):
    from traitlens.accel.decoding import greedy_parts
    from traitlens.accel.decoding.head import candidate_head

    assert candidate_head(tiny.hf_model) is not None
    prompts = _prompts(6, seed=21)
    parts = [((), *pad_left(prompts, 0))]
    plain = greedy_parts(tiny.hf_model, parts, 10, [], 0)
    calls = []
    handle = tiny.hf_model.get_output_embeddings().register_forward_hook(lambda *a: calls.append(1))
    try:
        picked = greedy_parts(tiny.hf_model, parts, 10, [], 0, candidates=True)
    finally:
        handle.remove()
    assert picked == plain
    assert not calls  # the full head never ran


def test_candidate_head_is_skipped_for_a_low_precision_head():
    from traitlens.accel.decoding.head import candidate_head

    model = torch.nn.Module()
    model.get_output_embeddings = lambda: torch.nn.Linear(8, 16).to(torch.bfloat16)
    assert candidate_head(model) is None
