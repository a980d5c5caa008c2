"""Direct dequantising GGUF loader for Llama-architecture files.

transformers can load a GGUF with ``gguf_file=`` but slowly; reading the tensors with the
``gguf`` package and dequantising them with numpy is several times faster.
Files of other architectures fall back to transformers' own loader (see ``registry``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from traitlens.errors import TraitlensError

__all__ = ["GGUFContents", "read_gguf", "sha256_file", "llama_from_gguf"]

# GGUF tensor name (per block) -> HF Llama parameter name.
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


@dataclass(frozen=True)
class GGUFContents:
    """Metadata fields and the reader of one GGUF file."""

    path: Path
    fields: dict[str, Any]
    reader: Any

    @property
    def architecture(self) -> str:
        return str(self.fields.get("general.architecture", ""))

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Fields we never need and that dominate parse time (49k tokens, 49k merges).
_SKIPPED_FIELDS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type")


def read_gguf(path: Path) -> GGUFContents:
    """Open a GGUF file, or raise a one-line error if it is missing or not valid GGUF."""
    import gguf

    if not path.is_file():
        raise TraitlensError(f"GGUF file not found: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises many kinds on a damaged file
        raise TraitlensError(f"{path} is not a valid GGUF file ({type(exc).__name__}: {exc})") from None
    fields: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key in _SKIPPED_FIELDS:
            continue
        try:
            fields[key] = field.contents()
        except Exception:  # an odd field type we do not use
            continue
    return GGUFContents(path=path, fields=fields, reader=reader)


def _unpermute_rope(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's interleaving of the rotary halves in q/k projection rows."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, rows // n_heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _dequantise(tensor: Any) -> np.ndarray:
    from gguf import quants

    array = quants.dequantize(tensor.data, tensor.tensor_type)
    # F32 tensors come back as read-only views of the memory map: copy them.
    return np.array(array, dtype=np.float32, order="C", copy=not array.flags.writeable)


def _llama_config(contents: GGUFContents):
    from transformers import LlamaConfig

    g = contents.get
    arch = contents.architecture
    n_heads = int(g(f"{arch}.attention.head_count"))
    d_model = int(g(f"{arch}.embedding_length"))
    names = {t.name for t in contents.reader.tensors}
    vocab = g(f"{arch}.vocab_size")
    if vocab is None:
        embd = next(t for t in contents.reader.tensors if t.name == "token_embd.weight")
        vocab = int(embd.shape[-1])
    head_dim = int(g(f"{arch}.attention.key_length", d_model // n_heads))
    value_dim = int(g(f"{arch}.attention.value_length", head_dim))
    if value_dim != head_dim:
        raise TraitlensError(f"{contents.path}: key and value head sizes differ ({head_dim}, {value_dim}): unsupported")
    return LlamaConfig(
        vocab_size=int(vocab),
        hidden_size=d_model,
        intermediate_size=int(g(f"{arch}.feed_forward_length")),
        num_hidden_layers=int(g(f"{arch}.block_count")),
        num_attention_heads=n_heads,
        num_key_value_heads=int(g(f"{arch}.attention.head_count_kv", n_heads)),
        max_position_embeddings=int(g(f"{arch}.context_length", 2048)),
        rms_norm_eps=float(g(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(g(f"{arch}.rope.freq_base", 10000.0)),
        bos_token_id=g("tokenizer.ggml.bos_token_id"),
        eos_token_id=g("tokenizer.ggml.eos_token_id"),
        pad_token_id=g("tokenizer.ggml.padding_token_id"),
        tie_word_embeddings="output.weight" not in names,
        head_dim=head_dim,
        attention_bias=any(n.endswith("attn_q.bias") for n in names),
        rope_scaling=_rope_scaling(contents),
    )


def _rope_scaling(contents: GGUFContents) -> dict | None:
    """Linear or YaRN-free scaling named in the metadata. Llama-3.1/3.2 files carry theirs as
    the ``rope_freqs`` tensor instead (applied in ``llama_from_gguf``)."""
    arch = contents.architecture
    kind = contents.get(f"{arch}.rope.scaling.type")
    if kind in (None, "none"):
        return None
    factor = contents.get(f"{arch}.rope.scaling.factor")
    if kind == "linear" and factor:
        return {"rope_type": "linear", "factor": float(factor)}
    raise TraitlensError(f"{contents.path}: rope scaling '{kind}' is not supported by the direct loader")


def _hf_name(gguf_name: str) -> str | None:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{parts[3]}"
    return None


def llama_from_gguf(contents: GGUFContents, dtype: torch.dtype = torch.float32):
    """Build a ``LlamaForCausalLM`` with the file's weights dequantised to ``dtype``."""
    from transformers import LlamaForCausalLM

    config = _llama_config(contents)
    state: dict[str, torch.Tensor] = {}
    rope_freqs = None
    for tensor in contents.reader.tensors:
        if tensor.name == "rope_freqs.weight":
            rope_freqs = torch.from_numpy(_dequantise(tensor).reshape(-1).copy())
            continue
        name = _hf_name(tensor.name)
        if name is None:
            raise TraitlensError(f"{contents.path}: unexpected tensor '{tensor.name}' (unsupported Llama variant)")
        array = _dequantise(tensor)
        if name.endswith("q_proj.weight"):
            array = _unpermute_rope(array, config.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            array = _unpermute_rope(array, config.num_key_value_heads)
        state[name] = torch.from_numpy(array).to(dtype)
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    expected = {k for k in model.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    missing, unexpected = expected - set(state), set(state) - set(model.state_dict())
    if missing:
        raise TraitlensError(
            f"{contents.path}: GGUF lacks tensors for {sorted(missing)[:3]} (corrupt or unsupported file)"
        )
    if unexpected:
        raise TraitlensError(f"{contents.path}: tensors {sorted(unexpected)[:3]} have no place in a Llama model")
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    # Buffers (rotary inv_freq) were created on meta: rebuild them on the CPU.
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    if rope_freqs is not None:
        _apply_rope_freqs(model.model.rotary_emb, rope_freqs, contents.path)
    return model.to(dtype).eval()


def _apply_rope_freqs(rotary: torch.nn.Module, factors: torch.Tensor, path: Path) -> None:
    """llama.cpp divides each rotary frequency by ``rope_freqs[i]`` (Llama-3.1 scaling)."""
    if factors.shape != rotary.inv_freq.shape:
        raise TraitlensError(
            f"{path}: rope_freqs has {factors.numel()} factors, the model has {rotary.inv_freq.numel()} frequencies"
        )
    scaled = rotary.inv_freq / factors.to(rotary.inv_freq)
    rotary.inv_freq = scaled
    if hasattr(rotary, "original_inv_freq"):
        rotary.original_inv_freq = scaled.clone()
