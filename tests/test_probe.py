from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError
from traitlens.instrument.items import default_items, load_items
from traitlens.probe.api import probe, probe_dimension
from traitlens.probe.collect import collect, encode_side
from traitlens.probe.contrast import (
    ContrastPair,
    ContrastSet,
    item_pairs,
    load_pairs,
    statement_pairs,
)
from traitlens.probe.layers import grouped_folds, permutation_test
from traitlens.probe.methods import METHODS, LogisticProbe, get_method


def _planted(n=80, d=64, margin=3.0, noise=1.0, seed=0, base_scale=2.0, direction=None):
    """Paired samples: shared content per pair plus +/- margin/2 along a planted unit vector."""
    g = torch.Generator().manual_seed(seed)
    if direction is None:
        direction = torch.randn(d, generator=g)
        direction /= direction.norm()
    base = torch.randn(n, d, generator=g) * base_scale
    pos = base + margin / 2 * direction + noise * torch.randn(n, d, generator=g)
    neg = base - margin / 2 * direction + noise * torch.randn(n, d, generator=g)
    return pos, neg, direction


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_recovers_a_planted_direction(name):
    pos, neg, truth = _planted(n=600, d=32, margin=3.0, noise=1.0)
    found = get_method(name).fit(pos, neg)
    assert float(found.vector @ truth) > 0.95
    assert found.vector.norm() == pytest.approx(1.0, abs=1e-5)
    assert found.mean_pos > found.mean_neg and found.spread > 0 and found.resid_norm > 0


def test_probe_beats_chance_on_held_out_data_by_the_planted_margin():
    pos, neg, truth = _planted(n=200, d=32, margin=3.0, noise=1.0, seed=1, base_scale=0.5)
    test_pos, test_neg, _ = _planted(n=400, d=32, margin=3.0, noise=1.0, seed=9, base_scale=0.5, direction=truth)
    direction = LogisticProbe().fit(pos, neg)
    mid = (direction.mean_pos + direction.mean_neg) / 2
    accuracy = float(torch.cat([direction.project(test_pos) > mid, direction.project(test_neg) <= mid]).float().mean())
    # Along the truth each pole is N(+-1.5, 1.25): the Bayes accuracy is Phi(1.5 / 1.118) = 0.91.
    assert accuracy > 0.82
    null_pos, null_neg, _ = _planted(n=200, d=32, margin=0.0, seed=2, base_scale=0.5)
    null_dir = LogisticProbe().fit(null_pos, null_neg)
    mid = (null_dir.mean_pos + null_dir.mean_neg) / 2
    null_acc = float(torch.cat([null_dir.project(test_pos) > mid, null_dir.project(test_neg) <= mid]).float().mean())
    assert abs(null_acc - 0.5) < 0.15


def test_grouped_folds_keep_a_group_together():
    groups = np.repeat([f"item{k}" for k in range(12)], 3)
    for train, test in grouped_folds(groups, 5):
        assert not set(groups[train]) & set(groups[test])


def test_permutation_test_separates_signal_from_noise():
    pos, neg, _ = _planted(n=60, d=32, margin=3.0, noise=1.0)
    noise_pos, noise_neg, _ = _planted(n=60, d=32, margin=0.0, noise=1.0, seed=5)
    groups = np.arange(60).astype(str)
    observed, p, null95 = permutation_test(
        [noise_pos.numpy(), pos.numpy()], [noise_neg.numpy(), neg.numpy()], groups, 200
    )
    assert p[1] < 0.01 and observed[1] > null95
    assert p[0] > 0.05


def _identical_sides(n_groups=12) -> ContrastSet:
    statements = statement_pairs().for_dimension("JP").pairs[: 4 * n_groups]
    pairs = tuple(ContrastPair(p.id, p.group, "JP", p.split, p.first, p.first) for p in statements)
    return ContrastSet(pairs, "identical")


def test_direction_written_at_one_layer_is_found_there_and_not_before(tiny):
    planted_layer = 2
    v = torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(0))
    v = 40 * v / v.norm()  # several times the residual stream's own spread on the tiny model

    def plant(act, hook):  # rows alternate first/second side within every batch
        signs = torch.tensor([1.0 if k % 2 == 0 else -1.0 for k in range(act.shape[0])])
        return act + signs[:, None, None] * v

    tiny.bridge.add_hook(tiny.hook_name(planted_layer), plant, is_permanent=True)
    try:
        acts = collect(tiny, _identical_sides(), batch_size=8, use_cache=False)
    finally:
        tiny.bridge.reset_hooks(including_permanent=True)
    result = probe_dimension(acts, "meandiff", permutations=100, seed=0)
    by_layer = {r.layer: r for r in result.layers}
    for layer in range(planted_layer):
        assert not by_layer[layer].informative and by_layer[layer].heldout_accuracy == pytest.approx(0.5)
    assert by_layer[planted_layer].informative and by_layer[planted_layer].heldout_accuracy == 1.0
    assert result.best_layer >= planted_layer
    assert float(result.directions[planted_layer].vector @ (v / v.norm())) > 0.99


def test_collection_matches_run_with_cache_and_masks_padding(tiny):
    contrast = statement_pairs().for_dimension("EI")
    contrast = ContrastSet(contrast.pairs[:6], "six")
    last = collect(tiny, contrast, hook="resid_mid", reduce="last", batch_size=4, use_cache=False)
    mean = collect(tiny, contrast, hook="resid_mid", reduce="mean", batch_size=4, use_cache=False)
    for k, pair in enumerate(contrast.pairs):
        e = encode_side(tiny.tokenizer, pair.second)
        _, cache = tiny.bridge.run_with_cache(torch.tensor([e.ids]))
        act = cache["blocks.1.hook_resid_mid"][0]
        torch.testing.assert_close(last.second[k, 1], act[e.stop - 1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mean.second[k, 1], act[e.start : e.stop].mean(0), atol=1e-5, rtol=1e-5)


def test_cache_returns_identical_tensors_and_follows_the_item_file(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAITLENS_CACHE", str(tmp_path / "cache"))
    bank = default_items().select("train", "TF")
    contrast = item_pairs(bank)
    first = collect(tiny, contrast, layers=[0, 3])
    again = collect(tiny, contrast, layers=[0, 3])
    assert torch.equal(first.first, again.first) and torch.equal(first.second, again.second)
    chunks = list((tmp_path / "cache" / "activations").rglob("chunk_*.safetensors"))
    assert len(chunks) == 2  # 16 items x 2 sides in batches of 16
    path = tmp_path / "items.jsonl"
    shipped = resources.files("traitlens.instrument.data") / "items.jsonl"
    rows = [json.loads(line) for line in shipped.read_text().splitlines()]
    rows = [r for r in rows if r["dimension"] == "TF" and r["split"] == "train"]
    rows[0]["stem"] = "A changed question?"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    changed = item_pairs(load_items(path))
    assert changed.content_hash() != contrast.content_hash()
    redone = collect(tiny, changed, layers=[0, 3])
    # Only the batch holding the changed item is new; its rows are the changed item's own.
    assert len(list((tmp_path / "cache" / "activations").rglob("chunk_*.safetensors"))) == 3
    assert not torch.equal(redone.first[0], first.first[0]) and torch.equal(redone.first[-1], first.first[-1])


def test_probe_result_json_has_the_documented_shape(tiny, tmp_path):
    result = probe(tiny, "PJ", permutations=20)
    result.save(tmp_path)
    data = json.loads((tmp_path / "probe.json").read_text())
    jp = data["dimensions"]["JP"]
    assert [r["layer"] for r in jp["layers"]] == list(range(tiny.n_layers))
    assert {"cv_accuracy", "heldout_accuracy", "auc", "perm_p"} <= set(jp["layers"][0])
    assert jp["best_layer"] in range(tiny.n_layers) and 0 <= jp["best_heldout_accuracy"] <= 1
    assert (tmp_path / "directions.safetensors").is_file()


def test_pairs_loader_layouts_and_errors(tmp_path):
    ours = tmp_path / "ours.jsonl"
    ours.write_text(
        "\n".join(
            json.dumps({"prompt": f"q{k}", "pole_a": "P", "answer_a": "flexible", "pole_b": "J", "answer_b": "planned"})
            for k in range(8)
        )
    )
    contrast = load_pairs([ours])
    assert contrast.dimensions() == ["JP"] and contrast.pairs[0].first.answer == "planned"
    mm = tmp_path / "mm.jsonl"
    mm.write_text(json.dumps({"instruction": "Describe a storm.", "input": "", "E": "loud", "I": "quiet"}) + "\n")
    assert load_pairs([mm]).pairs[0].dimension == "EI"
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"instruction": "x", "E": "loud"}) + "\n")
    with pytest.raises(TraitlensError, match="missing.jsonl line 1: needs exactly two poles"):
        load_pairs([missing])
    with pytest.raises(TraitlensError, match="at least 6 are needed"):
        load_pairs([mm]).check("EI")


def test_cli_probe_bad_input(tmp_path):
    assert_clean_error(run_cli("probe", "--trait", "JE"), "unknown trait 'JE'")
    assert_clean_error(run_cli("probe", "--model", "tiny", "--layers", "7"), "layer 7 out of range")
    one_pole = tmp_path / "one.jsonl"
    one_pole.write_text(
        json.dumps({"prompt": "q", "pole_a": "J", "answer_a": "a", "pole_b": "J", "answer_b": "b"}) + "\n"
    )
    assert_clean_error(run_cli("probe", "--pairs", str(one_pole)), "one.jsonl line 1")
    few = tmp_path / "few.jsonl"
    few.write_text(json.dumps({"prompt": "q", "pole_a": "J", "answer_a": "a", "pole_b": "P", "answer_b": "b"}) + "\n")
    assert_clean_error(run_cli("probe", "--trait", "JP", "--pairs", str(few)), "at least 6")


def test_cli_probe_on_tiny_writes_outputs(tmp_path):
    result = run_cli("probe", "--model", "tiny", "--trait", "EI", "--permutations", "20", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {"probe.json", "probe.png", "probe.md", "directions.safetensors"} <= {p.name for p in tmp_path.iterdir()}


def test_persona_pairs_differ_only_in_the_persona(tiny):
    from traitlens.probe.persona import PERSONAS, persona_pairs

    bank = default_items().select("eval", "JP")
    contrast = persona_pairs(tiny, bank, max_new_tokens=4)
    assert len(contrast) == len(bank) and contrast.dimensions() == ["JP"]
    pair = contrast.pairs[0]
    assert pair.first.messages[0]["content"].startswith(PERSONAS["J"])
    assert pair.second.messages[0]["content"].startswith(PERSONAS["P"])
    assert pair.first.messages[1] == pair.second.messages[1]  # the same question
    assert pair.first.answer and pair.second.answer


def test_files_without_a_split_are_split_by_group(tmp_path):
    """Defect 5: without a split field, pairs were split by line number, so every statement's
    four prompts straddled train and eval."""
    rows = [
        json.loads(line)
        for line in (Path(__file__).parents[1] / "src/traitlens/instrument/data/statements.jsonl")
        .read_text()
        .splitlines()
    ]
    for row in rows:
        row.pop("split")
    path = tmp_path / "nosplit.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = load_pairs([path]).pairs
    sides: dict[str, set[str]] = {}
    for pair in pairs:
        sides.setdefault(pair.group, set()).add(pair.split)
    assert all(len(s) == 1 for s in sides.values())
    eval_share = sum(s == {"eval"} for s in sides.values()) / len(sides)
    assert 0.1 < eval_share < 0.4


def test_best_layer_is_chosen_without_the_eval_split():
    """Defect 6: the layer was chosen by its held-out separation, and that same figure was
    reported as unbiased. The eval pairs must not influence the choice."""
    from traitlens.probe.layers import LayerResult, choose_best_layer

    def layer(k, cv, heldout):
        return LayerResult(k, 0.9, 0.9, cv, 0.9, heldout, 0.5, 0.9, 0.01, 0.6, True)

    results = [layer(0, cv=2.0, heldout=1.0), layer(1, cv=1.0, heldout=5.0)]
    assert choose_best_layer(results).layer == 0


def test_probe_choice_is_unchanged_when_only_eval_activations_change(tiny):
    from traitlens.probe.api import probe_dimension
    from traitlens.probe.collect import collect

    contrast = item_pairs(default_items().select("all", "JP"))
    acts = collect(tiny, contrast, use_cache=False)
    first = probe_dimension(acts, "meandiff", 20, 0, with_probe=False)
    shuffled = acts.first.clone()
    eval_rows = [k for k, p in enumerate(contrast.pairs) if p.split == "eval"]
    shuffled[eval_rows] = torch.randn_like(shuffled[eval_rows])
    acts.first = shuffled
    second = probe_dimension(acts, "meandiff", 20, 0, with_probe=False)
    assert first.best_layer == second.best_layer


def test_logistic_probe_inner_cv_keeps_groups_together():
    """Defect 7: the probe's inner search for C ignored groups and split paired statements."""
    from traitlens.probe.layers import probe_layer
    from traitlens.probe.methods import LogisticProbe

    rng = np.random.default_rng(0)
    pos, neg = torch.tensor(rng.normal(size=(24, 8))), torch.tensor(rng.normal(size=(24, 8)))
    groups = np.repeat(np.arange(8), 3)
    _, direction = probe_layer(3, (pos, neg), (pos[:6], neg[:6]), groups, LogisticProbe(), (0.5, 0.5, 0.5))
    assert direction.extra["inner_cv"] == "grouped"


def test_cache_resumed_with_another_batch_size_keeps_rows_aligned(tiny, tmp_path, monkeypatch):
    """Defect 10: chunks were numbered per batch and the key left out the batch size: 12 pairs
    collected at 8 and resumed at 4 gave 14 rows."""
    from traitlens.probe.collect import collect

    monkeypatch.setenv("TRAITLENS_CACHE", str(tmp_path))
    contrast = item_pairs(default_items().select("all", "EI"))
    contrast = type(contrast)(contrast.pairs[:12], contrast.name)
    at8 = collect(tiny, contrast, batch_size=8)
    at4 = collect(tiny, contrast, batch_size=4)
    fresh = collect(tiny, contrast, batch_size=4, use_cache=False)
    assert at4.first.shape[0] == 12
    assert torch.allclose(at4.first, fresh.first, atol=1e-5) and torch.allclose(at8.second, fresh.second, atol=1e-5)
