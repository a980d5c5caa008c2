"""``reverse`` results as a table, a figure (personality against refusal) and Markdown."""

from __future__ import annotations

from pathlib import Path

from traitlens._io import save_figure
from traitlens.instrument.items import DIMENSIONS
from traitlens.plotting import pyplot
from traitlens.reverse.run import ReverseResult

__all__ = ["plot_reverse", "reverse_markdown"]


def plot_reverse(result: ReverseResult, path: str | Path) -> Path:
    """Each dimension's first-pole share (with its 95% interval) against the refusal rate on
    held-out harmful prompts, one point per condition."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, dim in zip(axes, DIMENSIONS, strict=True):
        for c in result.conditions:
            share, (lo, hi) = c.shares[dim], c.shares_ci[dim]
            ax.errorbar(
                c.refusal_harmful, 100 * share, yerr=[[100 * (share - lo)], [100 * (hi - share)]], fmt="o", capsize=3
            )
            ax.annotate(c.name, (c.refusal_harmful, 100 * share), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(50, color="grey", ls="--", lw=0.8)
        ax.set(title=f"{DIMENSIONS[dim][0]} share", xlabel="refusal rate, held-out harmful")
    axes[0].set_ylabel("first pole share (%)")
    return save_figure(fig, path)


def reverse_markdown(result: ReverseResult, plot_name: str = "reverse.png") -> str:
    base = result.baseline()
    checks = result.checks()
    lines = [
        f"# Reverse: the safety direction and personality ({result.model['name']})",
        "",
        f"Safety direction at layer {result.direction.layer} (difference of means, harmful minus harmless "
        f"instructions, last prompt position); held-out d' at that layer "
        f"{result.direction.separation[result.direction.layer]:.2f}. Refusal rates on {result.n_harmful} held-out "
        f"harmful and {result.n_harmless} held-out harmless prompts (trained refusal judge); shares on the eval "
        f"items ({result.n_items} per dimension) with the readouts chosen on the unsteered model, held fixed.",
        "",
        "| condition | refusal, harmful [95% CI] | refusal, harmless [95% CI] | perplexity | type | "
        + " | ".join(f"{p[0]} share" for p in DIMENSIONS.values())
        + " |",
        "|---|---|---|---|---|" + "---|" * len(DIMENSIONS),
    ]
    for c in result.conditions:
        shares = " | ".join(
            f"{100 * c.shares[d]:.1f} [{100 * c.shares_ci[d][0]:.0f}, {100 * c.shares_ci[d][1]:.0f}]"
            for d in DIMENSIONS
        )
        lines.append(
            f"| {c.name} | {c.refusal_harmful:.2f} [{c.refusal_harmful_ci[0]:.2f}, {c.refusal_harmful_ci[1]:.2f}] | "
            f"{c.refusal_harmless:.2f} [{c.refusal_harmless_ci[0]:.2f}, {c.refusal_harmless_ci[1]:.2f}] | "
            f"{100 * c.perplexity_change:+.1f}% | {c.type} | {shares} |"
        )
    add, ablate = checks["adding_raises_refusals_on_harmless"], checks["ablating_lowers_refusals_on_harmful"]
    lines += [
        "",
        "## Does the direction do what it should?",
        "",
        f"- Adding it (strongest +): refusals on harmless prompts {add['before']:.2f} -> {add['after']:.2f}"
        if add
        else "- Adding it: not run",
        f"- Projecting it out: refusals on harmful prompts {ablate['before']:.2f} -> {ablate['after']:.2f}"
        if ablate
        else "- Projecting it out: not run",
        f"- Minimum detectable difference at this n: {checks['mdd_harmful']:.2f} (harmful), "
        f"{checks['mdd_harmless']:.2f} (harmless). Shares: see each interval; the unsteered model is {base.type}.",
        "",
        f"![personality against refusal]({plot_name})",
        "",
    ]
    return "\n".join(lines)
