"""The steering-vector artifact: one directory, every file name defined here, ``save``/``load``.

    <dir>/directions.safetensors   one float32 [d_model] tensor per layer, named "layer.<L>"
    <dir>/meta.json                format version, model fingerprint, hook point and layer
                                   convention, trait, method, scales, statistics, alpha curve
    <dir>/report.md                (optional) the edit report that produced it

A vector whose evidence failed it stays loadable (studies that used it can be re-run) but carries
``"withdrawn": {"reason": ..., "date": ...}`` in its meta (``withdraw``): the CLI warns whenever it
is applied and the vector library marks it.

Layer numbering: ``L`` is the TransformerLens block index (0-based); ``resid_post`` of block L
is the output of decoder layer L, which llama.cpp also calls layer L (its ``direction.L``; see
``interop``).
No pickle anywhere: ``.pt``/``.pkl``/``.bin`` files are refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from traitlens._io import atomic_write, read_text, write_json
from traitlens.errors import TraitlensError
from traitlens.steering.vector import SteeringVector

__all__ = ["FILES", "FORMAT_VERSION", "save_vector", "load_vector", "tensor_name", "withdraw", "withdrawn"]

FILES = {"directions": "directions.safetensors", "meta": "meta.json", "report": "report.md"}
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
LAYER_CONVENTION = "transformer_lens block index, 0-based; resid_post[L] = output of decoder layer L"


def tensor_name(layer: int) -> str:
    return f"layer.{layer}"


def save_vector(vector: SteeringVector, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
    """Write the artifact atomically (each file via a temporary and a rename)."""
    from traitlens import __version__

    directory = Path(directory)
    tensors = {tensor_name(layer): offset.float().contiguous() for layer, offset in vector.offsets.items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "traitlens_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": vector.model,
        "d_model": vector.d_model,
        "n_layers": vector.model.get("n_layers"),
        "hook": vector.hook,
        "layer_convention": LAYER_CONVENTION,
        "layers": vector.layers,
        "trait": vector.trait,
        "edit": f"{vector.trait[0]} -> {vector.trait[1]}" if len(vector.trait) == 2 else vector.trait,
        "method": vector.method,
        "scale_mode": vector.scale_mode,
        "scales": {str(k): v for k, v in vector.scales.items()},
        "stats": {str(k): v for k, v in vector.stats.items()},
        "recommended_alpha": vector.recommended_alpha,
        **vector.extra,
        **(extra_meta or {}),
    }
    metadata = {"format": "traitlens-steering", "trait": vector.trait, "hook": vector.hook}
    atomic_write(directory / FILES["directions"], lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    write_json(directory / FILES["meta"], meta)
    return directory


def withdraw(directory: str | Path, reason: str) -> Path:
    """Mark the vector in ``directory`` withdrawn for ``reason`` (one line; its meta is rewritten
    atomically, its directions untouched)."""
    reason = " ".join(str(reason).split())
    if not reason:
        raise TraitlensError("a withdrawal needs a reason")
    path = Path(directory) / FILES["meta"]
    meta = _read_meta(path)
    meta["withdrawn"] = {"reason": reason, "date": time.strftime("%Y-%m-%d", time.gmtime())}
    write_json(path, meta)
    return path


def withdrawn(vector: SteeringVector) -> str | None:
    """Why ``vector`` was withdrawn, or ``None``."""
    entry = vector.extra.get("withdrawn")
    return entry.get("reason", "withdrawn") if isinstance(entry, dict) else None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise TraitlensError(f"{path}: expected a JSON object")
    for key in ("format_version", "layers", "hook", "d_model", "model"):
        if key not in meta:
            raise TraitlensError(f"{path}: missing '{key}'")
    if meta["format_version"] != FORMAT_VERSION:
        raise TraitlensError(
            f"{path}: format version {meta['format_version']} is not supported (expected {FORMAT_VERSION})"
        )
    return meta


def load_vector(directory: str | Path) -> SteeringVector:
    """Load and validate an artifact; any defect is one clear ``TraitlensError``."""
    directory = Path(directory)
    if directory.suffix.lower() in PICKLE_SUFFIXES:
        raise TraitlensError(f"{directory}: refusing a pickle-based file; vectors are safetensors + JSON")
    if not directory.is_dir():
        raise TraitlensError(f"steering vector not found: {directory} (expected a directory with {FILES['meta']})")
    for suffix in PICKLE_SUFFIXES:
        if any(directory.glob(f"*{suffix}")) and not (directory / FILES["directions"]).is_file():
            raise TraitlensError(f"{directory}: holds a pickle-based file; vectors are safetensors + JSON")
    meta_path, tensor_path = directory / FILES["meta"], directory / FILES["directions"]
    for path in (meta_path, tensor_path):
        if not path.is_file():
            raise TraitlensError(f"{directory}: missing {path.name}")
    meta = _read_meta(meta_path)
    try:
        tensors = load_file(tensor_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise TraitlensError(f"{tensor_path}: not a readable safetensors file ({exc})") from None
    n_layers = meta.get("n_layers")
    model_layers = meta["model"].get("n_layers") if isinstance(meta["model"], dict) else None
    if n_layers is not None and model_layers is not None and n_layers != model_layers:
        raise TraitlensError(f"{meta_path}: n_layers {n_layers} disagrees with the model fingerprint's {model_layers}")
    bound = n_layers if n_layers is not None else model_layers
    if bound is not None and any(not 0 <= int(layer) < bound for layer in meta["layers"]):
        raise TraitlensError(f"{meta_path}: a listed layer is outside the model's layers 0..{bound - 1}")
    listed = {tensor_name(int(layer)) for layer in meta["layers"]}
    unlisted = sorted(set(tensors) - listed)
    if unlisted:
        raise TraitlensError(f"{tensor_path}: holds tensor '{unlisted[0]}' that meta.json does not list")
    offsets = {}
    for layer in meta["layers"]:
        name = tensor_name(int(layer))
        if name not in tensors:
            raise TraitlensError(f"{tensor_path}: no tensor '{name}' for listed layer {layer}")
        tensor = tensors[name]
        if tensor.shape != (meta["d_model"],):
            raise TraitlensError(
                f"{tensor_path}: '{name}' has shape {tuple(tensor.shape)}, expected ({meta['d_model']},)"
            )
        if not torch.isfinite(tensor).all():
            raise TraitlensError(f"{tensor_path}: '{name}' contains NaN or infinite values")
        offsets[int(layer)] = tensor.float()
    known = {
        "format_version",
        "traitlens_version",
        "created",
        "model",
        "d_model",
        "n_layers",
        "hook",
        "layer_convention",
        "layers",
        "trait",
        "edit",
        "method",
        "scale_mode",
        "scales",
        "stats",
        "recommended_alpha",
    }
    return SteeringVector(
        offsets=offsets,
        hook=meta["hook"],
        model=meta["model"],
        trait=meta.get("trait", ""),
        method=meta.get("method", ""),
        scale_mode=meta.get("scale_mode", "resid_norm"),
        scales={int(k): float(v) for k, v in meta.get("scales", {}).items()},
        stats={int(k): v for k, v in meta.get("stats", {}).items()},
        recommended_alpha=meta.get("recommended_alpha"),
        extra={k: v for k, v in meta.items() if k not in known},
    )
