"""Show an assessment: a rich table, a PNG bar chart in the paper's style, a Markdown report."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from traitlens._io import save_figure
from traitlens.assess.result import AssessmentResult
from traitlens.plotting import POLE_COLOURS, pyplot

__all__ = ["assessment_table", "plot_assessment", "assessment_markdown"]


def assessment_table(result: AssessmentResult, title: str | None = None) -> Table:
    table = Table(title=title or f"{result.model['name']}: {result.type} ({result.protocol})")
    for column in ("dimension", "share", "95% CI", "letter", "readout", "position bias", "order consistency"):
        table.add_column(column)
    for dim, r in result.dimensions.items():
        first, second = r.poles
        lo, hi = r.ci95_first
        rel = r.reliability
        table.add_row(
            dim,
            f"{first} {r.share_first:.1%} / {second} {1 - r.share_first:.1%}",
            f"{first} [{lo:.1%}, {hi:.1%}]",
            r.letter,
            r.readout,
            f"{rel.get('position_bias', float('nan')):.2f}",
            f"{rel.get('order_consistency', float('nan')):.2f}",
        )
    return table


def plot_assessment(results: dict[str, AssessmentResult], path: str | Path) -> Path:
    """Horizontal bars, one row per dimension, first pole left; several results side by side."""
    plt = pyplot()
    names = list(results)
    dims = list(next(iter(results.values())).dimensions)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.55 * len(dims) * len(names)))
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        for row, dim in enumerate(dims):
            r = results[name].dimensions[dim]
            y = row + (k - (len(names) - 1) / 2) * height
            ax.barh(y, r.share_first * 100, height * 0.9, color=POLE_COLOURS[0], alpha=1 - 0.35 * k)
            ax.barh(
                y,
                (1 - r.share_first) * 100,
                height * 0.9,
                left=r.share_first * 100,
                color=POLE_COLOURS[1],
                alpha=1 - 0.35 * k,
            )
            lo, hi = r.ci95_first
            ax.errorbar(
                r.share_first * 100,
                y,
                xerr=[[100 * (r.share_first - lo)], [100 * (hi - r.share_first)]],
                color="black",
                capsize=3,
                lw=1,
            )
            label = f"{r.share_first:.1%}" + (f"  ({name})" if len(names) > 1 else "")
            ax.text(1, y, label, va="center", fontsize=8, color="white")
    ax.axvline(50, color="grey", ls="--", lw=0.8)
    ax.set_yticks(range(len(dims)))
    ax.set_yticklabels(
        [f"{results[names[0]].dimensions[d].poles[0]} | {results[names[0]].dimensions[d].poles[1]}" for d in dims]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of answers (%)")
    types = ", ".join(f"{n}: {results[n].type}" for n in names)
    ax.set_title(f"{results[names[0]].model['name']}  ({types})", fontsize=10)
    return save_figure(fig, path)


def assessment_markdown(result: AssessmentResult, plot_name: str | None = None) -> str:
    lines = [
        f"# Assessment of {result.model['name']}",
        "",
        f"Type **{result.type}**, protocol `{result.protocol}`, split `{result.split}`, "
        f"items `{result.items_source}` ({result.items_hash}), {result.seconds:.1f} s.",
        "",
        "| dimension | first pole share | 95% CI | letter | readout | why |",
        "|---|---|---|---|---|---|",
    ]
    for dim, r in result.dimensions.items():
        lo, hi = r.ci95_first
        lines.append(
            f"| {dim} | {r.poles[0]} {r.share_first:.1%} | [{lo:.1%}, {hi:.1%}] | {r.letter} | {r.readout} | {r.readout_reason} |"
        )
    lines += [
        "",
        "## Reliability",
        "",
        "| dimension | " + " | ".join(_reliability_keys(result)) + " |",
        "|---|" + "---|" * len(_reliability_keys(result)),
    ]
    for dim, r in result.dimensions.items():
        lines.append(
            f"| {dim} | "
            + " | ".join(f"{r.reliability.get(k, float('nan')):.3f}" for k in _reliability_keys(result))
            + " |"
        )
    lines += _validity_markdown(result)
    lines += ["", "## Warnings", ""]
    lines += [f"- {w}" for w in result.warnings] or ["- none: the instrument looks reliable for this model"]
    if plot_name:
        lines += ["", f"![dimensions]({plot_name})"]
    return "\n".join(lines) + "\n"


def _reliability_keys(result: AssessmentResult) -> list[str]:
    keys: list[str] = []
    for r in result.dimensions.values():
        keys += [k for k in r.reliability if k not in keys]
    return keys


def _validity_markdown(result: AssessmentResult) -> list[str]:
    """Which readouts measure the answer: content-free share (about 50% is valid) and persona
    separation (how far each pole's persona prompt moves the share), per dimension."""
    lines: list[str] = []
    readouts = result.validity.get("readouts", {})
    if readouts:
        lines += [
            "",
            "## Readout validity",
            "",
            "Content-free share: the first pole's share when every question is replaced by a neutral one "
            "(a readout that measures the answer gives about 50%). Persona separation: the first pole's share "
            "under its persona prompt minus under the other pole's. Measured without steering or system prompt.",
            "",
            "| dimension | readout | content-free share | persona separation | used |",
            "|---|---|---|---|---|",
        ]
        for dim, per in readouts.items():
            used = result.dimensions[dim].readout if dim in result.dimensions else ""
            for name, v in per.items():
                if "excluded" in v:
                    lines.append(f"| {dim} | {name} | excluded: {v['excluded']} | | |")
                    continue
                mark = "**yes**" if name == used else ""
                lines.append(
                    f"| {dim} | {name} | {v['content_free_share']:.1%} | {100 * v['persona_separation']:+.1f} pts | {mark} |"
                )
    balance = result.validity.get("length_balance", {})
    if balance:
        lines += [
            "",
            "## Option length balance",
            "",
            "| dimension | first pole longer | second pole longer | mean token difference | balanced |",
            "|---|---|---|---|---|",
        ]
        for dim, b in balance.items():
            lines.append(
                f"| {dim} | {b['first_longer']} | {b['second_longer']} | {b['mean_token_diff']:+.2f} | {'yes' if b['balanced'] else 'no'} |"
            )
    agree = result.validity.get("agreement")
    if agree:
        lines += [
            "",
            "## Agreement with a second instrument",
            "",
            f"`{agree['instruments'][0]}` says **{agree['types'][0]}**, `{agree['instruments'][1]}` says "
            f"**{agree['types'][1]}**: types {'agree' if agree['types_agree'] else 'differ'}.",
            "",
            "| dimension | first pole share (this) | (second) | difference | letters |",
            "|---|---|---|---|---|",
        ]
        for dim, a in agree["dimensions"].items():
            lines.append(
                f"| {dim} | {a['share_first'][0]:.1%} | {a['share_first'][1]:.1%} | {100 * a['difference']:+.1f} pts | "
                f"{' / '.join(a['letters'])} |"
            )
    return lines
