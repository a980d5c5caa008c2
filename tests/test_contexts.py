"""The neutral contexts of the prior and the content-free check, and the spread gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from traitlens import TraitlensError
from traitlens.assess.contexts import FOUR, WIDE, ScrambledStem, context_set
from traitlens.assess.validity import Spread, Validity, choose_readout
from traitlens.instrument.items import short_items


def test_wide_sets_are_large_varied_and_disjoint():
    assert len(WIDE.prior) >= 32 and len(WIDE.check) >= 16
    assert not {c for c in WIDE.prior if isinstance(c, str)} & {c for c in WIDE.check if isinstance(c, str)}
    item = short_items().items[0]
    per_item = [c(item) for c in (*WIDE.prior, *WIDE.check) if callable(c)]
    assert len(set(per_item)) == 2  # the prior's and the check's shuffles differ


def test_scrambled_stem_keeps_the_words_and_drops_the_order():
    bank = short_items()
    for item in list(bank)[:40]:
        text = ScrambledStem(0)(item)
        words = item.stem.lower().rstrip("?.!").replace("?", "").split()
        assert sorted(text.split()) == sorted(w.strip(",.:") for w in words)
        assert text == ScrambledStem(0)(item)  # seeded: the same every run
        if len(set(words)) > 2:
            assert text.split() != [w.strip(",.:") for w in words]


def _validity(shares: tuple[float, ...], gate) -> Validity:
    v = Validity()
    v.spread["JP"] = {"pmi": Spread(shares, gate.mean_tolerance, gate.context_tolerance)}
    v.persona["JP"] = {"pmi": (0.6, 0.4)}
    return v


def test_the_wide_gate_refuses_a_readout_that_one_context_tips():
    """Mean exactly 50%, but one context at 35%: fine for the mean-only gate, refused by the
    wide set's gate, which every single context must pass."""
    shares = (0.35, 0.65, *([0.5] * 14))
    assert choose_readout("JP", _validity(shares, FOUR))[2]
    readout, why, valid = choose_readout("JP", _validity(shares, WIDE))
    assert not valid and "contexts 35%-65%" in why
    assert choose_readout("JP", _validity((0.42, 0.58, *([0.5] * 14)), WIDE))[2]
    assert not choose_readout("JP", _validity((0.54,) * 16, WIDE))[2]  # the mean off by 4 points


def test_spread_reports_min_max_sd():
    out = Spread((0.4, 0.5, 0.6), 0.03, 0.1).to_dict()
    assert out["min"] == 0.4 and out["max"] == 0.6 and out["contexts"] == 3 and out["passes"]
    assert out["sd"] == pytest.approx(0.1)


def test_unknown_context_set_is_a_clear_error():
    with pytest.raises(TraitlensError, match="unknown context set 'narrow': use four or wide"):
        context_set("narrow")


def test_wide_assessment_writes_the_spread(tiny):
    from traitlens.assess import assess
    from traitlens.instrument.items import ItemBank

    bank = short_items()
    chosen = [i for i in bank if i.dimension in ("EI", "JP") and i.split != "confirm" and int(i.id[3:]) % 4 == 1]
    small = ItemBank(tuple(chosen), "small")
    result = assess(tiny, small, contexts="wide", readout="auto")
    spread = result.validity["content_free_spread"]
    assert set(spread) == {"EI", "JP"} and result.validity["contexts"] == "wide"
    for by in spread.values():
        for s in by.values():
            assert s["contexts"] == 16 and s["min"] <= s["mean"] <= s["max"]
    assert result.settings["contexts"] == "wide"


def test_strict_refuses_an_incomplete_or_unbalanced_bank(tmp_path):
    from helpers import assert_clean_error, run_cli

    words32 = str(Path(__file__).parents[1] / "instruments" / "words32.jsonl")
    out = tmp_path / "out"
    result = run_cli("assess", "--model", "tiny", "--items", words32, "--strict", "--out", str(out))
    assert_clean_error(result, "words32.jsonl: EI: no train items")
    assert not out.exists()
    assert_clean_error(run_cli("assess", "--model", "tiny", "--contexts", "narrow"), "unknown context set 'narrow'")


def test_position_problems_name_the_lopsided_split():
    from traitlens.instrument.balance import bank_problems
    from traitlens.instrument.items import Item, Option

    lopsided = [
        Item(f"J{k}", "JP", "Plan?", (Option(f"yes {k}", "J"), Option(f"no {k}", "P")), "train") for k in range(8)
    ]
    assert bank_problems(lopsided, required=()) == ["JP train: the first pole's option is listed first in 8 of 8 items"]
    assert "JP: no eval items" in bank_problems(lopsided)
    assert bank_problems(short_items()) == []
