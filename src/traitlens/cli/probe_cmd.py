"""``traitlens probe``."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import ModelOption, console, load_with_status, progress_factory

__all__ = ["probe_command"]


def probe_command(
    trait: str = typer.Option("all", "--trait", help="JP, EI, SN, TF (either letter order) or all."),
    model: str = ModelOption,
    items: Path | None = typer.Option(
        None, "--items", help="Item file to build contrasts from (default: shipped bank + statements)."
    ),
    pairs: list[Path] | None = typer.Option(
        None, "--pairs", help="Paired answers: one .jsonl, or two Alpaca .json files (repeat --pairs)."
    ),
    hook: str = typer.Option("resid_post", "--hook", help="resid_pre, resid_mid or resid_post."),
    reduce: str = typer.Option("last", "--reduce", help="last answer token or mean over the answer."),
    method: str = typer.Option("probe", "--method", help="probe, meandiff or pca."),
    layers: str | None = typer.Option(None, "--layers", help="Comma-separated layers (default: all)."),
    permutations: int = typer.Option(200, "--permutations", min=10),
    limit: int | None = typer.Option(None, "--limit", help="At most this many pairs from --pairs."),
    persona: bool = typer.Option(
        False, "--persona", help="Add the persona-prompt contrast (answers generated per pole persona)."
    ),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("runs/probe"), "--out"),
) -> None:
    """Per-layer linear probes and trait directions for each dimension."""
    from traitlens._io import write_text
    from traitlens.errors import TraitlensError
    from traitlens.instrument.items import load_items
    from traitlens.models import RESID_POINTS
    from traitlens.probe.api import default_contrast, parse_traits, probe
    from traitlens.probe.collect import REDUCTIONS
    from traitlens.probe.contrast import item_pairs, load_pairs
    from traitlens.probe.methods import get_method
    from traitlens.probe.report import plot_probe, probe_markdown, probe_tables

    dims = parse_traits(trait)
    get_method(method)
    if reduce not in REDUCTIONS:
        raise TraitlensError(f"unknown reduction '{reduce}': use last or mean")
    hook = hook.removeprefix("hook_")
    if hook not in RESID_POINTS:
        raise TraitlensError(f"unknown hook '{hook}': use one of {', '.join(RESID_POINTS)}")
    chosen_layers = _parse_layers(layers)
    if pairs:
        contrast = load_pairs(pairs, limit=limit)
    elif items:
        contrast = item_pairs(load_items(items), listed=True)
    else:
        contrast = default_contrast()
    for dim in dims:
        contrast.check(dim)
    loaded = load_with_status(model)
    if persona:
        from traitlens.instrument.items import default_items
        from traitlens.probe.persona import persona_pairs

        bank = (load_items(items) if items else default_items()).select("all", dims)
        with progress_factory() as factory:
            contrast = contrast + persona_pairs(loaded, bank, progress=factory("persona answers", 2 * len(bank)))
    if chosen_layers:
        bad = [x for x in chosen_layers if not 0 <= x < loaded.n_layers]
        if bad:
            raise TraitlensError(f"layer {bad[0]} out of range: {loaded.name} has layers 0..{loaded.n_layers - 1}")
    with progress_factory() as factory:
        result = probe(
            loaded, dims, contrast, hook, reduce, method, chosen_layers, permutations, seed, progress=factory
        )
    out.mkdir(parents=True, exist_ok=True)
    result.save(out)
    plot_probe(result, out / "probe.png")
    write_text(out / "probe.md", probe_markdown(result))
    for table in probe_tables(result):
        console.print(table)
    for dim, p in result.dimensions.items():
        console.print(f"{dim}: best layer {p.best_layer}, held-out accuracy {p.best.heldout_accuracy:.1%}")
    console.print(f"wrote {out}/probe.json, probe.png, probe.md, directions.safetensors")


def _parse_layers(text: str | None) -> list[int] | None:
    from traitlens.errors import TraitlensError

    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TraitlensError(f"--layers must be comma-separated integers, not '{text}'") from None
