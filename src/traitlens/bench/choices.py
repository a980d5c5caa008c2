"""The model's choice on chat prompts, read from log-probabilities: the next token among a few
(``next_token_choice``), or the likeliest of several replies (``option_choice``). The judgement
suites and the LLM judge score through here; nothing here generates text."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from traitlens.assess.scorer import ModelScorer
from traitlens.chat import chat_ids, chat_messages

__all__ = ["chat_prompts", "attached", "next_token_choice", "option_choice"]


def chat_prompts(model, texts: Sequence[str], intervention=None) -> list[list[int]]:
    """Chat prompts; an intervention with a ``system`` prompt (a persona prompt) adds it to each."""
    system = getattr(intervention, "system", None)
    return [chat_ids(model.tokenizer, chat_messages(t, system=system)) for t in texts]


@contextlib.contextmanager
def attached(model, intervention):
    with intervention.attach(model) if intervention is not None else contextlib.nullcontext():
        yield


def next_token_choice(model, texts: Sequence[str], choices: Sequence[str], intervention) -> np.ndarray:
    """[n, len(choices)] next-token log-probabilities of single-token ``choices`` after each chat prompt."""
    token_ids = [model.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    with attached(model, intervention):
        return ModelScorer(model).next_token_logprobs(chat_prompts(model, texts, intervention), token_ids)


def option_choice(model, questions: Sequence[str], options: Sequence[Sequence[str]], intervention) -> np.ndarray:
    """Index of the option with the highest mean log-likelihood as the reply to each question."""
    prompts, answers, owner = [], [], []
    base = chat_prompts(model, questions, intervention)
    for k, (prompt, opts) in enumerate(zip(base, options, strict=True)):
        for option in opts:
            prompts.append(prompt)
            answers.append(model.tokenizer(option, add_special_tokens=False)["input_ids"])
            owner.append(k)
    with attached(model, intervention):
        scores = ModelScorer(model).continuation_logprobs(prompts, answers)
    picks, offset = [], 0
    for opts in options:
        picks.append(int(np.argmax(scores[offset : offset + len(opts)])))
        offset += len(opts)
    return np.asarray(picks)
