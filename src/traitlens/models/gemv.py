"""A bfloat16 matrix-vector product for CPUs with AVX512-BF16, built once on first use.

Decoding one sequence in bfloat16 multiplies every weight matrix by a single row. On the
default model's small matrices (576 to 1536 wide) ATen's bfloat16 ``mv`` reads the weights at
about 15 GB/s here, and the code Inductor generates for a compiled step at about the same;
``gemv_bf16.cpp`` (four rows at a time with the AVX512-BF16 dot product, rows a block ahead
prefetched, rows split over ATen's threads) reads them at about 25 GB/s, as fast as float32
``mv`` (MKL). Like ``mv`` it sums in float32 and rounds once, in another order, so a result may
differ from ``mv``'s in its last bit: it serves only the opt-in bfloat16 path.

``bf16_mv()`` builds it with torch's extension builder into the traitlens cache (keyed by the
source and the torch and Python versions; a few seconds, once) and returns the operator, or
``None`` where the CPU lacks AVX512-BF16, ``TRAITLENS_GEMV=0`` is set, or the build fails (no
compiler): callers then keep ``torch.mv``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

from traitlens.models.registry import cache_dir

__all__ = ["cpu_flags", "bf16_mv"]

SOURCE = Path(__file__).with_name("gemv_bf16.cpp")
FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16"]


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
    except OSError:
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") for word in line.split()[2:])


@cache
def bf16_mv() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """``op(weight [n, k], x [k]) -> [n]``, both bfloat16 with ``k`` a multiple of 32; ``None``
    where it is not available (see the module's docstring)."""
    if os.environ.get("TRAITLENS_GEMV", "1") == "0" or not {"avx512_bf16", "avx512bw", "avx512vl"} <= cpu_flags():
        return None
    from torch.utils.cpp_extension import load

    code = SOURCE.read_bytes()
    digest = hashlib.sha256(code + f"{torch.__version__}{sys.version}{FLAGS}".encode()).hexdigest()[:16]
    build = cache_dir() / "extensions" / f"gemv-{digest}"
    try:
        build.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(
                name="traitlens_gemv",
                sources=[str(SOURCE)],
                extra_cflags=FLAGS,
                extra_ldflags=["-fopenmp"],
                build_directory=str(build),
                is_python_module=False,
            )
    except Exception:  # no compiler, no ninja, a failed build: the caller keeps torch.mv
        return None

    @torch.library.register_fake("traitlens_gemv::bf16_mv")
    def _shape(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(weight.shape[0])

    return torch.ops.traitlens_gemv.bf16_mv
