"""Install a steering vector on the model's plain HF module, for any forward pass or generation.

Hooks on the decoder layers add ``alpha * offset`` (through ``fused_steer``) at ``all``,
``prompt`` or ``response`` positions. Positions are absolute columns: a pre-hook on the
decoder stack reads how many tokens the KV cache already holds, so a prefill and each
one-token decode step are both placed correctly, and with left padding every row's prompt ends
at the same column. A constant ``add`` at all positions is folded into the MLP output bias of
the layer instead: no hook runs at all, so steered generation costs nothing extra.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from traitlens.errors import TraitlensError
from traitlens.models.fingerprint import ModelFingerprint
from traitlens.steering import kernels
from traitlens.steering.kernels import MODES, fused_steer, reference_steer
from traitlens.steering.vector import SteeringVector

__all__ = [
    "POSITIONS",
    "Steering",
    "SteeringHandle",
    "apply_steering",
    "decoder_layers",
    "first_affected_layer",
    "load_intervention",
]

POSITIONS = ("all", "prompt", "response")
# Blocks whose output is exactly ``resid_mid + down_proj(...)``: a bias on down_proj is a
# constant added to resid_post. (Gemma's post-MLP norm, for one, breaks this.)
_FOLDABLE = {"LlamaDecoderLayer", "MistralDecoderLayer", "Qwen2DecoderLayer", "Qwen3DecoderLayer"}


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise TraitlensError(f"cannot find the decoder layers of {type(model).__name__} (expected .model.layers)")
    return layers


class SteeringHandle:
    """Removable: call ``remove()`` or use as a context manager. Removing twice is harmless."""

    def __init__(self) -> None:
        self._undo: list = []
        self.folded_layers: list[int] = []
        self.hooked_layers: list[int] = []

    def remove(self) -> None:
        while self._undo:
            self._undo.pop()()

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _Columns:
    """Absolute column of the first token of the current forward call."""

    def __init__(self) -> None:
        self.offset = 0

    def pre_hook(self, module, args, kwargs):
        cache = kwargs.get("past_key_values")
        self.offset = int(cache.get_seq_length()) if cache is not None else 0


def _position_mask(h: torch.Tensor, columns: _Columns, positions: str, prompt_length: int | None) -> torch.Tensor:
    if positions == "all":
        return torch.ones(h.shape[:-1], device=h.device, dtype=h.dtype)
    cols = columns.offset + torch.arange(h.shape[-2], device=h.device)
    keep = cols >= prompt_length if positions == "response" else cols < prompt_length
    return keep.to(h.dtype).expand(h.shape[:-1])


def _validate(model, vector: SteeringVector, alpha: float, positions: str, mode: str, prompt_length) -> None:
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise TraitlensError(f"alpha must be a finite number, not {alpha}")
    if positions not in POSITIONS:
        raise TraitlensError(f"unknown positions '{positions}': use {', '.join(POSITIONS)}")
    if mode not in MODES:
        raise TraitlensError(f"unknown steering mode '{mode}': use {', '.join(MODES)}")
    if positions != "all" and prompt_length is None:
        raise TraitlensError(f"positions='{positions}' needs the prompt length")
    if vector.d_model != model.d_model:
        raise TraitlensError(f"vector has d_model {vector.d_model}, model {model.name} has {model.d_model}")
    bad = [layer for layer in vector.layers if not 0 <= layer < model.n_layers]
    if bad:
        raise TraitlensError(f"vector layer {bad[0]} out of range: {model.name} has layers 0..{model.n_layers - 1}")
    if not vector.model:
        raise TraitlensError(
            "steering vector has no model fingerprint, so nothing says it fits this model "
            "(give it model=loaded.fingerprint.to_dict(), or import it with `traitlens import --model`)"
        )
    missing = [key for key in ModelFingerprint.__dataclass_fields__ if key not in vector.model]
    if missing:
        raise TraitlensError(f"steering vector's model fingerprint is incomplete (missing {', '.join(missing)})")
    why = model.fingerprint.mismatch(ModelFingerprint.from_dict(vector.model))
    if why:
        raise TraitlensError(f"steering vector {why}")


class _Folds:
    """The folds living on one ``down_proj``: its own bias, kept aside, and each handle's
    delta. The bias is always recomputed as original + live deltas, so handles can be removed
    in any order and the last removal restores the original exactly."""

    def __init__(self, original: nn.Parameter | None) -> None:
        self.original = original
        self.deltas: dict[int, torch.Tensor] = {}


_FOLDS = "_traitlens_folds"
_fold_ids = itertools.count()


def _refold(linear: nn.Linear, folds: _Folds) -> None:
    if not folds.deltas:
        if folds.original is None:
            linear.register_parameter("bias", None)
        else:
            linear.bias = folds.original
        delattr(linear, _FOLDS)
        return
    base = (
        folds.original.detach().clone()
        if folds.original is not None
        else torch.zeros(linear.out_features, dtype=linear.weight.dtype, device=linear.weight.device)
    )
    for delta in folds.deltas.values():
        base = base + delta.to(base)
    linear.bias = nn.Parameter(base, requires_grad=False)


def _fold(layers: nn.ModuleList, layer: int, delta: torch.Tensor, handle: SteeringHandle) -> None:
    linear = layers[layer].mlp.down_proj
    folds = getattr(linear, _FOLDS, None)
    if folds is None:
        folds = _Folds(linear.bias)
        setattr(linear, _FOLDS, folds)
    key = next(_fold_ids)
    folds.deltas[key] = delta.detach().clone()
    _refold(linear, folds)

    def undo() -> None:
        if folds.deltas.pop(key, None) is not None:
            _refold(linear, folds)

    handle._undo.append(undo)
    handle.folded_layers.append(layer)


@functools.cache
def _code_hash() -> bytes:
    """The code that applies an intervention: this module and its kernels."""
    return hashlib.sha1(Path(__file__).read_bytes() + Path(kernels.__file__).read_bytes()).digest()


def _fold_target(layers: nn.ModuleList, hook: str, layer: int) -> int | None:
    target = layer if hook == "resid_post" else layer - 1  # resid_pre[L] is resid_post[L-1]
    if target < 0 or type(layers[target]).__name__ not in _FOLDABLE:
        return None
    return target


def first_affected_layer(vector: SteeringVector) -> int:
    """The lowest decoder layer whose computation the vector changes, however it is installed:
    every layer below it sees the unsteered residual stream (``resid_pre[L]`` may fold into layer
    ``L - 1``)."""
    lowest = min(vector.layers)
    return max(lowest - 1, 0) if vector.hook == "resid_pre" else lowest


def apply_steering(
    model,
    vector: SteeringVector,
    alpha: float,
    *,
    positions: str = "all",
    mode: str = "add",
    prompt_length: int | None = None,
    fold: str | bool = "auto",
    kernel: str = "fused",
) -> SteeringHandle:
    """Steer ``model.hf_model`` until the returned handle is removed."""
    _validate(model, vector, alpha, positions, mode, prompt_length)
    steer = fused_steer if kernel == "fused" else reference_steer
    layers = decoder_layers(model.hf_model)
    handle = SteeringHandle()
    try:
        _install(model, layers, vector, alpha, positions, mode, prompt_length, fold, steer, handle)
    except BaseException:
        handle.remove()  # nothing of a failed call stays on the model
        raise
    return handle


def _install(model, layers, vector, alpha, positions, mode, prompt_length, fold, steer, handle) -> None:
    columns = _Columns()
    if positions != "all":
        h = model.hf_model.model.register_forward_pre_hook(columns.pre_hook, with_kwargs=True)
        handle._undo.append(h.remove)
    can_fold = fold in ("auto", True) and positions == "all" and mode == "add"
    for layer, offset in vector.offsets.items():
        offset = offset.to(model.device)
        target = _fold_target(layers, vector.hook, layer) if can_fold else None
        if target is not None:
            _fold(layers, target, alpha * offset, handle)
            continue
        if fold is True:
            raise TraitlensError(
                f"cannot fold layer {layer}: folding needs mode 'add' at all positions on a Llama-style block"
            )

        def edit(h: torch.Tensor, offset=offset) -> torch.Tensor:
            return steer(h, offset.to(h.dtype), _position_mask(h, columns, positions, prompt_length), alpha, mode)

        if vector.hook == "resid_post":
            h = layers[layer].register_forward_hook(_post_hook(edit))
        else:
            h = layers[layer].register_forward_pre_hook(_pre_hook(edit), with_kwargs=True)
        handle._undo.append(h.remove)
        handle.hooked_layers.append(layer)


def _post_hook(edit):
    def hook(module, args, output):
        if isinstance(output, tuple):
            return (edit(output[0]), *output[1:])
        return edit(output)

    return hook


def _pre_hook(edit):
    def hook(module, args, kwargs):
        if args:
            return (edit(args[0]), *args[1:]), kwargs
        kwargs["hidden_states"] = edit(kwargs["hidden_states"])
        return args, kwargs

    return hook


@dataclass
class Steering:
    """A steering vector at one alpha: the ``intervention`` that assess, bench and generate take."""

    vector: SteeringVector
    alpha: float
    positions: str = "all"
    mode: str = "add"
    fold: str | bool = "auto"

    @classmethod
    def of(cls, vector: SteeringVector, alpha: float, **options) -> Steering:
        """``vector`` at ``alpha``, injected the way its recipe was calibrated (mode ``add`` when
        it records none); explicit ``options`` win."""
        recipe = vector.extra.get("recipe") or {}
        options.setdefault("mode", recipe.get("mode", "add"))
        return cls(vector, alpha, **options)

    def attach(self, model, prompt_length: int | None = None) -> SteeringHandle:
        return apply_steering(
            model,
            self.vector,
            self.alpha,
            positions=self.positions,
            mode=self.mode,
            prompt_length=prompt_length,
            fold=self.fold,
        )

    def fingerprint(self) -> str:
        """Everything that decides what this intervention does to a forward pass, including this
        module's code (results stored under a fingerprint outlive the process)."""
        h = hashlib.sha1(repr((self.vector.hook, self.alpha, self.positions, self.mode, self.fold)).encode())
        h.update(_code_hash())
        for layer in sorted(self.vector.offsets):
            offset = self.vector.offsets[layer].detach().to("cpu", torch.float32).contiguous()
            h.update(f"{layer}:".encode())
            h.update(offset.numpy().tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "trait": self.vector.trait,
            "layers": self.vector.layers,
            "alpha": self.alpha,
            "hook": self.vector.hook,
            "positions": self.positions,
            "mode": self.mode,
            "scale_mode": self.vector.scale_mode,
        }


def load_intervention(directory, model, alpha: float | None = None, **options) -> Steering:
    """A saved vector as an intervention at ``alpha`` (default: its recommended alpha)."""
    from traitlens.steering.artifact import load_vector

    vector = load_vector(directory)
    if alpha is None:
        alpha = vector.recommended_alpha
        if alpha is None:
            raise TraitlensError(f"{directory}: no recommended alpha recorded; pass --alpha")
    steering = Steering.of(vector, float(alpha), **options)
    _validate(model, vector, steering.alpha, steering.positions, steering.mode, None)
    return steering
