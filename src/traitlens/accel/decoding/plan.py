"""How a decoding batch is prefilled: which prompts go through the model together, and which
shared prefix each group runs once.

A forward pass costs a fixed amount (reading every weight, dispatching every layer) plus an
amount per token, so a call is worth ``CALL_COST`` tokens (measured: ``benchmarks/NOTES.md``). A group's cost is its calls and its tokens:
with a shared prefix, two calls (the prefix at batch 1, then the rows' rest, padded to the
longest); without, one call over the whole prompts, padded. ``plan_parts`` splits a batch (in
the order given: sort prompts by their tokens first, so prompts that start alike sit together)
into contiguous groups of at most ``size`` prompts at the least total cost, by dynamic
programming.
"""

from __future__ import annotations

from collections.abc import Sequence

from traitlens.accel.batching import pad_left, shared_prefix
from traitlens.accel.decoding.loop import Part

__all__ = ["CALL_COST", "plan_parts"]

CALL_COST = 44  # tokens' worth of time one forward call costs beyond its tokens (measured, see above)


def _group_cost(rows: int, longest: int, prefix: int, call_cost: float) -> tuple[float, bool]:
    """(cost, use the prefix) of prefilling ``rows`` prompts of at most ``longest`` tokens that
    share ``prefix`` tokens."""
    plain = call_cost + rows * longest
    if prefix <= 0 or rows < 2:
        return plain, False
    shared = 2 * call_cost + prefix + rows * (longest - prefix)
    return (shared, True) if shared < plain else (plain, False)


def plan_parts(prompts: Sequence[Sequence[int]], pad_id: int, size: int, call_cost: float | None = None) -> list[Part]:
    """``prompts`` as prefill parts of at most ``size`` (contiguous, in order), each with its
    shared prefix where running it once pays for the extra call."""
    if size < 1:
        raise ValueError(f"a prefill part holds at least one prompt, not {size}")
    call_cost = CALL_COST if call_cost is None else call_cost
    n = len(prompts)
    if n == 0:
        return []
    # adjacent[k]: the prefix prompts k and k + 1 can share; a contiguous group shares the least
    # of its adjacent pairs (a common prefix of a and c is at least the lesser of a~b and b~c),
    # which also leaves its shortest prompt a token of its own.
    adjacent = [len(shared_prefix(prompts[k : k + 2])) for k in range(n - 1)]
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of prefilling prompts[:j]
    cut: list[tuple[int, bool]] = [(0, False)] * (n + 1)
    for end in range(1, n + 1):
        common, longest = 1 << 30, 0
        for start in range(end - 1, max(end - size, 0) - 1, -1):
            longest = max(longest, len(prompts[start]))
            if start < end - 1:  # (a group of one shares nothing: _group_cost ignores its prefix)
                common = min(common, adjacent[start])
            cost, use = _group_cost(end - start, longest, common, call_cost)
            if best[start] + cost < best[end]:
                best[end], cut[end] = best[start] + cost, (start, use)
    groups = []
    end = n
    while end > 0:
        start, use = cut[end]
        groups.append((start, end, use))
        end = start
    parts: list[Part] = []
    for start, end, use in reversed(groups):
        group = prompts[start:end]
        prefix = shared_prefix(group) if use else []
        parts.append((prefix, *pad_left([p[len(prefix) :] for p in group], pad_id)))
    return parts
