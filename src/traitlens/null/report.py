"""The null's report: each metric's effect beside its null distribution, and a strip plot."""

from __future__ import annotations

from pathlib import Path

from traitlens._io import save_figure
from traitlens.null.run import NullResult
from traitlens.paired import verdict
from traitlens.plotting import pyplot

__all__ = ["null_markdown", "plot_null"]


def null_markdown(result: NullResult) -> str:
    v, ppl = result.vector, result.perplexity
    lines = [
        f"# Random-direction null: {v.get('trait') or 'vector'} at alpha {v['alpha']:.4g}, layers {v['layers']}",
        "",
        f"{result.draws} null directions ({', '.join(result.kinds)}; both signs), each on the vector's layers at "
        f"its per-layer norms, in its mode ({v['mode']}), rescaled to its perplexity change (vector: "
        f"{100 * (ppl['vector_ratio'] - 1):+.1f}%). The questionnaire is read on {result.n_items} eval items "
        f"with readouts fixed on the train items ({', '.join(f'{d} {r}' for d, r in result.readouts.items())}).",
        "",
        "| metric | vector's effect | null 2.5% | null median | null 97.5% | p (rank by size among draws) | reading (p < 0.05) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in result.metrics.items():
        lo, mid, hi = m["percentiles"]
        floor = 1 / (len(m["null"]) + 1)
        if m["p"] < 0.05:
            reading = "beyond the null"
        elif m["p"] <= floor + 1e-5:  # p is stored to 6 decimals
            reading = f"beyond every draw, but {len(m['null'])} draws cannot test at 5% (p floor {floor:.3f})"
        else:
            reading = "inside the null: not told apart from any perturbation"
        lines.append(f"| {name} | {m['vector']:+.4f} | {lo:+.4f} | {mid:+.4f} | {hi:+.4f} | {m['p']:.3f} | {reading} |")
    test = result.shift_test
    if test:
        lines += [
            "",
            f"The target pole's shift paired over the same {test['n']} items: {verdict(test)}, "
            f"CI [{100 * test['ci'][0]:+.1f}, {100 * test['ci'][1]:+.1f}] pts (sign-flip p {test['p']:.3g}, "
            f"MDD {100 * test['mdd']:.1f} pts). The null asks the other question: whether any perturbation of "
            "this size and cost moves it as far.",
        ]
    if result.wording:
        lines += [
            "",
            "The vector's wording shift (first pole's content-free share under the vector minus without it; "
            "a shift the questionnaire's answers share with no question asked):",
            "",
            "| dimension | readout | content-free, unsteered | under the vector | wording shift | flagged (> 5 pts) |",
            "|---|---|---|---|---|---|",
        ]
        for dim, w in result.wording.items():
            lines.append(
                f"| {dim} | {w['readout']} | {w['unsteered']:.1%} | {w['steered']:.1%} | "
                f"{100 * w['wording_shift']:+.1f} pts | {'yes' if w['flagged'] else 'no'} |"
            )
    achieved = ppl["null_ratios"]
    lines += [
        "",
        f"Null perplexity ratios reached: {min(achieved):.3f} to {max(achieved):.3f} (vector {ppl['vector_ratio']:.3f}); "
        "each draw is rescaled in a few secant steps, so the match is close, not exact.",
        f"Run time {result.seconds:.0f} s.",
        "",
        "![null](null.png)",
        "",
    ]
    return "\n".join(lines)


def plot_null(result: NullResult, path: Path) -> None:
    plt = pyplot()
    names = list(result.metrics)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    for k, name in enumerate(names):
        m = result.metrics[name]
        ax.scatter([k] * len(m["null"]), m["null"], s=10, color="grey", alpha=0.5, label="null" if k == 0 else None)
        ax.scatter([k], [m["vector"]], s=60, color="crimson", marker="D", label="vector" if k == 0 else None)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylabel="effect (change from unsteered)", title="vector against its random-direction null")
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, path)
