from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError
from traitlens.assess import assess
from traitlens.instrument.items import DIMENSIONS, default_items
from traitlens.steering import Steering, SteeringVector
from traitlens.steering.artifact import load_vector, save_vector
from traitlens.steering.interop import export_gguf, export_safetensors, import_gguf, import_safetensors

LIBRARY = Path(__file__).resolve().parents[1] / "results" / "vectors" / "smollm2-135m-instruct"


def _vector(model) -> SteeringVector:
    g = torch.Generator().manual_seed(7)
    return SteeringVector(
        {1: torch.randn(model.d_model, generator=g), 3: torch.randn(model.d_model, generator=g)},
        model=model.fingerprint.to_dict(),
        trait="TF",
        recommended_alpha=0.2,
    )


def test_gguf_round_trip_is_readable_by_the_gguf_package(tiny, tmp_path):
    import gguf

    vector = _vector(tiny)
    path = export_gguf(vector, tmp_path / "v.gguf")
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.architecture"].contents() == "controlvector"
    assert reader.fields["controlvector.layer_count"].contents() == 2
    assert {t.name: (list(t.shape), t.tensor_type.name) for t in reader.tensors} == {
        "direction.1": ([tiny.d_model], "F32"),
        "direction.3": ([tiny.d_model], "F32"),
    }
    back = import_gguf(path, tiny)
    for layer in (1, 3):
        assert torch.equal(back.offsets[layer], vector.offsets[layer])


def test_safetensors_round_trip(tiny, tmp_path):
    vector = _vector(tiny)
    back = import_safetensors(export_safetensors(vector, tmp_path / "v.safetensors"), tiny)
    assert back.layers == [1, 3] and all(torch.equal(back.offsets[k], vector.offsets[k]) for k in (1, 3))


def test_traitlens_format_round_trip_via_cli(tiny, tmp_path):
    save_vector(_vector(tiny), tmp_path / "a")
    for fmt, target in (("traitlens", "b"), ("gguf", "c.gguf"), ("safetensors", "d.safetensors")):
        result = run_cli("export", str(tmp_path / "a"), "--format", fmt, "--out", str(tmp_path / target))
        assert result.returncode == 0, result.stderr
    assert load_vector(tmp_path / "b").trait == "TF"
    result = run_cli("import", str(tmp_path / "c.gguf"), "--model", "tiny", "--out", str(tmp_path / "e"))
    assert result.returncode == 0, result.stderr
    assert torch.equal(load_vector(tmp_path / "e").offsets[3], load_vector(tmp_path / "a").offsets[3])
    result = run_cli("inspect", str(tmp_path / "a"), "--plot", str(tmp_path / "i.png"))
    assert result.returncode == 0 and (tmp_path / "i.png").is_file() and "TF" in result.stdout


def test_interop_refusals(tiny, tmp_path):
    with pytest.raises(TraitlensError, match="layer 0 cannot be exported"):
        export_gguf(SteeringVector({0: torch.ones(tiny.d_model)}), tmp_path / "x.gguf")
    big = SteeringVector({1: torch.ones(tiny.d_model + 1)})
    export_safetensors(big, tmp_path / "big.safetensors")
    with pytest.raises(TraitlensError, match="d_model"):
        import_safetensors(tmp_path / "big.safetensors", tiny)
    # Defect 15: a [2, d] tensor was flattened into a vector of twice the size.
    from safetensors.torch import save_file

    save_file({"1": torch.ones(2, tiny.d_model // 2)}, str(tmp_path / "matrix.safetensors"))
    with pytest.raises(TraitlensError, match=r"shape \(2, 32\); expected one vector"):
        import_safetensors(tmp_path / "matrix.safetensors", tiny)
    assert_clean_error(run_cli("export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o.gguf")), "not found")
    (tmp_path / "w.txt").write_text("x")
    assert_clean_error(
        run_cli("import", str(tmp_path / "w.txt"), "--model", "tiny", "--out", str(tmp_path / "o")),
        "unknown vector format",
    )


@pytest.mark.slow
def test_a_shipped_vector_moves_its_dimension_on_the_default_model(smollm):
    shipped = sorted(p for p in LIBRARY.iterdir() if (p / "meta.json").is_file()) if LIBRARY.is_dir() else []
    assert shipped, f"no shipped vectors under {LIBRARY}"
    vector = load_vector(shipped[0])
    trait = vector.trait
    dimension = next(d for d, poles in DIMENSIONS.items() if set(poles) == set(trait))
    # As `edit` did: readouts chosen by validity on the train items, then held fixed on eval. A
    # dimension's readout is chosen on its own items only, so its train items alone choose it.
    train = assess(smollm, default_items().select("train", dimension), split="all")
    readouts = {d: r.readout for d, r in train.dimensions.items()}
    items = default_items().select("eval", dimension)
    before = assess(smollm, items, readout=readouts).dimensions[dimension].share(trait[1])
    steering = Steering(vector, vector.recommended_alpha)
    after = assess(smollm, items, readout=readouts, intervention=steering, content_free=False)  # the share only
    recorded = vector.extra["edit_summary"]
    assert before == pytest.approx(recorded["before_share"], abs=1e-3)
    assert after.dimensions[dimension].share(trait[1]) > before + 0.005
    assert after.dimensions[dimension].share(trait[1]) == pytest.approx(recorded["after_share"], abs=0.02)
