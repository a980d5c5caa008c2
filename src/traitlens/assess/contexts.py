"""Neutral contexts: what an option's likelihood is when no question asks for it.

A corrected readout subtracts each option's likelihood as the reply to neutral contexts (the
*prior*), and the validity check asks how the readout answers when the question is replaced by
*other* neutral contexts. One neutral question is not neutral: on SmolLM2-135M single questions
tilt a dimension's content-free share anywhere from 17% to 81%. So both sets are large and
varied, and disjoint:

- content-free requests ("Your turn.", "Tell me about yourself."),
- everyday questions with nothing to do with personality ("How do I boil an egg?"),
- scrambled words,
- the item's own stem with its words shuffled: its vocabulary without its question.

A context is a string, or a ``ScrambledStem`` that makes one per item.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from traitlens.errors import TraitlensError
from traitlens.instrument.items import Item

__all__ = [
    "Context",
    "ContextSet",
    "ScrambledStem",
    "PRIOR_CONTEXTS",
    "CHECK_CONTEXTS",
    "FOUR",
    "WIDE",
    "CONTEXT_SETS",
    "context_set",
    "resolve",
]


@dataclass(frozen=True)
class ScrambledStem:
    """The item's stem, its words in a shuffled order (seeded by the item id and ``seed``), so
    the context carries the item's words but asks nothing."""

    seed: int

    def __call__(self, item: Item) -> str:
        words = re.findall(r"[A-Za-z0-9']+", item.stem.lower())
        rng = random.Random(f"{item.id}/{self.seed}")
        for _ in range(8):  # a different order from the stem's, where the stem allows one
            shuffled = words[:]
            rng.shuffle(shuffled)
            if shuffled != words or len(set(words)) < 2:
                break
        return " ".join(shuffled)

    def __str__(self) -> str:
        return f"<the item's stem, words shuffled (seed {self.seed})>"


Context = str | Callable[[Item], str]

_REQUESTS = (
    "Answer the question.",
    "Tell me about yourself.",
    "Reply to me.",
    "How would you describe yourself?",
    "Go ahead.",
    "Your turn.",
    "Respond, please.",
    "...",
    "Hello.",
    "Anything to add?",
    "Pick one.",
    "What do you say?",
)
_EVERYDAY = (
    "What is the weather like today?",
    "What should I cook for dinner tonight?",
    "How do I get to the train station?",
    "What's a good name for a cat?",
    "How many days are in a leap year?",
    "Where can I buy stamps?",
    "What time does the bank open?",
    "How do I boil an egg?",
    "Which colour goes with navy blue?",
    "Can you recommend a film?",
)
_SCRAMBLED = (
    "table river seven quickly under the",
    "paper window of green the loud",
    "on sings candle bicycle a between",
    "the forty orange walked slowly it",
    "cloud spoon hammer tomorrow yellow",
    "beneath counting lamp the over soft",
    "was pencil ocean if brick ninety",
    "jar morning the sideways heavy of",
    "ladder silver eat quietly north",
    "cotton the almost drum fifteen why",
)
PRIOR_CONTEXTS: tuple[Context, ...] = (*_REQUESTS, *_EVERYDAY, *_SCRAMBLED, ScrambledStem(0))

# The check's contexts share none with the prior's, so a corrected readout is not 50% by construction.
CHECK_CONTEXTS: tuple[Context, ...] = (
    "Say something.",
    "What are you like?",
    "Please answer.",
    "Describe yourself in one sentence.",
    "Talk to me.",
    "Well?",
    "What's the capital of Italy?",
    "How long should I walk each day?",
    "Is it going to rain tomorrow?",
    "What's a quick lunch idea?",
    "How do I reset my password?",
    "garden the copper listen fourteen",
    "under blanket purple the ran",
    "eleven kettle softly road a",
    "mirror of banana the winter",
    ScrambledStem(1),
)


@dataclass(frozen=True)
class ContextSet:
    """The prior's contexts, the check's (disjoint) contexts, and the gate a readout's
    content-free shares must pass: the mean within 50% +/- ``mean_tolerance`` and, where
    ``context_tolerance`` is set, every single context within 50% +/- that."""

    name: str
    prior: tuple[Context, ...]
    check: tuple[Context, ...]
    mean_tolerance: float
    context_tolerance: float | None


# The earlier sets, the first four of each: four neutral questions each, gated on the mean only.
FOUR = ContextSet("four", PRIOR_CONTEXTS[:4], CHECK_CONTEXTS[:4], 0.05, None)
WIDE = ContextSet("wide", PRIOR_CONTEXTS, CHECK_CONTEXTS, 0.03, 0.10)
CONTEXT_SETS = {s.name: s for s in (FOUR, WIDE)}


def context_set(name: str | ContextSet) -> ContextSet:
    if isinstance(name, ContextSet):
        return name
    if name not in CONTEXT_SETS:
        raise TraitlensError(f"unknown context set '{name}': use {' or '.join(CONTEXT_SETS)}")
    return CONTEXT_SETS[name]


def resolve(context: Context | None, item: Item) -> str | None:
    """The text that replaces ``item``'s stem (``None``: the stem itself)."""
    return context(item) if callable(context) else context
