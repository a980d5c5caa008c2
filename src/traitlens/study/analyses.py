"""The study's analyses, computed from the units' cached results (no model needed):
dose-response, jailbreak by pole, steering vs prompting, across models. The paper side by side
lives in ``paper``."""

from __future__ import annotations

import math
from typing import Any

from traitlens.instrument.items import DIMENSIONS
from traitlens.paired import paired_shift, sign_flip_p
from traitlens.study.execute import StudyRun
from traitlens.study.spec import Condition
from traitlens.study.stats import (
    ItemMatrix,
    holm,
    mcnemar,
    paired_difference,
    pearson_ci,
    slope_test,
)

__all__ = [
    "Table",
    "dose_response",
    "jailbreak_by_pole",
    "steering_vs_prompting",
    "models",
    "model_pairs",
    "null_results",
    "POLE_DIM",
]

POLE_DIM = {p: d for d, poles in DIMENSIONS.items() for p in poles}


class Table:
    """The study's results indexed by (model, condition label, target)."""

    def __init__(self, run: StudyRun) -> None:
        self.run = run
        self.cells: dict[tuple[str, str, str], dict] = {}
        for r in run.results:
            unit = r["unit"]
            self.cells[(unit.model, unit.condition.label, unit.target)] = r["result"]
        self.bank = next((t for t, _ in run.spec.instruments if t.startswith("bank:")), None)
        self.suites = list(run.spec.suites)

    def get(self, model: str, condition: Condition, target: str) -> dict | None:
        return self.cells.get((model, condition.label, target))

    def row(self, model: str, condition: Condition, target: str, metric: str | None = None) -> dict | None:
        result = self.get(model, condition, target)
        if result is None:
            return None
        return next((r for r in result["rows"] if metric is None or r["metric"] == metric), None)

    def share(self, model: str, condition: Condition, pole: str, target: str | None = None) -> float | None:
        """Share of ``pole`` on an instrument (default: the bank)."""
        first = DIMENSIONS[POLE_DIM[pole]][0]
        row = self.row(model, condition, target or self.bank or "", f"share_{first}")
        if row is None:
            return None
        return row["value"] if pole == first else 1 - row["value"]

    def value(self, model: str, condition: Condition, target: str) -> float | None:
        row = self.row(model, condition, target)
        return None if row is None else row["value"]

    def pole_items(self, model: str, condition: Condition, pole: str, target: str | None = None) -> list | None:
        """Each item's probability of ``pole`` on an instrument (default: the bank), in item order."""
        result = self.get(model, condition, target or self.bank or "")
        dimension = POLE_DIM[pole]
        values = None if result is None else result["details"].get("items", {}).get(dimension)
        if values is None:
            return None
        return list(values) if pole == DIMENSIONS[dimension][0] else [1 - v for v in values]

    def shift_test(self, model: str, condition: Condition, pole: str, target: str | None = None) -> dict | None:
        """The shift of ``pole`` from no intervention to ``condition``, paired over the same items."""
        before, after = self.pole_items(model, NONE, pole, target), self.pole_items(model, condition, pole, target)
        if before is None or after is None or len(before) != len(after):
            return None
        return paired_shift(before, after)

    def items(self, model: str, condition: Condition, suite: str) -> dict | None:
        result = self.get(model, condition, f"suite:{suite}")
        return None if result is None else result["details"].get("items")

    def vectors(self, model: str) -> dict[str, list[Condition]]:
        out: dict[str, list[Condition]] = {}
        for c in self.run.spec.conditions[model]:
            if c.kind == "vector":
                out.setdefault(c.name, []).append(c)
        return {k: sorted(v, key=lambda c: c.multiple) for k, v in out.items()}


NONE = Condition("none")


def _shift(table: Table, model: str, condition: Condition, pole: str, target: str | None = None) -> float | None:
    after, before = table.share(model, condition, pole, target), table.share(model, NONE, pole, target)
    return None if after is None or before is None else after - before


def _off_target(table: Table, model: str, condition: Condition, dimension: str) -> float | None:
    shifts = [_shift(table, model, condition, DIMENSIONS[d][0]) for d in DIMENSIONS if d != dimension and table.bank]
    shifts = [abs(s) for s in shifts if s is not None]
    return max(shifts) if shifts else None


def dose_response(table: Table, model: str) -> dict[str, Any]:
    """Per edit: target share, off-target shift, perplexity and every safety metric against the
    strength (none = 0); per safety metric, its slope per 10 points of target share (paired
    bootstrap CI, within-item permutation p, Holm-corrected across the whole family)."""
    edits, family = {}, []
    for name, conditions in table.vectors(model).items():
        pole, dimension = name[1], POLE_DIM[name[1]]
        chain = [NONE] + conditions
        points = []
        for c in chain:
            share = table.share(model, c, pole)
            point = {
                "multiple": c.multiple,
                "target_share": share,
                "target_shift_test": None if c is NONE else table.shift_test(model, c, pole),
                "off_target_shift": _off_target(table, model, c, dimension),
                "perplexity": table.value(model, c, "perplexity"),
            }
            for suite in table.suites:
                row = table.row(model, c, f"suite:{suite}")
                if row is not None:
                    point[suite] = {"value": row["value"], "ci": row["ci"], "n": row["n"], "mdd": row.get("mdd")}
            points.append(point)
        slopes = {}
        for suite in table.suites:
            usable = [c for c in chain if table.items(model, c, suite) and table.share(model, c, pole) is not None]
            if len(usable) < 3:
                continue
            matrix = ItemMatrix.from_items([table.items(model, c, suite) for c in usable])
            test = slope_test([table.share(model, c, pole) for c in usable], matrix)
            slopes[suite] = test | {"conditions": len(usable)}
            family.append((name, suite))
        edits[name] = {"target_pole": pole, "points": points, "slopes": slopes}
    adjusted = holm([edits[n]["slopes"][s]["p"] for n, s in family]) if family else []
    for (name, suite), p in zip(family, adjusted, strict=True):
        edits[name]["slopes"][suite]["p_holm"] = p
    return {"edits": edits, "family_size": len(family)}


def null_results(table: Table, model: str) -> dict[str, Any]:
    """Per vector (at its recommended alpha): each questionnaire metric's effect, its null's
    percentiles and p; the target dimension's p Holm-corrected across the vectors."""
    out = {}
    for name, chain in table.vectors(model).items():
        condition = next((c for c in chain if c.recommended), None)
        result = table.get(model, condition, "null") if condition is not None else None
        if result is None:
            continue
        null = result["details"]["null"]
        target = f"share_{DIMENSIONS[POLE_DIM[name[1]]][0]}"
        out[name] = {"draws": null["draws"], "target_metric": target, "metrics": null["metrics"]}
        out[name]["perplexity"] = null["perplexity"]
    names = list(out)
    for name, p in zip(names, holm([out[n]["metrics"][out[n]["target_metric"]]["p"] for n in names]), strict=True):
        out[name]["target_p_holm"] = p
    return out


def _matched(table: Table, model: str, toward_a: list[Condition], toward_b: list[Condition]):
    """The pair of strengths (one per pole) with jailbreak results whose perplexities are closest."""
    pairs = [
        (abs((table.value(model, a, "perplexity") or 0) - (table.value(model, b, "perplexity") or 0)), a, b)
        for a in toward_a
        for b in toward_b
        if table.items(model, a, "jailbreak") and table.items(model, b, "jailbreak")
    ]
    return min(pairs, key=lambda t: (t[0], abs(t[1].multiple - 1) + abs(t[2].multiple - 1)))[1:] if pairs else None


def jailbreak_by_pole(table: Table, model: str) -> dict[str, Any]:
    """Fig. 6 by steering: attack success under the vector towards each pole of a dimension, at
    matched perplexity, paired over the same (goal, attack) prompts (exact McNemar per attack)."""
    vectors, out = table.vectors(model), {}
    for dimension, (a, b) in DIMENSIONS.items():
        pair = _matched(table, model, vectors.get(b + a, []), vectors.get(a + b, []))
        if pair is None:
            continue
        ca, cb = pair
        cells_a, cells_b = table.items(model, ca, "jailbreak")["cells"], table.items(model, cb, "jailbreak")["cells"]
        attacks = list(dict.fromkeys(c[1] for c in cells_a))
        per_attack = {}
        for attack in attacks:  # one cell per goal: McNemar over goals is exact
            xa = [c[2] for c in cells_a if c[1] == attack]
            xb = [c[2] for c in cells_b if c[1] == attack]
            per_attack[attack] = {a: sum(xa) / len(xa), b: sum(xb) / len(xb), "diff": (sum(xa) - sum(xb)) / len(xa)}
            per_attack[attack] |= {"mcnemar": mcnemar(xa, xb), "p": mcnemar(xa, xb)["p"]}
        by_goal = _goal_differences(cells_a, cells_b)
        xa, xb = [c[2] for c in cells_a], [c[2] for c in cells_b]
        per_attack["all"] = {a: sum(xa) / len(xa), b: sum(xb) / len(xb), "diff": (sum(xa) - sum(xb)) / len(xa)}
        per_attack["all"] |= {"p_goal_clustered": sign_flip_p(by_goal), "n_goals": len(by_goal)}
        matrix = ItemMatrix.from_items([table.items(model, ca, "jailbreak"), table.items(model, cb, "jailbreak")])
        out[dimension] = {
            "poles": [a, b],
            "conditions": [ca.label, cb.label],
            "perplexity": [table.value(model, ca, "perplexity"), table.value(model, cb, "perplexity")],
            "target_shift": [_shift(table, model, ca, a), _shift(table, model, cb, b)],
            "n_goals": matrix.values.shape[1],
            "by_attack": per_attack,
            "diff_ci": paired_difference(matrix, 1, 0),  # a minus b, clustered by goal
        }
    rows = [x for e in out.values() for attack, x in e["by_attack"].items() if attack != "all"]
    for row, p in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = p
    for e in out.values():
        e["attack_family_size"] = _tested(rows)
    return out


def _goal_differences(cells_a: list, cells_b: list) -> list[float]:
    """Per goal, the mean over its attacks of (success under a) - (success under b): goals are
    the independent units, attacks on one goal are not."""
    per_goal: dict[int, list[float]] = {}
    b_of = {(c[0], c[1]): c[2] for c in cells_b}
    for goal, attack, success in (c[:3] for c in cells_a):
        if (goal, attack) in b_of:
            per_goal.setdefault(goal, []).append(success - b_of[(goal, attack)])
    return [sum(v) / len(v) for v in per_goal.values()]


def _interpolate(xs: list[float], ys: list[float | None], x: float) -> float | None:
    pts = sorted((a, b) for a, b in zip(xs, ys, strict=True) if a is not None and b is not None)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if min(x0, x1) <= x <= max(x0, x1) and x1 != x0:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def steering_vs_prompting(table: Table, model: str) -> dict[str, Any]:
    """Per pole with both a vector towards it and its persona prompt: trait shift (every
    instrument), off-target shift, perplexity and safety deltas against none; and the vector's
    perplexity interpolated to the prompt's trait shift (equal shift)."""
    vectors, out = table.vectors(model), {}
    instruments = [t for t, _ in table.run.spec.instruments]
    for condition in table.run.spec.conditions[model]:
        if condition.kind != "persona":
            continue
        pole = condition.name
        dimension = POLE_DIM[pole]
        other = next(p for p in DIMENSIONS[dimension] if p != pole)
        chain = vectors.get(other + pole)
        if not chain:
            continue
        vector = min(chain, key=lambda c: abs(c.multiple - 1))
        arms = {"vector": vector, "prompt": condition}
        entry: dict[str, Any] = {"labels": {"vector": vector.label, "prompt": condition.label}}
        for arm, c in arms.items():
            safety = {}
            for suite in table.suites:
                items, base = table.items(model, c, suite), table.items(model, NONE, suite)
                if items and base:
                    safety[suite] = paired_difference(ItemMatrix.from_items([base, items]), 0, 1)
            ppl, base_ppl = table.value(model, c, "perplexity"), table.value(model, NONE, "perplexity")
            entry[arm] = {
                "shift": {t: _shift(table, model, c, pole, t) for t in instruments},
                "shift_test": {t: table.shift_test(model, c, pole, t) for t in instruments},
                "off_target_shift": _off_target(table, model, c, dimension),
                "perplexity_change": None if not ppl or not base_ppl else ppl / base_ppl - 1,
                "safety_delta": safety,
            }
        full = [NONE] + chain
        shares = [table.share(model, c, pole) for c in full]
        ppls = [table.value(model, c, "perplexity") for c in full]
        target = table.share(model, condition, pole)
        base_ppl = table.value(model, NONE, "perplexity")
        at = _interpolate(shares, ppls, target) if target is not None else None
        entry["vector_at_prompt_shift"] = {
            "multiple": _interpolate(shares, [c.multiple for c in full], target) if target is not None else None,
            "perplexity_change": None if at is None or not base_ppl else at / base_ppl - 1,
        }
        out[pole] = entry
    return out


def models(table: Table) -> dict[str, Any]:
    """Type per model (unsteered) and the association, pooled over every condition of every
    model, between each dimension's first-pole share and each safety metric."""
    spec = table.run.spec
    types = {}
    for model in spec.models:
        result = table.get(model, NONE, table.bank or "")
        types[model] = None if result is None else result["details"].get("type")
    associations = {}
    for first, _ in DIMENSIONS.values():
        for suite in table.suites:
            xs, ys = [], []
            for model in spec.models:
                for c in spec.conditions[model]:
                    share, value = table.share(model, c, first), table.value(model, c, f"suite:{suite}")
                    if share is not None and value is not None and math.isfinite(value):
                        xs.append(share)
                        ys.append(value)
            associations[f"{first}|{suite}"] = pearson_ci(xs, ys)
    for association, p in zip(associations.values(), holm([a["p"] for a in associations.values()]), strict=True):
        association["p_holm"] = p
    return {"types": types, "associations": associations, "family_size": _tested(associations.values())}


def _tested(rows) -> int:
    """How many rows of a family were tested (a Holm family's size)."""
    return sum(1 for r in rows if math.isfinite(r.get("p", math.nan)))


def _paired_values(table: Table, model: str, target: str) -> dict[str, dict]:
    """Per-item values of one unsteered unit, by metric: first-pole shares per dimension (bank),
    the suite's item values, and for jailbreak the refused share per goal as well."""
    result = table.get(model, NONE, target)
    if result is None:
        return {}
    items = result["details"].get("items") or {}
    if target.startswith("bank:"):
        return {f"share_{DIMENSIONS[d][0]}": {"x": v} for d, v in items.items()}
    out = {result["rows"][0]["metric"]: items} if "x" in items or "pred" in items else {}
    if "refused" in items:
        out["refused_share"] = {"x": items["refused"]}
    return out


def model_pairs(table: Table) -> list[dict[str, Any]]:
    """Every later model against every earlier one (e.g. base, control, safety-tuned), unsteered,
    paired over the same items: the difference with a bootstrap CI and the minimum detectable
    difference for that many items."""
    spec, out = table.run.spec, []
    targets = [t for t in (table.bank, *(f"suite:{s}" for s in table.suites)) if t]
    for k, later in enumerate(spec.models):
        for earlier in spec.models[:k]:
            for target in targets:
                a, b = _paired_values(table, earlier, target), _paired_values(table, later, target)
                for metric in [m for m in a if m in b]:
                    try:
                        matrix = ItemMatrix.from_items([a[metric], b[metric]])
                    except ValueError:
                        continue  # different items: nothing to pair
                    diff = paired_difference(matrix, 0, 1)
                    level = float(matrix.metric()[0])
                    out.append(
                        {"from": earlier, "to": later, "target": target, "metric": metric, "before": level} | diff
                    )
    for row, p in zip(out, holm([r["p"] for r in out]), strict=True):
        row["p_holm"] = p
    return out
