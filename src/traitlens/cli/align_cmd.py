"""``traitlens align``: a LoRA safety fine-tune and its control arm."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import ModelOption, console, progress_factory

__all__ = ["align_command"]


def align_command(
    model: str = ModelOption,
    out: Path = typer.Option(..., "--out", help="Directory for <out>/safety and <out>/control (must be new)."),
    data: Path = typer.Option(Path("../shared/data"), "--data", help="Public data root (for the default files)."),
    safety: Path | None = typer.Option(
        None, "--safety", help="Safety demonstrations JSON (default: Safety-Tuned LLaMAs)."
    ),
    neutral: Path | None = typer.Option(
        None,
        "--neutral",
        help="Neutral instructions (default: their I-Alpaca.json when present), topped up with traitlens' own.",
    ),
    arms: str = typer.Option("safety,control", "--arms", help="Comma-separated: safety, control."),
    steps: int = typer.Option(150, "--steps", help="Optimizer steps per arm."),
    batch_size: int = typer.Option(8, "--batch-size", help="Examples per step."),
    learning_rate: float = typer.Option(2e-4, "--lr", help="LoRA learning rate."),
    rank: int = typer.Option(16, "--rank", help="LoRA rank."),
    n_safety: int = typer.Option(400, "--n-safety", help="Safety examples used."),
    n_neutral: int = typer.Option(400, "--n-neutral", help="Neutral instructions used (both arms)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fine-tune SPEC with LoRA on safety data (and a neutral-only control); save merged safetensors models."""
    import math

    from traitlens.align import AlignConfig, align
    from traitlens.align.data import NEUTRAL_FILE, SAFETY_FILE
    from traitlens.errors import TraitlensError

    if steps < 1 or batch_size < 1 or rank < 1 or n_safety < 1 or n_neutral < 1:
        raise TraitlensError("--steps, --batch-size, --rank, --n-safety and --n-neutral must be positive")
    if not math.isfinite(learning_rate) or learning_rate <= 0:
        raise TraitlensError(f"--lr must be a positive number, not {learning_rate}")
    config = AlignConfig(
        steps, batch_size, learning_rate, rank, 2 * rank, n_safety=n_safety, n_neutral=n_neutral, seed=seed
    )
    chosen = [a.strip() for a in arms.split(",") if a.strip()]
    with progress_factory() as factory:
        records = align(
            model,
            out,
            safety or data / SAFETY_FILE,
            neutral or (data / NEUTRAL_FILE if (data / NEUTRAL_FILE).is_file() else None),
            config,
            chosen,
            progress=factory,
        )
    for r in records:
        console.print(
            f"{r['arm']}: loss {r['losses'][0]['loss']:.3f} -> {r['losses'][-1]['loss']:.3f} in {r['seconds']} s"
        )
    console.print(f"wrote {out}/report.md; load a model with --model {out}/safety")
