"""Fake scorers and samplers with planted preferences, for testing the arithmetic of assess."""

from __future__ import annotations

import numpy as np

from traitlens.instrument.personas import PERSONAS


class PlantedScorer:
    """Planted answers, per request.

    Label logits: ``position`` bonus for label 1 plus ``content`` for a preferred pole. ``mass``
    of the next-token probability lands on the two labels.

    Option log-likelihood (summed over the option's words, one "token" per word): ``content``
    for a preferred pole when the real question is asked; ``persona`` for the pole whose persona
    system prompt is set; and a length profile that does not depend on the question at all: the
    first word costs ``first_word`` nats, each further word ``later_word`` (so the mean per word
    rises with length, as with real continuations)."""

    def __init__(
        self,
        preferred: set[str],
        content: float = 0.0,
        position: float = 0.0,
        mass: float = 0.9,
        persona: float = 0.0,
        first_word: float = -3.0,
        later_word: float = -0.5,
        wording: dict[str, float] | None = None,
    ):
        self.preferred, self.content, self.position, self.mass = preferred, content, position, mass
        self.wording = wording or {}  # pole -> bonus to its options' likelihood whatever the question
        self.persona, self.first_word, self.later_word = persona, first_word, later_word
        self.label_seen: list = []
        self.option_seen: list = []

    def _bonus(self, pole: str, request) -> float:
        bonus = self.content if pole in self.preferred and request.question is None else 0.0
        if request.system is not None and request.system.startswith(PERSONAS[pole]):
            bonus += self.persona
        return bonus

    def label_logprobs(self, requests):
        self.label_seen.extend(requests)
        rows = []
        for r in requests:
            z = np.array([self.position + self._bonus(r.pole_at(0), r), self._bonus(r.pole_at(1), r)])
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum() * self.mass
            rows.append(np.log(p))
        return np.array(rows)

    def option_logprobs(self, requests):
        self.option_seen.extend(requests)
        rows = []
        for r in requests:
            words = len(r.option.text.split())
            length_part = self.first_word + self.later_word * (words - 1)
            rows.append((length_part + self._bonus(r.option.pole, r) + self.wording.get(r.option.pole, 0.0), words))
        return np.array(rows, dtype=float)


def planted_sampler(reply_for):
    """A sampler whose reply to each request is ``reply_for(request)``."""

    def sample(requests, temperature, seed):
        return [reply_for(r) for r in requests]

    return sample
