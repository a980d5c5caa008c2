"""``traitlens study SPEC``: the paper's experiments as one resumable sweep."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import console, progress_factory

__all__ = ["study_command"]


def study_command(
    spec: Path = typer.Argument(..., help="Study spec (TOML), e.g. studies/paper.toml."),
    out: Path | None = typer.Option(None, "--out", help="Study directory (default: runs/<spec name>)."),
    data: str | None = typer.Option(None, "--data", help="Public sets directory (overrides the spec's data)."),
    executor: str = typer.Option("ray", "--executor", help="ray (default) or local (in-process, no Ray)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Ray workers (default: one per two cores)."),
    address: str | None = typer.Option(None, "--address", help="Join a running Ray cluster at HOST:PORT."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Re-render the report from cached units; run nothing (no model loads)."
    ),
) -> None:
    """Run a study spec: every unit cached under a content hash, resumable; writes study.md and study.json."""
    from traitlens.study import execute, load_spec, write_report

    loaded = load_spec(spec, data)  # execute checks the executor and --address before any work
    out = out or Path("runs") / loaded.name
    with progress_factory() as factory:
        advance, last = None, [0]

        def progress(done: int, total: int) -> None:
            nonlocal advance
            if advance is None:
                advance = factory(f"study {loaded.name}: units", total)
            advance(done - last[0])
            last[0] = done

        run = execute(
            loaded, out, executor=executor, workers=workers, address=address, progress=progress, dry=report_only
        )
    write_report(run, out)
    missing = len(loaded.units()) - len(run.results)
    console.print(
        f"{len(run.results)} units ({run.computed} computed, {len(run.results) - run.computed} cached"
        + (f", {len(run.failed)} failed" if run.failed else "")
        + (f", {missing} not run" if missing else "")
        + f"); wrote {out}/study.md and study.json"
    )
