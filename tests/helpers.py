"""Small helpers for tests."""

from __future__ import annotations

import subprocess
import sys

import torch


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real ``traitlens`` entry point in a subprocess."""
    code = "from traitlens.cli.app import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def assert_clean_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def plain_loglik(model, prompt: list[int], answer: list[int]) -> float:
    """Reference: mean log-likelihood of ``answer`` after ``prompt`` in one unpadded, uncached forward."""
    with torch.inference_mode():
        logits = model.hf_model(input_ids=torch.tensor([prompt + answer])).logits[0].float().log_softmax(-1)
    return float(torch.stack([logits[len(prompt) - 1 + j, t] for j, t in enumerate(answer)]).mean())
