"""Is a readout measuring the answer? Two checks per dimension and readout, and the ``auto`` choice.

- Content-free share: the readout's answer when each item's question is replaced by a neutral
  context that is not among the prior's (a ``contexts.ContextSet``: ``FOUR`` questions, or
  ``WIDE``, 16 contexts of four kinds). A readout that measures the answer to the question has
  no reason to prefer a pole then, and gives about 50% -- in *every* context, not only on
  average: the spread (min, max, SD over the contexts) is kept beside the mean.
- Persona separation: the first pole's share under that pole's persona system prompt minus its
  share under the other pole's persona. A readout that cannot see a model told to be E or I
  cannot see a steering vector either.

Both are measured on the model as given (the caller keeps interventions and personas off), so
the choice of readout is a property of the model and the instrument, and a before/after
comparison reads both sides the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from traitlens.assess.contexts import FOUR, Context, ContextSet
from traitlens.assess.readouts import (
    CORRECTED_READOUTS,
    SCORED_READOUTS,
    LabelScore,
    OptionLoglik,
    label_readout,
    score_items,
)
from traitlens.assess.scorer import Scorer
from traitlens.instrument.items import DIMENSIONS, Item
from traitlens.instrument.personas import persona_prompt

__all__ = [
    "Spread",
    "Validity",
    "measure_validity",
    "choose_readout",
    "content_free_shares",
    "WORDING_FLAG",
]

WORDING_FLAG = 0.05  # a steered content-free share this far from the unsteered one: the vector moves wording


@dataclass(frozen=True)
class Spread:
    """One readout's content-free share of the first pole in each neutral context, and the
    gate of the context set it was measured with."""

    shares: tuple[float, ...]
    mean_tolerance: float
    context_tolerance: float | None

    @property
    def mean(self) -> float:
        return float(np.mean(self.shares))

    @property
    def worst(self) -> float:
        """The largest distance from 50% of any one context."""
        return float(np.max(np.abs(np.asarray(self.shares) - 0.5)))

    @property
    def passes(self) -> bool:
        within = self.context_tolerance is None or self.worst <= self.context_tolerance
        return abs(self.mean - 0.5) <= self.mean_tolerance and within

    def to_dict(self) -> dict:
        return {
            "mean": round(self.mean, 6),
            "min": round(min(self.shares), 6),
            "max": round(max(self.shares), 6),
            "sd": round(float(np.std(self.shares, ddof=1)) if len(self.shares) > 1 else 0.0, 6),
            "contexts": len(self.shares),
            "passes": self.passes,
        }


@dataclass
class Validity:
    """Per dimension and readout: the content-free share of the first pole in each check context,
    and the first pole's share under each pole's persona (first pole's, second pole's)."""

    spread: dict[str, dict[str, Spread]] = field(default_factory=dict)
    persona: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    label_gate: dict[str, tuple[bool, str]] = field(default_factory=dict)  # may label be used at all?

    @property
    def content_free(self) -> dict[str, dict[str, float]]:
        """The mean content-free share, per dimension and readout."""
        return {d: {r: s.mean for r, s in by.items()} for d, by in self.spread.items()}

    def separation(self, dimension: str, readout: str) -> float:
        under_first, under_second = self.persona[dimension][readout]
        return under_first - under_second

    def readouts(self, dimension: str) -> list[str]:
        return list(self.content_free[dimension])

    def to_dict(self) -> dict:
        out = {}
        for dim, shares in self.content_free.items():
            first, second = DIMENSIONS[dim]
            ok, why = self.label_gate.get(dim, (True, ""))
            out[dim] = {"label": {"excluded": why}} if not ok else {}
            out[dim] |= {
                r: {
                    "content_free_share": round(shares[r], 6),
                    "content_free_spread": self.spread[dim][r].to_dict(),
                    "persona_share": {
                        first: round(self.persona[dim][r][0], 6),
                        second: round(self.persona[dim][r][1], 6),
                    },
                    "persona_separation": round(self.separation(dim, r), 6),
                }
                for r in shares
            }
        return out


def measure_validity(
    scorer: Scorer,
    items: Sequence[Item],
    readouts: Sequence[str],
    prior: dict[str, OptionLoglik] | None,
    contexts: ContextSet = FOUR,
    label_gate: Callable[[list[LabelScore]], tuple[bool, str]] | None = None,
) -> Validity:
    """Content-free shares and persona shares for every dimension of ``items`` and readout.
    ``label_gate`` judges the label readout's own reliability first; where it fails for every
    dimension, the label passes (the costliest) are not run at all."""
    readouts = [r for r in readouts if r in SCORED_READOUTS]
    dims = [d for d in DIMENSIONS if any(i.dimension == d for i in items)]
    validity = Validity()
    if "label" in readouts and label_gate is not None:
        labels = label_readout(scorer, items)
        for dim in dims:
            validity.label_gate[dim] = label_gate([labels[i.id] for i in items if i.dimension == dim])
        if not any(ok for ok, _ in validity.label_gate.values()):
            readouts.remove("label")
    free = [score_items(scorer, items, readouts, prior, question=q) for q in contexts.check]
    gate = (contexts.mean_tolerance, contexts.context_tolerance)
    for dim in dims:
        dim_items = [i for i in items if i.dimension == dim]
        validity.spread[dim] = {r: Spread(tuple(s.share(r, dim_items) for s in free), *gate) for r in readouts}
        first, second = DIMENSIONS[dim]
        under = [score_items(scorer, dim_items, readouts, prior, system=persona_prompt(p)) for p in (first, second)]
        validity.persona[dim] = {r: (under[0].share(r, dim_items), under[1].share(r, dim_items)) for r in readouts}
    return validity


def content_free_shares(
    scorer: Scorer,
    items: Sequence[Item],
    readout_by_dim: dict[str, str],
    prior: dict[str, OptionLoglik] | None,
    questions: Sequence[Context] = FOUR.check,
) -> dict[str, float]:
    """Each dimension's first-pole share, read with its readout, when every question is replaced
    by a neutral one: on whatever is attached to the model now. Under a steering vector it says
    how far the vector moved the *wording* (the options' likelihood whatever the question), as
    opposed to the answer; the prior a corrected readout subtracts stays the caller's."""
    readouts = sorted(set(readout_by_dim.values()) & set(SCORED_READOUTS))
    dims = [d for d, r in readout_by_dim.items() if r in readouts]
    free = [
        score_items(scorer, [i for i in items if i.dimension in dims], readouts, prior, question=q) for q in questions
    ]
    return {
        d: float(np.mean([s.share(readout_by_dim[d], [i for i in items if i.dimension == d]) for s in free]))
        for d in dims
    }


def choose_readout(dimension: str, validity: Validity) -> tuple[str, str, bool]:
    """(readout, why, valid): among readouts whose content-free shares pass their context set's
    gate (the mean near 50%, and with the ``wide`` set every single context too) and whose
    persona separation is positive, the one that separates the personas most; the label
    readout must also pass its own gate. With no valid readout, the best-separating one is
    returned with ``valid = False``."""
    candidates = validity.readouts(dimension)
    label_ok = validity.label_gate.get(dimension, (True, ""))
    rejected, valid = [], []
    if "label" not in candidates and not label_ok[0]:
        rejected.append(f"label: {label_ok[1]}")
    for r in candidates:
        spread, sep = validity.spread[dimension][r], validity.separation(dimension, r)
        if r == "label" and not label_ok[0]:
            rejected.append(f"label: {label_ok[1]}")
        elif not spread.passes:
            low, high = min(spread.shares), max(spread.shares)
            rejected.append(f"{r}: content-free share {spread.mean:.1%} (contexts {low:.0%}-{high:.0%})")
        elif sep <= 0:
            rejected.append(f"{r}: persona separation {100 * sep:+.1f} pts")
        else:
            valid.append(r)
    if valid:
        # Ties (within half a point) go to the corrected readouts, then to the order above.
        order = {r: k for k, r in enumerate([*CORRECTED_READOUTS, *SCORED_READOUTS])}
        best = max(valid, key=lambda r: (round(200 * validity.separation(dimension, r)), -order[r]))
        why = (
            f"content-free share {validity.content_free[dimension][best]:.1%}, persona separation "
            f"{100 * validity.separation(dimension, best):+.1f} pts (largest of {len(valid)} valid)"
        )
        return best, why, True
    best = max(candidates, key=lambda r: validity.separation(dimension, r))
    return best, "no valid readout (" + "; ".join(rejected) + ")", False
