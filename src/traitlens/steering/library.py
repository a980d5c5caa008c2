"""The shipped vector library: a Markdown table of every exported edit under a directory.

``python -m traitlens.steering.library vectors/smollm2-135m-instruct`` rewrites
``vectors/README.md`` from each vector's ``meta.json``, followed by the hand-written
``vectors/NOTES.md`` when there is one (regenerating the table never loses the commentary)."""

from __future__ import annotations

import sys
from pathlib import Path

from traitlens._io import write_text
from traitlens.steering.artifact import FILES, load_vector

__all__ = ["library_table", "write_library_readme"]

ORDER = ("EI", "IE", "SN", "NS", "TF", "FT", "JP", "PJ")


def library_table(root: Path) -> str:
    rows = [
        "| edit | layer | alpha (x resid norm) | target share before -> after (eval) | train, where alpha was chosen | letter | goal met | perplexity change |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for trait in ORDER:
        directory = root / trait
        if not (directory / FILES["meta"]).is_file():
            rows.append(f"| {trait[0]} -> {trait[1]} | - | - | not generated | - | - | - | - |")
            continue
        extra = load_vector(directory).extra
        s = extra.get("edit_summary", {})
        letter = (
            ("already " + trait[1])
            if s.get("already_target_before")
            else ("flipped" if s.get("flipped") else "not flipped")
        )
        hit_guard = any(not point.get("guard_ok", True) for point in extra.get("alpha_curve", []))
        goal = "yes" if s.get("goal_met_in_calibration") else ("no (guard)" if hit_guard else "no")
        rows.append(
            f"| [{trait[0]} -> {trait[1]}]({root.name}/{trait}/report.md) | {s.get('layer')} | {s.get('alpha', 0):.3g} | "
            f"{trait[1]} {s.get('before_share', 0):.1%} -> {s.get('after_share', 0):.1%} | {_train(s, trait)} | {letter} | {goal} | "
            f"{100 * s.get('perplexity_change', 0):+.1f}% |"
        )
    return "\n".join(rows)


def _train(summary: dict, trait: str) -> str:
    if "train_before_share" not in summary:
        return "-"
    return f"{trait[1]} {summary['train_before_share']:.1%} -> {summary['train_after_share']:.1%}"


def write_library_readme(root: Path) -> Path:
    text = f"""# Steering vectors

Edit directions for `{root.name}`, produced by `make vectors` (eight `traitlens edit` runs, one
per direction of each MBTI dimension). Each directory holds `directions.safetensors` (one float32
tensor per layer, the displacement at alpha = 1), `meta.json` (model fingerprint, trait, method,
scales, probe accuracy, the alpha curve and `recommended_alpha`), the edit's `report.md` and plots.

Use one: `traitlens assess --vector vectors/{root.name}/JP` (applies its recommended alpha), or
in Python `traitlens.steering.artifact.load_vector(path)`.

Target share is measured on the eval questionnaire items (16 per dimension), which played no
part in the edit: the layer, alpha and each dimension's readout (chosen by validity: content-free
share near 50% and the largest persona separation) were chosen on the train items. Perplexity is
on the shipped neutral reference text. The goal is a flip past 50%, or baseline + 10 points when
the model already has the target letter, on the train items; "no (guard)" means the +25%
perplexity guard stopped the calibration first and the furthest safe move is shipped.

{library_table(root)}
"""
    notes = root.parent / "NOTES.md"
    if notes.is_file():
        text += "\n" + notes.read_text(encoding="utf-8")
    return write_text(root.parent / "README.md", text)


if __name__ == "__main__":
    print(write_library_readme(Path(sys.argv[1])))
