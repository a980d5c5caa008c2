"""The ``logprob`` protocol: both readouts, reliability figures and the ``auto`` choice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from traitlens.assess.readouts import LabelScore, OptionScore, label_readout, option_readout
from traitlens.assess.result import DimensionResult, record
from traitlens.assess.scorer import Scorer
from traitlens.assess.stats import bootstrap_ci
from traitlens.items import Item

__all__ = ["READOUTS", "ORDER_CONSISTENCY_MIN", "LABEL_MASS_MIN", "run_logprob"]

READOUTS = ("auto", "label", "option")
# `auto` trusts the numbered-label readout for a dimension only if the model picks the same pole
# in both option orders for at least this share of items, and puts at least this much of its
# next-token probability on the two labels. Below either, the label answer mostly reflects the
# position, not the content, and the position-free option readout is used instead.
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


def _choose(readout: str, rel: dict[str, float]) -> tuple[str, str]:
    if readout != "auto":
        return readout, "requested"
    consistency, mass = rel["order_consistency"], rel["label_mass"]
    if consistency >= ORDER_CONSISTENCY_MIN and mass >= LABEL_MASS_MIN:
        return "label", f"order consistency {consistency:.2f} >= {ORDER_CONSISTENCY_MIN}, label mass {mass:.2f}"
    why = []
    if consistency < ORDER_CONSISTENCY_MIN:
        why.append(f"order consistency {consistency:.2f} < {ORDER_CONSISTENCY_MIN}")
    if mass < LABEL_MASS_MIN:
        why.append(f"label mass {mass:.2f} < {LABEL_MASS_MIN}")
    return "option", "label readout unreliable: " + ", ".join(why)


def _warnings(dimension: str, used: str, rel: dict[str, float]) -> list[str]:
    out = []
    bias = rel["position_bias"]
    if bias >= POSITION_BIAS_WARN or bias <= 1 - POSITION_BIAS_WARN:
        fallback = "" if used == "label" else "; the position-free option readout is used instead"
        out.append(f"{dimension}: numbered-label answers are position-driven (label 1 wins {bias:.0%}){fallback}")
    if used == "label" and rel["order_consistency"] < ORDER_CONSISTENCY_MIN:
        out.append(
            f"{dimension}: label readout used although only {rel['order_consistency']:.0%} of items are order-consistent"
        )
    if used == "label" and rel["label_mass"] < LABEL_MASS_MIN:
        out.append(f"{dimension}: only {rel['label_mass']:.0%} of next-token probability is on the labels")
    return out


def _item_record(item: Item, used: str, p_first: float, lab: LabelScore | None, opt: OptionScore | None) -> dict:
    label = None
    if lab is not None:
        label = {
            "p_first": lab.p_first,
            "logodds_by_order": list(lab.logodds_by_order),
            "mass": lab.mass,
            "picks_position1": list(lab.picks_position1),
            "consistent": lab.consistent,
        }
    option = {"p_first": opt.p_first, "loglik": list(opt.loglik)} if opt is not None else None
    return record(
        id=item.id,
        dimension=item.dimension,
        first_pole=item.first_pole,
        p_first=p_first,
        readout=used,
        label=label,
        option=option,
    )


def run_logprob(
    scorer: Scorer, items: Sequence[Item], dimensions: Sequence[str], readout: str = "auto", seed: int = 0
) -> tuple[dict[str, DimensionResult], list[dict], list[str]]:
    """Both readouts under ``auto``; a forced readout computes only itself (half the passes),
    and the other readout's reliability figures are then NaN."""
    labels = label_readout(scorer, items) if readout in ("auto", "label") else {}
    options = option_readout(scorer, items) if readout in ("auto", "option") else {}
    nan = float("nan")
    results, records, warnings = {}, [], []
    for dim in dimensions:
        dim_items = [i for i in items if i.dimension == dim]
        if labels:
            rel = _label_reliability([labels[i.id] for i in dim_items])
        else:
            rel = {"position_bias": nan, "order_consistency": nan, "label_mass": nan}
        used, reason = _choose(readout, rel)
        chosen = labels if used == "label" else options
        p_first = np.array([chosen[i.id].p_first for i in dim_items])
        rel["readout_agreement"] = (
            float(np.mean([(labels[i.id].p_first > 0.5) == (options[i.id].p_first > 0.5) for i in dim_items]))
            if labels and options
            else nan
        )
        results[dim] = DimensionResult(
            dim, float(p_first.mean()), bootstrap_ci(p_first, seed=seed), len(dim_items), used, reason, rel
        )
        if labels:
            warnings.extend(_warnings(dim, used, rel))
        records += [_item_record(i, used, chosen[i.id].p_first, labels.get(i.id), options.get(i.id)) for i in dim_items]
    return results, records, warnings
