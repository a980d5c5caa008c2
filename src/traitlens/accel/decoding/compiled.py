"""Greedy decoding with the one-token step compiled (``torch.compile``) over a static KV cache.

At batch 1 on a CPU the eager step is bound by Python and operator dispatch, not by reading the
weights; a compiled step with fixed shapes (a ``StaticCache`` of a fixed length, a fixed batch)
fuses the elementwise work and drops most of the dispatch. The prefill runs eagerly. Steering
still works: folded biases are ordinary parameters, and hooks at ``all`` positions are traced
into the graph (position-dependent hooks read a Python counter and are refused).

This torch's dynamo skips module-hook guards by default (``skip_nnmodule_hook_guards``), so a
graph traced without hooks would keep running without them after a vector is hooked on. Every
step therefore runs with those guards on: the hooks attached are part of the graph's key, a
new set of hooks traces a new graph, and removing them returns to the old one.

Fused kernels may round differently from eager ones, so this engine is opt-in
(``engine="compiled"``); ``benchmarks/decode.py`` reports how many greedy tokens it shares with
the eager path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from traitlens.accel.decoding.loop import record_step

__all__ = ["compiled_greedy", "static_prefill", "CACHE_BLOCK"]

CACHE_BLOCK = 64  # cache lengths round up to this, so nearby lengths share one compiled graph


class _Decoder:
    def __init__(self, model, batch: int, length: int) -> None:
        from transformers import StaticCache

        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.mask = torch.zeros(batch, length, dtype=torch.long, device=next(model.parameters()).device)


def _guarded(compiled):
    """``compiled`` run with module-hook guards on, so the graph is keyed on the hooks attached."""

    def step(**kwargs):
        with torch._dynamo.config.patch(skip_nnmodule_hook_guards=False):
            return compiled(**kwargs)

    return step


def _compiled_step(model):
    step = getattr(model, "_traitlens_compiled_step", None)
    if step is None:
        step = _guarded(torch.compile(model.forward, dynamic=False))
        model._traitlens_compiled_step = step
        model._traitlens_decoders = {}
    return step


def static_prefill(model, ids: torch.Tensor, mask: torch.Tensor, length: int):
    """The model's compiled step and its static cache for this batch size and ``length`` (both
    kept on the model; the cache reset), prefilled eagerly with the left-padded ``ids``. Returns
    (step, cache, the cache-wide attention mask, the prompt's positions, each row's greedy token)."""
    step = _compiled_step(model)
    rows, width = ids.shape
    decoder = model._traitlens_decoders.get((rows, length))
    if decoder is None:
        decoder = model._traitlens_decoders[(rows, length)] = _Decoder(model, rows, length)
    cache, full = decoder.cache, decoder.mask
    cache.reset()
    device = full.device
    full.zero_()
    full[:, :width] = mask.to(device)
    positions = (full[:, :width].cumsum(-1) - 1).masked_fill(full[:, :width] == 0, 0)
    out = model(
        input_ids=ids.to(device),
        attention_mask=full[:, :width],
        position_ids=positions,
        past_key_values=cache,
        cache_position=torch.arange(width, device=device),
        use_cache=True,
        logits_to_keep=1,
    )
    return step, cache, full, positions, out.logits[:, -1, :].float().argmax(dim=-1)


@torch.inference_mode()
def compiled_greedy(
    model, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, stop_ids: Sequence[int], pad_id: int
) -> list[list[int]]:
    """New tokens of each left-padded row (up to and including its stop token)."""
    rows, width = ids.shape
    length = -(-(width + max_new_tokens) // CACHE_BLOCK) * CACHE_BLOCK
    step, cache, full, positions, tokens = static_prefill(model, ids, mask, length)
    device = full.device
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    new: list[list[int]] = [[] for _ in range(rows)]
    positions = positions[:, -1:]
    for index in range(max_new_tokens):
        tokens = torch.where(done, torch.full_like(tokens, pad_id), tokens)
        record_step(new, list(range(rows)), tokens, done)
        done = done | torch.isin(tokens, stops)
        if bool(done.all()) or index + 1 == max_new_tokens:
            break
        column = width + index
        full[:, column] = 1
        positions = positions + 1
        out = step(
            input_ids=tokens[:, None],
            attention_mask=full,
            position_ids=positions,
            past_key_values=cache,
            cache_position=torch.tensor([column], device=device),
            use_cache=True,
            logits_to_keep=1,
        )
        tokens = out.logits[:, -1, :].float().argmax(dim=-1)
    return new
