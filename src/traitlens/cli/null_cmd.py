"""``traitlens null``: a vector's effects beside random directions of its size and cost."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import ModelOption, console, load_with_status, progress_factory

__all__ = ["null_command"]


def null_command(
    vector: Path = typer.Option(..., "--vector", help="A steering vector directory."),
    model: str = ModelOption,
    draws: int = typer.Option(32, "--draws", help="Null directions (1 to 1000)."),
    suites: str = typer.Option("questionnaire", "--suites", help="questionnaire and/or suite names, comma-separated."),
    kinds: str = typer.Option("random,shuffled", "--kinds", help="random (Gaussian) and/or shuffled (label-shuffled)."),
    alpha: float | None = typer.Option(None, "--alpha", help="Strength (default: the vector's recommended one)."),
    data: Path | None = typer.Option(None, "--data", help="Public data directory for the suites."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Items per suite."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("runs/null"), "--out"),
) -> None:
    """The vector's effect on each metric, its null's percentiles and its empirical p: null.json/.md/.png."""
    from traitlens._io import write_json, write_text
    from traitlens.memo import ScoreStore
    from traitlens.null import check_draws
    from traitlens.null.report import null_markdown, plot_null
    from traitlens.null.run import check_suites, null_test
    from traitlens.options import RunOptions
    from traitlens.steering.artifact import load_vector
    from traitlens.steering.inject import load_intervention

    check_draws(draws)
    names = check_suites(suites.split(","))
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
    load_vector(vector)  # a bad vector fails before the model loads
    loaded = load_with_status(model)
    steering = load_intervention(vector, loaded, alpha)
    with progress_factory() as factory:
        tick = factory("null draws", draws + 2)
        result = null_test(
            loaded, steering, draws_n=draws, kinds=chosen, suites=names, data=data, limit=limit, progress=tick,
            seed=seed, options=RunOptions.cached(ScoreStore.default()),  # a rerun after a kill reads its passes back
        )  # fmt: skip
    write_json(out / "null.json", result.to_dict())
    plot_null(result, out / "null.png")
    write_text(out / "null.md", null_markdown(result))
    console.print(null_markdown(result).split("Null perplexity")[0], markup=False, highlight=False)
    console.print(f"wrote {out}/null.json, null.md, null.png")
