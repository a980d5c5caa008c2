"""Greedy decoding of one prompt, drafted by a cheap copy of the model and verified by the model.

At batch 1 a float32 step reads every weight once per token and is bound by memory bandwidth.
A draft model (the same checkpoint in bfloat16: half the bytes, its one-row products through
``accel.gemv``, its step compiled over a static cache) proposes ``lookahead`` tokens one at a
time; the float32 model then scores all of them in one forward pass (one read of its weights for
several tokens, through ``accel.gemv.few_row_products``) and keeps the drafted tokens up to the first it would not have chosen, followed
by its own choice there. Every kept token is the float32 model's greedy choice given the tokens
before it, so the output is the float32 greedy output; only the verification's arithmetic (a
product over several rows instead of one) may round differently, which can flip a near-tie.
Opt-in (``engine="speculative"``), with its agreement measured in ``benchmarks/decode.py``.

Both models run compiled steps over static caches (the float32 one on ``lookahead + 1`` rows at
a time, one graph); after a rejection each cache is masked beyond the kept length and its write
counters wound back (later writes overwrite those slots).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from traitlens.accel.decoding.compiled import CACHE_BLOCK, static_prefill
from traitlens.accel.gemv import few_row_products

__all__ = ["speculative_greedy", "LOOKAHEAD"]

LOOKAHEAD = 6  # tokens the draft proposes per verification (7 rows: within f32_rows' eight; measured best of 2-12)


class _Static:
    """A model's compiled step over a static cache that can roll back: the prompt is prefilled
    eagerly, then ``feed`` writes tokens at the next slots and returns the greedy choice after
    each of them."""

    def __init__(self, model, prompt: torch.Tensor, length: int) -> None:
        self.step, self.cache, self.mask, _, first = static_prefill(model, prompt, torch.ones_like(prompt), length)
        self.first = int(first[0])  # the greedy choice after the prompt
        self.filled = prompt.shape[1]  # cache slots holding the accepted sequence

    def feed(self, tokens: Sequence[int]) -> list[int]:
        columns = torch.arange(self.filled, self.filled + len(tokens), device=self.mask.device)
        self.mask[:, columns] = 1
        out = self.step(
            input_ids=torch.tensor([list(tokens)], device=self.mask.device),
            attention_mask=self.mask,
            position_ids=columns[None],
            past_key_values=self.cache,
            cache_position=columns,
            use_cache=True,
            logits_to_keep=len(tokens),
        )
        self.filled += len(tokens)
        return out.logits[0].float().argmax(-1).tolist()

    def rollback(self, filled: int) -> None:
        if filled < self.filled:
            self.mask[:, filled:] = 0
            self.filled = filled
            for layer in self.cache.layers:  # static layers write at their own counter: wind it back
                counter = getattr(layer, "cumulative_length", None)
                if isinstance(counter, torch.Tensor):
                    counter.fill_(filled)


@torch.inference_mode()
def speculative_greedy(
    target, draft, prompt: Sequence[int], max_new_tokens: int, stop_ids: Sequence[int], lookahead: int = LOOKAHEAD
) -> list[int]:
    """New tokens (up to and including a stop token) of ``target``'s greedy continuation of
    ``prompt``, drafted ``lookahead`` at a time by ``draft`` (both plain HF causal LMs sharing a
    vocabulary)."""
    if lookahead < 1:
        raise ValueError(f"lookahead must be at least 1, not {lookahead}")
    ids = torch.tensor([list(prompt)], device=next(target.parameters()).device)
    stops = set(stop_ids)
    length = -(-(len(prompt) + max_new_tokens + 2 * lookahead + 2) // CACHE_BLOCK) * CACHE_BLOCK
    with few_row_products(target):  # each weight read once for the few rows (MKL would pack it first)
        verifier, proposer = _Static(target, ids, length), _Static(draft, ids, length)
        token = verifier.first
        sequence, new = list(prompt), [token]
        while token not in stops and len(new) < max_new_tokens:
            accepted = len(sequence)  # the target's cache holds exactly these tokens; ``token`` comes next
            while proposer.filled < accepted:  # the draft catches up on tokens it did not propose itself
                proposer.feed([sequence[proposer.filled]])
            drafted: list[int] = []
            guess = token
            for _ in range(min(lookahead, max_new_tokens - len(new))):
                guess = proposer.feed([guess])[0]
                drafted.append(guess)
                if guess in stops:
                    break
            # Always lookahead + 1 rows (the spare ones repeat the last token and are rolled back):
            # one compiled graph for every verification.
            rows = [token, *drafted] + [drafted[-1]] * (lookahead - len(drafted))
            wanted = verifier.feed(rows)
            kept = 0
            while kept < len(drafted) and drafted[kept] == wanted[kept]:
                kept += 1
            verifier.rollback(accepted + 1 + kept)  # ``token`` and the kept drafts; the correction comes next
            proposer.rollback(accepted + 1 + kept)
            sequence += [token, *drafted[:kept]]
            for chosen in [*drafted[:kept], wanted[kept]]:
                new.append(chosen)
                if chosen in stops or len(new) == max_new_tokens:
                    break
            token = new[-1]
    return new
