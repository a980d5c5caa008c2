"""Reuse of the layers below an edit: the residual stream entering layer ``start`` is computed
once per exact input and replayed for every later pass.

A calibration evaluates one steering vector at many strengths on the same prompts. Nothing below
the first layer the vector touches depends on the strength, so ``LowerLayers`` records the
hidden states that enter layer ``start`` on the first pass over an input (a full forward, with a
capture hook) and, on every later pass over the same input, runs only layers ``start..`` from
them, through the model's own forward (``inputs_embeds`` and a sliced layer list), so masks,
rotary embeddings and every upper-layer kernel are the ones the full forward runs. The replayed
pass is bit-identical to the full one: the same batch, padding and positions are part of the key.

The KV cache of a replayed pass holds zeros for the skipped layers (they keep its length right;
no skipped layer reads them). Such a cache may only continue through a replay: a full pass over
it would read those zeros, so it is refused.

Callers route passes through ``forward(module, lower, **inputs)``; with ``lower=None`` it is the
plain forward. ``RunOptions.lower_layers`` carries the replay a calibration step runs through.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import torch
from torch import nn

__all__ = ["LowerLayers", "forward", "select_rows", "expanded"]

_LINEAGE = "_traitlens_lineage"  # key of the passes that filled a cache (and the rows kept since)
_STUBBED = "_traitlens_stubbed"  # True: the skipped layers of this cache hold zeros


def _digest(*parts: Any) -> str:
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().cpu().contiguous()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def _layers(module: nn.Module) -> nn.ModuleList:
    return module.model.layers


class LowerLayers:
    """Memo of the residual stream entering layer ``start`` of ``module`` (a plain HF causal LM),
    per exact input."""

    def __init__(self, module: nn.Module, start: int) -> None:
        n_layers = len(_layers(module))
        if not 0 <= start < n_layers:
            raise ValueError(f"start must be a layer index in 0..{n_layers - 1}, not {start}")
        self.module, self.start = module, start
        self.memo: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    def run(self, **inputs) -> Any:
        cache = inputs.get("past_key_values")
        if cache is not None and not hasattr(cache, _LINEAGE):
            return self.module(**inputs)  # a cache we did not fill: nothing to key it by
        key = _digest(
            self.start, inputs["input_ids"], inputs.get("attention_mask"), inputs.get("position_ids"),
            getattr(cache, _LINEAGE, None),
        )  # fmt: skip
        hidden = self.memo.get(key)
        if hidden is None:
            if cache is not None and getattr(cache, _STUBBED, False):
                raise RuntimeError("lower-layer reuse: a replayed cache can only continue through a replay")
            self.misses += 1
            out, self.memo[key] = self._capture(inputs)
        else:
            self.hits += 1
            out = self._replay(hidden, inputs)
        if out.past_key_values is not None:
            setattr(out.past_key_values, _LINEAGE, key)
        return out

    def _capture(self, inputs: dict) -> tuple[Any, torch.Tensor]:
        seen: list[torch.Tensor] = []

        def grab(module, args, kwargs):
            seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

        # Prepended: the capture sees the stream before any steering hook on this layer.
        handle = _layers(self.module)[self.start].register_forward_pre_hook(grab, with_kwargs=True, prepend=True)
        try:
            out = self.module(**inputs)
        finally:
            handle.remove()
        return out, seen[0]

    def _replay(self, hidden: torch.Tensor, inputs: dict) -> Any:
        base = self.module.model
        full = base.layers
        inputs = {k: v for k, v in inputs.items() if k != "input_ids"} | {"inputs_embeds": hidden}
        base.layers = nn.ModuleList(list(full)[self.start :])
        try:
            out = self.module(**inputs)
        finally:
            base.layers = full
        cache = out.past_key_values
        if cache is not None and self.start > 0:
            self._fill_skipped(cache, hidden.shape[1])
        return out

    def _fill_skipped(self, cache, new_tokens: int) -> None:
        """Zeros for the skipped layers' new columns: the cache's length stays right for masks
        and positions; only a replay (which skips those layers again) may continue from it."""
        reference = cache.layers[self.start]
        shape = list(reference.keys.shape)
        shape[-2] = new_tokens
        zeros = reference.keys.new_zeros(shape)
        for index in range(self.start):
            cache.layers[index].update(zeros, zeros)
        setattr(cache, _STUBBED, True)


def forward(module: nn.Module, lower: LowerLayers | None = None, **inputs) -> Any:
    """``module(**inputs)``, through ``lower`` when it replays this module's lower layers.
    Reuse needs ``input_ids`` (not embeddings) and a cache, if any, filled by this function."""
    if lower is None or lower.module is not module or inputs.get("input_ids") is None:
        return module(**inputs)
    return lower.run(**inputs)


def select_rows(cache, rows: torch.Tensor) -> None:
    """``cache.batch_select_indices(rows)``, keeping the cache's lineage key exact."""
    cache.batch_select_indices(rows)
    if hasattr(cache, _LINEAGE):
        setattr(cache, _LINEAGE, _digest(getattr(cache, _LINEAGE), rows))


def expanded(cache, rows: torch.Tensor):
    """A new cache holding ``rows`` of ``cache`` (lineage kept exact); ``cache`` is left as it was,
    so one prefix's cache can start many batches."""
    clone = copy.copy(cache)
    clone.layers = [copy.copy(layer) for layer in cache.layers]
    select_rows(clone, rows)  # selection and later updates assign new tensors: the original's stay
    return clone
