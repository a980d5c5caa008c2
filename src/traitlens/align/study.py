"""The align run: train each arm, save it, and write the run's report and loss plot."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from traitlens._io import save_figure, write_text
from traitlens.align.data import Example, load_neutral, load_safety
from traitlens.align.neutral import builtin_instructions
from traitlens.align.train import ARMS, AlignConfig, check_out, own_answers, tokenize, train_arm
from traitlens.errors import TraitlensError

__all__ = ["align", "AlignConfig", "ARMS"]


def _digest_texts(examples: Sequence[Example]) -> str:
    return hashlib.sha256("\n".join(e.instruction for e in examples).encode()).hexdigest()[:16]


def _neutral(path: str | Path | None, limit: int) -> list[Example]:
    examples = load_neutral(path, limit) if path is not None else []
    seen = {e.instruction for e in examples}
    extra = [t for t in builtin_instructions() if t not in seen][: max(0, limit - len(examples))]
    return examples + [Example(t, None) for t in extra]


def _plot(records: list[dict[str, Any]], path: Path) -> None:
    from traitlens.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for record in records:
        ax.plot([e["step"] for e in record["losses"]], [e["loss"] for e in record["losses"]], label=record["arm"])
    ax.set(xlabel="step", ylabel="training loss (answer tokens)", title="LoRA fine-tune")
    ax.legend()
    save_figure(fig, path)


def align(
    spec: str,
    out: str | Path,
    safety_file: str | Path,
    neutral_file: str | Path | None,
    config: AlignConfig | None = None,
    arms: Sequence[str] = ARMS,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> list[dict[str, Any]]:
    """Train ``arms`` of ``spec`` into ``out/<arm>``; returns each arm's record (losses, sizes).

    ``neutral_file`` None: traitlens' own neutral instructions only; otherwise that file's, topped
    up with traitlens' own when it holds fewer than ``config.n_neutral``."""
    config = config or AlignConfig()
    out = Path(out)
    for arm in arms:
        if arm not in ARMS:
            raise TraitlensError(f"unknown arm '{arm}' (choose from {', '.join(ARMS)})")
        check_out(out / arm)
    if config.steps < 1 or config.batch_size < 1:
        raise TraitlensError("steps and batch size must be positive")
    safety = load_safety(safety_file, config.n_safety) if "safety" in arms else []
    neutral = _neutral(neutral_file, config.n_neutral)  # before any model loads: bad data fails fast
    from traitlens.models import load_model

    model = load_model(spec)
    tick = progress("own answers (neutral targets)", len(neutral)) if progress else None
    answers = own_answers(model, [e.instruction for e in neutral], config.answer_tokens, tick)
    neutral = [Example(e.instruction, a) for e, a in zip(neutral, answers, strict=True)]
    meta = {"safety_file": str(safety_file), "neutral_file": str(neutral_file), "model_name": model.name}
    meta |= {"n_safety": len(safety), "n_neutral": len(neutral), "neutral_digest": _digest_texts(neutral)}
    records = []
    for arm in arms:
        examples = (safety + neutral) if arm == "safety" else neutral
        rows = tokenize(model.tokenizer, examples, config.max_length)
        tick = progress(f"train {arm}", config.steps) if progress else None
        records.append(train_arm(spec, arm, rows, config, out / arm, meta, tick))
    _plot(records, out / "loss.png")
    lines = [f"# LoRA alignment of {model.name}", "", "| arm | examples | steps | first loss | last loss | seconds |"]
    lines.append("|---|---|---|---|---|---|")
    for r in records:
        first, last = r["losses"][0]["loss"], r["losses"][-1]["loss"]
        lines.append(
            f"| {r['arm']} | {r['examples']} | {len(r['losses'])} | {first:.3f} | {last:.3f} | {r['seconds']} |"
        )
    source = f"`{neutral_file}` topped up with traitlens' own" if neutral_file else "traitlens' own"
    lines += [
        "",
        f"Safety data `{safety_file}`; {len(neutral)} neutral instructions ({source}), answered by the base model.",
    ]
    lines += [""]
    lines += ["![loss](loss.png)", ""]
    write_text(out / "report.md", "\n".join(lines))
    return records
