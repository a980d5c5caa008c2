"""Steering vectors in other tools' formats.

GGUF control vector (llama.cpp ``--control-vector``, repeng ``export_gguf``): architecture
``controlvector``, one F32 tensor ``direction.{N}`` of size n_embd per layer. llama.cpp adds
``direction.N`` to the output of its (0-based) layer N, the same block TransformerLens calls
``blocks.N.hook_resid_post``; N = 0 cannot be expressed (llama.cpp rejects ``direction.0``).
The vector is stored at alpha = 1 (llama.cpp's ``--control-vector-scaled FILE S`` then plays
the role of alpha; use the recommended alpha recorded in our meta.json).

Plain safetensors (steering-vectors' ``layer_activations`` / repeng's ``directions``): one
tensor per layer named by its decoder-layer index, ``layer_type = decoder_block``::

    from safetensors.torch import load_file
    acts = {int(k): v for k, v in load_file(path).items()}
    steering_vectors.SteeringVector(layer_activations=acts, layer_type="decoder_block")
    repeng.ControlVector(model_type="llama", directions={k: v.numpy() for k, v in acts.items()})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from traitlens._io import atomic_write
from traitlens.errors import TraitlensError
from traitlens.steering.vector import SteeringVector

__all__ = ["FORMATS", "export_gguf", "import_gguf", "export_safetensors", "import_safetensors"]

FORMATS = ("traitlens", "gguf", "safetensors")
GGUF_ARCH = "controlvector"


def _post_only(vector: SteeringVector) -> None:
    if vector.hook != "resid_post":
        raise TraitlensError(f"only resid_post vectors map onto layer outputs; this one is at {vector.hook}")
    mode = (vector.extra.get("recipe") or {}).get("mode", "add")
    if mode != "add":
        # Other tools add the offset; a norm-preserving or projecting edit would silently change meaning.
        raise TraitlensError(f"this vector was calibrated in mode '{mode}'; other tools can only add an offset")


def export_gguf(vector: SteeringVector, path: str | Path, model_hint: str = "llama") -> Path:
    import gguf

    _post_only(vector)
    if 0 in vector.offsets:
        raise TraitlensError("layer 0 cannot be exported: llama.cpp control vectors start at direction.1")

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), GGUF_ARCH)
        writer.add_string(f"{GGUF_ARCH}.model_hint", model_hint)
        writer.add_uint32(f"{GGUF_ARCH}.layer_count", len(vector.offsets))
        for layer, offset in vector.offsets.items():
            writer.add_tensor(f"direction.{layer}", offset.float().numpy().astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    return atomic_write(path, write)


def import_gguf(path: str | Path, model=None) -> SteeringVector:
    from traitlens.models.gguf_loader import read_gguf

    contents = read_gguf(Path(path))
    if contents.architecture != GGUF_ARCH:
        raise TraitlensError(f"{path}: not a control-vector GGUF (architecture '{contents.architecture}')")
    offsets = {}
    for tensor in contents.reader.tensors:
        if not tensor.name.startswith("direction."):
            continue
        try:
            layer = int(tensor.name.split(".", 1)[1])
        except ValueError:
            raise TraitlensError(f"{path}: bad tensor name '{tensor.name}'") from None
        offsets[layer] = torch.from_numpy(np.array(tensor.data, dtype=np.float32).reshape(-1))
    if not offsets:
        raise TraitlensError(f"{path}: no direction.N tensors")
    return _imported(offsets, model, f"gguf:{Path(path).name}")


def export_safetensors(vector: SteeringVector, path: str | Path) -> Path:
    from safetensors.torch import save_file

    _post_only(vector)
    tensors = {str(layer): offset.float().contiguous() for layer, offset in vector.offsets.items()}
    metadata = {"layer_type": "decoder_block", "trait": vector.trait, "source": "traitlens"}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def import_safetensors(path: str | Path, model=None) -> SteeringVector:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise TraitlensError(f"{path}: not a readable safetensors file ({exc})") from None
    offsets = {}
    for name, tensor in tensors.items():
        try:
            layer = int(name)
        except ValueError:
            raise TraitlensError(f"{path}: tensor names must be layer indices, got '{name}'") from None
        if tensor.ndim != 1:
            raise TraitlensError(
                f"{path}: tensor '{name}' has shape {tuple(tensor.shape)}; expected one vector [d_model]"
            )
        offsets[layer] = tensor.float()
    return _imported(offsets, model, f"safetensors:{Path(path).name}")


def _imported(offsets: dict[int, torch.Tensor], model, source: str) -> SteeringVector:
    vector = SteeringVector(
        offsets,
        hook="resid_post",
        model=model.fingerprint.to_dict() if model else {},
        method="imported",
        scale_mode="absolute",
        scales={k: float(v.norm()) for k, v in offsets.items()},
        recommended_alpha=1.0,
        extra={"imported_from": source},
    )
    if model is not None:
        if vector.d_model != model.d_model:
            raise TraitlensError(
                f"{source}: vectors have size {vector.d_model}, {model.name} has d_model {model.d_model}"
            )
        bad = [k for k in offsets if not 0 <= k < model.n_layers]
        if bad:
            raise TraitlensError(f"{source}: layer {bad[0]} out of range for {model.name} (0..{model.n_layers - 1})")
    return vector
