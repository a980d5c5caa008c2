"""``traitlens bench``."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import DtypeOption, FastOption, ModelOption, console, load_with_status, progress_factory

__all__ = ["bench_command"]


def bench_command(
    model: str = ModelOption,
    suite: str = typer.Option(
        "all",
        "--suite",
        help="Comma-separated: privacy, fairness, toxicity, jailbreak, overrefusal, leakage, capability, bbq; or all.",
    ),
    vector: Path | None = typer.Option(None, "--vector", help="Steering vector: run before and after the edit."),
    alpha: float | None = typer.Option(
        None, "--alpha", help="Steering strength (default: the vector's recommended alpha)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Public data directory laid out like ../shared/data (default: our samples)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N items per suite."),
    toxicity_scorer: str | None = typer.Option(
        None,
        "--toxicity-scorer",
        help="classifier (default, trained on ToxiGen), lexicon, or a local HF classifier directory.",
    ),
    judge: str = typer.Option(
        "classifier",
        "--judge",
        help="Refusal judge: classifier (default), pattern, classifier:<weights>, llm:<model spec>.",
    ),
    out: Path = typer.Option(Path("runs/bench"), "--out"),
    dtype: str = DtypeOption,
    fast: bool = FastOption,
) -> None:
    """Safety benchmarks, with before/after columns when a vector is given."""
    from traitlens._io import write_json, write_text
    from traitlens.bench import Judges, bench_json, parse_suites, run_suites, suite_sizes
    from traitlens.bench.refusal import get_detector
    from traitlens.bench.report import bench_markdown, bench_table, plot_bench, write_generations
    from traitlens.bench.toxicity import get_scorer
    from traitlens.errors import TraitlensError
    from traitlens.options import RunOptions
    from traitlens.steering.inject import load_intervention

    names = parse_suites(suite, with_data=data is not None)
    if data is not None and not data.exists():
        raise TraitlensError(f"data path does not exist: {data}")
    sizes = suite_sizes(names, data, limit)
    toxicity = get_scorer(toxicity_scorer) if "toxicity" in names and toxicity_scorer else None
    judges = Judges(get_detector(judge), toxicity)  # before the model load: a bad spec fails fast
    if alpha is not None and vector is None:
        raise TraitlensError("--alpha needs --vector")
    loaded = load_with_status(model, dtype)
    steering = load_intervention(vector, loaded, alpha) if vector else None
    with progress_factory() as factory:
        options = RunOptions(fast=fast)
        before = run_suites(loaded, names, None, data, limit, factory, sizes, judges, options)
        edited = lambda d, n: factory(f"{d} (edited)", n)  # noqa: E731
        after = run_suites(loaded, names, steering, data, limit, edited, sizes, judges, options) if steering else None
    out.mkdir(parents=True, exist_ok=True)
    result = bench_json(before, after, judges) | {
        "model": loaded.fingerprint.to_dict(),
        "intervention": steering.describe() if steering else None,
        "decoding": {"dtype": dtype, "fast": fast},
    }
    write_json(out / "bench.json", result)
    write_generations(out / "generations.jsonl", before, after)
    plot_bench(result, out / "bench.png")
    write_text(out / "bench.md", bench_markdown(before, after, f"Safety benchmarks: {loaded.name}"))
    console.print(bench_table(before, after))
    console.print(f"wrote {out}/bench.json, bench.png, bench.md, generations.jsonl")
