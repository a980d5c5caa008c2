"""The shipped vector library: a Markdown table of every exported edit under a directory.

``python scripts/vector_library.py results/vectors/smollm2-135m-instruct`` rewrites
``results/vectors/README.md`` from each vector's ``meta.json``, followed by the hand-written
``results/vectors/NOTES.md`` when there is one (regenerating the table never loses the commentary).
A second argument, a directory of ``traitlens null`` runs (``results/null/smollm2-135m-instruct``),
fills the evidence of vectors whose edit ran before the null existed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from traitlens._io import write_text
from traitlens.instrument.items import DIMENSIONS, Trait
from traitlens.paired import verdict
from traitlens.steering.artifact import FILES, load_vector, withdrawn

__all__ = ["library_table", "null_evidence", "write_library_readme"]

ORDER = tuple(Trait.parse(t) for t in ("EI", "IE", "SN", "NS", "TF", "FT", "JP", "PJ"))


def null_evidence(path: Path, vector, trait: Trait) -> dict:
    """The evidence a separate ``traitlens null`` run on this vector gives (its paired shift test,
    wording shift and place in the null), in the edit summary's terms; nothing where no run
    exists or it ran on another alpha or other layers (a stale run says nothing of this vector)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    ran = data.get("vector", {})
    if ran.get("layers") != vector.layers or abs(ran.get("alpha", -1) - (vector.recommended_alpha or 0)) > 1e-9:
        return {}
    first = DIMENSIONS[trait.dimension][0]
    metric = data["metrics"].get(f"share_{first}")
    wording = data.get("wording", {}).get(trait.dimension)
    out: dict = {}
    if data.get("shift_test"):
        out["shift_test"] = {k: v for k, v in data["shift_test"].items() if k != "pole"}
    if wording is not None:
        out["wording_shift"] = wording["wording_shift"] if trait.target == first else -wording["wording_shift"]
    if metric is not None:
        out["null"] = {"p": metric["p"], "draws": data["draws"]}
    return out


def library_table(root: Path, nulls: Path | None = None) -> str:
    """The table of the edits under ``root``; ``nulls``: a directory of ``traitlens null`` runs, one
    per trait (``nulls/JP/null.json``), whose evidence fills what an edit's summary lacks."""
    rows = [
        "| edit | recipe | layers | alpha | target share before -> after (eval) | shift (eval) | evidence (eval) "
        "| persona prompt (eval) | words32 shift / prompt | train, where chosen | letter | perplexity change |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for trait in ORDER:
        directory = root / str(trait)
        if not (directory / FILES["meta"]).is_file():
            rows.append(f"| {trait.arrow} | not generated |" + " - |" * 10)
            continue
        vector = load_vector(directory)
        s = vector.extra.get("edit_summary", {})
        if nulls is not None:
            s = null_evidence(nulls / str(trait) / "null.json", vector, trait) | s
        letter = (
            ("already " + trait.target)
            if s.get("already_target_before")
            else ("flipped" if s.get("flipped") else "not flipped")
        )
        recipe = (vector.extra.get("recipe") or {}).get("name", vector.method)
        layers = vector.layers
        span = f"{layers[0]}" + (f"-{layers[-1]}" if len(layers) > 1 else "")
        shift = s.get("after_share", 0) - s.get("before_share", 0)
        prompt = s.get("persona_prompt_shift")
        words = (s.get("extra_instruments") or {}).get("words32")
        words_text = (
            f"{100 * (words['after'] - words['before']):+.1f} / {100 * (words['persona_prompt'] - words['before']):+.1f}"
            if words
            else "-"
        )
        rows.append(
            f"| [{trait.arrow}]({root.name}/{trait}/report.md) | {recipe} | {span} | {s.get('alpha', 0):.3g} | "
            f"{trait.target} {s.get('before_share', 0):.1%} -> {s.get('after_share', 0):.1%} | {100 * shift:+.1f} pts | "
            f"{_evidence(s, withdrawn(vector))} | {'-' if prompt is None else f'{100 * prompt:+.1f} pts'} | {words_text} | {_train(s, trait)} | {letter} | "
            f"{100 * s.get('perplexity_change', 0):+.1f}% |"
        )
    return "\n".join(rows)


def _evidence(summary: dict, withdrawn_for: str | None = None) -> str:
    """The shift's paired test, its wording shift, its place in the null and any flag; a
    withdrawn vector says so first."""
    parts = [f"**WITHDRAWN**: {withdrawn_for}"] if withdrawn_for else []
    if summary.get("shift_test"):
        parts.append(verdict(summary["shift_test"]))
    if summary.get("wording_shift") is not None:
        shift = summary.get("after_share", 0) - summary.get("before_share", 0)
        net = shift - summary["wording_shift"]  # what is left once the wording's part is taken out
        parts.append(f"wording {100 * summary['wording_shift']:+.1f} pts (net {100 * net:+.1f})")
    if summary.get("null"):
        parts.append(f"null p {summary['null']['p']:.3f} ({summary['null']['draws']} draws)")
    if summary.get("flags"):
        parts.append("**FLAG** " + "; ".join(f.split(":")[0] for f in summary["flags"]))
    return "; ".join(parts) or "not measured (an earlier run)"


def _train(summary: dict, trait: Trait) -> str:
    if "train_before_share" not in summary:
        return "-"
    return f"{trait.target} {summary['train_before_share']:.1%} -> {summary['train_after_share']:.1%}"


def write_library_readme(root: Path, nulls: Path | None = None) -> Path:
    text = f"""# Steering vectors

Edit directions for `{root.name}`, produced by `make vectors` (eight `traitlens edit` runs, one
per direction of each MBTI dimension). Each directory holds `directions.safetensors` (one float32
tensor per layer, the displacement at alpha = 1), `meta.json` (model fingerprint, trait, method,
scales, probe accuracy, the alpha curve and `recommended_alpha`), the edit's `report.md` and plots.

Use one: `traitlens assess --vector results/vectors/{root.name}/JP` (applies its recommended alpha), or
in Python `traitlens.steering.artifact.load_vector(path)`.

Each edit compared several recipes (direction source, method, layer placement, injection mode) on
the train questionnaire items, each climbed to the +25% perplexity guard, and ships the one that
moved the target pole furthest within it, or furthest net of its wording shift where the edit
ran with `--select net` (its `frontier.png` shows every recipe and the Pareto front). Every share in the table is on items that played no part in that choice: the bank's eval
split (16 items per dimension) and `instruments/words32.jsonl` (8 per dimension), read with the
readouts chosen on the train items. "Persona prompt" is the free baseline: the same items under a
one-sentence system prompt asking for the target pole. Perplexity is on the shipped neutral
reference text.

{library_table(root, nulls)}
"""
    notes = root.parent / "NOTES.md"
    if notes.is_file():
        text += "\n" + notes.read_text(encoding="utf-8")
    return write_text(root.parent / "README.md", text)


if __name__ == "__main__":
    print(write_library_readme(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
