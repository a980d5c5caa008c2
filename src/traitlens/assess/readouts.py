"""The two deterministic readouts of the ``logprob`` protocol, per item.

``label``: next-token probabilities of "1"/"2" for the item shown in both orders. The first
pole's log-odds are averaged over the two orders (not the probabilities), so a model that only
prefers a position gets exactly 0 log-odds, i.e. 50%, and any content preference survives.

``option``: position-free: the mean per-token log-likelihood of each option's text as the reply
to the bare stem; the pole probability is the softmax over the two options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from traitlens.assess.requests import label_requests, option_requests
from traitlens.assess.scorer import Scorer
from traitlens.assess.stats import sigmoid
from traitlens.items import Item

__all__ = ["LabelScore", "OptionScore", "label_readout", "option_readout"]


@dataclass(frozen=True)
class LabelScore:
    p_first: float  # probability of the dimension's first pole (E, S, T, J)
    logodds_by_order: tuple[float, float]  # first pole's log-odds, order (A,B) then (B,A)
    mass: float  # mean probability on the two labels at all
    picks_position1: tuple[bool, bool]  # per order: did label "1" win?

    @property
    def consistent(self) -> bool:
        """Same pole chosen in both orders."""
        a, b = self.logodds_by_order
        return (a > 0) == (b > 0)


@dataclass(frozen=True)
class OptionScore:
    p_first: float
    loglik: tuple[float, float]  # mean per-token log-likelihood: first pole, second pole


def label_readout(scorer: Scorer, items: Sequence[Item]) -> dict[str, LabelScore]:
    requests = label_requests(list(items))
    logprobs = np.asarray(scorer.label_logprobs(requests), dtype=float)
    by_item: dict[str, list] = {}
    for request, (lp1, lp2) in zip(requests, logprobs, strict=True):
        position1_is_first = request.pole_at(0) == request.item.first_pole
        logodds = (lp1 - lp2) if position1_is_first else (lp2 - lp1)
        by_item.setdefault(request.item.id, []).append((logodds, np.exp(lp1) + np.exp(lp2), lp1 > lp2))
    scores = {}
    for item_id, ((lo_a, mass_a, pos_a), (lo_b, mass_b, pos_b)) in by_item.items():
        scores[item_id] = LabelScore(
            p_first=float(sigmoid((lo_a + lo_b) / 2)),
            logodds_by_order=(float(lo_a), float(lo_b)),
            mass=float((mass_a + mass_b) / 2),
            picks_position1=(bool(pos_a), bool(pos_b)),
        )
    return scores


def option_readout(scorer: Scorer, items: Sequence[Item]) -> dict[str, OptionScore]:
    requests = option_requests(list(items))
    loglik = np.asarray(scorer.option_logprobs(requests), dtype=float)
    per_item: dict[str, dict[str, float]] = {}
    for request, value in zip(requests, loglik, strict=True):
        per_item.setdefault(request.item.id, {})[request.option.pole] = float(value)
    scores = {}
    for item in items:
        first, second = item.first_pole, next(o.pole for o in item.options if o.pole != item.first_pole)
        ll = (per_item[item.id][first], per_item[item.id][second])
        scores[item.id] = OptionScore(p_first=float(sigmoid(ll[0] - ll[1])), loglik=ll)
    return scores
