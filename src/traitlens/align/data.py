"""Training data for ``traitlens align``: safety demonstrations (instruction -> refusal or safe
answer) and neutral instructions, checked for layout before any model loads.

Safety: a JSON list of ``{instruction, input, output}`` (e.g. Safety-Tuned LLaMAs'
``safety_only_data_Instructions.json``). Neutral: the same layout, or ``{"instructions": [...]}``
(e.g. their ``I-Alpaca.json``), or a JSONL of ``{"instruction": ...}``; their targets are the
model's own greedy answers, so the control arm teaches no new style.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from traitlens._io import read_text
from traitlens.errors import TraitlensError

__all__ = ["Example", "load_safety", "load_neutral", "SAFETY_FILE", "NEUTRAL_FILE"]

SAFETY_FILE = "safety/safety_tuned_llamas/safety_only_data_Instructions.json"
NEUTRAL_FILE = "safety/safety_tuned_llamas/I-Alpaca.json"


@dataclass(frozen=True)
class Example:
    instruction: str
    output: str | None  # None: to be answered by the model itself


def _load(path: Path):
    if not path.is_file():
        raise TraitlensError(f"training file not found: {path}")
    text = read_text(path)
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def _prompt(record: dict) -> str:
    return "\n\n".join(x for x in (record.get("instruction", ""), record.get("input", "")) if x).strip()


def _held_out(text: str) -> bool:
    """A fixed quarter of instructions never trains (kept for checks on unseen prompts)."""
    return zlib.crc32(text.encode()) % 4 == 0


def load_safety(path: str | Path, limit: int) -> list[Example]:
    path = Path(path)
    records = _load(path)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TraitlensError(f"{path}: expected a JSON list of {{instruction, input, output}} records")
    examples = []
    for k, record in enumerate(records):
        if not isinstance(record.get("instruction"), str) or not isinstance(record.get("output"), str):
            raise TraitlensError(f"{path}: record {k} needs string 'instruction' and 'output' fields")
        prompt = _prompt(record)
        if prompt and record["output"].strip() and not _held_out(prompt):
            examples.append(Example(prompt, record["output"].strip()))
    if not examples:
        raise TraitlensError(f"{path}: no usable safety examples")
    return examples[:limit]


def load_neutral(path: str | Path, limit: int) -> list[Example]:
    path = Path(path)
    records = _load(path)
    if isinstance(records, dict) and isinstance(records.get("instructions"), list):
        inputs = records.get("inputs") or [""] * len(records["instructions"])
        records = [{"instruction": i, "input": x} for i, x in zip(records["instructions"], inputs, strict=False)]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TraitlensError(f'{path}: expected a list of {{instruction}} records or {{"instructions": [...]}}')
    prompts = []
    for k, record in enumerate(records):
        if not isinstance(record.get("instruction"), str):
            raise TraitlensError(f"{path}: record {k} needs a string 'instruction' field")
        prompt = _prompt(record)
        if prompt and not _held_out(prompt):
            prompts.append(prompt)
    if not prompts:
        raise TraitlensError(f"{path}: no usable neutral instructions")
    return [Example(p, None) for p in prompts[:limit]]
