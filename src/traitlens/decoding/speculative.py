"""Greedy decoding of one prompt, drafted by a cheap copy of the model and verified by the model.

At batch 1 a float32 step reads every weight once per token and is bound by memory bandwidth.
A draft model (the same checkpoint in bfloat16: half the bytes, its one-row products through
``models.gemv``, its step compiled over a static cache) proposes ``lookahead`` tokens one at a
time; the float32 model then scores all of them in one forward pass (one read of its weights for
several tokens, through ``models.gemv.few_row_products``) and keeps the drafted tokens up to the first it would not have chosen, followed
by its own choice there. Every kept token is the float32 model's greedy choice given the tokens
before it, so the output is the float32 greedy output; only the verification's arithmetic (a
product over several rows instead of one) may round differently, which can flip a near-tie.
Opt-in (``engine="speculative"``), with its agreement measured in ``benchmarks/decode.py``.

Both caches roll back after a rejection: the target's ``DynamicCache`` is cropped, the draft's
static cache is masked beyond the kept length and its write counters wound back (later writes
overwrite those slots).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from traitlens.decoding.compiled import CACHE_BLOCK, _compiled_step, _Decoder
from traitlens.models.gemv import few_row_products

__all__ = ["speculative_greedy", "LOOKAHEAD"]

LOOKAHEAD = 6  # tokens the draft proposes per verification (7 rows: within f32_rows' eight; measured best of 2-12)


class _Draft:
    """The draft model's compiled one-token step over a static cache that can roll back."""

    def __init__(self, model, prompt: torch.Tensor, length: int) -> None:
        self.model, self.step = model, _compiled_step(model)
        key = (1, length)
        decoder = model._traitlens_decoders.get(key)
        if decoder is None:
            decoder = model._traitlens_decoders[key] = _Decoder(model, 1, length)
        self.cache, self.mask = decoder.cache, decoder.mask
        self.cache.reset()
        self.mask.zero_()
        width = prompt.shape[1]
        self.mask[:, :width] = 1
        positions = torch.arange(width, device=self.mask.device)
        model(
            input_ids=prompt.to(self.mask.device),
            attention_mask=self.mask[:, :width],
            position_ids=positions[None],
            past_key_values=self.cache,
            cache_position=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        self.filled = width  # cache slots holding the accepted sequence

    def next(self, token: int) -> int:
        """Feed ``token`` at the next slot; the draft's greedy choice after it."""
        column = self.filled
        self.mask[:, column] = 1
        device = self.mask.device
        out = self.step(
            input_ids=torch.tensor([[token]], device=device),
            attention_mask=self.mask,
            position_ids=torch.tensor([[column]], device=device),
            past_key_values=self.cache,
            cache_position=torch.tensor([column], device=device),
            use_cache=True,
            logits_to_keep=1,
        )
        self.filled += 1
        return int(out.logits[0, -1].float().argmax())

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
    device = next(target.parameters()).device
    ids = torch.tensor([list(prompt)], device=device)
    out = target(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache, token = out.past_key_values, int(out.logits[0, -1].float().argmax())
    stops = set(stop_ids)
    sequence, new = list(prompt), [token]
    length = -(-(len(sequence) + max_new_tokens + lookahead + 1) // CACHE_BLOCK) * CACHE_BLOCK
    proposer = _Draft(draft, ids, length)
    while token not in stops and len(new) < max_new_tokens:
        accepted = len(sequence)  # the target's cache holds exactly these tokens; ``token`` comes next
        while proposer.filled < accepted:  # the draft catches up on tokens it did not propose itself
            proposer.next(sequence[proposer.filled])
        drafted: list[int] = []
        guess = token
        for _ in range(min(lookahead, max_new_tokens - len(new))):
            guess = proposer.next(guess)
            drafted.append(guess)
            if guess in stops:
                break
        step = torch.tensor([[token, *drafted]], device=device)
        with few_row_products(target):  # each weight read once for the few rows (MKL would pack it first)
            wanted = target(input_ids=step, past_key_values=cache, use_cache=True).logits[0].float().argmax(-1).tolist()
        kept = 0
        while kept < len(drafted) and drafted[kept] == wanted[kept]:
            kept += 1
        surplus = cache.get_seq_length() - (accepted + 1 + kept)  # keep ``token`` and the kept drafts
        if surplus > 0:
            cache.crop(-surplus)  # a negative count removes that many (every transformers version we pin)
        proposer.rollback(accepted + 1 + kept)
        sequence += [token, *drafted[:kept]]
        for chosen in [*drafted[:kept], wanted[kept]]:
            new.append(chosen)
            if chosen in stops or len(new) == max_new_tokens:
                break
        token = new[-1]
    return new
