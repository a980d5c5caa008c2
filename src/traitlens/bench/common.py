"""Helpers shared by the suites: chat prompts, steered batched generation, scoring passes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

from traitlens.batching import batched
from traitlens.bench.choices import chat_prompts
from traitlens.bench.refusal import PatternRefusalDetector
from traitlens.decoding import StopRule
from traitlens.generation import generate

__all__ = [
    "generate_replies",
    "fast_decoding",
    "in_fast_mode",
    "refusal_decided",
    "FAST_BATCH",
    "FAST_KV_BUDGET",
    "FAST_PREFILL",
]

FAST_BATCH = 128  # rows decoded together at most: a decoding step costs less per row in a larger batch
FAST_KV_BUDGET = 3 * 2**30  # ... and no more rows than a KV cache of this many bytes holds
FAST_PREFILL = 32  # prompts prefilled together: their shared prefix once, padding only among them
_FAST: ContextVar[bool] = ContextVar("traitlens_fast_decoding", default=False)


@contextlib.contextmanager
def fast_decoding(on: bool = True) -> Iterator[None]:
    """Opt-in fast mode for the generated-text suites inside this block: prompts decoded up to
    ``FAST_BATCH`` at a time, nearest in length together; each batch prefilled in parts of up to
    ``FAST_PREFILL`` planned to cost least (prompts that start alike run their shared prefix
    once: ``traitlens.decoding.plan``); finished rows dropped, rows ended once their verdict is
    decided, tokens picked among a bfloat16 head's candidates scored again exactly. Not
    bit-identical to the reference path: ``benchmarks/suites.py`` measures its verdict agreement
    (the speed issue's bar: 98%)."""
    token = _FAST.set(on)
    try:
        yield
    finally:
        _FAST.reset(token)


def in_fast_mode() -> bool:
    """Whether the suites run inside ``fast_decoding()``."""
    return _FAST.get()


def refusal_decided(tokenizer, detector, min_tokens: int = 8) -> StopRule:
    """A reply is decided once it opens like a refusal *and* the judge already calls it one."""
    patterns = PatternRefusalDetector()

    def rule(ids: list[int]) -> bool:
        if len(ids) < min_tokens:
            return False
        text = tokenizer.decode(ids, skip_special_tokens=True)
        return patterns.opens_like_refusal(text) and detector.is_refusal(text)

    return rule


def _fast_batch(model, prompts: Sequence[Sequence[int]], max_new_tokens: int, floor: int) -> int:
    """Rows per decoding batch in fast mode: up to ``FAST_BATCH``, as many as a KV cache of
    ``FAST_KV_BUDGET`` bytes holds at the longest prompt's length."""
    from traitlens.decoding.kvcache import kv_bytes_per_token

    per_row = kv_bytes_per_token(model.fast_model) * (max(map(len, prompts), default=1) + max_new_tokens)
    return max(floor, min(FAST_BATCH, FAST_KV_BUDGET // max(per_row, 1)))


def _decoding_batches(prompts: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Fast mode's decoding batches: prompts of similar length together (every row of a batch
    attends over the longest one's width at each step), and inside a batch in token order, so
    prompts that start alike (one attack's template, one system turn) share a prefill part."""
    by_length = sorted(range(len(prompts)), key=lambda k: (len(prompts[k]), prompts[k]))
    return [sorted(rows, key=lambda k: prompts[k]) for rows in batched(by_length, size)]


def generate_replies(
    model,
    texts: Sequence[str],
    intervention,
    max_new_tokens: int,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 8,
    stop_when: StopRule | None = None,
) -> list[str]:
    """Greedy, seeded, batched (left padding), length-capped chat replies. Inside
    ``fast_decoding()`` the opt-in levers apply, ``stop_when`` among them; outside it is unused."""
    fast = in_fast_mode()
    prompts = chat_prompts(model, texts, intervention)
    size = _fast_batch(model, prompts, max_new_tokens, batch_size) if fast else batch_size
    levers = (
        {
            "compact": True,
            "share_prefix": True,
            "prefill_size": FAST_PREFILL,
            "stop_when": stop_when,
            "candidates": True,
        }
        if fast
        else {}
    )
    replies: dict[int, str] = {}
    for rows in _decoding_batches(prompts, size) if fast else batched(list(range(len(prompts))), size):
        out = generate(
            model,
            [prompts[k] for k in rows],
            max_new_tokens=max_new_tokens,
            batch_size=size,
            seed=0,
            steering=intervention,
            **levers,
        )
        replies.update({k: g.text for k, g in zip(rows, out, strict=True)})
        if progress:
            progress(len(rows))
    return [replies[k] for k in range(len(prompts))]
