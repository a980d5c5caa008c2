"""The paper side by side: its transcribed numbers (``<data>/paper/figure_values/``) next to
ours under the same metric names, one sentence per row on agreement and why it may differ."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from traitlens.study.analyses import NONE, Table
from traitlens.study.stats import ItemMatrix, paired_difference

__all__ = ["paper_side_by_side", "verdict"]

# Their suites and ours: privacy = ConfAIde-style judgement, fairness = StereoSet-style judgement,
# toxicity = ToxiGen-style continuation; their attack families and our closest attack.
_METRICS = {"privacy_f1": "privacy", "fairness_f1": "fairness", "toxic_ratio": "toxicity"}
_ATTACKS = {"CodeChameleon": "code_wrap", "Cipher": "caesar", "Jailbroken": "prefix_injection"}
WHY = "a 135M model, not the paper's 7B Machine-Mindset models; our judges and samples, not theirs"


def verdict(paper_delta: float, ours: dict | None) -> str:
    """One sentence: does our paired change agree with the paper's direction, detectably?"""
    if ours is None:
        return "not measured here (the study did not run this condition)"
    low, high = ours["ci"]
    if low <= 0 <= high:
        return f"not detected here (95% CI [{low:+.2f}, {high:+.2f}] contains 0, n={ours['n_items']}); {WHY}"
    same = (ours["delta"] > 0) == (paper_delta > 0) and paper_delta != 0
    word = "agrees in direction" if same else "opposite direction to the paper"
    return f"{word} (95% CI [{low:+.2f}, {high:+.2f}], n={ours['n_items']}); {WHY}"


def _delta(table: Table, model: str, condition, suite: str) -> dict | None:
    base, items = table.items(model, NONE, suite), table.items(model, condition, suite)
    if not base or not items:
        return None
    return paired_difference(ItemMatrix.from_items([base, items]), 0, 1)


def _fig7(root: Path, table: Table, model: str) -> list[dict[str, Any]]:
    path = root / "fig7_personality_editing_steering.json"
    if not path.is_file():
        return []
    rows, vectors = [], table.vectors(model)
    for edit in json.loads(path.read_text(encoding="utf-8"))["edits"]:
        name = edit["target_dim"].replace("->", "")
        chain = vectors.get(name)
        condition = min(chain, key=lambda c: abs(c.multiple - 1)) if chain else None
        for metric, suite in _METRICS.items():
            paper = edit["safety_steered"][metric] - edit["safety_origin"][metric]
            ours = _delta(table, model, condition, suite) if condition else None
            rows.append(
                {
                    "figure": "Fig. 7",
                    "what": f"{edit['edit']} ({name}): {metric}" + (" (ours: MCC)" if suite != "toxicity" else ""),
                    "paper": round(paper, 4),
                    "ours": ours,
                    "sentence": verdict(paper, ours),
                }
            )
    return rows


def _fig6(root: Path, table: Table, by_pole: dict) -> list[dict[str, Any]]:
    path = root / "fig6_jailbreak_success_by_mbti_pole.csv"
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = []
    for record in csv.DictReader(lines):
        a, b = record["pole_a"], record["pole_b"]
        dimension = next((d for d, e in by_pole.items() if set(e["poles"]) == {a, b}), None)
        paper = float(record["diff_a_minus_b"]) / 100
        ours = None
        if dimension is not None:
            entry = by_pole[dimension]["by_attack"].get(_ATTACKS[record["attack"]])
            if entry is not None:
                m = entry["mcnemar"]
                diff = entry[a] - entry[b]
                ours = {"delta": diff, "p": m["p"], "p_holm": entry.get("p_holm", m["p"]), "n_items": m["n_pairs"]}
        sentence = "not measured here" if ours is None else _fig6_sentence(paper, ours)
        rows.append(
            {
                "figure": "Fig. 6",
                "what": f"{record['attack']} (ours: {_ATTACKS[record['attack']]}): ASR {a} - {b}",
                "paper": round(paper, 4),
                "ours": ours,
                "sentence": sentence,
            }
        )
    return rows


def _fig6_sentence(paper: float, ours: dict) -> str:
    """Read on the Holm-corrected p: the per-attack rows are one family."""
    p, holm = ours["p"], ours["p_holm"]
    if holm >= 0.05:
        return f"not detected here (McNemar p={p:.2f}, Holm {holm:.2f}, n={ours['n_items']}); {WHY}"
    same = (ours["delta"] > 0) == (paper > 0)
    return f"{'agrees in direction' if same else 'opposite direction'} (McNemar p={p:.3f}, Holm {holm:.3f}); {WHY}"


def _fig2(root: Path, types: dict[str, str | None]) -> list[dict[str, Any]]:
    path = root / "fig2_reliability.json"
    if not path.is_file():
        return []
    paper = json.loads(path.read_text(encoding="utf-8"))["fig2b_boxplot_30_assessments_median_approx"]
    implied = paper.get("implied_types_by_median", "")
    return [
        {
            "figure": "Fig. 2b",
            "what": f"type of {model} (unsteered)",
            "paper": implied,
            "ours": {"type": kind},
            "sentence": "a different instrument readout (option PMI vs the paper's answer letters) and a 135M model; "
            "the paper's 7B chat models all come out ENFJ, which no readout here reproduces",
        }
        for model, kind in types.items()
    ]


def paper_side_by_side(data: str | None, table: Table, model: str, by_pole: dict, types: dict) -> dict[str, Any]:
    if data is None or not (Path(data) / "paper" / "figure_values").is_dir():
        return {"available": False, "rows": [], "note": "the paper's transcribed numbers need --data"}
    root = Path(data) / "paper" / "figure_values"
    rows = _fig7(root, table, model) + _fig6(root, table, by_pole) + _fig2(root, types)
    return {"available": True, "model": model, "rows": rows}
