from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import PlantedScorer, planted_sampler
from helpers import assert_clean_error, plain_loglik, run_cli

from traitlens import TraitlensError
from traitlens.assess import agreement, assess
from traitlens.assess.contexts import FOUR, ContextSet
from traitlens.assess.logprob import label_gate, run_logprob
from traitlens.assess.readouts import SCORED_READOUTS, option_prior, option_readout
from traitlens.assess.requests import LabelRequest
from traitlens.assess.sampling import parse_answer, run_sample
from traitlens.assess.scorer import ModelScorer
from traitlens.assess.stats import bootstrap_ci, fleiss_kappa
from traitlens.assess.validity import measure_validity
from traitlens.instrument.items import DIMENSIONS, Item, ItemBank, Option, default_items
from traitlens.steering import SteeringVector, apply_steering

EVAL = list(default_items().select("eval"))
DIMS = list(DIMENSIONS)
FIRST_POLES = {"E", "S", "T", "J"}


def _score(scorer, readout, items=EVAL, system=None):
    prior = option_prior(scorer, items, FOUR.prior)
    checks = (
        measure_validity(scorer, items, SCORED_READOUTS, prior, label_gate=label_gate) if readout == "auto" else None
    )
    dims = sorted({i.dimension for i in items}, key=DIMS.index)
    return run_logprob(scorer, items, dims, readout, prior=prior, validity=checks, system=system)


@pytest.mark.parametrize("readout", ["label", "option", "option_sum", "pmi", "pmi_mean", "auto"])
def test_model_preferring_known_poles_scores_100_percent(readout):
    dims, _, _ = _score(PlantedScorer(FIRST_POLES, content=300.0, persona=2.0), readout)
    for result in dims.values():
        assert result.share_first == pytest.approx(1.0, abs=1e-6)
        assert result.letter == result.poles[0]
    assert "".join(d.letter for d in dims.values()) == "ESTJ"


def test_position_only_model_gives_half_full_bias_and_a_warning():
    dims, _, warnings = _score(PlantedScorer(set(), position=8.0), "label")
    for dim, result in dims.items():
        assert result.share_first == pytest.approx(0.5, abs=1e-12)
        assert result.letter == "X"
        assert result.reliability["position_bias"] == 1.0
        assert any(w.startswith(dim) and "position-driven" in w for w in warnings)


def test_content_preference_survives_a_strong_position_bias():
    # Averaging probabilities would give ~0.503; averaging log-odds recovers sigmoid(0.5).
    dims, _, _ = _score(PlantedScorer({"I", "N", "F", "P"}, content=0.5, position=5.0), "label")
    for result in dims.values():
        assert result.share_first == pytest.approx(1 / (1 + math.exp(0.5)), abs=1e-9)
        assert result.letter == result.poles[1]
        assert result.reliability["order_consistency"] == 0.0


def test_auto_never_uses_labels_that_are_position_driven():
    scorer = PlantedScorer({"E", "N", "F", "P"}, content=2.0, position=8.0, mass=0.3, persona=1.0)
    dims, _, _ = _score(scorer, "auto")
    assert all(d.readout != "label" and d.valid for d in dims.values())
    assert "".join(d.letter for d in dims.values()) == "ENFP"
    assert not any(s.system for s in scorer.label_seen)  # label passes under personas were skipped
    consistent, _, _ = _score(PlantedScorer(FIRST_POLES, content=6.0, persona=8.0, position=0.0), "auto")
    assert all(d.readout == "label" for d in consistent.values())


def test_options_differing_only_in_length_score_half_under_the_corrected_readout():
    """Options whose likelihood depends only on their length, the same with or without the
    question: the raw mean readout prefers the longer option, the corrected one cannot."""
    scorer = PlantedScorer(set())
    items = [
        Item(
            f"JP-{k}", "JP", "How do you plan?", (Option("I plan.", "J"), Option(f"I go with the flow {k} times.", "P"))
        )
        for k in range(6)
    ]
    for readout in ("pmi", "pmi_mean"):
        dims, _, _ = _score(scorer, readout, items)
        assert dims["JP"].share_first == pytest.approx(0.5, abs=1e-12)
    raw, _, _ = _score(scorer, "option", items)
    assert raw["JP"].share_first < 0.3  # the longer (P) option's mean per word is higher


def test_auto_picks_a_readout_by_validity_and_says_when_none_is_valid():
    # Length-driven options and a persona effect: raw mean fails the content-free check.
    items = [
        Item(f"EI-{k}", "EI", "Party?", (Option("Yes.", "E"), Option(f"I would rather stay home {k} times.", "I")))
        for k in range(6)
    ]
    dims, _, _ = _score(PlantedScorer(set(), persona=3.0, position=8.0, mass=0.3), "auto", items)
    assert dims["EI"].readout in ("pmi", "pmi_mean") and dims["EI"].valid
    assert "persona separation" in dims["EI"].readout_reason
    blind, _, warnings = _score(PlantedScorer(set(), position=8.0, mass=0.3), "auto", items)  # no persona effect
    assert not blind["EI"].valid and blind["EI"].letter == "?"
    assert "no valid readout" in blind["EI"].readout_reason
    assert any("no readout passes" in w for w in warnings)


def test_the_content_free_check_is_not_half_by_construction(tiny):
    """A corrected readout is exactly 0.5 on the very question its prior was built from, so a
    check that reused the prior's questions could never fail. The shipped check asks other
    questions: on the tiny model its corrected shares are off 0.5, so it measures something."""
    assert not set(FOUR.prior) & set(FOUR.check)
    scorer = ModelScorer(tiny)
    items = EVAL[:8]
    prior = option_prior(scorer, items, FOUR.prior)
    checks = measure_validity(scorer, items, ["pmi", "pmi_mean"], prior)
    shares = [checks.content_free[d][r] for d in checks.content_free for r in ("pmi", "pmi_mean")]
    assert len(shares) == 2 * len(checks.content_free) > 0
    assert all(abs(share - 0.5) > 1e-4 for share in shares)
    question = FOUR.check[:1]
    same = ContextSet("same", question, question, 0.05, None)
    reused = measure_validity(scorer, items, ["pmi"], option_prior(scorer, items, question), contexts=same)
    assert all(reused.content_free[d]["pmi"] == pytest.approx(0.5, abs=1e-9) for d in reused.content_free)


def test_auto_readouts_are_chosen_on_the_train_items_never_on_those_reported(tiny, monkeypatch):
    """``auto`` on the eval split measures validity on the bank's train items only (as edit and
    the study choose), so the reported shares equal those read with the train-chosen readouts;
    a bank without train items falls back to the reported ones and says so."""
    from traitlens.assess import api

    measured = []
    real = api.measure_validity
    monkeypatch.setattr(
        api, "measure_validity", lambda s, items, *a, **k: measured.append(items) or real(s, items, *a, **k)
    )
    bank = default_items()
    result = assess(tiny, bank, split="eval")
    assert measured and all(i.split == "train" for items in measured for i in items)
    assert result.validity["readouts_measured_on"] == "train"
    chosen = assess(tiny, bank, split="train").dimensions
    fixed = assess(tiny, bank, split="eval", readout={d: r.readout for d, r in chosen.items()})
    assert {d: r.readout for d, r in result.dimensions.items()} == {d: r.readout for d, r in chosen.items()}
    assert [r.share_first for r in result.dimensions.values()] == [r.share_first for r in fixed.dimensions.values()]
    alone = assess(tiny, bank.select("eval", "JP"), split="all")
    assert alone.validity["readouts_measured_on"] == "reported"
    assert any("no train items" in w for w in alone.warnings)


def test_system_prompt_reaches_every_question():
    scorer = PlantedScorer(set())
    _score(scorer, "label", system="You are a pirate.")
    _score(scorer, "pmi", system="You are a pirate.")
    main_label = [r for r in scorer.label_seen]
    main_option = [r for r in scorer.option_seen if r.question is None]
    assert main_label and all(r.messages()[0] == {"role": "system", "content": "You are a pirate."} for r in main_label)
    assert main_option and all(r.system == "You are a pirate." for r in main_option)
    # The prior is the model's own, without the system prompt.
    assert all(r.system is None for r in scorer.option_seen if r.question is not None)


def test_system_prompt_reaches_the_model_prompt(tiny):
    plain = assess(tiny, default_items().select("eval", "JP"), readout="option")
    persona = assess(tiny, default_items().select("eval", "JP"), readout="option", system="You are a pirate.")
    assert persona.settings["system"] == "You are a pirate."
    assert plain.dimensions["JP"].share_first != persona.dimensions["JP"].share_first


def test_agreement_between_two_instruments(tiny):
    a = assess(tiny, default_items().select("eval", ["EI", "JP"]), readout="pmi")
    flipped = assess(tiny, _swap_poles(default_items().select("eval", ["EI", "JP"])), readout="pmi")
    same, other = agreement(a, a), agreement(a, flipped)
    assert same["types"] == [a.type, a.type] and all(d["difference"] == 0 for d in same["dimensions"].values())
    for dim, d in other["dimensions"].items():  # the same texts filed under the opposite poles
        assert d["difference"] == pytest.approx(2 * a.dimensions[dim].share_first - 1, abs=1e-5)
        assert d["letters_agree"] is False


def _swap_poles(bank):
    from traitlens.instrument.items import ItemBank

    swap = {"E": "I", "I": "E", "J": "P", "P": "J", "S": "N", "N": "S", "T": "F", "F": "T"}
    items = [
        Item(i.id, i.dimension, i.stem, tuple(Option(o.text, swap[o.pole]) for o in i.options), i.split) for i in bank
    ]
    return ItemBank(tuple(items), "swapped")


def test_every_item_is_evaluated_in_both_orders():
    scorer = PlantedScorer(set())
    _score(scorer, "label")
    seen = {(r.item.id, r.order) for r in scorer.label_seen}
    assert seen == {(i.id, o) for i in EVAL for o in ((0, 1), (1, 0))}


def test_option_readout_is_invariant_to_option_order(tiny):
    scorer = ModelScorer(tiny)
    items = EVAL[:6]
    swapped = [Item(i.id, i.dimension, i.stem, (i.options[1], i.options[0]), i.split) for i in items]
    a, b = option_readout(scorer, items), option_readout(scorer, swapped)
    for item in items:
        assert a[item.id].p_first == pytest.approx(b[item.id].p_first, abs=1e-6)


def test_batched_scoring_equals_one_at_a_time(tiny):
    items = EVAL[:5]
    batched = option_readout(ModelScorer(tiny, batch_size=8), items)
    single = option_readout(ModelScorer(tiny, batch_size=1), items)
    for item in items:
        assert batched[item.id].loglik == pytest.approx(single[item.id].loglik, abs=1e-4)


@pytest.mark.parametrize("fold", [None, False, "auto"], ids=["unsteered", "hook", "fold"])
def test_shared_prompt_scoring_equals_a_plain_forward(tiny, fold):
    # Repeated prompts share one cached pass; lengths differ so padding and 1-token answers are hit.
    prompts = [[5, 6, 7, 8], [9, 10], [5, 6, 7, 8], [11, 12, 13, 14, 15, 16], [9, 10], [17]]
    answers = [[20, 21, 22], [23], [24, 25], [26, 27, 28, 29], [30], [31, 32]]
    vector = SteeringVector(
        {1: 4 * torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(0))}, model=tiny.fingerprint.to_dict()
    )
    handle = apply_steering(tiny, vector, 1.0, fold=fold) if fold is not None else nullcontext()
    with handle:
        got = ModelScorer(tiny, batch_size=2).continuation_logprobs(prompts, answers)
        expected = [plain_loglik(tiny, p, a) for p, a in zip(prompts, answers, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    if fold is not None:  # the steering really changed the scores it was checked under
        assert not np.allclose(got, ModelScorer(tiny).continuation_logprobs(prompts, answers), atol=1e-3)


def test_an_empty_answer_is_a_clear_error(tiny):
    with pytest.raises(TraitlensError, match="cannot score an empty answer"):
        ModelScorer(tiny).continuation_logprobs([[5, 6]], [[]])


def test_fleiss_kappa_known_values():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    random_votes = np.stack([rng.multinomial(30, [0.5, 0.5]) for _ in range(400)])
    assert abs(fleiss_kappa(random_votes)) < 0.05


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.random(10), rng.random(1000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < hi_s - lo_s


def _request(order=(0, 1)):
    item = Item("x", "JP", "Plan?", (Option("I book everything early.", "J"), Option("I go with the flow.", "P")))
    return LabelRequest(item, order)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("1", 0),
        (" 2.", 1),
        ("Answer: 2", 1),
        ("I would say 1 because", 0),
        ("I go with the flow.", 1),
        ("Hmm, hard to say", None),
        ("1 or 2", 0),
        ("either 1 or 2", None),
    ],
)
def test_parse_answer(reply, expected):
    assert parse_answer(reply, _request()) == expected


def test_sample_protocol_counts_unparseable_and_measures_agreement():
    items = EVAL[:16]
    dims_items = sorted({i.dimension for i in items})
    prefers = planted_sampler(lambda r: "1" if r.pole_at(0) in FIRST_POLES else "2")
    dims, _, warnings = run_sample(prefers, items, dims_items, runs=7)
    for result in dims.values():
        assert result.share_first == 1.0
        assert result.reliability["fleiss_kappa"] == pytest.approx(1.0)
        assert result.reliability["unparsed_share"] == 0.0
    always_one = planted_sampler(lambda r: "1")
    dims, _, warnings = run_sample(always_one, items, dims_items, runs=20, seed=3)
    for result in dims.values():
        assert result.reliability["position_bias"] == 1.0
        assert 0.3 < result.share_first < 0.7
    assert any("position-driven" in w for w in warnings)
    mute = planted_sampler(lambda r: "I cannot say.")
    dims, _, warnings = run_sample(mute, items, dims_items, runs=3)
    assert all(d.reliability["unparsed_share"] == 1.0 for d in dims.values())
    assert any("no parseable answer" in w for w in warnings)


def test_assess_on_tiny_model_writes_the_documented_json(tiny, tmp_path):
    result = assess(tiny, split="eval")
    path = result.save(tmp_path / "assessment.json")
    data = json.loads(path.read_text())
    assert len(data["type"]) == 4
    for dim, (first, second) in DIMENSIONS.items():
        entry = data["dimensions"][dim]
        assert entry[first] + entry[second] == pytest.approx(1.0)
        assert set(entry["ci95"]) == {first, second}
        assert entry["readout"] in SCORED_READOUTS
        assert set(data["validity"]["readouts"][dim]) >= {"option", "pmi"}
    assert set(data["validity"]["length_balance"]) == set(DIMENSIONS)
    assert data["model"]["name"] == "tiny" and len(data["items"]) == 64


def test_assess_is_deterministic(tiny):
    a, b = assess(tiny, split="eval"), assess(tiny, split="eval")
    assert a.to_dict()["dimensions"] == b.to_dict()["dimensions"]


def test_sample_protocol_on_tiny_runs(tiny):
    items = default_items().select("eval", "JP")
    result = assess(tiny, items, protocol="sample", runs=3)
    assert set(result.dimensions) == {"JP"}
    assert "fleiss_kappa" in result.dimensions["JP"].reliability


def test_cli_assess_writes_json_png_and_report(tmp_path):
    out = tmp_path / "run"
    result = run_cli("assess", "--model", "tiny", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"assessment.json", "assessment.png", "assessment.md"}
    assert "type" in result.stdout


def test_cli_assess_with_a_persona_and_a_second_instrument(tmp_path):
    words = Path(__file__).parents[1] / "instruments" / "words32.jsonl"
    out = tmp_path / "run"
    result = run_cli(
        "assess", "--model", "tiny", "--system", "You are organised.", "--second-items", str(words), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "assessment.json").read_text())
    assert data["settings"]["system"] == "You are organised."
    assert data["validity"]["agreement"]["instruments"] == ["items.jsonl", "words32.jsonl"]
    assert set(data["validity"]["agreement"]["dimensions"]) == set(DIMENSIONS)
    assert "Agreement with a second instrument" in (out / "assessment.md").read_text()


def test_cli_assess_bad_input(tmp_path):
    assert_clean_error(run_cli("assess", "--model", "tiny", "--protocol", "vibes"), "unknown protocol")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "stem": "s", "options": [{"text": "x", "pole": "Z"}, {"text": "y", "pole": "P"}]}\n')
    assert_clean_error(run_cli("assess", "--items", str(bad)), "bad.jsonl line 1 (item a): unknown pole 'Z'")
    assert_clean_error(run_cli("assess", "--model", "tiny", "--split", "test"), "unknown split")
    assert_clean_error(run_cli("assess", "--model", "tiny", "--readout", "vibes"), "unknown readout 'vibes'")
    assert_clean_error(run_cli("assess", "--model", "tiny", "--system", "  "), "--system must not be empty")
    assert_clean_error(run_cli("assess", "--model", "tiny", "--system", "x" * 5000), "the limit is 2000")


@pytest.mark.slow
def test_default_model_assessment_reports_its_position_bias(smollm):
    bank = default_items()
    few = [i for dim in ("JP", "EI") for split in ("train", "eval") for i in bank.select(split, dim).items[:6]]
    result = assess(smollm, ItemBank(tuple(few), bank.source))  # 6 eval items each, readouts chosen on 6 train
    assert len(result.type) == 4 and result.validity["readouts_measured_on"] == "train"
    # Measured: SmolLM2-135M answers "1" whatever the content; the instrument must say so.
    assert all(d.reliability["position_bias"] > 0.8 for d in result.dimensions.values())
    assert all(d.readout != "label" for d in result.dimensions.values())
    assert result.warnings


def test_fleiss_kappa_ignores_unparsed_answers():
    """Defect 11: "unparsed" was a category, so a model that never answered agreed perfectly."""
    items = EVAL[:8]
    dims_items = sorted({i.dimension for i in items})
    mute = planted_sampler(lambda r: "I cannot say.")
    dims, _, _ = run_sample(mute, items, dims_items, runs=6)
    assert all(math.isnan(d.reliability["fleiss_kappa"]) for d in dims.values())
    assert math.isnan(fleiss_kappa([[0, 0], [0, 0]]))
    # Unequal numbers of parsed answers per item are fine: perfect agreement stays 1.
    assert fleiss_kappa([[5, 0], [0, 3], [2, 0]]) == pytest.approx(1.0)


@pytest.mark.parametrize("runs", [4, 5, 30])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_position_only_sampler_lands_at_exactly_half_whatever_the_seed(runs, seed):
    """Defect 12: random orders per run left a position-only model at 0.5 +/- noise, its letter
    set by the seed. Balanced orders put it at 50% for every seed."""
    items = [i for i in EVAL if i.dimension == "JP"]
    always_one = planted_sampler(lambda r: "1")
    dims, _, _ = run_sample(always_one, items, ["JP"], runs=runs, seed=seed)
    assert dims["JP"].share_first == pytest.approx(0.5)
    assert dims["JP"].letter == "X"


def test_a_length_unbalanced_instrument_is_assessed_with_a_warning(tiny):
    lopsided = [
        Item(
            f"JP-{k}",
            "JP",
            "Plans?",
            (Option("I plan.", "J"), Option("I go with the flow and see where it ends.", "P")),
        )
        for k in range(4)
    ]
    from traitlens.instrument.items import ItemBank

    result = assess(tiny, ItemBank(tuple(lopsided), "lopsided"), readout="pmi")
    assert "lopsided: eval options are length-unbalanced: JP: first pole's text longer in 0 of 4" in " ".join(
        result.warnings
    )
    assert "lopsided: JP eval: the first pole's option is listed first in 4 of 4 items" in result.warnings
    assert result.validity["length_balance"]["JP"]["balanced"] is False
    with pytest.raises(TraitlensError, match="lopsided: JP: no train items .and 2 more.; without --strict"):
        assess(tiny, ItemBank(tuple(lopsided), "lopsided"), readout="pmi", strict=True)


def test_a_shift_that_only_moves_wording_is_seen_in_the_content_free_share():
    """Evidence issue: a vector that makes one pole's options likelier whatever the question moves
    the content-free share by about as much as the answer; one that moves the answer leaves it."""
    from traitlens.assess.validity import WORDING_FLAG, content_free_shares

    items = [i for i in default_items() if i.dimension == "JP"]
    readout = {"JP": "option"}
    plain = content_free_shares(PlantedScorer(set()), items, readout, None)["JP"]
    wording = content_free_shares(PlantedScorer(set(), wording={"P": 1.5}), items, readout, None)["JP"]
    answer = content_free_shares(PlantedScorer({"P"}, content=1.5), items, readout, None)["JP"]
    assert plain - wording > WORDING_FLAG  # J's share fell with no question asked: wording
    assert answer == pytest.approx(plain)  # the answer moved, the wording did not


def test_a_steered_assessment_records_its_content_free_share(tiny):
    from traitlens.steering import Steering, SteeringVector

    vector = SteeringVector(
        {2: 8 * torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(1))}, model=tiny.fingerprint.to_dict()
    )
    bank = default_items().select("all", "JP")
    result = assess(tiny, bank, split="all", readout="pmi", intervention=Steering(vector, 1.0))
    free = result.validity["steered_content_free"]["JP"]
    assert free["readout"] == "pmi" and free["wording_shift"] == pytest.approx(free["steered"] - free["unsteered"])
    assert free["flagged"] == (abs(free["wording_shift"]) > 0.05)
    assert "steered_content_free" not in assess(tiny, bank, split="all", readout="pmi").validity
