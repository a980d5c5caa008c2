"""Greedy decoding without ``generate``'s per-step machinery.

``greedy`` runs the model's own forward with a ``DynamicCache`` and the same inputs Hugging
Face's ``generate`` builds (position ids from the attention mask, ``logits_to_keep=1``, finished
rows fed the pad token), so its tokens are bit-identical to ``generate(do_sample=False)`` while
each step skips the logits processors, stopping criteria and input preparation that make batch-1
decoding overhead-bound here.

Three levers change the batch's arithmetic and are therefore opt-in, with their agreement
measured in ``benchmarks/suites.py``: ``compact`` drops finished rows from the batch (a smaller
matrix may take another kernel), ``stop_when`` ends a row early once the caller's verdict is
decided (a refusal shows in the first tokens), and ``prefix`` runs the tokens every row starts
with once, at batch 1, and lets each row continue from a copy of that cache (its padding then
sits between the prefix and the rest of the prompt, masked, with positions that skip it).
``greedy_parts`` adds prefill parts, a cache written in place and candidate heads (below).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from traitlens.accel.decoding.head import CandidateHead, candidate_head

__all__ = ["greedy", "greedy_parts", "Part", "StopRule", "record_step"]

# Called with a row's new tokens so far; True ends that row (its tokens stay as they are).
StopRule = Callable[[list[int]], bool]


def record_step(new: list[list[int]], rows: list[int], tokens: torch.Tensor, done: torch.Tensor) -> None:
    """Append each unfinished slot's token to its row (``rows[slot]``): one host sync per step."""
    for row, token, finished in zip(rows, tokens.tolist(), done.tolist(), strict=True):
        if not finished:
            new[row].append(token)


def _step(model, ids, mask, positions, cache, head: CandidateHead | None = None):
    inputs = dict(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True)
    if head is not None:  # the decoder alone, then candidates and their exact scores
        return head.argmax(model.get_decoder()(**inputs).last_hidden_state[:, -1, :])
    return model(**inputs, logits_to_keep=1).logits[:, -1, :].float().argmax(dim=-1)


# One prompt part: the tokens its rows share (may be empty), then the rows' left-padded rest.
Part = tuple[Sequence[int], torch.Tensor, torch.Tensor]


def _prefill(model, part: Part, device, head: CandidateHead | None = None):
    """The part's cache, its attention mask (prefix included), its last positions and first tokens."""
    from transformers import DynamicCache

    prefix, ids, mask = part
    ids, mask = ids.to(device), mask.to(device)
    cache = DynamicCache(config=model.config)
    if prefix:
        shared = torch.tensor([list(prefix)], device=device)
        model(input_ids=shared, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(ids.shape[0])
        mask = torch.cat([mask.new_ones(ids.shape[0], shared.shape[1]), mask], dim=1)
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, mask.shape[1] - ids.shape[1] :]
    tokens = _step(model, ids, mask, positions, cache, head)
    return cache, mask, positions[:, -1:], tokens


def _merge(model, states, room: int | None):
    """One batch from prefilled parts: each part's cache and mask padded on the left to the
    longest (masked zeros); with ``room``, every layer gets that many spare columns
    (``RoomyLayer``). ``None`` when a cache is not one full-length tensor per layer (a
    sliding-window layer keeps only its window)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    from traitlens.accel.decoding.kvcache import RoomyLayer

    width = max(mask.shape[1] for _, mask, _, _ in states)
    if any(layer.keys.shape[-2] != mask.shape[1] for cache, mask, _, _ in states for layer in cache.layers):
        return None
    merged = DynamicCache(config=model.config)
    if len(merged.layers) != len(states[0][0].layers) or any(type(la) is not DynamicLayer for la in merged.layers):
        return None
    pads = [(0, 0, width - mask.shape[1], 0) for _, mask, _, _ in states]
    for index in range(len(merged.layers)):
        keys = torch.cat([F.pad(c.layers[index].keys, pad) for (c, *_), pad in zip(states, pads, strict=True)])
        values = torch.cat([F.pad(c.layers[index].values, pad) for (c, *_), pad in zip(states, pads, strict=True)])
        if room is None:
            merged.layers[index].update(keys, values)
        else:
            merged.layers[index] = RoomyLayer(keys, values, room)
    mask = torch.cat([F.pad(mask, (width - mask.shape[1], 0)) for _, mask, _, _ in states])
    positions = torch.cat([positions for *_, positions, _ in states])
    return merged, mask, positions, torch.cat([tokens for *_, tokens in states])


@torch.inference_mode()
def greedy(
    model,
    ids: torch.Tensor,
    mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    *,
    compact: bool = False,
    stop_when: StopRule | None = None,
    check_every: int = 4,
    prefix: Sequence[int] = (),
) -> list[list[int]]:
    """New tokens of each left-padded row (up to and including its stop token); with ``prefix``,
    each row's prompt is ``prefix`` followed by its row of ``ids``."""
    return greedy_parts(
        model, [(prefix, ids, mask)], max_new_tokens, stop_ids, pad_id,
        compact=compact, stop_when=stop_when, check_every=check_every,
    )  # fmt: skip


@torch.inference_mode()
def greedy_parts(
    model,
    parts: Sequence[Part],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    *,
    compact: bool = False,
    stop_when: StopRule | None = None,
    check_every: int = 4,
    roomy: bool = False,
    candidates: bool = False,
) -> list[list[int]]:
    """``greedy`` over several parts at once (opt-in): each part is prefilled on its own (its
    shared prefix once, its rows padded only to each other), then all rows decode as one batch,
    where a large batch makes every step cheaper per row. Rows come back in the parts' order.
    ``roomy``: the decoding columns are allocated up front and written in place (``RoomyLayer``);
    ``candidates``: greedy tokens from a bfloat16 head's top candidates, scored again exactly
    (``traitlens.accel.decoding.head``; float32 heads only)."""
    device = next(model.parameters()).device
    head = candidate_head(model) if candidates else None
    states = [_prefill(model, part, device, head) for part in parts]
    room = max_new_tokens if roomy else None
    state = states[0] if len(states) == 1 and room is None else _merge(model, states, room)
    levers = {"compact": compact, "stop_when": stop_when, "check_every": check_every, "head": head}
    if state is None:  # caches that cannot be merged decode part by part, from their own prefill
        return [row for part in states for row in _decode(model, part, max_new_tokens, stop_ids, pad_id, **levers)]
    return _decode(model, state, max_new_tokens, stop_ids, pad_id, **levers)


def _fill_holes(done: torch.Tensor) -> torch.Tensor:
    """The rows to keep, in an order that moves as few as possible: each finished row's slot
    below the new batch size takes a live row from above it, the rest stay where they are (a
    cache that compacts in place, ``RoomyLayer``, then copies only the moved rows)."""
    keep_count = int((~done).sum())
    order = torch.arange(keep_count, device=done.device)
    holes = done[:keep_count].nonzero().squeeze(1)
    movers = (~done[keep_count:]).nonzero().squeeze(1) + keep_count
    order[holes] = movers
    return order


def _decode(
    model, state, max_new_tokens, stop_ids, pad_id, *, compact, stop_when, check_every, head=None
) -> list[list[int]]:
    """The decoding loop from a prefilled state (cache, mask, last positions, first tokens)."""
    cache, mask, positions, tokens = state
    device = tokens.device
    rows = tokens.shape[0]
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    new: list[list[int]] = [[] for _ in range(rows)]
    live = torch.arange(rows, device=device)  # batch slot -> original row
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        tokens = torch.where(done, torch.full_like(tokens, pad_id), tokens)
        record_step(new, live.tolist(), tokens, done)
        done = done | torch.isin(tokens, stops)
        if stop_when is not None and (step + 1) % check_every == 0:
            ruled = [not d and stop_when(new[int(r)]) for d, r in zip(done.tolist(), live.tolist(), strict=True)]
            done = done | torch.tensor(ruled, dtype=torch.bool, device=device)
        if bool(done.all()) or step + 1 == max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = positions + 1
        if compact and bool(done.any()):
            keep = _fill_holes(done)
            cache.reorder_cache(keep)
            tokens, mask, positions, live, done = tokens[keep], mask[keep], positions[keep], live[keep], done[keep]
        tokens = _step(model, tokens[:, None], mask, positions, cache, head)
    return new
