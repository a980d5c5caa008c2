"""Residual-stream activations on contrast pairs, through the TransformerLens bridge's hooks.

Only the requested hook points run a hook, each hook reduces its activation to one vector per
sequence on the spot (``last`` answer token, or ``mean`` over the answer span with padding
masked), and the forward pass stops after the last needed block, so collection costs about one
forward pass and no [batch, pos, d_model] tensor outlives its layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from traitlens.accel.batching import batched, pad_right
from traitlens.chat import chat_ids
from traitlens.models import RESID_POINTS, LoadedModel
from traitlens.probe.cache import ActivationStore
from traitlens.probe.contrast import ContrastSet, Side

__all__ = ["REDUCTIONS", "Activations", "encode_side", "collect"]

REDUCTIONS = ("last", "mean")


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    start: int  # first answer token
    stop: int  # one past the last answer token


@dataclass
class Activations:
    """``first``/``second``: [n_pairs, n_layers, d_model] float32, rows aligned with ``pairs``."""

    first: torch.Tensor
    second: torch.Tensor
    layers: list[int]
    contrast: ContrastSet

    def at(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.layers.index(layer)
        return self.first[:, k], self.second[:, k]


def encode_side(tokenizer, side: Side) -> Encoded:
    prompt = chat_ids(tokenizer, side.messages)
    answer = tokenizer(side.answer, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    return Encoded(prompt + answer, len(prompt), len(prompt) + len(answer))


class _Done(Exception):
    """Raised by the last needed hook to end the forward pass early."""


def _reduce(act: torch.Tensor, starts: torch.Tensor, stops: torch.Tensor, how: str) -> torch.Tensor:
    if how == "last":
        return act[torch.arange(act.shape[0]), stops - 1].float()
    positions = torch.arange(act.shape[1], device=act.device)
    mask = ((positions[None] >= starts[:, None]) & (positions[None] < stops[:, None])).to(act.dtype)
    return ((act * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).float()


def _run_batch(model: LoadedModel, chunk: Sequence[Encoded], layers: list[int], hook: str, reduce: str) -> torch.Tensor:
    ids, _ = pad_right([e.ids for e in chunk], model.tokenizer.pad_token_id)
    starts = torch.tensor([e.start for e in chunk], device=model.device)
    stops = torch.tensor([e.stop for e in chunk], device=model.device)
    out: dict[int, torch.Tensor] = {}
    last = max(layers)

    def grab(layer: int) -> Callable:
        def fn(act, hook):  # noqa: ARG001 - TransformerLens hook signature
            out[layer] = _reduce(act, starts, stops, reduce).cpu()
            if layer == last:
                raise _Done  # nothing downstream is needed, not even the unembedding
            return act

        return fn

    hooks = [(model.hook_name(layer, hook), grab(layer)) for layer in layers]
    # Right padding: causal attention never lets a real token see a pad, so no mask is needed.
    try:
        with torch.inference_mode():
            model.bridge.run_with_hooks(ids.to(model.device), fwd_hooks=hooks)
    except _Done:
        pass
    return torch.stack([out[layer] for layer in layers], dim=1)


def collect(
    model: LoadedModel,
    contrast: ContrastSet,
    layers: Sequence[int] | None = None,
    hook: str = "resid_post",
    reduce: str = "last",
    batch_size: int = 16,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Activations:
    """Activations of both sides of every pair at ``layers`` (default: all)."""
    from traitlens.errors import TraitlensError

    if hook not in RESID_POINTS:
        raise TraitlensError(f"unknown hook '{hook}': use one of {', '.join(RESID_POINTS)}")
    if reduce not in REDUCTIONS:
        raise TraitlensError(f"unknown reduction '{reduce}': use last or mean")
    layers = sorted(set(range(model.n_layers) if layers is None else layers))
    bad = [layer for layer in layers if not 0 <= layer < model.n_layers]
    if bad:
        raise TraitlensError(f"layer {bad[0]} out of range: {model.name} has layers 0..{model.n_layers - 1}")
    encoded = [encode_side(model.tokenizer, s) for p in contrast.pairs for s in (p.first, p.second)]
    store = ActivationStore.for_run(model.fingerprint, hook, reduce, layers) if use_cache else None
    chunks = []
    for chunk in batched(encoded, batch_size):
        key = ActivationStore.chunk_key([(e.ids, e.start, e.stop) for e in chunk])
        cached = store.load_chunk(key, len(chunk)) if store else None
        if cached is None:
            cached = _run_batch(model, chunk, layers, hook, reduce)
            if store:
                store.save_chunk(key, cached)
        chunks.append(cached)
        if progress is not None:
            progress(len(chunk))
    stacked = torch.cat(chunks) if chunks else torch.zeros(0, len(layers), model.d_model)
    return Activations(stacked[0::2], stacked[1::2], layers, contrast)
