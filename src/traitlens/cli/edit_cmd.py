"""``traitlens edit``: the main command."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import DtypeOption, FastOption, ModelOption, console, load_with_status, progress_factory

__all__ = ["edit_command"]


def edit_command(
    trait: str = typer.Option(..., "--trait", help="Two letters, from -> to: JP (J->P), PJ, EI, IE, SN, NS, TF, FT."),
    model: str = ModelOption,
    layer: int | None = typer.Option(
        None, "--layer", help="Layer to edit (default: searched among the best probe layers)."
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", help="Fixed strength in units of the residual norm (default: calibrated)."
    ),
    goal: float = typer.Option(
        0.5, "--goal", help="Target pole share to exceed on the eval items (0.5 = flip the letter)."
    ),
    guard: float = typer.Option(0.25, "--guard", help="Allowed relative perplexity rise on the reference text."),
    recipes: str = typer.Option(
        "",
        "--recipes",
        help="Comma-separated recipes to compare (presets: default, band, norm, pca, probe, persona, persona-band, "
        "pairs, pairs-band; or SOURCES/METHOD/PLACEMENT/MODE). Default: default,band,norm,persona-band "
        "(+ pairs-band with --pairs).",
    ),
    pairs: list[Path] = typer.Option(
        [], "--pairs", help="Paired-answer JSONL file for the 'pairs' source (repeatable), e.g. Machine-Mindset pairs."
    ),
    extra_items: list[Path] = typer.Option(
        [], "--extra-items", help="Another instrument (JSONL items) to report before/after/persona on (repeatable)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: runs/edit-<TRAIT>)."),
    export: Path | None = typer.Option(
        None, "--export", help="Vector directory (default: results/vectors/<model>/<TRAIT>)."
    ),
    no_export: bool = typer.Option(False, "--no-export", help="Do not export the vector."),
    bench: bool = typer.Option(True, "--bench/--no-bench", help="Run the safety suites before and after the edit."),
    bench_limit: int = typer.Option(20, "--bench-limit", min=1, help="Items per safety suite (our samples)."),
    dtype: str = DtypeOption,
    fast: bool = FastOption,
    null: int = typer.Option(
        0, "--null", help="Set the chosen vector beside N random directions of its size and cost (0: off)."
    ),
    select: str = typer.Option(
        "share",
        "--select",
        help="How the winning recipe is chosen on the train items: share (largest share) or net (largest share "
        "less its wording shift).",
    ),
    score_cache: bool = typer.Option(
        True,
        "--score-cache/--no-score-cache",
        help="Keep scoring results in the traitlens cache and reuse earlier runs' (bit-identical: keyed by weights, "
        "inputs, versions and code); the next edit of the same model skips its unsteered passes.",
    ),
) -> None:
    """Edit one trait: baseline -> direction -> calibrated alpha -> re-assessment -> report + vector."""
    from traitlens.edit.pipeline import check_options, default_recipes, edit
    from traitlens.edit.recipe import parse_recipes
    from traitlens.edit.report import edit_markdown, write_edit_outputs
    from traitlens.errors import TraitlensError
    from traitlens.instrument.items import Trait, load_items
    from traitlens.memo import ScoreStore
    from traitlens.options import RunOptions

    trait = Trait.parse(trait)
    chosen = parse_recipes(recipes) if recipes.strip() else default_recipes(pairs)
    for path in pairs:
        if not path.is_file():
            raise TraitlensError(f"--pairs: file not found: {path}")
    instruments = {path.stem: load_items(path) for path in extra_items}
    check_options(alpha, goal, guard)  # before the slow model load; edit() checks them again
    if null:
        from traitlens.null import check_draws

        check_draws(null)
    from traitlens.edit.frontier import check_select

    check_select(select, "--select")
    loaded = load_with_status(model, dtype)
    out = out or Path("runs") / f"edit-{trait}"
    export = None if no_export else (export or Path("results") / "vectors" / loaded.name / trait)
    with progress_factory() as factory:
        run_bench = _bench_runner(bench_limit, fast) if bench else None
        result = edit(
            loaded,
            trait,
            layer=layer,
            alpha=alpha,
            goal=goal,
            guard=guard,
            recipes=chosen,
            pair_files=pairs,
            extra_items=instruments,
            run_bench=run_bench,
            progress=factory,
            options=RunOptions.cached(ScoreStore.default() if score_cache else None, fast=fast),
            null=null,
            select=select,
        )
    write_edit_outputs(result, out, export)
    console.print(edit_markdown(result).split("## Calibration")[0], markup=False, highlight=False)
    console.print(f"wrote {out}/report.md" + (f"; vector in {export}" if export else ""))


def _bench_runner(limit: int, fast: bool = False):
    """Before/after safety suites on our shipped samples, ``limit`` items each."""
    from traitlens.bench import DEFAULT_SUITES, bench_json, run_suites
    from traitlens.options import RunOptions

    options = RunOptions(fast=fast)

    def run(model, steering):
        before = run_suites(model, DEFAULT_SUITES, None, None, limit, options=options)
        after = run_suites(model, DEFAULT_SUITES, steering, None, limit, options=options)
        return bench_json(before, after) | {"limit": limit, "fast": fast}

    return run
