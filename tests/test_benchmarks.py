"""Smoke tests: every benchmark script runs in --quick mode on the tiny model and writes a
well-formed result. No speed threshold: speed is measured in benchmarks/, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    "assess_protocols",
    "collection",
    "steering_speed",
    "kernel",
    "peers",
    "scaling",
    "study_workers",
    "decode",
    "suites",
    "calibration",
]


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_quick_mode(name, tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / f"{name}-quick.json").read_text())
    assert data["name"] == name and data["quick"] is True
    assert data["machine"]["cores"] >= 1 and data["peak_rss_mb"] > 0
