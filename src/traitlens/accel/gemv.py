"""Weight-streaming products for one or a few rows on CPUs with AVX512-BF16, built once on first use.

Decoding one sequence in bfloat16 multiplies every weight matrix by a single row, and on small
matrices ATen's bfloat16 ``mv`` (and Inductor's generated code) stream the weights well below
the memory bandwidth. ``gemv.cpp``'s ``bf16_mv`` (four rows at a time with the AVX512-BF16 dot
product, rows a block ahead prefetched, rows split over ATen's threads) streams them as fast as
float32 ``mv`` (MKL); the measurements are in ``benchmarks/NOTES.md``. Like ``mv`` it sums in float32 and rounds once, in another order, so a result may
differ from ``mv``'s in its last bit: it serves only the opt-in bfloat16 path. Its ``f32_rows``
multiplies one to eight float32 rows reading each weight once, for the opt-in speculative
engine's verification passes (``few_row_products``).

``bf16_mv()`` and ``f32_rows()`` build it with torch's extension builder into the traitlens cache (keyed by the
source and the torch and Python versions; a few seconds, once) and return the operator, or
``None`` where the CPU lacks AVX512-BF16, ``TRAITLENS_GEMV=0`` is set, or the build fails (no
compiler): callers then keep torch's own products (``torch.mv``, ``F.linear``).

torch's builder guards a build with a ``lock`` file and waits for it forever; a build killed
midway leaves it behind. So builds take a kernel lock of their own first (``flock``, released
when its holder dies, however it dies): whoever holds it knows a ``lock`` file it finds is stale
and removes it, and a build that cannot get the lock in ``BUILD_WAIT`` seconds falls back.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from traitlens._io import cache_dir

__all__ = ["cpu_flags", "bf16_mv", "f32_rows", "few_row_products", "RowsLinear", "build_lock", "BUILD_WAIT"]

SOURCE = Path(__file__).with_name("gemv.cpp")
FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16"]
BUILD_WAIT = 300.0  # seconds to wait for another process's build before falling back


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
    except OSError:
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") for word in line.split()[2:])


@contextlib.contextmanager
def build_lock(build: Path, wait: float = BUILD_WAIT) -> Iterator[bool]:
    """Yields True holding ``build``'s own kernel lock, with any ``lock`` file that torch's
    builder left there removed (nobody else can be building); False when another live process
    kept the lock for ``wait`` seconds."""
    build.mkdir(parents=True, exist_ok=True)
    with open(build / "traitlens.lock", "a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
        try:
            (build / "lock").unlink(missing_ok=True)
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_dir() -> Path:
    code = SOURCE.read_bytes()
    digest = hashlib.sha256(code + f"{torch.__version__}{sys.version}{FLAGS}".encode()).hexdigest()[:16]
    return cache_dir() / "extensions" / f"gemv-{digest}"


@cache
def _library() -> bool:
    """Build (once, into the cache) and load ``gemv.cpp``; False where that is not possible."""
    if os.environ.get("TRAITLENS_GEMV", "1") == "0" or not {"avx512_bf16", "avx512bw", "avx512vl"} <= cpu_flags():
        return False
    from torch.utils.cpp_extension import load

    build = _build_dir()
    try:
        with build_lock(build) as held, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            if not held:
                return False
            warnings.simplefilter("ignore")
            load(
                name="traitlens_gemv",
                sources=[str(SOURCE)],
                extra_cflags=FLAGS,
                extra_ldflags=["-fopenmp"],
                build_directory=str(build),
                is_python_module=False,
            )
    except Exception:  # no compiler, no ninja, a failed build: callers keep torch's own products
        return False

    @torch.library.register_fake("traitlens_gemv::bf16_mv")
    def _mv_shape(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(weight.shape[0])

    @torch.library.register_fake("traitlens_gemv::f32_rows")
    def _rows_shape(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(x.shape[0], weight.shape[0])

    return True


def bf16_mv() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """``op(weight [n, k], x [k]) -> [n]``, both bfloat16 with ``k`` a multiple of 32; ``None``
    where it is not available (see the module's docstring)."""
    return torch.ops.traitlens_gemv.bf16_mv if _library() else None


def f32_rows() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """``op(weight [n, k], x [m, k]) -> [m, n]``, float32, ``1 <= m <= 8``, ``k`` a multiple of
    16, each weight row read once; ``None`` where it is not available."""
    return torch.ops.traitlens_gemv.f32_rows if _library() else None


class RowsLinear(torch.nn.Linear):
    """A view of an ``nn.Linear`` (the same state: parameters, hooks, folded biases) whose
    forward multiplies one to eight float32 rows through ``f32_rows``, each weight row read
    once; other shapes go through ``F.linear``. It stands in for its original only inside
    ``few_row_products``, and only where the kernel has been built."""

    @classmethod
    def view(cls, linear: torch.nn.Linear) -> RowsLinear:
        made = cls.__new__(cls)
        made.__dict__ = linear.__dict__  # one state, two forwards: a fold or hook on either is on both
        return made

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[:-1].numel()
        if 1 <= rows <= 8 and x.dtype == torch.float32:
            y = torch.ops.traitlens_gemv.f32_rows(self.weight, x.reshape(rows, -1)).view(
                *x.shape[:-1], self.out_features
            )
            return y if self.bias is None else y + self.bias
        return F.linear(x, self.weight, self.bias)


# Each linear's view, made once: compiled graphs traced inside ``few_row_products`` meet the same
# modules on the next call (a cache of stand-ins; it decides nothing).
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def few_row_products(module: torch.nn.Module) -> Iterator[None]:
    """Inside, ``module``'s float32 linear layers are replaced by their ``RowsLinear`` views, so
    one to eight rows are multiplied reading each weight once (MKL packs the weights first for
    a few rows), in eager and compiled forwards alike; on leaving, the originals are back. Where
    the kernel is unavailable, nothing changes. Summed in another order: opt-in paths only."""
    swapped = []
    if f32_rows() is not None:
        for parent in module.modules():
            for name, child in parent._modules.items():
                if (
                    type(child) is torch.nn.Linear
                    and child.weight.dtype == torch.float32
                    and child.in_features % 16 == 0
                ):
                    swapped.append((parent, name, child))
    for parent, name, child in swapped:
        if child not in _VIEWS:
            _VIEWS[child] = RowsLinear.view(child)
        parent._modules[name] = _VIEWS[child]
    try:
        yield
    finally:
        for parent, name, child in swapped:
            parent._modules[name] = child
