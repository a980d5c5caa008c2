"""The scorer's opt-in fast path (``RunOptions(fast=True)``, ``traitlens edit --fast``): not
bit-identical to the exact path, so never a default; its agreement with it is measured in
``benchmarks/calibration.py``.

Three levers, each a function of plain modules and token ids: batches cut from prompts sorted by
length (``by_length`` in ``batching``) and from answers sorted by length (``fast_chunks``), so
little of a batch is padding; the tokens every prompt starts with run once (the scorer continues
each batch from that cache); and only the real (unpadded) positions of an answer meet the
unembedding (``real_positions``), checked against the model's own logits on every pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from traitlens.accel.batching import batched

__all__ = ["fast_chunks", "unembedding_outside", "real_positions"]


def fast_chunks(groups: list, answers: Sequence[Sequence[int]], batch_size: int) -> list[list]:
    """Batches of at most twice ``batch_size`` answers, by answer length (a prompt with more
    answers than that is split), so the answers of one batch pad little. ``groups``: (prompt,
    indices of its answers) pairs."""
    cut = 2 * batch_size
    pieces = [
        (prompt, list(piece))
        for prompt, ks in groups
        for piece in batched(sorted(ks, key=lambda k: len(answers[k])), cut)
    ]
    pieces.sort(key=lambda g: (max(len(answers[k]) for k in g[1]), len(g[0])))
    chunks: list[list] = [[]]
    for piece in pieces:
        if sum(len(ks) for _, ks in chunks[-1]) + len(piece[1]) > cut:
            chunks.append([])
        chunks[-1].append(piece)
    return [c for c in chunks if c]


def unembedding_outside(module: nn.Module) -> bool:
    """Can the fast path apply the unembedding itself (``lm_head`` after the final ``norm``, no
    soft-capping)?"""
    return (
        hasattr(module, "lm_head")
        and hasattr(getattr(module, "model", None), "norm")
        and not getattr(module.config, "final_logit_softcapping", None)
    )


def real_positions(
    module: nn.Module, run: Callable[[], torch.Tensor], targets: torch.Tensor, real: torch.Tensor
) -> torch.Tensor:
    """Log-probabilities of ``targets`` at the ``real`` positions only. ``run()`` is the pass
    (returning its last position's log-probabilities); the final norm's output is caught and
    only the real rows meet the unembedding. Raises when the model's logits are not
    ``lm_head(norm(...))`` (the exact path then applies)."""
    caught: list[torch.Tensor] = []
    handle = module.model.norm.register_forward_hook(lambda _module, _args, out: caught.append(out))
    try:
        last = run()
    finally:
        handle.remove()
    where = real.bool().to(caught[-1].device)
    with torch.inference_mode():
        check = module.lm_head(caught[-1][:, -1]).float().log_softmax(-1).cpu()
        if not torch.allclose(check, last[:, -1], atol=1e-3):
            raise RuntimeError("fast scoring: the model's logits are not lm_head(norm(...)); use the exact path")
        logits = module.lm_head(caught[-1][where]).float()
        picked = logits.gather(-1, targets.to(logits.device)[where][:, None])[:, 0] - logits.logsumexp(-1)
    out = torch.zeros(real.shape)
    out[real.bool()] = picked.cpu()
    return out
