"""``traitlens assess``."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import DtypeOption, ModelOption, console, err_console, load_with_status, progress_bar

__all__ = ["assess_command"]


def assess_command(
    model: str = ModelOption,
    items: Path | None = typer.Option(
        None,
        "--items",
        help="Item file (.jsonl, 93-item .json, .csv), or 'short' for the shipped short-option bank; "
        "default: the shipped sentence bank.",
    ),
    split: str = typer.Option("eval", help="eval, train, all (train and eval) or confirm (sealed: final reports)."),
    contexts: str = typer.Option(
        "four", "--contexts", help="Neutral contexts of the prior and the content-free check: four or wide."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse a bank with a missing split or unbalanced option positions or lengths."
    ),
    protocol: str = typer.Option("logprob", help="logprob (deterministic, default) or sample (the paper's)."),
    readout: str = typer.Option(
        "auto", help="auto, label, option, option_sum, pmi or pmi_mean (logprob protocol); auto picks by validity."
    ),
    system: str | None = typer.Option(None, "--system", help="A system prompt for every question (a persona)."),
    second_items: Path | None = typer.Option(
        None, "--second-items", help="A second instrument (all its items): report how far the two agree."
    ),
    runs: int = typer.Option(30, help="Sampled runs per item (sample protocol)."),
    temperature: float = typer.Option(0.7, help="Sampling temperature (sample protocol)."),
    seed: int = typer.Option(0),
    vector: Path | None = typer.Option(None, "--vector", help="Steering vector directory to apply."),
    alpha: float | None = typer.Option(
        None, "--alpha", help="Steering strength (default: the vector's recommended alpha)."
    ),
    out: Path = typer.Option(Path("runs/assess"), "--out", help="Output directory."),
    dtype: str = DtypeOption,
) -> None:
    """Administer the questionnaire and score E/I, S/N, T/F, J/P."""
    from traitlens._io import write_text
    from traitlens.assess import PROTOCOLS, READOUTS, agreement, assess, check_system, work_units
    from traitlens.assess.api import MAX_RUNS, readout_items
    from traitlens.assess.contexts import context_set
    from traitlens.assess.readouts import CORRECTED_READOUTS
    from traitlens.assess.report import assessment_markdown, assessment_table, plot_assessment
    from traitlens.errors import TraitlensError
    from traitlens.instrument.items import default_items, load_items, short_items

    if protocol not in PROTOCOLS:
        raise TraitlensError(f"unknown protocol '{protocol}': use {' or '.join(PROTOCOLS)}")
    if readout not in READOUTS:
        raise TraitlensError(f"unknown readout '{readout}': use {', '.join(READOUTS)}")
    check_system(system)
    if not 1 <= runs <= MAX_RUNS:
        raise TraitlensError(f"--runs must be between 1 and {MAX_RUNS}, not {runs}")
    neutral = context_set(contexts)
    if items is None:
        bank = default_items()
    elif str(items) == "short" and not items.exists():
        bank = short_items()
    else:
        bank = load_items(items)
    bank.select(split)  # validate before the slow model load
    second = load_items(second_items) if second_items else None
    loaded = load_with_status(model, dtype)
    intervention = _intervention(vector, alpha, loaded)
    options = dict(
        protocol=protocol, readout=readout, runs=runs, temperature=temperature, seed=seed,
        intervention=intervention, system=system, contexts=contexts,
    )  # fmt: skip
    reported = bank.select(split)
    chooser, _ = readout_items(bank, reported, reported.dimensions())
    with progress_bar(f"assess ({protocol})", work_units(reported, protocol, readout, chooser, neutral)) as advance:
        result = assess(loaded, bank, split=split, progress=advance, strict=strict, **options)
    if second is not None:  # a second instrument, administered whole and read the same way
        if protocol == "logprob" and readout == "auto":
            options["readout"] = {d: r.readout for d, r in result.dimensions.items()}
            corrected = set(options["readout"].values()) & set(CORRECTED_READOUTS)
            readout = "pmi" if corrected else "option"  # for the count of passes below
        with progress_bar(
            f"assess {second.source}", work_units(second, protocol, readout, contexts=neutral)
        ) as advance:
            other = assess(loaded, second, split="all", progress=advance, **options)
        result.validity["agreement"] = agreement(result, other)
        result.validity["second_instrument"] = {
            "source": other.items_source,
            "type": other.type,
            "dimensions": {d: r.to_dict() for d, r in other.dimensions.items()},
        }
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "assessment.json")
    plot_assessment({"model": result}, out / "assessment.png")
    write_text(out / "assessment.md", assessment_markdown(result, "assessment.png"))
    console.print(assessment_table(result))
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"type [bold]{result.type}[/] in {result.seconds:.1f} s; wrote {out}/assessment.json, .png, .md")


def _intervention(vector: Path | None, alpha: float | None, loaded):
    if vector is None:
        if alpha is not None:
            from traitlens.errors import TraitlensError

            raise TraitlensError("--alpha needs --vector")
        return None
    from traitlens.steering.artifact import withdrawn
    from traitlens.steering.inject import load_intervention

    steering = load_intervention(vector, loaded, alpha)
    reason = withdrawn(steering.vector)
    if reason:
        err_console.print(f"[yellow]warning:[/] {vector} is withdrawn: {reason}")
    return steering
