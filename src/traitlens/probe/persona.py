"""Persona-prompt contrast, in the manner of persona vectors: the same question answered under a
system prompt describing one pole and under one describing the other. The answers are the
model's own (greedy) replies under each persona; activations are read on those answers."""

from __future__ import annotations

from collections.abc import Callable

from traitlens.accel.decoding import Levers
from traitlens.chat import chat_ids, chat_messages
from traitlens.generation import generate
from traitlens.instrument.items import ItemBank
from traitlens.instrument.personas import PERSONAS
from traitlens.options import RunOptions
from traitlens.probe.contrast import ContrastPair, ContrastSet, Side

__all__ = ["PERSONAS", "persona_pairs"]

BATCH = 16
# The code the replies' tokens depend on, beyond the scoring modules ``environment`` names.
_GENERATION_CODE = ("traitlens.generation", "traitlens.accel.decoding.loop", "traitlens.steering.inject")
_INSTRUCTION = " Answer every question in the first person, as yourself, in one or two sentences."


def _messages(pole: str, question: str) -> tuple:
    return tuple(chat_messages(question, system=PERSONAS[pole] + _INSTRUCTION))


def _replies(model, prompts: list[list[int]], max_new_tokens: int, progress, options: RunOptions) -> list[str]:
    """Greedy replies, 16 prompts a batch; with a memo that has a store (an edit's), kept there
    like a scoring pass, so the next edit of the same model reads the same replies back. With
    ``options.fast`` the generator's opt-in levers apply (prompts in token order, so one
    persona's prompts share their system turn; finished rows dropped; bfloat16 head candidates)."""
    fast = options.fast

    def compute() -> list[str]:
        order = sorted(range(len(prompts)), key=lambda k: prompts[k]) if fast else list(range(len(prompts)))
        levers = Levers(share_prefix=True, compact=True, candidates=True) if fast else Levers()
        replies: dict[int, str] = {}
        for start in range(0, len(prompts), BATCH):
            rows = order[start : start + BATCH]
            out = generate(
                model, [prompts[k] for k in rows], max_new_tokens=max_new_tokens, batch_size=BATCH, levers=levers
            )
            replies.update({k: g.text.strip() or "..." for k, g in zip(rows, out, strict=True)})
            if progress:
                progress(len(out))
        return [replies[k] for k in range(len(prompts))]

    if options.memo is None or not model.untouched():  # something attached is in no key
        return compute()
    what = (*model.identity, "persona-replies", tuple(map(tuple, prompts)), max_new_tokens, BATCH)
    what += ("fast",) if fast else ()
    on_hit = (lambda: progress(len(prompts))) if progress else (lambda: None)
    return options.memo.texts(what, _GENERATION_CODE, len(prompts), compute, on_hit)


def persona_pairs(
    model,
    bank: ItemBank,
    max_new_tokens: int = 32,
    progress: Callable[[int], None] | None = None,
    options: RunOptions | None = None,
) -> ContrastSet:
    """One pair per item: its stem answered under each pole's persona (greedy)."""
    sides = []
    for item in bank:
        first, second = item.first_pole, next(o.pole for o in item.options if o.pole != item.first_pole)
        sides.append((item, _messages(first, item.stem), _messages(second, item.stem)))
    prompts = [chat_ids(model.tokenizer, m) for _, a, b in sides for m in (a, b)]
    replies = _replies(model, prompts, max_new_tokens, progress, options or RunOptions())
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
