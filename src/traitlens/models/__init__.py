"""Load a model as a TransformerLens ``TransformerBridge`` plus tokenizer, from local files only."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from traitlens.accel.precision import DTYPES, cast_parameters, check_dtype, contiguous_head, row_products
from traitlens.models.fingerprint import ModelFingerprint, hash_state_dict
from traitlens.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, resolve

__all__ = ["LoadedModel", "ModelFingerprint", "load_model", "DEFAULT_MODEL", "BUILTIN_MODELS", "DTYPES"]

RESID_POINTS = ("resid_pre", "resid_mid", "resid_post")


@dataclass
class LoadedModel:
    """A bridged model with its tokenizer and identity."""

    name: str
    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    tokenizer: Any
    fingerprint: ModelFingerprint
    load_seconds: float
    peak_rss_mb: float

    hf_model: Any  # plain HF module sharing the bridge's weights, no hook wrappers
    _loaded_state: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._loaded_state = _module_state(self.hf_model)

    def untouched(self) -> bool:
        """Nothing attached since loading: the same parameter objects and no hook added (a
        steering fold installs a new bias, a steering or probe hook shows as a hook)."""
        return _module_state(self.hf_model) == self._loaded_state

    @property
    def n_layers(self) -> int:
        return int(self.bridge.cfg.n_layers)

    @property
    def d_model(self) -> int:
        return int(self.bridge.cfg.d_model)

    @property
    def dtype(self):
        return next(self.hf_model.parameters()).dtype

    @property
    def device(self):
        return next(self.hf_model.parameters()).device

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What a computed result depends on besides its inputs: weights, name, dtype, device."""
        return self.fingerprint.weights_hash, self.name, str(self.dtype), str(self.device)

    def hook_name(self, layer: int, point: str = "resid_post") -> str:
        return f"blocks.{layer}.hook_{point}"


# transformers installs these for good the first time hidden states or attentions are asked for;
# they only record outputs while a capture is on and never change a forward pass.
_RECORDING_HOOKS = "transformers.utils.output_capturing"


def _hooks(hooks: dict) -> tuple:
    return tuple(k for k, h in hooks.items() if getattr(h, "__module__", "") != _RECORDING_HOOKS)


def _module_state(module) -> tuple:
    return (
        tuple((name, id(p)) for name, p in module.named_parameters()),
        tuple((name, _hooks(m._forward_hooks), _hooks(m._forward_pre_hooks)) for name, m in module.named_modules()),
    )


def _prepare_tokenizer_for_bridge(tokenizer: Any, name: str) -> None:
    # The bridge reloads a tokenizer by name (a hub call) unless it already adds a BOS.
    # We never let it tokenize for us (chat templates carry their own BOS), so mark it
    # as such instead of letting it fetch a copy.
    tokenizer.init_kwargs.setdefault("name_or_path", name)
    tokenizer.init_kwargs["add_bos_token"] = True
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _unwrapped_twin(model: Any) -> Any:
    """A second HF module over the *same* parameter tensors (no copy).

    Booting the bridge wraps the HF model's submodules in place with hook points, which slows
    generation. The twin keeps the plain modules and the fast SDPA attention, so
    generation, batched scoring and steering hooks run at plain-HF speed.
    """
    import copy

    import torch

    config = copy.deepcopy(model.config)
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        twin = type(model)(config)
    twin.load_state_dict(model.state_dict(), strict=False, assign=True)
    if getattr(config, "tie_word_embeddings", False):
        twin.tie_weights()
    for name, buffer in model.named_buffers():
        module_name, _, buffer_name = name.rpartition(".")
        twin.get_submodule(module_name).register_buffer(buffer_name, buffer, persistent=False)
    twin.generation_config = copy.deepcopy(model.generation_config)
    return twin.eval()


def load_model(spec: str = DEFAULT_MODEL, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """Load ``spec``: a built-in name, a ``.gguf`` file, a checkpoint dir or a cached HF name.

    ``dtype`` other than float32 (opt-in) casts the fast path (generation, scoring, steering)
    only; the bridge that probes read stays float32."""
    from transformer_lens.model_bridge import TransformerBridge

    torch_dtype = check_dtype(dtype, device)
    start = time.perf_counter()
    resolved = resolve(spec)
    _prepare_tokenizer_for_bridge(resolved.tokenizer, resolved.name)
    model = resolved.hf_model.to(device)
    hf_model = _unwrapped_twin(model)
    if torch_dtype is not torch.float32:
        hf_model = contiguous_head(cast_parameters(hf_model, torch_dtype))  # the bridge stays float32
        if not str(device).startswith("cuda"):
            hf_model = row_products(hf_model)
    bridge = TransformerBridge.boot_transformers(resolved.name, hf_model=model, tokenizer=resolved.tokenizer)
    bridge.eval()
    fingerprint = ModelFingerprint(
        name=resolved.name,
        architecture=type(model).__name__,
        n_layers=int(bridge.cfg.n_layers),
        d_model=int(bridge.cfg.d_model),
        weights_hash=resolved.weights_hash or hash_state_dict(model),
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return LoadedModel(
        name=resolved.name,
        bridge=bridge,
        tokenizer=bridge.tokenizer,
        hf_model=hf_model,
        fingerprint=fingerprint,
        load_seconds=time.perf_counter() - start,
        peak_rss_mb=peak_mb,
    )
