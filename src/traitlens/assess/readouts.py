"""The deterministic readouts of the ``logprob`` protocol, per item.

``label``: next-token probabilities of "1"/"2" for the item shown in both orders. The first
pole's log-odds are averaged over the two orders (not the probabilities), so a model that only
prefers a position gets exactly 0 log-odds, i.e. 50%, and any content preference survives.

The option family is position-free: each option's text is scored as the reply to the bare stem.

- ``option``: mean per-token log-likelihood (raw);
- ``option_sum``: summed log-likelihood (raw);
- ``pmi``: summed log-likelihood minus the option's content-free prior, the summed
  log-likelihood of the same text as the reply to neutral questions (domain-conditional PMI);
- ``pmi_mean``: the same difference per token.

Raw readouts measure how likely an option's wording is on its own as much as the answer to the
question; the corrected ones subtract exactly that. The pole probability is the softmax over
the two options' scores. One pass over the options serves the whole family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from traitlens.assess.contexts import Context
from traitlens.assess.requests import label_requests, option_requests
from traitlens.assess.scorer import Scorer
from traitlens.assess.stats import sigmoid
from traitlens.instrument.items import Item

__all__ = [
    "LabelScore",
    "OptionLoglik",
    "OptionScore",
    "ItemScores",
    "OPTION_READOUTS",
    "CORRECTED_READOUTS",
    "SCORED_READOUTS",
    "label_readout",
    "option_logliks",
    "option_prior",
    "option_readout",
    "score_items",
]

OPTION_READOUTS = ("option", "option_sum", "pmi", "pmi_mean")
CORRECTED_READOUTS = ("pmi", "pmi_mean")
SCORED_READOUTS = ("label", *OPTION_READOUTS)


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
class OptionLoglik:
    """Summed log-likelihood and token count of each pole's option: first pole, second pole."""

    sums: tuple[float, float]
    lengths: tuple[float, float]

    def score(self, readout: str, prior: OptionLoglik | None = None) -> tuple[float, float]:
        sums = np.asarray(self.sums, dtype=float)
        if readout in CORRECTED_READOUTS:
            if prior is None:
                raise ValueError(f"readout '{readout}' needs the options' content-free prior")
            sums = sums - np.asarray(prior.sums, dtype=float)
        if readout in ("option", "pmi_mean"):
            sums = sums / np.asarray(self.lengths, dtype=float)
        return float(sums[0]), float(sums[1])

    def p_first(self, readout: str, prior: OptionLoglik | None = None) -> float:
        a, b = self.score(readout, prior)
        return float(sigmoid(a - b))


@dataclass(frozen=True)
class OptionScore:
    p_first: float
    loglik: tuple[float, float]  # mean per-token log-likelihood: first pole, second pole


def _second_pole(item: Item) -> str:
    return next(o.pole for o in item.options if o.pole != item.first_pole)


def label_readout(
    scorer: Scorer, items: Sequence[Item], system: str | None = None, question: Context | None = None
) -> dict[str, LabelScore]:
    requests = label_requests(list(items), system, question)
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


def option_logliks(
    scorer: Scorer, items: Sequence[Item], system: str | None = None, question: Context | None = None
) -> dict[str, OptionLoglik]:
    """Each item's two options scored as replies (to the stem, or to ``question`` instead)."""
    requests = option_requests(list(items), system, question)
    rows = np.asarray(scorer.option_logprobs(requests), dtype=float).reshape(len(requests), 2)
    per_item: dict[str, dict[str, tuple[float, float]]] = {}
    for request, (total, length) in zip(requests, rows, strict=True):
        per_item.setdefault(request.item.id, {})[request.option.pole] = (float(total), float(length))
    out = {}
    for item in items:
        first, second = per_item[item.id][item.first_pole], per_item[item.id][_second_pole(item)]
        out[item.id] = OptionLoglik((first[0], second[0]), (first[1], second[1]))
    return out


def option_prior(scorer: Scorer, items: Sequence[Item], questions: Sequence[Context]) -> dict[str, OptionLoglik]:
    """The content-free prior of every option: its summed log-likelihood as the reply to each
    neutral question (no system prompt), averaged over the questions."""
    runs = [option_logliks(scorer, items, question=q) for q in questions]
    return {
        item.id: OptionLoglik(
            tuple(float(np.mean([r[item.id].sums[k] for r in runs])) for k in (0, 1)),
            runs[0][item.id].lengths,
        )
        for item in items
    }


def option_readout(scorer: Scorer, items: Sequence[Item]) -> dict[str, OptionScore]:
    """The raw ``option`` readout with each option's mean per-token log-likelihood."""
    logliks = option_logliks(scorer, items)
    return {item_id: OptionScore(ll.p_first("option"), ll.score("option")) for item_id, ll in logliks.items()}


@dataclass
class ItemScores:
    """Everything one condition (a system prompt, a question) gives for a set of items."""

    labels: dict[str, LabelScore]
    options: dict[str, OptionLoglik]
    prior: dict[str, OptionLoglik] | None

    def p_first(self, readout: str, item_id: str) -> float:
        if readout == "label":
            return self.labels[item_id].p_first
        return self.options[item_id].p_first(readout, self.prior[item_id] if self.prior else None)

    def share(self, readout: str, items: Sequence[Item]) -> float:
        return float(np.mean([self.p_first(readout, i.id) for i in items]))


def score_items(
    scorer: Scorer,
    items: Sequence[Item],
    readouts: Sequence[str],
    prior: dict[str, OptionLoglik] | None = None,
    system: str | None = None,
    question: Context | None = None,
) -> ItemScores:
    """The passes ``readouts`` need, and nothing more."""
    labels = label_readout(scorer, items, system, question) if "label" in readouts else {}
    wants_options = any(r in OPTION_READOUTS for r in readouts)
    options = option_logliks(scorer, items, system, question) if wants_options else {}
    return ItemScores(labels, options, prior)
