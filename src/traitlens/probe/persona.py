"""Persona-prompt contrast, in the manner of persona vectors: the same question answered under a
system prompt describing one pole and under one describing the other. The answers are the
model's own (greedy) replies under each persona; activations are read on those answers."""

from __future__ import annotations

from collections.abc import Callable

from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.items import ItemBank
from traitlens.personas import PERSONAS
from traitlens.probe.contrast import ContrastPair, ContrastSet, Side

__all__ = ["PERSONAS", "persona_pairs"]

_INSTRUCTION = " Answer every question in the first person, as yourself, in one or two sentences."


def _messages(pole: str, question: str) -> tuple:
    return tuple(chat_messages(question, system=PERSONAS[pole] + _INSTRUCTION))


def persona_pairs(
    model, bank: ItemBank, max_new_tokens: int = 32, progress: Callable[[int], None] | None = None
) -> ContrastSet:
    """One pair per item: its stem answered under each pole's persona (greedy, fast path)."""
    sides = []
    for item in bank:
        first, second = item.first_pole, next(o.pole for o in item.options if o.pole != item.first_pole)
        sides.append((item, _messages(first, item.stem), _messages(second, item.stem)))
    prompts = [chat_ids(model.tokenizer, m) for _, a, b in sides for m in (a, b)]
    replies = []
    for start in range(0, len(prompts), 16):
        out = generate(model, prompts[start : start + 16], max_new_tokens=max_new_tokens, batch_size=16)
        replies += [g.text.strip() or "..." for g in out]
        if progress:
            progress(len(out))
    pairs = tuple(
        ContrastPair(
            f"{item.id}/persona",
            item.id,
            item.dimension,
            item.split,
            Side(a, replies[2 * k]),
            Side(b, replies[2 * k + 1]),
        )
        for k, (item, a, b) in enumerate(sides)
    )
    return ContrastSet(pairs, "persona")
