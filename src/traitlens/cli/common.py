"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib

import typer
from rich.console import Console

from traitlens.models import DEFAULT_MODEL

__all__ = [
    "console",
    "err_console",
    "ModelOption",
    "DtypeOption",
    "FastOption",
    "load_with_status",
    "progress_bar",
    "progress_factory",
]

console = Console()
err_console = Console(stderr=True)

ModelOption = typer.Option(
    DEFAULT_MODEL,
    "--model",
    "-m",
    help="Built-in name (smollm2-135m-instruct, tiny, gemma-3-270m), a .gguf file, a checkpoint "
    "directory, or a model name in the local Hugging Face cache.",
)


DtypeOption = typer.Option(
    "float32",
    "--dtype",
    help="Weights of the generating/scoring path: float32 (reference), or opt-in bfloat16 (CPUs with "
    "AMX/AVX512-BF16, GPUs) or float16 (GPUs); not bit-identical, agreement in benchmarks/RESULTS.md.",
)
FastOption = typer.Option(
    False,
    "--fast",
    help="Opt-in fast paths, not bit-identical (agreement in benchmarks/RESULTS.md): generated-text suites in "
    "batches of up to 128 by length, planned prefill parts with shared prefixes, early stop once a refusal is "
    "decided, bfloat16 head candidates; in an edit also its scoring passes (the chat template's system turn run "
    "once, batches by length, the unembedding at real positions only) and persona replies.",
)


def load_with_status(spec: str, dtype: str = "float32"):
    from traitlens.accel.precision import check_dtype
    from traitlens.models import load_model

    check_dtype(dtype)  # before the (slow) load
    with err_console.status(f"loading {spec} ..."):
        return load_model(spec, dtype=dtype)


@contextlib.contextmanager
def progress_bar(description: str, total: int):
    """A single rich progress bar on stderr; yields ``advance(n)``."""
    with progress_factory() as new_task:
        yield new_task(description, total)


@contextlib.contextmanager
def progress_factory():
    """One rich progress display; yields ``new_task(description, total) -> advance(n)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:

        def new_task(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda n=1: progress.advance(task, n)

        yield new_task
