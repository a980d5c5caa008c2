"""The suites' opt-in fast decoding (``RunOptions(fast=True)``, ``traitlens bench --fast``): how
many rows decode together and in what order, and which decoding levers apply. Not bit-identical
to the reference path; ``benchmarks/suites.py`` measures its verdict agreement.

Prompts are decoded up to ``FAST_BATCH`` at a time (as many as a KV cache of ``FAST_KV_BUDGET``
bytes holds), nearest in length together; each batch is prefilled in parts of up to
``FAST_PREFILL`` planned to cost least (prompts that start alike run their shared prefix once:
``decoding.plan``); finished rows are dropped, rows end once their verdict is decided, and
tokens are picked among a bfloat16 head's candidates scored again exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from traitlens.accel.batching import batched
from traitlens.accel.decoding.kvcache import kv_bytes_per_token
from traitlens.accel.decoding.levers import Levers

__all__ = ["FAST_BATCH", "FAST_KV_BUDGET", "FAST_PREFILL", "fast_batch", "decoding_batches", "fast_levers"]

FAST_BATCH = 128  # rows decoded together at most: a decoding step costs less per row in a larger batch
FAST_KV_BUDGET = 3 * 2**30  # ... and no more rows than a KV cache of this many bytes holds
FAST_PREFILL = 32  # prompts prefilled together: their shared prefix once, padding only among them


def fast_batch(module: nn.Module, prompts: Sequence[Sequence[int]], max_new_tokens: int, floor: int) -> int:
    """Rows per decoding batch: up to ``FAST_BATCH``, as many as a KV cache of
    ``FAST_KV_BUDGET`` bytes holds at the longest prompt's length (never fewer than ``floor``)."""
    per_row = kv_bytes_per_token(module) * (max(map(len, prompts), default=1) + max_new_tokens)
    return max(floor, min(FAST_BATCH, FAST_KV_BUDGET // max(per_row, 1)))


def decoding_batches(prompts: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Prompts of similar length together (every row of a batch attends over the longest one's
    width at each step), and inside a batch in token order, so prompts that start alike (one
    attack's template, one system turn) share a prefill part."""
    by_length = sorted(range(len(prompts)), key=lambda k: (len(prompts[k]), prompts[k]))
    return [sorted(rows, key=lambda k: prompts[k]) for rows in batched(by_length, size)]


def fast_levers(stop_when=None) -> Levers:
    """The fast suites' decoding levers (``stop_when``: the suite's verdict-decided rule)."""
    return Levers(compact=True, share_prefix=True, prefill_size=FAST_PREFILL, stop_when=stop_when, candidates=True)
