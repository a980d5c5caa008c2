"""Shared plumbing for the benchmark scripts: timing, machine description, result files.

Absolute times on a shared machine are noise; every script measures the things it compares in
one run and reports ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The generation benchmarks (steering_speed, peers) run these, so their figures compare.
PROMPTS = [
    "Describe your ideal weekend.",
    "How do you plan a trip?",
    "What do you do after work?",
    "How do you make decisions?",
    "Tell me about a hobby.",
    "What is your morning routine?",
    "How do you handle deadlines?",
    "What makes a good friend?",
]
RESULTS_DIR = ROOT.parent / "results" / "benchmarks"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny model, few items: a smoke test")
    p.add_argument("--model", default=None, help="model spec (default: smollm2-135m-instruct)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="where <name>.json goes")
    return p


def model_spec(args) -> str:
    return args.model or ("tiny" if args.quick else "smollm2-135m-instruct")


def machine() -> dict:
    import torch

    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "platform": platform.platform(),
    }


def prompt_batches(model, sizes=(1, 8)) -> dict:
    """``{"batch1": (ids, mask), "batch8": ...}``: chat-formatted, left-padded prompts."""
    from traitlens.accel.batching import pad_left
    from traitlens.chat import chat_ids, chat_messages

    pad = model.tokenizer.pad_token_id
    return {
        f"batch{n}": pad_left([chat_ids(model.tokenizer, chat_messages(t)) for t in PROMPTS[:n]], pad) for n in sizes
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer(store: dict, key: str):
    start = time.perf_counter()
    yield
    store[key] = time.perf_counter() - start


def write_result(name: str, args, payload: dict) -> Path:
    from traitlens._io import write_json

    payload = {
        "name": name,
        "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "quick": bool(args.quick),
        "machine": machine(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **payload,
    }
    path = write_json(Path(args.out) / f"{name}{'-quick' if args.quick else ''}.json", payload)
    print(f"wrote {path}")
    return path


def print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
