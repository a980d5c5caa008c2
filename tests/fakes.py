"""Fake scorers and samplers with planted preferences, for testing the arithmetic of assess."""

from __future__ import annotations

import numpy as np


class PlantedScorer:
    """Label logits: ``position`` bonus for label 1 plus ``content`` for a preferred pole;
    option log-likelihood: ``content`` for a preferred pole. ``mass`` of the next-token
    probability lands on the two labels."""

    def __init__(self, preferred: set[str], content: float = 0.0, position: float = 0.0, mass: float = 0.9):
        self.preferred, self.content, self.position, self.mass = preferred, content, position, mass
        self.label_seen: list = []

    def _bonus(self, pole: str) -> float:
        return self.content if pole in self.preferred else 0.0

    def label_logprobs(self, requests):
        self.label_seen.extend(requests)
        rows = []
        for r in requests:
            z = np.array([self.position + self._bonus(r.pole_at(0)), self._bonus(r.pole_at(1))])
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum() * self.mass
            rows.append(np.log(p))
        return np.array(rows)

    def option_logprobs(self, requests):
        return np.array([self._bonus(r.option.pole) for r in requests])


def planted_sampler(reply_for):
    """A sampler whose reply to each request is ``reply_for(request)``."""

    def sample(requests, temperature, seed):
        return [reply_for(r) for r in requests]

    return sample
