"""Questionnaire items: the shipped bank and loaders for other layouts, with validation.

Our JSONL format, one item per line::

    {"id": "JP-01", "dimension": "JP", "split": "train",
     "stem": "How do you plan a holiday?",
     "options": [{"text": "I book everything in advance ...", "pole": "J"},
                 {"text": "I book the flight and decide the rest as I go.", "pole": "P"}]}

``dimension`` is one of EI, SN, TF, JP; each option's ``pole`` is one letter of it, and the two
options hold different poles. ``split`` is ``train`` (everything that chooses reads it),
``eval`` (development reports) or ``confirm`` (sealed: only final reports read it, and only by
asking for it by name; ``"all"`` means the unsealed splits); it defaults to ``eval``. Optional:
``style`` (adjectives, behaviours, ...) and ``paraphrase`` (``{"stem", "options"}``, the same
item reworded, options in the same order), which the reliability report compares with the item.
Items that repeat one another across splits (nearly the same words) are refused, naming both.
Also read: the 93-item JSON layout of public LLM-MBTI code
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
    "short_items",
    "Trait",
    "SPLITS",
    "SEALED",
]

DIMENSIONS: dict[str, tuple[str, str]] = {
    "EI": ("E", "I"),
    "SN": ("S", "N"),
    "TF": ("T", "F"),
    "JP": ("J", "P"),
}
_POLE_TO_DIMENSION = {pole: dim for dim, poles in DIMENSIONS.items() for pole in poles}
SPLITS = ("train", "eval", "confirm")
SEALED = "confirm"  # read only when asked for by name, never by "all"
NEAR_DUPLICATE = 0.8  # word-set Jaccard of stem + options at which two items are one item


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
    style: str | None = None
    paraphrase: tuple[str, tuple[Option, Option]] | None = None  # (stem, options) reworded

    def reworded(self) -> Item:
        """The paraphrase as an item of its own (id ``<id>~p``); needs ``paraphrase``."""
        if self.paraphrase is None:
            raise TraitlensError(f"item {self.id} has no paraphrase")
        stem, options = self.paraphrase
        return Item(f"{self.id}~p", self.dimension, stem, options, self.split, self.style)

    def words(self) -> frozenset[str]:
        """The lower-cased words of the stem and both options (and of the paraphrase)."""
        texts = [self.stem, *(o.text for o in self.options)]
        if self.paraphrase is not None:
            texts += [self.paraphrase[0], *(o.text for o in self.paraphrase[1])]
        return frozenset(re.findall(r"[a-z0-9']+", " ".join(texts).lower()))

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
        """Items of one split and some dimensions; a requested dimension with none is an error.
        ``"all"`` is every split but the sealed ``confirm``, which only its own name reads."""
        if split not in (*SPLITS, "all"):
            raise TraitlensError(f"unknown split '{split}': use train, eval, confirm or all")
        if isinstance(dimensions, str):
            dimensions = [dimensions]
        wanted = list(dimensions) if dimensions is not None else self.dimensions()
        splits = [s for s in SPLITS if s != SEALED] if split == "all" else [split]
        chosen = tuple(i for i in self.items if i.dimension in wanted and i.split in splits)
        for dim in wanted:
            if not any(i.dimension == dim for i in chosen):
                raise TraitlensError(f"{self.source}: dimension {dim} has no items in split '{split}'")
        return ItemBank(chosen, self.source)

    def dimensions(self) -> list[str]:
        return [d for d in DIMENSIONS if any(i.dimension == d for i in self.items)]

    def by_dimension(self, dimension: str) -> list[Item]:
        return [i for i in self.items if i.dimension == dimension]

    def reworded(self) -> ItemBank:
        """The paraphrases of the items that have one, as a bank of their own."""
        return ItemBank(tuple(i.reworded() for i in self.items if i.paraphrase is not None), self.source + "~p")

    def content_hash(self) -> str:
        def row(i: Item) -> list:
            out = [i.id, i.dimension, i.stem, [[o.text, o.pole] for o in i.options], i.split]
            if i.paraphrase is not None:  # banks without paraphrases keep their earlier hash
                out.append([i.paraphrase[0], [[o.text, o.pole] for o in i.paraphrase[1]]])
            return out

        return hashlib.sha256(json.dumps([row(i) for i in self.items]).encode()).hexdigest()[:16]


def _options(label: str, options: Sequence[tuple]) -> tuple[Option, Option]:
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
    if _POLE_TO_DIMENSION[parsed[0].pole] != _POLE_TO_DIMENSION[parsed[1].pole]:
        raise TraitlensError(f"{label}: options mix dimensions ({parsed[0].pole}/{parsed[1].pole})")
    return parsed[0], parsed[1]


def _paraphrase(label: str, raw, options: tuple[Option, Option]) -> tuple[str, tuple[Option, Option]] | None:
    if raw is None:
        return None
    try:
        stem, reworded = raw["stem"], [(o.get("text"), o.get("pole")) for o in raw["options"]]
    except (KeyError, TypeError, AttributeError):
        raise TraitlensError(f"{label}: paraphrase must be {{stem, options: [{{text, pole}}, ...]}}") from None
    if not isinstance(stem, str) or not stem.strip():
        raise TraitlensError(f"{label}: empty paraphrase stem")
    parsed = _options(f"{label} paraphrase", reworded)
    if [o.pole for o in parsed] != [o.pole for o in options]:
        raise TraitlensError(f"{label}: the paraphrase's options must keep the item's pole order")
    return stem.strip(), parsed


def _make_item(
    where: str, raw_id, dimension, stem, options: Sequence[tuple], split, style=None, paraphrase=None
) -> Item:
    item_id = str(raw_id).strip() if raw_id is not None else ""
    label = f"{where} (item {item_id or '?'})"
    if not item_id:
        raise TraitlensError(f"{label}: missing id")
    if not isinstance(stem, str) or not stem.strip():
        raise TraitlensError(f"{label}: empty stem")
    parsed = _options(label, options)
    derived = _POLE_TO_DIMENSION[parsed[0].pole]
    if dimension is not None and str(dimension).strip().upper() != derived:
        raise TraitlensError(f"{label}: dimension '{dimension}' does not match poles {derived}")
    split = str(split or "eval").strip().lower()
    if split not in SPLITS:
        raise TraitlensError(f"{label}: unknown split '{split}' (use train, eval or confirm)")
    if style is not None and not isinstance(style, str):
        raise TraitlensError(f"{label}: style must be text")
    return Item(item_id, derived, stem.strip(), parsed, split, style, _paraphrase(label, paraphrase, parsed))


def _read_jsonl(path: Path) -> list[Item]:
    items = []
    for where, _, raw in read_jsonl(path):
        try:
            options = [(o.get("text"), o.get("pole")) for o in raw.get("options", [])]
        except (AttributeError, TypeError):
            raise TraitlensError(f"{where}: options must be a list of {{text, pole}} objects") from None
        items.append(
            _make_item(
                where,
                raw.get("id"),
                raw.get("dimension"),
                raw.get("stem"),
                options,
                raw.get("split"),
                raw.get("style"),
                raw.get("paraphrase"),
            )
        )
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
    _refuse_near_duplicates(items, source)
    return ItemBank(tuple(items), source)


def _refuse_near_duplicates(items: list[Item], source: str) -> None:
    """Two items in different splits with (nearly) the same words would let a choice made on
    one split be read back on another: refused, naming both."""
    words = [(item, item.words()) for item in items]
    for k, (a, wa) in enumerate(words):
        for b, wb in words[k + 1 :]:
            if a.split == b.split or a.dimension != b.dimension:
                continue
            overlap = len(wa & wb) / max(len(wa | wb), 1)
            if overlap >= NEAR_DUPLICATE:
                raise TraitlensError(
                    f"{source}: items '{a.id}' ({a.split}) and '{b.id}' ({b.split}) are near-duplicates "
                    f"({overlap:.0%} of their words shared); one item must not sit in two splits"
                )


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
    """The shipped bank: 32 original items per dimension with sentence-long options, half
    train, half eval."""
    return _shipped("items.jsonl")


def short_items() -> ItemBank:
    """The short-option bank, all written for traitlens: 72 items per dimension whose options
    are a word or a short phrase, in four styles (adjectives, behaviours, preferences, short
    scenarios), each pole's option listed first in half of each split. 24 train, 16 eval and 32
    sealed ``confirm`` items per dimension; every confirm item has a paraphrase."""
    return _shipped("short.jsonl")


def _shipped(name: str) -> ItemBank:
    with resources.as_file(resources.files("traitlens.instrument.data") / name) as path:
        return load_items(path)
