"""Show a probe run: per-layer table, accuracy-by-layer PNG, Markdown report."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from traitlens._io import save_figure
from traitlens.plotting import pyplot
from traitlens.probe.api import ProbeResult

__all__ = ["probe_tables", "plot_probe", "probe_markdown"]


def probe_tables(result: ProbeResult) -> list[Table]:
    tables = []
    for dim, p in result.dimensions.items():
        table = Table(title=f"{dim}: best layer {p.best_layer} (held-out accuracy {p.best.heldout_accuracy:.1%})")
        for column in (
            "layer",
            "cv acc",
            "auc",
            "cv d'",
            "held-out acc",
            "held-out d'",
            "cos(probe, meandiff)",
            "perm p",
            "beats chance",
        ):
            table.add_column(column, justify="right")
        for r in p.layers:
            mark = "[bold]" if r.layer == p.best_layer else ""
            table.add_row(
                f"{mark}{r.layer}",
                f"{r.cv_accuracy:.2f}",
                f"{r.auc:.2f}",
                f"{r.cv_separation:.2f}",
                f"{r.heldout_accuracy:.2f}",
                f"{r.heldout_separation:.2f}",
                f"{r.cosine_probe_meandiff:.2f}",
                f"{r.perm_p:.3f}",
                "yes" if r.informative else "no",
            )
        tables.append(table)
    return tables


def plot_probe(result: ProbeResult, path: str | Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for dim, p in result.dimensions.items():
        layers = [r.layer for r in p.layers]
        line = axes[0].plot(layers, [r.cv_accuracy for r in p.layers], marker="o", ms=3, label=f"{dim} (cv)")[0]
        axes[0].plot(layers, [r.heldout_accuracy for r in p.layers], ls="--", color=line.get_color(), lw=1)
        axes[0].plot([p.best_layer], [p.best.heldout_accuracy], marker="*", ms=12, color=line.get_color())
        axes[1].plot(
            layers, [r.heldout_separation for r in p.layers], marker="o", ms=3, color=line.get_color(), label=dim
        )
    null = max((r.null_p95 for p in result.dimensions.values() for r in p.layers), default=0.5)
    axes[0].axhline(0.5, color="grey", lw=0.8)
    axes[0].axhline(null, color="grey", lw=0.8, ls=":", label="permutation 95%")
    axes[0].set(
        xlabel="layer",
        ylabel="accuracy",
        title="probe accuracy (solid: grouped CV, dashed: held-out)",
        ylim=(0.3, 1.02),
    )
    axes[1].set(xlabel="layer", ylabel="held-out d'", title="held-out separation along the direction")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{result.model['name']} · {result.hook} · {result.reduce} · {result.method}", fontsize=10)
    return save_figure(fig, path)


def probe_markdown(result: ProbeResult, plot_name: str = "probe.png") -> str:
    lines = [
        f"# Probe of {result.model['name']}",
        "",
        f"Hook `{result.hook}`, reduction `{result.reduce}`, method `{result.method}`, contrast "
        f"`{result.contrast}` ({result.contrast_hash}), {result.seconds:.0f} s.",
        "",
        "The best layer is chosen by the cross-validated d' on the training pairs; the eval pairs never "
        "take part in the choice, so the held-out figures below are unbiased for the chosen layer.",
        "",
        "| dimension | best layer | train cv d' | held-out acc | held-out d' | cv acc | AUC | informative layers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dim, p in result.dimensions.items():
        b = p.best
        informative = [r.layer for r in p.layers if r.informative]
        lines.append(
            f"| {dim} | {p.best_layer} | {b.cv_separation:.2f} | {b.heldout_accuracy:.3f} | {b.heldout_separation:.2f} | "
            f"{b.cv_accuracy:.3f} | {b.auc:.3f} | {len(informative)}/{len(p.layers)} |"
        )
    if result.cosine_matrix:
        dims = list(result.dimensions)
        lines += [
            "",
            f"## Cosine between dimension directions at layer {result.cosine_layer}",
            "",
            "| | " + " | ".join(dims) + " |",
            "|---|" + "---|" * len(dims),
        ]
        lines += [
            f"| {d} | " + " | ".join(f"{v:+.2f}" for v in row) + " |"
            for d, row in zip(dims, result.cosine_matrix, strict=True)
        ]
    lines += ["", f"![accuracy by layer]({plot_name})", ""]
    return "\n".join(lines)
