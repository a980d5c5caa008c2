"""Helpers shared by the suites: steered batched generation and the verdict-decided stop rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from traitlens.accel.batching import batched
from traitlens.accel.decoding import Levers, StopRule
from traitlens.accel.suites import decoding_batches, fast_batch, fast_levers
from traitlens.bench.choices import chat_prompts
from traitlens.bench.refusal import PatternRefusalDetector
from traitlens.generation import generate

__all__ = ["generate_replies", "refusal_decided"]


def refusal_decided(tokenizer, detector, min_tokens: int = 8) -> StopRule:
    """A reply is decided once it opens like a refusal *and* the judge already calls it one."""
    patterns = PatternRefusalDetector()

    def rule(ids: list[int]) -> bool:
        if len(ids) < min_tokens:
            return False
        text = tokenizer.decode(ids, skip_special_tokens=True)
        return patterns.opens_like_refusal(text) and detector.is_refusal(text)

    return rule


def generate_replies(
    model,
    texts: Sequence[str],
    intervention,
    max_new_tokens: int,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 8,
    stop_when: StopRule | None = None,
    fast: bool = False,
) -> list[str]:
    """Greedy, seeded, batched (left padding), length-capped chat replies. ``fast`` (opt-in):
    the suites' decoding levers (``traitlens.accel.suites``), ``stop_when`` among them; without
    it ``stop_when`` is unused."""
    prompts = chat_prompts(model, texts, intervention)
    size = fast_batch(model.hf_model, prompts, max_new_tokens, batch_size) if fast else batch_size
    levers = fast_levers(stop_when) if fast else Levers()
    replies: dict[int, str] = {}
    for rows in decoding_batches(prompts, size) if fast else batched(list(range(len(prompts))), size):
        out = generate(
            model,
            [prompts[k] for k in rows],
            max_new_tokens=max_new_tokens,
            batch_size=size,
            seed=0,
            steering=intervention,
            levers=levers,
        )
        replies.update({k: g.text for k, g in zip(rows, out, strict=True)})
        if progress:
            progress(len(rows))
    return [replies[k] for k in range(len(prompts))]
