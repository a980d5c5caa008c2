from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from traitlens import TraitlensError
from traitlens.instrument.items import DIMENSIONS, Trait, default_items, load_items, short_items


def test_shipped_bank_is_balanced_and_split():
    bank = default_items()
    for dim in DIMENSIONS:
        items = bank.by_dimension(dim)
        assert len(items) >= 24
        for split in ("train", "eval"):
            firsts = Counter(i.options[0].pole for i in items if i.split == split)
            assert len(firsts) == 2 and len(set(firsts.values())) == 1, (dim, split, firsts)
    assert len({i.id for i in bank}) == len(bank)


def _jsonl(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _row(id="X-1", a=("Yes.", "J"), b=("No.", "P"), stem="Plan ahead?", dimension="JP"):
    return {
        "id": id,
        "dimension": dimension,
        "stem": stem,
        "options": [{"text": a[0], "pole": a[1]}, {"text": b[0], "pole": b[1]}],
    }


@pytest.mark.parametrize(
    "rows, message",
    [
        ([_row(), _row(b=("No.", "Q"))], "line 2 (item X-1): unknown pole 'Q'"),
        ([_row(b=("No.", "J"))], "line 1 (item X-1): both options are on pole 'J'"),
        ([_row(), _row()], "duplicate item id 'X-1'"),
        ([_row(stem="  ")], "line 1 (item X-1): empty stem"),
        ([_row(a=("", "J"))], "line 1 (item X-1): empty option text"),
        ([_row(b=("No.", "E"))], "options mix dimensions"),
    ],
)
def test_jsonl_loader_rejects_bad_items_naming_them(tmp_path, rows, message):
    with pytest.raises(TraitlensError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_items(_jsonl(tmp_path, rows))


def test_dimension_with_no_items_is_an_error(tmp_path):
    bank = load_items(_jsonl(tmp_path, [_row()]))
    assert bank.dimensions() == ["JP"]
    with pytest.raises(TraitlensError, match="dimension EI has no items"):
        bank.select("all", ["EI", "JP"])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "bad.jsonl line 3: invalid JSON"),
        ("[1, 2]", "bad.jsonl line 3: expected a JSON object, got list"),
        (json.dumps(_row() | {"options": ["Yes.", "No."]}), "bad.jsonl line 3: options must be a list of"),
    ],
)
def test_bad_jsonl_line_is_named(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_row()) + "\n\n" + line + "\n")  # the blank line still counts
    with pytest.raises(TraitlensError, match=message):
        load_items(path)


def test_mbti93_layout(tmp_path):
    path = tmp_path / "mbti.json"
    path.write_text(
        json.dumps(
            {
                "1": {"question": "Do you prefer to\nA. plan ahead\nB. stay flexible", "A": "J", "B": "P"},
                "2": {"question": "At parties you\nA. talk to many\nB. talk to few", "A": "E", "B": "I"},
            }
        )
    )
    bank = load_items(path)
    assert [i.dimension for i in bank] == ["JP", "EI"]
    assert bank.items[0].stem == "Do you prefer to"
    assert bank.items[0].option_for("P").text == "stay flexible"
    path.write_text(json.dumps({"7": {"question": "Stem\nA. x\nB. y", "A": "J", "B": "J"}}))
    with pytest.raises(TraitlensError, match="mbti.json item 7.*both options"):
        load_items(path)


def test_csv_layout(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        "id,dimension,stem,option_a,pole_a,option_b,pole_b,split\n"
        "a1,TF,Head or heart?,Head.,T,Heart.,F,train\n"
        "a2,TF,Rules?,Same for all.,T,,F,eval\n"
    )
    with pytest.raises(TraitlensError, match="items.csv line 3 \\(item a2\\): empty option text"):
        load_items(path)
    path.write_text("id,stem\nx,y\n")
    with pytest.raises(TraitlensError, match="missing CSV columns"):
        load_items(path)


def test_unknown_layout_and_missing_file(tmp_path):
    with pytest.raises(TraitlensError, match="not found"):
        load_items(tmp_path / "none.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(TraitlensError, match="unknown item layout"):
        load_items(tmp_path / "x.txt")


@pytest.mark.parametrize(
    "text, expected",
    [("JP", ("JP", "J", "P")), ("pj", ("JP", "P", "J")), ("FT", ("TF", "F", "T")), ("ei", ("EI", "E", "I"))],
)
def test_trait_parses_once_and_carries_its_direction(text, expected):
    trait = Trait.parse(text)
    assert (trait.dimension, trait.source, trait.target) == expected
    assert Trait.parse(trait) is trait and str(trait) == text.upper()
    assert trait.arrow == f"{expected[1]} -> {expected[2]}"
    assert trait.sign == (1.0 if expected[2] == DIMENSIONS[expected[0]][0] else -1.0)


@pytest.mark.parametrize("text", ["JJ", "JE", "XY", "J", "JPX", "", None, 3])
def test_trait_rejects(text):
    with pytest.raises(TraitlensError, match="unknown trait"):
        Trait.parse(text)


def _token_counter():
    from traitlens.models.registry import default_tokenizer

    tokenizer = default_tokenizer()
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_shipped_option_lengths_are_balanced_per_pole():
    """Neither pole's option may be systematically the longer: a readout scoring the options'
    text would otherwise measure length (under one token mean difference, each pole the longer
    about as often, in each split and dimension)."""
    from traitlens.instrument.balance import length_balance

    count = _token_counter()
    bank = default_items()
    for split in ("train", "eval"):
        pairs = [
            (i.dimension, i.option_for(DIMENSIONS[i.dimension][0]).text, i.option_for(DIMENSIONS[i.dimension][1]).text)
            for i in bank.select(split)
        ]
        for balance in length_balance(pairs, count).values():
            assert balance.balanced, f"{split} {balance.describe()}"
            assert abs(balance.first_longer - balance.second_longer) <= 2, f"{split} {balance.describe()}"


def test_shipped_statement_lengths_are_balanced_per_pole():
    from traitlens.instrument.balance import length_balance
    from traitlens.probe.contrast import statement_pairs

    groups = {p.group: p for p in statement_pairs().pairs}  # one pair of answers per group
    pairs = [(p.dimension, p.first.answer, p.second.answer) for p in groups.values()]
    for balance in length_balance(pairs, _token_counter()).values():
        assert balance.balanced, balance.describe()


def test_length_balance_flags_a_one_sided_instrument():
    from traitlens.instrument.balance import length_balance

    words = lambda text: len(text.split())  # noqa: E731
    lopsided = [("JP", "I plan.", "I go wherever the day takes me.")] * 8
    even = (
        [("JP", "I plan.", "I drift.")] * 4
        + [("JP", "I plan every day.", "I drift.")] * 2
        + [("JP", "I plan.", "I drift all day.")] * 2
    )
    assert not length_balance(lopsided, words)["JP"].balanced
    assert length_balance(even, words)["JP"].balanced


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_binary_garbage_item_file_is_a_clear_error(tmp_path, suffix):
    """An item file of random bytes ended in a UnicodeDecodeError traceback."""
    import numpy as np

    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(128, 256, size=400, dtype=np.uint8).tobytes())
    with pytest.raises(TraitlensError, match=f"garbage{suffix}: not UTF-8 text"):
        load_items(path)


def test_short_bank_has_three_splits_balanced_positions_and_paraphrases():
    bank = short_items()
    for dim in DIMENSIONS:
        items = bank.by_dimension(dim)
        assert Counter(i.split for i in items) == {"train": 24, "eval": 16, "confirm": 32}, dim
        for split in ("train", "eval", "confirm"):
            firsts = Counter(i.options[0].pole for i in items if i.split == split)
            assert len(set(firsts.values())) == 1 and len(firsts) == 2, (dim, split, firsts)
        confirm = [i for i in items if i.split == "confirm"]
        assert all(i.paraphrase is not None for i in confirm)
        assert all(i.paraphrase[0] != i.stem for i in confirm)
        assert len({i.style for i in items}) == 4
        assert max(len(o.text.split()) for i in items for o in i.options) <= 7  # a word or a short phrase


def test_short_bank_option_lengths_are_balanced_per_pole_and_split():
    from traitlens.instrument.balance import length_balance

    count, bank = _token_counter(), short_items()
    for split in ("train", "eval", "confirm"):
        chosen = bank.select(split)
        for label, items in (("items", list(chosen)), ("paraphrases", list(chosen.reworded()))):
            pairs = [
                (
                    i.dimension,
                    i.option_for(DIMENSIONS[i.dimension][0]).text,
                    i.option_for(DIMENSIONS[i.dimension][1]).text,
                )
                for i in items
            ]
            for balance in length_balance(pairs, count).values():
                assert balance.balanced, f"{split} {label} {balance.describe()}"


def test_confirm_is_sealed_from_all():
    bank = short_items()
    assert {i.split for i in bank.select("all")} == {"train", "eval"}
    assert {i.split for i in bank.select("confirm")} == {"confirm"}
    reworded = bank.select("confirm").reworded()
    assert len(reworded) == 128 and all(i.id.endswith("~p") for i in reworded)


def test_near_duplicates_across_splits_are_refused_naming_both(tmp_path):
    a = _row(id="A", stem="Do you plan your week ahead?") | {"split": "train"}
    b = _row(id="B", stem="Do you plan your week ahead?!") | {"split": "eval"}
    with pytest.raises(TraitlensError, match="items 'A' \\(train\\) and 'B' \\(eval\\) are near-duplicates"):
        load_items(_jsonl(tmp_path, [a, b]))
    b["split"] = "train"  # the same split: a repeated question is no leak
    assert len(load_items(_jsonl(tmp_path, [a, b]))) == 2
    b |= {"split": "confirm", "stem": "Other?"}
    b["paraphrase"] = {"stem": "Do you plan your week ahead?", "options": a["options"]}
    with pytest.raises(TraitlensError, match="near-duplicates"):  # a paraphrase counts as the item's words
        load_items(_jsonl(tmp_path, [a, b]))


def test_paraphrase_must_keep_the_pole_order(tmp_path):
    row = _row() | {"split": "confirm"}
    row["paraphrase"] = {"stem": "Ahead?", "options": list(reversed(row["options"]))}
    with pytest.raises(TraitlensError, match="line 1 \\(item X-1\\): the paraphrase's options must keep"):
        load_items(_jsonl(tmp_path, [row]))
    row["paraphrase"] = {"stem": " "}
    with pytest.raises(TraitlensError, match="paraphrase must be"):
        load_items(_jsonl(tmp_path, [row]))
