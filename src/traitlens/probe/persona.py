"""Persona-prompt contrast, in the manner of persona vectors: the same question answered under a
system prompt describing one pole and under one describing the other. The answers are the
model's own (greedy) replies under each persona; activations are read on those answers."""

from __future__ import annotations

from collections.abc import Callable

from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.items import ItemBank
from traitlens.probe.contrast import ContrastPair, ContrastSet, Side

__all__ = ["PERSONAS", "persona_pairs"]

PERSONAS = {
    "E": "You are outgoing and talkative. Being with other people gives you energy, and you love meeting new people.",
    "I": "You are quiet and reserved. You recharge by spending time alone and prefer a few close friends to crowds.",
    "S": "You are practical and down to earth. You trust facts, details and experience over theories and hunches.",
    "N": "You are imaginative and curious about ideas. You look for patterns, possibilities and the big picture.",
    "T": "You decide with logic and objective analysis. You value fairness, honesty and getting things right.",
    "F": "You decide with your heart. You care most about people's feelings, harmony and kindness.",
    "J": "You are organised and like to plan. You make schedules, decide early and finish tasks well before deadlines.",
    "P": "You are spontaneous and flexible. You keep your options open, improvise and go with the flow.",
}
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
