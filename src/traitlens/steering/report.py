"""The edit report: Markdown, the alpha curve and before/after plots in the paper's style."""

from __future__ import annotations

from pathlib import Path

from traitlens._io import save_figure
from traitlens.assess.report import plot_assessment
from traitlens.plotting import pyplot
from traitlens.steering.edit import EditResult

__all__ = ["plot_curve", "edit_markdown", "write_edit_outputs"]


def plot_curve(result: EditResult, path: str | Path) -> Path:
    plt = pyplot()
    cal = result.calibration
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for layer in sorted({p.layer for p in cal.points}):
        pts = sorted((p for p in cal.points if p.layer == layer), key=lambda p: p.alpha)
        line = left.plot(
            [p.alpha for p in pts], [100 * p.target_share for p in pts], marker="o", ms=4, label=f"layer {layer}"
        )[0]
        right.plot(
            [p.alpha for p in pts],
            [p.ppl_ratio for p in pts],
            marker="o",
            ms=4,
            color=line.get_color(),
            label=f"layer {layer}",
        )
    chosen = cal.chosen
    left.plot([chosen.alpha], [100 * chosen.target_share], marker="*", ms=15, color="black", label="chosen")
    right.plot([chosen.alpha], [chosen.ppl_ratio], marker="*", ms=15, color="black")
    left.axhline(100 * cal.baseline_share, color="grey", ls=":", label="baseline")
    left.axhline(100 * cal.goal, color="red", ls="--", lw=0.8, label="goal")
    right.axhline(1 + cal.guard, color="red", ls="--", lw=0.8, label="guard")
    left.set(
        xlabel="alpha (x residual norm)",
        ylabel=f"{result.trait[1]} share (%)",
        title=f"{result.trait[0]} -> {result.trait[1]}: target pole share",
    )
    right.set(xlabel="alpha (x residual norm)", ylabel="perplexity / baseline", title="capability guard")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    return save_figure(fig, path)


def _share_rows(result: EditResult) -> list[str]:
    rows = []
    for dim, before in result.baseline.dimensions.items():
        after = result.steered.dimensions[dim]
        first = before.poles[0]
        mark = " **(target)**" if dim == result.dimension else ""
        rows.append(
            f"| {dim}{mark} | {first} {before.share_first:.1%} [{before.ci95_first[0]:.0%}, {before.ci95_first[1]:.0%}] | "
            f"{first} {after.share_first:.1%} [{after.ci95_first[0]:.0%}, {after.ci95_first[1]:.0%}] | "
            f"{100 * (after.share_first - before.share_first):+.1f} pts | {before.letter} -> {after.letter} | {after.readout} |"
        )
    return rows


def edit_markdown(result: EditResult) -> str:
    s, cal, chosen = result.summary(), result.calibration, result.calibration.chosen
    if result.already_target:
        verdict = f"the model was already {result.trait[1]} before the edit"
    else:
        verdict = "the letter flipped" if result.flipped else "the letter did not flip"
    lines = [
        f"# Edit {result.trait[0]} -> {result.trait[1]} on {result.baseline.model['name']}",
        "",
        f"**{s['before_type']} -> {s['after_type']}**: {result.trait[1]} share {s['before_share']:.1%} -> "
        f"{s['after_share']:.1%} ({verdict}; {s['after_share'] - s['before_share']:+.1%}), layer {s['layer']}, alpha {s['alpha']:.4g} x residual norm, "
        f"perplexity {s['perplexity_before']:.2f} -> {s['perplexity_after']:.2f} ({100 * s['perplexity_change']:+.1f}%). "
        f"Run time {s['seconds']:.0f} s.",
        "",
        f"Alpha, layer and the readout per dimension were chosen on the {len(result.calibration_items)} train items "
        f"({result.trait[1]} {s['train_before_share']:.1%} -> {s['train_after_share']:.1%} there); every share below "
        f"is on the {result.baseline.dimensions[result.dimension].n_items} eval items of the target dimension and the "
        "eval items of the others, which the choice never saw.",
        "",
        "## Dimensions before and after (eval items)",
        "",
        "| dimension | before (95% CI) | after (95% CI) | change | letter | readout |",
        "|---|---|---|---|---|---|",
        *_share_rows(result),
        "",
        "Every readout, steered:",
        "",
        "| readout | type | " + " | ".join(result.steered.dimensions) + " |",
        "|---|---|" + "---|" * len(result.steered.dimensions),
    ]
    for name, res in {"as calibrated": result.steered, **result.steered_by_readout}.items():
        lines.append(
            f"| {name} | {res.type} | "
            + " | ".join(f"{d.poles[0]} {d.share_first:.1%}" for d in res.dimensions.values())
            + " |"
        )
    lines += [
        "",
        "## Calibration",
        "",
        f"Goal: {result.trait[1]} share > {cal.goal:.0%}; guard: perplexity within +{cal.guard:.0%} of {cal.baseline_perplexity:.2f}; "
        f"readout `{cal.readout}`; {'goal met' if cal.goal_met else 'goal NOT met within the guard: the furthest safe move is reported'}.",
        "",
        "| layer | alpha | target share | perplexity | ratio | guard | goal | off-target shift |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(cal.points, key=lambda p: (p.layer, p.alpha)):
        star = " **chosen**" if p is chosen else ""
        shift = "" if p.off_target_shift is None else f"{p.off_target_shift:.3f}"
        lines.append(
            f"| {p.layer}{star} | {p.alpha:.4g} | {p.target_share:.1%} | {p.perplexity:.2f} | {p.ppl_ratio:.3f} | "
            f"{'ok' if p.guard_ok else 'broken'} | {'met' if p.goal_met else '-'} | {shift} |"
        )
    best = result.probe.best
    lines += [
        "",
        "## Direction",
        "",
        f"Method `{result.vector.method}` on {result.probe.n_train} train pairs; probe best layer {result.probe.best_layer} "
        f"(held-out accuracy {best.heldout_accuracy:.1%}); chosen layer {s['layer']} held-out accuracy "
        f"{next(r for r in result.probe.layers if r.layer == s['layer']).heldout_accuracy:.1%}.",
        "",
        "## Safety benchmarks",
        "",
    ]
    if result.bench is None:
        lines.append("Not run: the bench suites are not part of this edit run.")
    else:
        lines.append("| suite | metric | n | before [95% CI] | after [95% CI] | change | MDD | better |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for name, entry in result.bench.get("suites", {}).items():
            b, a = entry["before"], entry["after"]
            verdict = "" if abs(entry["delta"]) >= b.get("mdd", 0) else " (below MDD)"
            lines.append(
                f"| {name} | {entry['metric']} | {b['n']} | {b['value']:.3f} [{b['ci95'][0]:.2f}, {b['ci95'][1]:.2f}] | "
                f"{a['value']:.3f} [{a['ci95'][0]:.2f}, {a['ci95'][1]:.2f}] | {entry['delta']:+.3f}{verdict} | "
                f"{b.get('mdd', float('nan')):.2f} | {'higher' if entry['higher_is_better'] else 'lower'} |"
            )
        judges = ", ".join(f"{k}: {v['judge']}" for k, v in result.bench.get("judges", {}).items())
        lines += [
            "",
            f"Our shipped samples, {result.bench.get('limit', 'all')} items per suite (jailbreak: n counts goals, each "
            "under every attack). MDD is the smallest change this n detects (two-sided 5%, 80% power); a change "
            f"below it is no evidence either way. Judges: {judges or 'defaults'} (their measured agreement with "
            "people's labels: README, Judges). The toxicity scorer is a PROXY.",
            "",
            "![benchmarks](bench.png)",
        ]
    lines += ["", "![before and after](shares.png)", "", "![alpha curve](curve.png)", ""]
    return "\n".join(lines)


def write_edit_outputs(result: EditResult, out: Path, export: Path | None) -> None:
    import shutil

    from traitlens._io import atomic_write, write_json, write_text
    from traitlens.steering.artifact import FILES, save_vector

    out.mkdir(parents=True, exist_ok=True)
    plot_assessment({"before": result.baseline, "after": result.steered}, out / "shares.png")
    plot_curve(result, out / "curve.png")
    pictures = ["shares.png", "curve.png"]
    if result.bench is not None:
        from traitlens.bench.report import plot_bench

        plot_bench(result.bench, out / "bench.png")
        pictures.append("bench.png")
    write_json(
        out / "edit.json",
        {
            "summary": result.summary(),
            "calibration": result.calibration.to_dict(),
            "before": result.baseline.to_dict(),
            "after": result.steered.to_dict(),
            "bench": result.bench,
        },
    )
    report = edit_markdown(result)
    write_text(out / "report.md", report)
    if export is not None:
        summary = result.summary()
        save_vector(
            result.vector,
            export,
            {
                "alpha_curve": [p.to_dict() for p in result.calibration.points],
                "edit_summary": summary,
                "item_bank_hash": result.baseline.items_hash,
                "probe": {
                    "best_layer": result.probe.best_layer,
                    "per_layer_heldout_accuracy": {
                        str(r.layer): round(r.heldout_accuracy, 4) for r in result.probe.layers
                    },
                    "per_layer_cv_accuracy": {str(r.layer): round(r.cv_accuracy, 4) for r in result.probe.layers},
                },
            },
        )
        write_text(export / FILES["report"], report)
        for name in pictures:
            atomic_write(export / name, lambda tmp, name=name: shutil.copyfile(out / name, tmp))
