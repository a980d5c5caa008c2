"""The edit report: Markdown, the alpha curve and before/after plots in the paper's style."""

from __future__ import annotations

from pathlib import Path

from traitlens._io import save_figure
from traitlens.assess.report import plot_assessment
from traitlens.edit.pipeline import EditResult
from traitlens.paired import verdict
from traitlens.plotting import pyplot

__all__ = ["plot_curve", "plot_frontier", "edit_markdown", "write_edit_outputs"]


def plot_frontier(result: EditResult, path: str | Path) -> Path:
    """Train-split shift against perplexity change, one curve per recipe, the Pareto front in
    black, the persona prompt as the free baseline and the winner starred."""
    from traitlens.edit.frontier import pareto

    plt = pyplot()
    cal, frontier = result.calibration, result.frontier
    base = 100 * cal.baseline_share
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in frontier.runs:
        pts = sorted(run.points, key=lambda p: p.alpha)
        if pts:
            ax.plot(
                [100 * (p.ppl_ratio - 1) for p in pts],
                [100 * p.target_share - base for p in pts],
                marker="o",
                ms=4,
                alpha=0.8,
                label=f"{run.recipe.name} (L{run.layers[0]}-{run.layers[-1]})"
                if len(run.layers) > 1
                else f"{run.recipe.name} (L{run.layers[0]})",
            )
    front = pareto(cal.points)
    ax.step(
        [100 * (p.ppl_ratio - 1) for p in front],
        [100 * p.target_share - base for p in front],
        where="post",
        color="black",
        lw=1,
        label="Pareto front",
    )
    chosen = cal.chosen
    ax.plot([100 * (chosen.ppl_ratio - 1)], [100 * chosen.target_share - base], "k*", ms=15, label="chosen")
    if frontier.persona_prompt_share is not None:
        ax.plot([0], [100 * frontier.persona_prompt_share - base], "rD", ms=8, label="persona prompt")
    ax.axvline(100 * cal.guard, color="red", ls="--", lw=0.8, label="guard")
    ax.axhline(0, color="grey", ls=":", lw=0.8)
    ax.set(
        xlabel="perplexity change (%)",
        ylabel=f"{result.trait.target} share shift on train items (points)",
        title=f"{result.trait.arrow}: edit frontier (train split)",
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_curve(result: EditResult, path: str | Path) -> Path:
    plt = pyplot()
    cal = result.calibration
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for recipe in dict.fromkeys(p.recipe for p in cal.points):
        pts = sorted((p for p in cal.points if p.recipe == recipe), key=lambda p: p.alpha)
        label = recipe or f"layer {pts[0].layer}"
        line = left.plot([p.alpha for p in pts], [100 * p.target_share for p in pts], marker="o", ms=4, label=label)[0]
        right.plot(
            [p.alpha for p in pts], [p.ppl_ratio for p in pts], marker="o", ms=4, color=line.get_color(), label=label
        )
    chosen = cal.chosen
    left.plot([chosen.alpha], [100 * chosen.target_share], marker="*", ms=15, color="black", label="chosen")
    right.plot([chosen.alpha], [chosen.ppl_ratio], marker="*", ms=15, color="black")
    left.axhline(100 * cal.baseline_share, color="grey", ls=":", label="baseline")
    left.axhline(100 * cal.goal, color="red", ls="--", lw=0.8, label="goal")
    right.axhline(1 + cal.guard, color="red", ls="--", lw=0.8, label="guard")
    left.set(
        xlabel="alpha (x residual norm)",
        ylabel=f"{result.trait.target} share (%)",
        title=f"{result.trait.arrow}: target pole share",
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


def _recipe_text(result: EditResult) -> str:
    layers = result.vector.layers
    span = f"L{layers[0]}" + (f"-{layers[-1]}" if len(layers) > 1 else "")
    return f"{result.recipe.name}, {span}" if result.recipe else span


def _baseline_rows(result: EditResult) -> list[str]:
    """The edit against the free baseline (the target pole's persona prompt), on every unseen set."""
    if result.persona is None:
        return []
    s, pole = result.summary(), result.trait.target
    rows = [
        "## Against the persona prompt (unseen items)",
        "",
        f'The obvious baseline asks for the pole in words: system prompt "{_persona(pole)}"',
        "",
        "| instrument | n items | before | edit | persona prompt | edit shift | edit, paired over items | "
        "prompt shift |",
        "|---|---|---|---|---|---|---|---|",
        f"| shipped bank, eval split | {result.baseline.dimensions[result.dimension].n_items} | {s['before_share']:.1%} | "
        f"{s['after_share']:.1%} | {s['persona_prompt_share']:.1%} | {100 * s['shift']:+.1f} pts | "
        f"{_paired(s['shift_test'])} | {100 * s['persona_prompt_shift']:+.1f} pts |",
    ]
    for name, shares in s["extra_instruments"].items():
        rows.append(
            f"| {name} | {shares['n_items']} | {shares['before']:.1%} | {shares['after']:.1%} | "
            f"{shares['persona_prompt']:.1%} | {100 * (shares['after'] - shares['before']):+.1f} pts | "
            f"{_paired(shares['shift_test'])} | {100 * (shares['persona_prompt'] - shares['before']):+.1f} pts |"
        )
    return rows + [
        "",
        "Paired over items: the per-item shift's 95% bootstrap CI and sign-flip permutation p; a shift "
        "that is not significant is reported as not detected, with the smallest shift this design detects "
        "(MDD, from the observed SD of the per-item shifts).",
        "",
    ]


def _evidence_rows(result: EditResult) -> list[str]:
    """Is the shift the trait? Its paired test, the wording shift and the off-target shift."""
    s = result.summary()
    wording = "not measured" if s["wording_shift"] is None else f"{100 * s['wording_shift']:+.1f} pts"
    rows = [
        "## Is it the trait? (eval items)",
        "",
        f"- Target shift, paired over items: {_paired(s['shift_test'])}, n {s['shift_test']['n']}.",
        f"- Wording shift (the content-free share under the edit minus without it, towards "
        f"{result.trait.target}): {wording}.",
        f"- Largest off-target shift: {100 * s['off_target_shift_eval']:.1f} pts.",
    ]
    rows += [f"- **FLAG** {flag}" for flag in s["flags"]] or [
        "- No flag: the shift is not wording, nor mostly elsewhere."
    ]
    null = s["null"]
    if null is None:
        rows.append("- Random-direction null: not run (`--null N`).")
    else:
        lo, _, hi = null["percentiles"]
        rows.append(
            f"- Random-direction null ({null['draws']} draws matched in norm and perplexity, `null.json`): "
            f"{null['metric']} moved {100 * null['towards_target']:+.1f} pts towards {result.trait.target}; "
            f"the null's 95% range [{100 * lo:+.1f}, {100 * hi:+.1f}] pts (first pole), p = {null['p']:.3f}."
        )
    return rows + [""]


def _paired(test: dict) -> str:
    lo, hi = test["ci"]
    return f"{verdict(test)}, CI [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _persona(pole: str) -> str:
    from traitlens.instrument.personas import persona_prompt

    return persona_prompt(pole)


def _frontier_rows(result: EditResult) -> list[str]:
    if result.frontier is None:
        return []
    rows = [
        "",
        "## Frontier (train items)",
        "",
        "Each recipe's furthest move within the guard, and how far that point moves the target pole's share with "
        "no question asked (its wording shift); the winner is chosen by "
        + ("the shift less its wording shift." if result.frontier.select == "net" else "the shift alone.")
        + " The held-out probe figures are on the source's eval pairs.",
        "",
        "| recipe | spec | layers | probe layer: held-out acc | best shift within guard | wording shift | perplexity | alpha |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = result.calibration.baseline_share
    for run in result.frontier.runs:
        best = run.best
        if best is None:
            rows.append(f"| {run.recipe.name} | `{run.recipe.spec}` | - | - | skipped: {run.skipped} | - | - | - |")
            continue
        mark = " **chosen**" if run.recipe.name == result.frontier.chosen_recipe else ""
        span = f"{run.layers[0]}" + (f"-{run.layers[-1]}" if len(run.layers) > 1 else "")
        rows.append(
            f"| {run.recipe.name}{mark} | `{run.recipe.spec}` | {span} | L{run.probe['layer']}: "
            f"{run.probe['heldout_accuracy']:.1%} | {100 * (best.target_share - base):+.1f} pts | "
            f"{'-' if best.wording_shift is None else f'{100 * best.wording_shift:+.1f} pts'} | "
            f"{100 * (best.ppl_ratio - 1):+.1f}%{'' if best.guard_ok else ' (guard broken)'} | {best.alpha:.3g} |"
        )
    if result.frontier.persona_prompt_share is not None:
        rows.append(
            f"| persona prompt | system prompt | - | - | {100 * (result.frontier.persona_prompt_share - base):+.1f} pts | "
            "- | 0% | - |"
        )
    return rows


def edit_markdown(result: EditResult) -> str:
    s, cal, chosen = result.summary(), result.calibration, result.calibration.chosen
    if result.already_target:
        verdict = f"the model was already {result.trait.target} before the edit"
    else:
        verdict = "the letter flipped" if result.flipped else "the letter did not flip"
    lines = [
        f"# Edit {result.trait.arrow} on {result.baseline.model['name']}",
        "",
        f"**{s['before_type']} -> {s['after_type']}**: {result.trait.target} share {s['before_share']:.1%} -> "
        f"{s['after_share']:.1%} ({verdict}; {s['after_share'] - s['before_share']:+.1%}), recipe `{_recipe_text(result)}`, "
        f"alpha {s['alpha']:.4g} x residual norm, "
        f"perplexity {s['perplexity_before']:.2f} -> {s['perplexity_after']:.2f} ({100 * s['perplexity_change']:+.1f}%). "
        f"Run time {s['seconds']:.0f} s.",
        "",
        f"Recipe, alpha and the readout per dimension were chosen on the {len(result.calibration_items)} train items "
        f"({result.trait.target} {s['train_before_share']:.1%} -> {s['train_after_share']:.1%} there); every share below "
        f"is on the {result.baseline.dimensions[result.dimension].n_items} eval items of the target dimension and the "
        "eval items of the others, which the choice never saw.",
        "",
        *_evidence_rows(result),
        *_baseline_rows(result),
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
        f"Every recipe's strength climbs until perplexity leaves +{cal.guard:.0%} of {cal.baseline_perplexity:.2f}; the "
        f"largest train share within that guard is each recipe's best (the frontier above picks among them). Goal (a real move): {result.trait.target} share > {cal.goal:.0%} "
        f"({'met' if cal.goal_met else 'NOT met within the guard: the furthest safe move is reported'}); readout `{cal.readout}`.",
        "",
        "| recipe | layers | alpha | target share | perplexity | ratio | guard | goal | off-target shift |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    layers = {r.recipe.name: r.layers for r in result.frontier.runs} if result.frontier else {}
    for p in sorted(cal.points, key=lambda p: (p.recipe, p.alpha)):
        star = " **chosen**" if p is chosen else ""
        shift = "" if p.off_target_shift is None else f"{p.off_target_shift:.3f}"
        span = layers.get(p.recipe) or [p.layer]
        lines.append(
            f"| {p.recipe or '-'}{star} | {span[0]}{f'-{span[-1]}' if len(span) > 1 else ''} | {p.alpha:.4g} | "
            f"{p.target_share:.1%} | {p.perplexity:.2f} | {p.ppl_ratio:.3f} | "
            f"{'ok' if p.guard_ok else 'broken'} | {'met' if p.goal_met else '-'} | {shift} |"
        )
    lines += _frontier_rows(result)
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
    if result.frontier is not None:
        lines += ["![edit frontier](frontier.png)", ""]
    return "\n".join(lines)


def write_edit_outputs(result: EditResult, out: Path, export: Path | None) -> None:
    import shutil

    from traitlens._io import atomic_write, write_json, write_text
    from traitlens.steering.artifact import FILES, save_vector

    out.mkdir(parents=True, exist_ok=True)
    plot_assessment({"before": result.baseline, "after": result.steered}, out / "shares.png")
    plot_curve(result, out / "curve.png")
    pictures = ["shares.png", "curve.png"]
    if result.frontier is not None:
        plot_frontier(result, out / "frontier.png")
        pictures.append("frontier.png")
    if result.bench is not None:
        from traitlens.bench.report import plot_bench

        plot_bench(result.bench, out / "bench.png")
        pictures.append("bench.png")
    if result.null is not None:
        from traitlens.null.report import plot_null

        write_json(out / "null.json", result.null.to_dict())
        plot_null(result.null, out / "null.png")
        pictures.append("null.png")
    write_json(
        out / "edit.json",
        {
            "summary": result.summary(),
            "calibration": result.calibration.to_dict(),
            "frontier": result.frontier.to_dict() if result.frontier else None,
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
                "frontier": result.frontier.to_dict() if result.frontier else None,
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
