"""Contrast sets: pairs of sequences that differ only in which pole's content the assistant
answers with, never in where that answer stood in a list.

Sources: questionnaire items (the bare stem answered with each option; optionally the numbered
list in both orders), our first-person statement pairs, persona prompts (see ``persona``), and
paired-answer files (our JSONL ``{prompt, pole_a, answer_a, pole_b, answer_b}``, the
Machine-Mindset ``{instruction, input, E, I}`` JSONL, or two Alpaca JSON files answered once per
pole).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from traitlens._io import read_jsonl, read_text
from traitlens.assess.requests import LabelRequest
from traitlens.chat import Message, chat_messages
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS, SEALED, ItemBank

__all__ = [
    "Side",
    "ContrastPair",
    "ContrastSet",
    "item_pairs",
    "statement_pairs",
    "load_pairs",
    "MIN_PAIRS",
    "split_for_group",
]

MIN_PAIRS = 6  # fewer per dimension cannot fit, cross-validate and test a direction
_POLE_DIM = {p: d for d, poles in DIMENSIONS.items() for p in poles}


@dataclass(frozen=True)
class Side:
    messages: tuple[Message, ...]
    answer: str


@dataclass(frozen=True)
class ContrastPair:
    """``first`` answers as the dimension's first pole (E, S, T, J), ``second`` as the other."""

    id: str
    group: str  # pairs of one group share content; cross-validation folds never split a group
    dimension: str
    split: str
    first: Side
    second: Side


@dataclass(frozen=True)
class ContrastSet:
    pairs: tuple[ContrastPair, ...]
    name: str

    def __len__(self) -> int:
        return len(self.pairs)

    def for_dimension(self, dimension: str, split: str | None = None) -> ContrastSet:
        chosen = tuple(p for p in self.pairs if p.dimension == dimension and (split is None or p.split == split))
        return ContrastSet(chosen, f"{self.name}:{dimension}:{split or 'all'}")

    def dimensions(self) -> list[str]:
        return [d for d in DIMENSIONS if any(p.dimension == d for p in self.pairs)]

    def __add__(self, other: ContrastSet) -> ContrastSet:
        return ContrastSet(self.pairs + other.pairs, f"{self.name}+{other.name}")

    def content_hash(self) -> str:
        payload = [
            [p.id, p.group, p.dimension, p.split, [[list(s.messages), s.answer] for s in (p.first, p.second)]]
            for p in self.pairs
        ]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def check(self, dimension: str) -> None:
        n = sum(p.dimension == dimension for p in self.pairs)
        if n < MIN_PAIRS:
            raise TraitlensError(
                f"contrast set '{self.name}' has {n} pairs for {dimension}; at least {MIN_PAIRS} are needed"
            )


def item_pairs(bank: ItemBank, listed: bool = False) -> ContrastSet:
    """Each item's bare stem answered with each option. With ``listed``, also the numbered
    list in both orders, answered with the option's text, so position is balanced across poles.
    Sealed (``confirm``) items are never read: directions are fitted and judged on the others."""
    pairs = []
    for item in (i for i in bank if i.split != SEALED):
        second_pole = next(o.pole for o in item.options if o.pole != item.first_pole)
        first, second = item.option_for(item.first_pole), item.option_for(second_pole)
        stem = tuple(chat_messages(item.stem))
        pairs.append(
            ContrastPair(item.id, item.id, item.dimension, item.split, Side(stem, first.text), Side(stem, second.text))
        )
        if listed:
            for order in ((0, 1), (1, 0)):
                listed_messages = tuple(LabelRequest(item, order).messages())
                pairs.append(
                    ContrastPair(
                        f"{item.id}/list{order[0]}{order[1]}",
                        item.id,
                        item.dimension,
                        item.split,
                        Side(listed_messages, first.text),
                        Side(listed_messages, second.text),
                    )
                )
    return ContrastSet(tuple(pairs), "items+listed" if listed else "items")


def statement_pairs() -> ContrastSet:
    """The shipped set: 26 first-person statement pairs per dimension, each under 4 prompts."""
    with resources.as_file(resources.files("traitlens.instrument.data") / "statements.jsonl") as path:
        return load_pairs([path], name="statements")


def _pair(where: str, pid: str, group: str, prompt: str, answers: dict[str, str], split: str) -> ContrastPair:
    if len(answers) != 2:
        raise TraitlensError(f"{where}: needs exactly two poles, got {sorted(answers)}")
    poles = sorted(answers)
    dims = {_POLE_DIM.get(p) for p in poles}
    if None in dims or len(dims) != 1:
        raise TraitlensError(f"{where}: poles {poles} are not the two poles of one dimension")
    (dim,) = dims
    first, second = DIMENSIONS[dim]
    if not all(isinstance(x, str) for x in (prompt, answers[first], answers[second])):
        raise TraitlensError(f"{where}: prompt and answers must be text")
    if not prompt.strip() or not answers[first].strip() or not answers[second].strip():
        raise TraitlensError(f"{where}: empty prompt or answer")
    if split not in ("train", "eval"):
        raise TraitlensError(f"{where}: unknown split {split!r} (use train or eval)")
    msgs = tuple(chat_messages(prompt))
    return ContrastPair(pid, group, dim, split, Side(msgs, answers[first]), Side(msgs, answers[second]))


def split_for_group(group: str, eval_share: int = 4) -> str:
    """A file without ``split`` fields is split by group, never by line: every pair of a group
    (one statement under several prompts) lands on the same side. One group in ``eval_share``
    goes to eval, chosen by a stable hash of its name."""
    digest = int(hashlib.sha256(group.encode("utf-8")).hexdigest()[:8], 16)
    return "eval" if digest % eval_share == 0 else "train"


def _jsonl_pairs(path: Path) -> list[ContrastPair]:
    pairs = []
    for where, number, raw in read_jsonl(path):
        if "pole_a" in raw:
            answers = {
                str(raw.get("pole_a")).upper(): raw.get("answer_a", ""),
                str(raw.get("pole_b")).upper(): raw.get("answer_b", ""),
            }
            prompt = raw.get("prompt", "")
        elif "instruction" in raw:
            answers = {k: v for k, v in raw.items() if k in _POLE_DIM}
            prompt = "\n\n".join(str(x) for x in (raw["instruction"], raw.get("input", "")) if x)
        else:
            raise TraitlensError(
                f"{where}: expected keys prompt/pole_a/answer_a/pole_b/answer_b or instruction/<poles>"
            )
        pid = str(raw.get("id", f"{path.stem}-{number}"))
        group = str(raw.get("group", pid))
        pairs.append(_pair(where, pid, group, prompt, answers, raw.get("split") or split_for_group(group)))
    return pairs


_FILE_POLES = {
    "extraversion": "E",
    "introversion": "I",
    "sensing": "S",
    "intuition": "N",
    "thinking": "T",
    "feeling": "F",
    "judging": "J",
    "perceiving": "P",
}


def _alpaca_records(path: Path) -> list[dict]:
    try:
        records = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TraitlensError(f"{path.name}: expected a JSON list of {{instruction, input, output}} records")
    return records


def _alpaca_pairs(path_a: Path, path_b: Path) -> list[ContrastPair]:
    """Two Alpaca JSON lists; record i of each answers the same instruction as one pole."""
    poles = []
    for path in (path_a, path_b):
        found = [pole for word, pole in _FILE_POLES.items() if word in path.stem.lower()]
        if len(found) != 1:
            raise TraitlensError(f"{path.name}: cannot tell the pole from the file name (use e.g. *_judging.json)")
        poles.append(found[0])
    records = [_alpaca_records(p) for p in (path_a, path_b)]
    if len(records[0]) != len(records[1]):
        raise TraitlensError(f"{path_a.name} and {path_b.name} have different lengths")
    pairs = []
    for i, (ra, rb) in enumerate(zip(*records, strict=True)):
        where = f"{path_a.name}/{path_b.name} record {i}"
        if ra.get("instruction") != rb.get("instruction"):
            raise TraitlensError(f"{where}: the two files ask different instructions")
        prompt = "\n\n".join(x for x in (ra.get("instruction", ""), ra.get("input", "")) if x)
        split = "eval" if i % 4 == 3 else "train"
        pairs.append(
            _pair(
                where,
                f"mm-{i}",
                f"mm-{i}",
                prompt,
                {poles[0]: ra.get("output", ""), poles[1]: rb.get("output", "")},
                split,
            )
        )
    return pairs


def load_pairs(paths: Sequence[str | Path], name: str | None = None, limit: int | None = None) -> ContrastSet:
    """Paired answers from one JSONL file or two Alpaca JSON files (one per pole)."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise TraitlensError(f"contrast file not found: {path}")
    if len(paths) == 1 and paths[0].suffix == ".jsonl":
        pairs = _jsonl_pairs(paths[0])
    elif len(paths) == 2 and all(p.suffix == ".json" for p in paths):
        pairs = _alpaca_pairs(*paths)
    else:
        raise TraitlensError("paired answers: give one .jsonl file, or two .json files (one per pole)")
    if limit is not None:
        pairs = pairs[:limit]
    if not pairs:
        raise TraitlensError(f"{paths[0].name}: no pairs")
    return ContrastSet(tuple(pairs), name or "+".join(p.stem for p in paths))
