"""``traitlens export``, ``traitlens import`` and ``traitlens inspect``: steering-vector artifacts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from traitlens.cli.common import ModelOption, console, load_with_status

__all__ = ["export_command", "import_command", "inspect_command"]


def export_command(
    vector: Path = typer.Argument(..., help="A traitlens vector directory."),
    format: str = typer.Option(
        "gguf", "--format", help="traitlens, gguf (llama.cpp/repeng) or safetensors (steering-vectors/repeng)."
    ),
    out: Path = typer.Option(..., "--out", help="Output file (gguf, safetensors) or directory (traitlens)."),
) -> None:
    """Write a vector in another tool's format."""
    from traitlens.errors import TraitlensError
    from traitlens.steering.artifact import load_vector, save_vector
    from traitlens.steering.interop import FORMATS, export_gguf, export_safetensors

    if format not in FORMATS:
        raise TraitlensError(f"unknown format '{format}': use {', '.join(FORMATS)}")
    loaded = load_vector(vector)
    if format == "gguf":
        export_gguf(
            loaded, out, model_hint=str(loaded.model.get("architecture", "llama")).replace("ForCausalLM", "").lower()
        )
    elif format == "safetensors":
        export_safetensors(loaded, out)
    else:
        save_vector(loaded, out)
    console.print(f"wrote {out} ({format}); recommended alpha {loaded.recommended_alpha}")


def import_command(
    file: Path = typer.Argument(..., help="A control-vector .gguf or a layer-indexed .safetensors file."),
    model: str = ModelOption,
    out: Path = typer.Option(..., "--out", help="Output vector directory."),
) -> None:
    """Turn another tool's vector into a traitlens artifact for --model."""
    from traitlens.errors import TraitlensError
    from traitlens.steering.artifact import save_vector
    from traitlens.steering.interop import import_gguf, import_safetensors

    if not file.is_file():
        raise TraitlensError(f"file not found: {file}")
    readers = {".gguf": import_gguf, ".safetensors": import_safetensors}
    if file.suffix not in readers:
        raise TraitlensError(f"{file.name}: unknown vector format (use .gguf or .safetensors)")
    loaded = load_with_status(model)
    vector = readers[file.suffix](file, loaded)
    save_vector(vector, out)
    console.print(f"wrote {out}: layers {vector.layers} for {loaded.name}")


def inspect_command(
    vector: Path = typer.Argument(..., help="A traitlens vector directory."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of per-layer norms and probe accuracy."),
) -> None:
    """Metadata, per-layer norms and probe accuracy of a vector."""
    from traitlens.steering.artifact import load_vector

    loaded = load_vector(vector)
    probe = loaded.extra.get("probe", {})
    summary = loaded.extra.get("edit_summary", {})
    console.print(
        f"[bold]{vector}[/]: trait {loaded.trait}, method {loaded.method}, hook {loaded.hook}, "
        f"model {loaded.model.get('name')} ({str(loaded.model.get('weights_hash', ''))[:23]}), "
        f"recommended alpha {loaded.recommended_alpha}"
    )
    if summary:
        console.print(
            f"edit: {summary.get('before_type')} -> {summary.get('after_type')}, {loaded.trait[1:]} share "
            f"{summary.get('before_share')} -> {summary.get('after_share')}, perplexity change {summary.get('perplexity_change')}"
        )
    table = Table("layer", "norm (alpha = 1)", "scale", "held-out probe accuracy")
    accuracy = probe.get("per_layer_heldout_accuracy", {})
    for layer, offset in loaded.offsets.items():
        table.add_row(
            str(layer),
            f"{float(offset.norm()):.3f}",
            f"{loaded.scales.get(layer, float('nan')):.3f}",
            str(accuracy.get(str(layer), "-")),
        )
    console.print(table)
    if plot:
        _plot(loaded, accuracy, plot)
        console.print(f"wrote {plot}")


def _plot(vector, accuracy: dict, path: Path) -> None:
    from traitlens._io import save_figure
    from traitlens.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if accuracy:
        layers = sorted(int(k) for k in accuracy)
        ax.plot(layers, [accuracy[str(k)] for k in layers], marker="o", ms=3, label="held-out probe accuracy")
    for layer, offset in vector.offsets.items():
        ax.axvline(layer, color="black", ls="--", lw=1, label=f"edited layer {layer} (norm {float(offset.norm()):.1f})")
    ax.set(xlabel="layer", ylabel="accuracy", title=f"{vector.trait} vector", ylim=(0.3, 1.02))
    ax.legend(fontsize=8)
    save_figure(fig, path)
