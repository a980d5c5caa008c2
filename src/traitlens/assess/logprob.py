"""The ``logprob`` protocol: the readouts, reliability figures and the ``auto`` choice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from traitlens.assess.readouts import (
    CORRECTED_READOUTS,
    SCORED_READOUTS,
    ItemScores,
    LabelScore,
    OptionLoglik,
    score_items,
)
from traitlens.assess.result import DimensionResult, record
from traitlens.assess.scorer import Scorer
from traitlens.assess.stats import bootstrap_ci
from traitlens.assess.validity import Validity, choose_readout
from traitlens.instrument.items import Item

__all__ = ["READOUTS", "ORDER_CONSISTENCY_MIN", "LABEL_MASS_MIN", "label_gate", "run_logprob"]

READOUTS = ("auto", *SCORED_READOUTS)
# `auto` considers the numbered-label readout for a dimension only if the model picks the same
# pole in both option orders for at least this share of items, and puts at least this much of
# its next-token probability on the two labels. Below either, the label answer mostly reflects
# the position, not the content. Among the rest, the validity checks choose (see ``validity``).
ORDER_CONSISTENCY_MIN = 0.75
LABEL_MASS_MIN = 0.5
# Beyond these, the position-1 win rate signals a position-driven instrument.
POSITION_BIAS_WARN = 0.8


def _label_reliability(scores: list[LabelScore]) -> dict[str, float]:
    picks = [p for s in scores for p in s.picks_position1]
    return {
        "position_bias": float(np.mean(picks)),
        "order_consistency": float(np.mean([s.consistent for s in scores])),
        "label_mass": float(np.mean([s.mass for s in scores])),
    }


def label_gate(scores: list[LabelScore]) -> tuple[bool, str]:
    """May the label readout be used at all? Only if answers follow content, not position."""
    rel = _label_reliability(scores)
    consistency, mass = rel["order_consistency"], rel["label_mass"]
    why = []
    if consistency < ORDER_CONSISTENCY_MIN:
        why.append(f"order consistency {consistency:.2f} < {ORDER_CONSISTENCY_MIN}")
    if mass < LABEL_MASS_MIN:
        why.append(f"label mass {mass:.2f} < {LABEL_MASS_MIN}")
    return (not why), "label readout unreliable: " + ", ".join(why)


def _warnings(dimension: str, used: str, rel: dict[str, float]) -> list[str]:
    out = []
    bias = rel["position_bias"]
    if bias >= POSITION_BIAS_WARN or bias <= 1 - POSITION_BIAS_WARN:
        fallback = "" if used == "label" else f"; the position-free {used} readout is used instead"
        out.append(f"{dimension}: numbered-label answers are position-driven (label 1 wins {bias:.0%}){fallback}")
    if used == "label" and rel["order_consistency"] < ORDER_CONSISTENCY_MIN:
        out.append(
            f"{dimension}: label readout used although only {rel['order_consistency']:.0%} of items are order-consistent"
        )
    if used == "label" and rel["label_mass"] < LABEL_MASS_MIN:
        out.append(f"{dimension}: only {rel['label_mass']:.0%} of next-token probability is on the labels")
    return out


def _item_record(item: Item, used: str, scores: ItemScores, computed: Sequence[str]) -> dict:
    label = None
    lab = scores.labels.get(item.id)
    if lab is not None:
        label = {
            "p_first": lab.p_first,
            "logodds_by_order": list(lab.logodds_by_order),
            "mass": lab.mass,
            "picks_position1": list(lab.picks_position1),
            "consistent": lab.consistent,
        }
    opt = scores.options.get(item.id)
    option = None
    if opt is not None:
        option = {"loglik_sum": list(opt.sums), "tokens": list(opt.lengths)}
        if scores.prior is not None:
            option["prior_sum"] = list(scores.prior[item.id].sums)
    return record(
        id=item.id,
        dimension=item.dimension,
        first_pole=item.first_pole,
        p_first=scores.p_first(used, item.id),
        readout=used,
        by_readout={r: scores.p_first(r, item.id) for r in computed},
        label=label,
        option=option,
    )


def run_logprob(
    scorer: Scorer,
    items: Sequence[Item],
    dimensions: Sequence[str],
    readout: str | dict[str, str] = "auto",
    seed: int = 0,
    *,
    prior: dict[str, OptionLoglik] | None = None,
    validity: Validity | None = None,
    system: str | None = None,
) -> tuple[dict[str, DimensionResult], list[dict], list[str]]:
    """Score ``items`` (under ``system``, if given); ``readout`` is one name for every
    dimension or one per dimension. ``auto`` needs ``validity`` (measured on the
    unsteered model) and computes every readout; a named readout computes only its own passes.
    ``prior`` (the options' content-free log-likelihoods) is needed by the corrected readouts."""
    wanted = {d: readout.get(d, "auto") if isinstance(readout, dict) else readout for d in dimensions}
    if "auto" in wanted.values() and validity is None:
        raise ValueError("readout 'auto' needs the validity measurements")
    computed = list(SCORED_READOUTS) if "auto" in wanted.values() else sorted(set(wanted.values()))
    if prior is None and any(r in CORRECTED_READOUTS for r in computed):
        raise ValueError(f"readout '{readout}' needs the options' content-free prior")
    scores = score_items(scorer, items, computed, prior, system)
    nan = float("nan")
    results, records, warnings = {}, [], []
    for dim in dimensions:
        dim_items = [i for i in items if i.dimension == dim]
        if scores.labels:
            rel = _label_reliability([scores.labels[i.id] for i in dim_items])
        else:
            rel = {"position_bias": nan, "order_consistency": nan, "label_mass": nan}
        valid = True
        if wanted[dim] == "auto":
            used, reason, valid = choose_readout(dim, validity)
        else:
            used, reason = wanted[dim], "requested"
        if validity is not None and dim in validity.content_free and used in validity.content_free[dim]:
            rel["content_free_share"] = validity.content_free[dim][used]
            rel["persona_separation"] = validity.separation(dim, used)
        p_first = np.array([scores.p_first(used, i.id) for i in dim_items])
        if scores.labels and scores.options:
            rel["readout_agreement"] = float(
                np.mean(
                    [(scores.p_first("label", i.id) > 0.5) == (scores.p_first("option", i.id) > 0.5) for i in dim_items]
                )
            )
        results[dim] = DimensionResult(
            dim, float(p_first.mean()), bootstrap_ci(p_first, seed=seed), len(dim_items), used, reason, rel, valid
        )
        if scores.labels:
            warnings.extend(_warnings(dim, used, rel))
        if not valid:
            warnings.append(f"{dim}: no readout passes the validity checks; the letter is not reported")
        records += [_item_record(i, used, scores, computed) for i in dim_items]
    return results, records, warnings
