"""Readers for the public safety sets' layouts, and for our shipped samples.

Every reader returns plain dicts and raises ``TraitlensError`` naming the file and row on a
malformed file. ``resolve`` maps ``--data`` (a file, or a directory laid out like
``../shared/data``) to the file a suite reads.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

from traitlens._io import read_jsonl, read_text
from traitlens.errors import TraitlensError

__all__ = [
    "shipped",
    "resolve",
    "read_statements",
    "read_goals",
    "read_prompts",
    "read_leakage",
    "read_bbq",
    "read_mcq",
]

# Where each suite finds its public set inside a ../shared/data-style directory (first match wins).
PUBLIC_PATHS: dict[str, tuple[str, ...]] = {
    "privacy": ("paper/tracingllm/confaide.csv", "safety/trustllm/privacy/privacy_awareness_confAIde.json"),
    "fairness": ("paper/tracingllm/stereoset.csv", "safety/trustllm/fairness/stereotype_recognition.json"),
    "toxicity": ("paper/tracingllm/toxigen.csv",),
    "jailbreak": ("safety/jailbreakbench/jbb_harmful_behaviors.json", "safety/advbench/harmful_behaviors.csv"),
    "overrefusal": ("safety/xstest/xstest_prompts.csv",),
    "leakage": ("safety/trustllm/privacy/privacy_leakage.json",),
    "bbq": ("safety/bbq/bbq_subset_6cats_200each.jsonl",),
}
SHIPPED = {
    "privacy": "privacy.csv",
    "fairness": "fairness.csv",
    "toxicity": "toxicity.csv",
    "jailbreak": "jailbreak.csv",
    "overrefusal": "overrefusal.csv",
    "leakage": "leakage.json",
    "capability": "capability.jsonl",
}


def shipped(suite: str) -> Path:
    return Path(str(resources.files("traitlens.data") / "bench" / SHIPPED[suite]))


def resolve(suite: str, data: str | Path | None) -> Path:
    """The file a suite reads: ours when ``data`` is None, else the given file, else the
    suite's known path inside the given directory."""
    if data is None:
        if suite not in SHIPPED:
            raise TraitlensError(f"suite '{suite}' has no shipped sample: pass --data")
        return shipped(suite)
    root = Path(data)
    if not root.exists():
        raise TraitlensError(f"data path does not exist: {root}")
    if root.is_file():
        return root
    for relative in PUBLIC_PATHS.get(suite, ()):
        if (root / relative).is_file():
            return root / relative
    if suite in SHIPPED:
        return shipped(suite)  # no public set for this suite: our sample
    raise TraitlensError(
        f"no data for suite '{suite}' under {root} (looked for {', '.join(PUBLIC_PATHS.get(suite, ()))})"
    )


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TraitlensError(f"{path.name}: not a readable CSV ({exc})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def _label01(path: Path, row: int, value: Any) -> int:
    try:
        label = int(float(value))
    except (TypeError, ValueError):
        label = -1
    if label not in (0, 1):
        raise TraitlensError(f"{path.name} row {row}: label must be 0 or 1, not {value!r}")
    return label


def read_statements(path: Path, second_half: bool = False) -> list[dict[str, Any]]:
    """0/1 statements: CSV ``statement,label``, TrustLLM confAIde JSON (numeric agreement
    rating, negative = violation) or TrustLLM stereotype-recognition JSON."""
    if path.suffix == ".csv":
        fields, rows = _csv_rows(path)
        if not {"statement", "label"} <= set(fields):
            raise TraitlensError(f"{path.name}: expected CSV columns statement,label, found {fields}")
        items = []
        for number, row in enumerate(rows, start=2):
            if not (row.get("statement") or "").strip():
                raise TraitlensError(f"{path.name} row {number}: empty statement")
            items.append({"text": row["statement"].strip(), "label": _label01(path, number, row["label"])})
        # TracingLLM convention: the first half builds vectors, the second half evaluates.
        return items[len(items) // 2 :] if second_half else items
    data = _json(path)
    if not isinstance(data, list):
        raise TraitlensError(f"{path.name}: expected a JSON list of records")
    items = []
    for number, record in enumerate(data):
        if not isinstance(record, dict):
            raise TraitlensError(f"{path.name} record {number}: expected an object")
        if "sentence" in record:  # stereotype recognition
            items.append({"text": str(record["sentence"]), "label": int(record.get("label") == "stereotype")})
        elif "prompt" in record and isinstance(record.get("label"), (int, float)):  # confAIde ratings
            scenario = str(record["prompt"]).strip().split("\n")[-1].strip()
            items.append({"text": scenario, "label": int(record["label"] < 0)})
        else:
            raise TraitlensError(f"{path.name} record {number}: unknown layout (keys {sorted(record)})")
    return items


def read_goals(path: Path) -> list[str]:
    """Harmful goals: AdvBench/ours CSV (goal), HarmBench CSV (Behavior), StrongREJECT CSV
    (forbidden_prompt), JailbreakBench JSON (goal)."""
    if path.suffix == ".json":
        data = _json(path)
        if not isinstance(data, list) or not all(isinstance(r, dict) and "goal" in r for r in data):
            raise TraitlensError(f"{path.name}: expected a JSON list of records with 'goal'")
        return [str(r["goal"]) for r in data]
    fields, rows = _csv_rows(path)
    column = next((c for c in ("goal", "Behavior", "forbidden_prompt") if c in fields), None)
    if column is None:
        raise TraitlensError(f"{path.name}: unknown layout, expected a goal, Behavior or forbidden_prompt column")
    return [r[column] for r in rows if (r[column] or "").strip()]


def read_prompts(path: Path, keep_label: str | None = None) -> list[str]:
    """Prompts from a CSV with a ``prompt`` (XSTest, ours) or ``statement`` column (TracingLLM
    ToxiGen), or a TOXIGEN prompt file (lines starting with '- ')."""
    if path.suffix == ".txt":
        text = read_text(path).replace("\\n", "\n")
        return [line[2:].strip() for line in text.splitlines() if line.startswith("- ") and line[2:].strip()]
    fields, rows = _csv_rows(path)
    column = next((c for c in ("prompt", "statement") if c in fields), None)
    if column is None:
        raise TraitlensError(f"{path.name}: expected a prompt or statement column, found {fields}")
    if keep_label and "label" in fields:
        rows = [r for r in rows if r["label"] == keep_label]
    return [r[column] for r in rows if (r[column] or "").strip()]


def read_leakage(path: Path) -> list[dict[str, str]]:
    data = _json(path)
    if not isinstance(data, list):
        raise TraitlensError(f"{path.name}: expected a JSON list")
    for number, record in enumerate(data):
        if not isinstance(record, dict) or not {"prompt", "gt-email"} <= set(record):
            raise TraitlensError(f"{path.name} record {number}: needs 'prompt' and 'gt-email'")
    return data


def read_bbq(path: Path) -> list[dict[str, Any]]:
    items = []
    for where, _, record in read_jsonl(path):
        try:
            items.append(
                {
                    "context": record["context"],
                    "question": record["question"],
                    "options": [record["ans0"], record["ans1"], record["ans2"]],
                    "answer": int(record["label"]),
                    "ambiguous": record.get("context_condition") == "ambig",
                    "roles": [record["answer_info"][f"ans{k}"][1] for k in range(3)],
                    "stereotyped": record.get("additional_metadata", {}).get("stereotyped_groups", []),
                    "polarity": record.get("question_polarity", "neg"),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TraitlensError(f"{where}: not a BBQ record ({type(exc).__name__}: {exc})") from None
    return items


def read_mcq(path: Path) -> list[dict[str, Any]]:
    items = []
    for where, _, record in read_jsonl(path):
        try:
            items.append(
                {"question": record["question"], "options": list(record["options"]), "answer": int(record["answer"])}
            )
        except (KeyError, TypeError, ValueError):
            raise TraitlensError(f"{where}: expected {{question, options, answer}}") from None
    return items
