"""Opt-in reduced precision for the fast path (``--dtype bfloat16``).

Only the plain HF module that generates and scores is cast; the bridge (hooks, probes) keeps
float32. Reduced precision changes tokens, so it is never a default: its speed-up and its
agreement with float32 are measured in ``benchmarks/decode.py`` and ``benchmarks/suites.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from traitlens.accel.gemv import bf16_mv, cpu_flags
from traitlens.errors import TraitlensError

__all__ = ["DTYPES", "check_dtype", "cpu_has_bf16", "cast_parameters", "contiguous_head", "RowLinear", "row_products"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_has_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16 (where bfloat16 matrix products are native, not emulated)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def check_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """The torch dtype for ``name``, or a one-line error when it is unknown or ``device`` cannot run it."""
    if name not in DTYPES:
        raise TraitlensError(f"unknown dtype '{name}': use {', '.join(DTYPES)}")
    dtype = DTYPES[name]
    if dtype is torch.float32:
        return dtype
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise TraitlensError(f"--dtype {name} on {device}, but no CUDA device is available")
        if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise TraitlensError("this GPU cannot run bfloat16; use float16 or float32")
        return dtype
    if dtype is torch.float16:
        raise TraitlensError("float16 runs on GPUs only; on CPU use bfloat16 (with AMX or AVX512-BF16) or float32")
    if not cpu_has_bf16():
        raise TraitlensError("this CPU has neither AMX-BF16 nor AVX512-BF16: bfloat16 would be emulated; use float32")
    return dtype


def cast_parameters(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Give ``module`` new ``dtype`` parameters (tied ones stay tied); buffers such as rotary
    frequencies keep their precision, and any module sharing the old tensors is left as it was."""
    made: dict[int, torch.nn.Parameter] = {}
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None or not param.is_floating_point():
                continue
            if id(param) not in made:
                made[id(param)] = torch.nn.Parameter(param.detach().to(dtype), requires_grad=False)
            sub._parameters[name] = made[id(param)]
    return module


def _contiguous_input(module: torch.nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def contiguous_head(module: torch.nn.Module) -> torch.nn.Module:
    """Give ``module``'s output embedding a contiguous input.

    HF models unembed ``hidden[:, -k:, :]``, a strided view when the sequence is longer than
    ``k`` (every prefill). For such an input, a bfloat16 ``linear`` on CPU expands the
    vocabulary-wide weight once per row into a batched product, most of a bfloat16 scoring pass
    (``benchmarks/NOTES.md``). With the rows copied together first it is one matrix product, bit-identical for up to 16 rows (in float32 the two paths
    round differently, so the float32 default is left as Hugging Face runs it)."""
    head = module.get_output_embeddings() if hasattr(module, "get_output_embeddings") else None
    if head is not None and not getattr(head, "_traitlens_contiguous", False):
        head.register_forward_pre_hook(_contiguous_input)
        head._traitlens_contiguous = True
    return module


class RowLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose one-row products run as matrix-vector products.

    Decoding one sequence multiplies each weight by a single row. A bfloat16 ``linear`` on
    CPU goes through a matrix-matrix kernel that streams the weights slower than ``mv``, and
    traitlens' AVX512-BF16 kernel (``accel.gemv``, where it builds) faster still, so bfloat16
    only pays off this way (``benchmarks/NOTES.md``). The weight and bias are read at every call, so folded steering biases still apply."""

    mv: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.mv

    @classmethod
    def twin(cls, linear: torch.nn.Linear, mv=None) -> RowLinear:
        """A ``RowLinear`` holding ``linear``'s own parameters (``mv``: its one-row product)."""
        made = cls.__new__(cls)
        torch.nn.Module.__init__(made)
        made.in_features, made.out_features = linear.in_features, linear.out_features
        made.weight, made.bias = linear.weight, linear.bias
        if mv is not None:
            made.mv = mv
        return made

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[:-1].numel() != 1:
            return torch.nn.functional.linear(x, self.weight, self.bias)
        vector = x.reshape(-1)
        mv = self.mv if vector.dtype == self.weight.dtype else torch.mv
        y = mv(self.weight, vector).view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


def row_products(module: torch.nn.Module) -> torch.nn.Module:
    """Every plain ``nn.Linear`` of ``module`` is replaced by its ``RowLinear`` twin (the same
    parameters), bfloat16 one-row products through ``accel.gemv`` where that kernel builds."""
    plain = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent._modules.items()
        if type(child) is torch.nn.Linear
    ]
    for parent, name, child in plain:
        fits = (
            child.weight.dtype is torch.bfloat16 and child.weight.device.type == "cpu" and child.in_features % 32 == 0
        )
        parent._modules[name] = RowLinear.twin(child, bf16_mv() if fits else None)
    return module
