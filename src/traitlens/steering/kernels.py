"""The per-token steering operation, fused.

``steer(h, v, mask, alpha, mode)`` for hidden states ``h`` [..., d], a direction/offset ``v`` [d]
and a position mask [...]:

- ``add``:        h + alpha * m * v
- ``add_norm``:   (h + alpha * m * v) rescaled to the norm h had (norm-preserving)
- ``project``:    h + m * (target - <h, u>) * u with u = v/|v|: the component along v set to
                  ``target`` (``alpha`` is the target value in units of |v|)

``reference_steer`` spells it out as a chain of small tensor ops; ``fused_steer`` is one pass:
a Triton kernel on CUDA (one program per token row: load, reduce, write) and, on the CPU, a
single ``addcmul`` for ``add`` or a minimal-pass formulation for the others. Tests hold the two
equal on random inputs of many shapes in float32 and bfloat16. Where gradients are required the
reference ops run instead (the kernel has no backward), so gradients always flow.
"""

from __future__ import annotations

import torch

__all__ = ["MODES", "reference_steer", "fused_steer", "triton_available"]

MODES = ("add", "add_norm", "project")


def reference_steer(
    h: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, alpha: float, mode: str = "add"
) -> torch.Tensor:
    hf, vf, m = h.float(), v.float(), mask.float().unsqueeze(-1)
    if mode == "add":
        out = hf + alpha * m * vf
    elif mode == "add_norm":
        moved = hf + alpha * m * vf
        out = moved * (hf.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    elif mode == "project":
        u = vf / vf.norm().clamp_min(1e-12)
        target = alpha * vf.norm()
        coefficient = (hf * u).sum(-1, keepdim=True)
        out = hf + m * (target - coefficient) * u
    else:
        raise ValueError(f"unknown steering mode {mode!r}")
    return out.to(h.dtype)


def _cpu_fused(h, v, mask, alpha, mode):
    m = mask.to(h.dtype).unsqueeze(-1)
    if mode == "add":
        if h.dtype == torch.float32:
            return torch.addcmul(h, m, v.to(h.dtype), value=alpha)
        return torch.addcmul(h.float(), m.float(), v.float(), value=alpha).to(h.dtype)
    hf, vf = h.float(), v.float()
    if mode == "add_norm":
        moved = torch.addcmul(hf, m.float(), vf, value=alpha)
        ratio = torch.linalg.vector_norm(hf, dim=-1, keepdim=True) / torch.linalg.vector_norm(
            moved, dim=-1, keepdim=True
        ).clamp_min(1e-12)
        return (moved * ratio).to(h.dtype)
    norm = vf.norm().clamp_min(1e-12)
    u = vf / norm
    shift = (alpha * norm - hf @ u).unsqueeze(-1) * m.float()
    return torch.addcmul(hf, shift, u).to(h.dtype)


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


_triton_kernel = None


def _build_triton():
    import triton
    import triton.language as tl

    @triton.jit
    def steer_kernel(h_ptr, v_ptr, m_ptr, out_ptr, d, alpha, v_norm, MODE: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)  # row * d overflows 32 bits past 2^31 elements
        cols = tl.arange(0, BLOCK)
        inside = cols < d
        h = tl.load(h_ptr + row * d + cols, mask=inside, other=0.0).to(tl.float32)
        v = tl.load(v_ptr + cols, mask=inside, other=0.0).to(tl.float32)
        m = tl.load(m_ptr + row).to(tl.float32)
        if MODE == 0:
            out = h + alpha * m * v
        elif MODE == 1:
            moved = h + alpha * m * v
            ratio = tl.sqrt(tl.sum(h * h, 0)) / tl.maximum(tl.sqrt(tl.sum(moved * moved, 0)), 1e-12)
            out = moved * ratio
        else:
            u = v / v_norm
            coefficient = tl.sum(h * u, 0)
            out = h + m * (alpha * v_norm - coefficient) * u
        tl.store(out_ptr + row * d + cols, out.to(out_ptr.dtype.element_ty), mask=inside)

    return steer_kernel


def _cuda_fused(h, v, mask, alpha, mode):
    global _triton_kernel
    import triton

    if _triton_kernel is None:
        _triton_kernel = _build_triton()
    d = h.shape[-1]
    flat = h.reshape(-1, d).contiguous()
    out = torch.empty_like(flat)
    m = mask.reshape(-1).to(torch.float32).contiguous()
    vf = v.to(device=h.device, dtype=torch.float32).contiguous()
    block = triton.next_power_of_2(d)
    _triton_kernel[(flat.shape[0],)](
        flat,
        vf,
        m,
        out,
        d,
        float(alpha),
        float(vf.norm().clamp_min(1e-12)),
        MODE=MODES.index(mode),
        BLOCK=block,
        num_warps=4 if block <= 2048 else 8,
    )
    return out.reshape(h.shape)


def _needs_grad(h: torch.Tensor, v: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (h.requires_grad or v.requires_grad)


def _use_triton(h: torch.Tensor, v: torch.Tensor) -> bool:
    """The Triton kernel has no backward: where gradients are wanted the reference ops run, so
    they flow through a steered layer on CUDA exactly as on the CPU."""
    return h.is_cuda and triton_available() and not _needs_grad(h, v)


def fused_steer(h: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, alpha: float, mode: str = "add") -> torch.Tensor:
    if mode not in MODES:
        raise ValueError(f"unknown steering mode {mode!r}")
    if _use_triton(h, v):
        return _cuda_fused(h, v, mask, alpha, mode)
    if _needs_grad(h, v):
        return reference_steer(h, v.to(h.device), mask, alpha, mode)
    return _cpu_fused(h, v.to(h.device), mask, alpha, mode)
