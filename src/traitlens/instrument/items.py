"""Questionnaire items: the shipped bank and loaders for other layouts, with validation.

Our JSONL format, one item per line::

    {"id": "JP-01", "dimension": "JP", "split": "train",
     "stem": "How do you plan a holiday?",
     "options": [{"text": "I book everything in advance ...", "pole": "J"},
                 {"text": "I book the flight and decide the rest as I go.", "pole": "P"}]}

``dimension`` is one of EI, SN, TF, JP; each option's ``pole`` is one letter of it, and the two
options hold different poles. ``split`` is ``train`` (fits directions) or ``eval`` (measures);
it defaults to ``eval``. Also read: the 93-item JSON layout of public LLM-MBTI code
(``{"1": {"question": "stem\\nA. ...\\nB. ...", "A": "J", "B": "P"}}``) and a CSV with columns
``id,dimension,stem,option_a,pole_a,option_b,pole_b[,split]``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from traitlens._io import read_jsonl, read_text
from traitlens.errors import TraitlensError

__all__ = [
    "DIMENSIONS",
    "Option",
    "Item",
    "ItemBank",
    "load_items",
    "default_items",
    "Trait",
]

DIMENSIONS: dict[str, tuple[str, str]] = {
    "EI": ("E", "I"),
    "SN": ("S", "N"),
    "TF": ("T", "F"),
    "JP": ("J", "P"),
}
_POLE_TO_DIMENSION = {pole: dim for dim, poles in DIMENSIONS.items() for pole in poles}
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Trait:
    """An edit's direction within one dimension: ``Trait.parse("JP")`` is J -> P, ``"PJ"`` P -> J.
    Parsed once where the text comes in (CLI, ``edit()``), then passed as is."""

    dimension: str
    source: str
    target: str

    @classmethod
    def parse(cls, text: str | Trait) -> Trait:
        if isinstance(text, Trait):
            return text
        letters = text.strip().upper() if isinstance(text, str) else ""
        if len(letters) == 2 and letters[0] != letters[1]:
            first, second = letters
            if _POLE_TO_DIMENSION.get(first) == _POLE_TO_DIMENSION.get(second) is not None:
                return cls(_POLE_TO_DIMENSION[first], first, second)
        raise TraitlensError(
            f"unknown trait '{text}': use two letters of one dimension, e.g. JP (J->P), PJ, EI, IE, SN, NS, TF or FT"
        )

    def __str__(self) -> str:
        return self.source + self.target

    @property
    def arrow(self) -> str:
        return f"{self.source} -> {self.target}"

    @property
    def sign(self) -> float:
        """+1 when the target is the dimension's first pole (where probe directions point), else -1."""
        return 1.0 if self.target == DIMENSIONS[self.dimension][0] else -1.0


@dataclass(frozen=True)
class Option:
    text: str
    pole: str


@dataclass(frozen=True)
class Item:
    id: str
    dimension: str
    stem: str
    options: tuple[Option, Option]
    split: str = "eval"

    def option_for(self, pole: str) -> Option:
        return next(o for o in self.options if o.pole == pole)

    @property
    def first_pole(self) -> str:
        """The dimension's first letter (E, S, T or J): the pole whose share is reported first."""
        return DIMENSIONS[self.dimension][0]


@dataclass(frozen=True)
class ItemBank:
    items: tuple[Item, ...]
    source: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def select(self, split: str = "all", dimensions: str | Iterable[str] | None = None) -> ItemBank:
        """Items of one split and some dimensions; a requested dimension with none is an error."""
        if split not in (*SPLITS, "all"):
            raise TraitlensError(f"unknown split '{split}': use train, eval or all")
        if isinstance(dimensions, str):
            dimensions = [dimensions]
        wanted = list(dimensions) if dimensions is not None else self.dimensions()
        chosen = tuple(i for i in self.items if i.dimension in wanted and (split == "all" or i.split == split))
        for dim in wanted:
            if not any(i.dimension == dim for i in chosen):
                raise TraitlensError(f"{self.source}: dimension {dim} has no items in split '{split}'")
        return ItemBank(chosen, self.source)

    def dimensions(self) -> list[str]:
        return [d for d in DIMENSIONS if any(i.dimension == d for i in self.items)]

    def by_dimension(self, dimension: str) -> list[Item]:
        return [i for i in self.items if i.dimension == dimension]

    def content_hash(self) -> str:
        payload = json.dumps(
            [[i.id, i.dimension, i.stem, [[o.text, o.pole] for o in i.options], i.split] for i in self.items]
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _make_item(where: str, raw_id, dimension, stem, options: Sequence[tuple], split) -> Item:
    item_id = str(raw_id).strip() if raw_id is not None else ""
    label = f"{where} (item {item_id or '?'})"
    if not item_id:
        raise TraitlensError(f"{label}: missing id")
    if not isinstance(stem, str) or not stem.strip():
        raise TraitlensError(f"{label}: empty stem")
    if len(options) != 2:
        raise TraitlensError(f"{label}: needs exactly two options, found {len(options)}")
    parsed = []
    for text, pole in options:
        pole = str(pole).strip().upper()
        if pole not in _POLE_TO_DIMENSION:
            raise TraitlensError(f"{label}: unknown pole '{pole}' (use one of E I S N T F J P)")
        if not isinstance(text, str) or not text.strip():
            raise TraitlensError(f"{label}: empty option text")
        parsed.append(Option(text.strip(), pole))
    if parsed[0].pole == parsed[1].pole:
        raise TraitlensError(f"{label}: both options are on pole '{parsed[0].pole}'")
    dims = {_POLE_TO_DIMENSION[o.pole] for o in parsed}
    if len(dims) != 1:
        raise TraitlensError(f"{label}: options mix dimensions ({parsed[0].pole}/{parsed[1].pole})")
    (derived,) = dims
    if dimension is not None and str(dimension).strip().upper() != derived:
        raise TraitlensError(f"{label}: dimension '{dimension}' does not match poles {derived}")
    split = (split or "eval").strip().lower()
    if split not in SPLITS:
        raise TraitlensError(f"{label}: unknown split '{split}' (use train or eval)")
    return Item(item_id, derived, stem.strip(), (parsed[0], parsed[1]), split)


def _read_jsonl(path: Path) -> list[Item]:
    items = []
    for where, _, raw in read_jsonl(path):
        try:
            options = [(o.get("text"), o.get("pole")) for o in raw.get("options", [])]
        except (AttributeError, TypeError):
            raise TraitlensError(f"{where}: options must be a list of {{text, pole}} objects") from None
        items.append(_make_item(where, raw.get("id"), raw.get("dimension"), raw.get("stem"), options, raw.get("split")))
    return items


_CHOICE = re.compile(r"^\s*([AB])[.)]\s*(.*)$")


def _read_mbti93(path: Path) -> list[Item]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise TraitlensError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise TraitlensError(f"{path.name}: expected an object of numbered items")
    items = []
    for key, raw in data.items():
        where = f"{path.name} item {key}"
        if not isinstance(raw, dict) or "question" not in raw:
            raise TraitlensError(f"{where}: expected {{'question', 'A', 'B'}}")
        stem_lines, texts = [], {}
        for line in str(raw["question"]).splitlines():
            match = _CHOICE.match(line)
            if match:
                texts[match.group(1)] = match.group(2)
            elif not texts:
                stem_lines.append(line)
        if set(texts) != {"A", "B"}:
            raise TraitlensError(f"{where}: question must list options 'A.' and 'B.'")
        options = [(texts["A"], raw.get("A")), (texts["B"], raw.get("B"))]
        items.append(_make_item(where, key, None, "\n".join(stem_lines), options, "eval"))
    return items


_CSV_COLUMNS = ("id", "dimension", "stem", "option_a", "pole_a", "option_b", "pole_b")


def _read_csv(path: Path) -> list[Item]:
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraitlensError(f"{path.name}: missing CSV columns {missing}")
        return [
            _make_item(
                f"{path.name} line {number}",
                row["id"],
                row["dimension"],
                row["stem"],
                [(row["option_a"], row["pole_a"]), (row["option_b"], row["pole_b"])],
                row.get("split"),
            )
            for number, row in enumerate(reader, start=2)
        ]


def _check_bank(items: list[Item], source: str) -> ItemBank:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise TraitlensError(f"{source}: duplicate item id '{item.id}'")
        seen.add(item.id)
    if not items:
        raise TraitlensError(f"{source}: no items")
    return ItemBank(tuple(items), source)


def load_items(path: str | Path) -> ItemBank:
    """Load items from ``.jsonl`` (ours), ``.json`` (93-item layout) or ``.csv``."""
    path = Path(path)
    if not path.is_file():
        raise TraitlensError(f"item file not found: {path}")
    readers = {".jsonl": _read_jsonl, ".json": _read_mbti93, ".csv": _read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise TraitlensError(f"{path.name}: unknown item layout (use .jsonl, .json or .csv)")
    return _check_bank(reader(path), path.name)


def default_items() -> ItemBank:
    """The shipped bank: 32 original items per dimension, half train, half eval."""
    with resources.as_file(resources.files("traitlens.instrument.data") / "items.jsonl") as path:
        return load_items(path)
