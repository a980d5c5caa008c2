"""Concurrent runs, interrupted runs and predictable resource limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import assert_clean_error, run_cli

from traitlens import TraitlensError

COLLECT = """
import hashlib, sys
from traitlens import load_model
from traitlens.instrument.items import default_items
from traitlens.probe.collect import collect
from traitlens.probe.contrast import statement_pairs
model = load_model("tiny")
acts = collect(model, statement_pairs().for_dimension("JP"), batch_size=int(sys.argv[1]))
print(hashlib.sha256(acts.first.numpy().tobytes() + acts.second.numpy().tobytes()).hexdigest())
"""


def _collector(cache: Path, batch: int) -> subprocess.Popen:
    env = dict(os.environ, TRAITLENS_CACHE=str(cache))
    return subprocess.Popen(
        [sys.executable, "-c", COLLECT, str(batch)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _fresh_digest(tmp_path: Path) -> str:
    out, _ = _collector(tmp_path / "fresh", 8).communicate(timeout=300)
    return out.strip()


def test_two_collectors_sharing_one_cache_both_finish_with_identical_entries(tmp_path):
    cache = tmp_path / "shared"
    runs = [_collector(cache, 8), _collector(cache, 8)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    digests = {out.strip() for out, _ in outputs}
    assert digests == {_fresh_digest(tmp_path)}
    again, _ = _collector(cache, 8).communicate(timeout=300)  # and the entries they left are sound
    assert again.strip() in digests
    assert not list(cache.rglob("*.tmp"))


def test_a_collector_killed_mid_run_leaves_nothing_a_rerun_would_trust(tmp_path):
    cache = tmp_path / "killed"
    run = _collector(cache, 2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.rglob("chunk_*.safetensors"))) < 3:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    for leftover in cache.rglob("*.tmp"):  # a half-written temporary may remain; it is never read
        assert leftover.name.startswith(".chunk_")
    rerun, _ = _collector(cache, 2).communicate(timeout=300)
    assert rerun.strip() == _fresh_digest(tmp_path)


def test_a_damaged_cache_entry_is_recomputed_not_trusted(tiny, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from traitlens.instrument.items import default_items
    from traitlens.probe.collect import collect
    from traitlens.probe.contrast import item_pairs

    monkeypatch.setenv("TRAITLENS_CACHE", str(tmp_path))
    contrast = item_pairs(default_items().select("train", "TF"))
    first = collect(tiny, contrast, layers=[0, 3])
    for chunk in tmp_path.rglob("chunk_*.safetensors"):  # same shape, other numbers, no checksum
        save_file({"activations": torch.zeros(16, 2, tiny.d_model)}, str(chunk))
    again = collect(tiny, contrast, layers=[0, 3])
    assert torch.equal(first.first, again.first)


def test_an_interrupted_write_leaves_the_previous_file_untouched(tmp_path):
    from traitlens._io import atomic_write, write_json

    target = write_json(tmp_path / "result.json", {"ok": 1})

    def half_then_interrupt(tmp: Path) -> None:
        tmp.write_text('{"ok": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_interrupt)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_two_runs_writing_one_directory_leave_complete_files(tmp_path):
    out = tmp_path / "run"
    code = "from traitlens.cli.app import main; main()"
    args = ["assess", "--model", "tiny", "--readout", "pmi", "--out", str(out)]
    runs = [subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert all(run.wait(timeout=300) == 0 for run in runs)
    assert json.loads((out / "assessment.json").read_text())["type"]
    assert (out / "assessment.md").read_text().startswith("# Assessment")
    assert not list(out.glob("*.tmp"))


def test_predictable_resource_limits_fail_early(tiny, tmp_path):
    from traitlens.assess import assess
    from traitlens.instrument.items import Item, ItemBank, Option

    context = tiny.hf_model.config.max_position_embeddings
    long = Item("JP-1", "JP", "word " * (context + 10), (Option("I plan.", "J"), Option("I drift.", "P")))
    with pytest.raises(TraitlensError, match=r"JP-1.*longer than the model's context"):
        assess(tiny, ItemBank((long,), "long"), readout="option")
    assert_clean_error(run_cli("assess", "--model", "tiny", "--protocol", "sample", "--runs", "100000"), "--runs")


def test_a_failed_write_is_one_clear_error_and_leaves_no_file(tmp_path):
    from traitlens._io import write_text

    def no_space(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    from traitlens._io import atomic_write

    with pytest.raises(TraitlensError, match="cannot write .*out.txt: No space left on device"):
        atomic_write(tmp_path / "out.txt", no_space)
    assert list(tmp_path.iterdir()) == []
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(TraitlensError, match="cannot write"):
        write_text(blocked / "sub" / "a.txt", "hello")


def test_no_code_path_loads_a_pickle():
    """SECURITY.md's first promise: nothing traitlens reads can run code."""
    root = Path(__file__).resolve().parents[1] / "src" / "traitlens"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("torch.load(", "pickle.load", "import pickle", "joblib", "numpy.load(", "np.load("):
            if needle in text:
                offenders.append(f"{path.relative_to(root)}: {needle}")
        if "from_pretrained(" in text and "AutoModelForSequenceClassification" in text:
            assert "use_safetensors=True" in text, path
    assert not offenders, offenders
