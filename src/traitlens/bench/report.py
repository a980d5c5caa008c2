"""Show a bench run: a table with before/after and deltas, a Fig. 7-style PNG, Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from traitlens._io import save_figure, write_text
from traitlens.bench.base import SuiteResult
from traitlens.plotting import POLE_COLOURS, pyplot

__all__ = ["bench_table", "plot_bench", "bench_markdown", "write_generations"]


def _ci(r: SuiteResult) -> str:
    return f"{r.value:.3f} [{r.ci95[0]:.2f}, {r.ci95[1]:.2f}]"


def _row(name: str, r: SuiteResult, a: SuiteResult | None) -> list[str]:
    """suite, metric, better, n, original (and edited, delta when there is an edit)."""
    cells = [name, r.metric, "higher" if r.higher_is_better else "lower", str(r.n), f"{r.mdd:.2f}", _ci(r)]
    if a is not None:
        cells += [_ci(a), f"{a.value - r.value:+.3f}"]
    return cells


def bench_table(before: dict[str, SuiteResult], after: dict[str, SuiteResult] | None) -> Table:
    table = Table(title="safety benchmarks" + (" (original vs edited)" if after else ""))
    for column in (
        "suite",
        "metric",
        "better",
        "n",
        "MDD",
        "original" if after else "value",
        *(("edited", "delta") if after else ()),
        "note",
    ):
        table.add_column(column)
    for name, r in before.items():
        cells = _row(name, r, after[name] if after else None)
        table.add_row(*cells, r.note[:40])
    return table


def plot_bench(bench: dict, path: str | Path) -> Path:
    """Bars per suite, original vs edited, with 95% intervals (the paper's Fig. 7 bottom row),
    from a ``bench_json`` dict."""
    plt = pyplot()
    suites = bench["suites"]
    fig, axes = plt.subplots(1, len(suites), figsize=(2.2 * len(suites) + 1, 3.2), squeeze=False)
    for ax, (name, entry) in zip(axes[0], suites.items(), strict=True):
        runs = [("original", entry["before"]), ("edited", entry["after"])] if "before" in entry else [("value", entry)]
        for k, (_, r) in enumerate(runs):
            lo, hi = r["ci95"]
            ax.bar(
                k,
                r["value"],
                color=POLE_COLOURS[k],
                yerr=[[max(r["value"] - lo, 0)], [max(hi - r["value"], 0)]],
                capsize=3,
            )
            ax.text(k, r["value"], f"{r['value']:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([label for label, _ in runs], fontsize=8)
        arrow = "\u2191" if entry["higher_is_better"] else "\u2193"
        ax.set_title(f"{name}\n{entry['metric']} {arrow}", fontsize=9)
        ax.set_ylim(0, max(1.0, max(r["ci95"][1] for _, r in runs) * 1.1))
    return save_figure(fig, path)


def bench_markdown(before: dict[str, SuiteResult], after: dict[str, SuiteResult] | None, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "MDD: the smallest change this n detects (two-sided 5%, 80% power); a smaller delta is not evidence.",
        "",
        "| suite | metric | better | n | MDD | original | " + ("edited | delta | " if after else "") + "data | note |",
        "|---|---|---|---|---|---|" + ("---|---|" if after else "") + "---|---|",
    ]
    for name, r in before.items():
        cells = _row(name, r, after[name] if after else None)
        cells += [Path(r.data).name, r.note]
        lines.append("| " + " | ".join(cells) + " |")
    extras = [(n, k, v) for n, r in before.items() for k, v in r.extra.items()]
    if extras:
        lines += [
            "",
            "Secondary metrics: "
            + "; ".join(
                f"{n} {k} {v:.3f}" + (f" -> {after[n].extra.get(k, float('nan')):.3f}" if after else "")
                for n, k, v in extras
            ),
        ]
    lines += ["", "![benchmarks](bench.png)", ""]
    return "\n".join(lines)


def write_generations(path: Path, before: dict[str, SuiteResult], after: dict[str, SuiteResult] | None) -> Path:
    """Every per-item record (with its generation) as JSON lines, so any number can be audited."""
    rows = []
    for phase, results in (("original", before), ("edited", after or {})):
        for name, r in results.items():
            rows += [json.dumps({"phase": phase, "suite": name, **rec}, ensure_ascii=False) for rec in r.records]
    return write_text(path, "\n".join(rows) + "\n")
