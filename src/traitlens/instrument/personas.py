"""Our one-sentence persona prompts, one per pole: the obvious baseline for any trait edit, and
the known manipulation against which the questionnaire's sensitivity is measured."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

__all__ = ["PERSONAS", "persona_prompt", "PersonaPrompt"]

PERSONAS: dict[str, str] = {
    "E": "You are outgoing and talkative. Being with other people gives you energy, and you love meeting new people.",
    "I": "You are quiet and reserved. You recharge by spending time alone and prefer a few close friends to crowds.",
    "S": "You are practical and down to earth. You trust facts, details and experience over theories and hunches.",
    "N": "You are imaginative and curious about ideas. You look for patterns, possibilities and the big picture.",
    "T": "You decide with logic and objective analysis. You value fairness, honesty and getting things right.",
    "F": "You decide with your heart. You care most about people's feelings, harmony and kindness.",
    "J": "You are organised and like to plan. You make schedules, decide early and finish tasks well before deadlines.",
    "P": "You are spontaneous and flexible. You keep your options open, improvise and go with the flow.",
}


def persona_prompt(pole: str) -> str:
    """The system prompt that asks the model to be ``pole`` (one of E I S N T F J P)."""
    from traitlens.errors import TraitlensError

    if pole not in PERSONAS:
        raise TraitlensError(f"unknown pole '{pole}': use one of {' '.join(PERSONAS)}")
    return PERSONAS[pole]


@dataclass(frozen=True)
class PersonaPrompt:
    """The persona prompt as an intervention: it changes no weight and no activation (``attach``
    does nothing); every chat prompt the bench builds carries ``system``. Perplexity on the
    reference text is unprompted, so it is unchanged by construction."""

    pole: str

    @property
    def system(self) -> str:
        return persona_prompt(self.pole)

    def attach(self, model, prompt_length: int | None = None) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        return {"persona_prompt": self.pole, "system": self.system}
