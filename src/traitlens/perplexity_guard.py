"""The perplexity guard: perplexity of the model on a neutral reference text (ours, shipped). An
edit may not raise it past its guard; the study reads it as a capability cost."""

from __future__ import annotations

import contextlib
import math
from importlib import resources

import torch

from traitlens.accel.lower_layers import forward
from traitlens.options import RunOptions

__all__ = ["reference_text", "perplexity"]


def reference_text() -> str:
    return (resources.files("traitlens.data") / "reference.txt").read_text(encoding="utf-8")


def perplexity(
    model, text: str | None = None, intervention=None, window: int = 512, options: RunOptions | None = None
) -> float:
    """Token-level perplexity of ``text`` (default: the reference text) on the plain HF module,
    with ``intervention`` attached, in non-overlapping windows (through ``options.lower_layers``
    when a calibration replays the layers below its vector: the same bits)."""
    ids = model.tokenizer(text or reference_text(), add_special_tokens=False)["input_ids"]
    bos = model.tokenizer.bos_token_id
    total, count = 0.0, 0
    lower = options.lower_layers if options is not None else None
    context = intervention.attach(model) if intervention is not None else contextlib.nullcontext()
    with context, torch.inference_mode():
        for start in range(0, len(ids), window):
            chunk = ids[start : start + window]
            if bos is not None:
                chunk = [bos, *chunk]
            tokens = torch.tensor([chunk], device=model.device)
            logits = forward(model.hf_model, lower, input_ids=tokens).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, tokens[0, 1:], reduction="sum")
            total += float(nll)
            count += tokens.shape[1] - 1
    return math.exp(total / max(count, 1))
