"""``study.json`` (the contract others read), ``study.md`` and its figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlens._io import save_figure, write_json, write_text
from traitlens.paired import verdict
from traitlens.plotting import pyplot
from traitlens.study.analyses import (
    Table,
    dose_response,
    jailbreak_by_pole,
    model_pairs,
    models,
    null_results,
    steering_vs_prompting,
)
from traitlens.study.execute import StudyRun
from traitlens.study.paper import paper_side_by_side
from traitlens.study.stats import mdd_proportion

__all__ = ["analyse", "study_json", "write_report"]


def analyse(run: StudyRun) -> dict[str, Any]:
    table = Table(run)
    first = run.spec.models[0]
    per_model = {m: jailbreak_by_pole(table, m) for m in run.spec.models}
    across = models(table)
    return {
        "dose_response": {m: dose_response(table, m) for m in run.spec.models},
        "jailbreak_by_pole": per_model,
        "steering_vs_prompting": {m: steering_vs_prompting(table, m) for m in run.spec.models},
        "null": {m: null_results(table, m) for m in run.spec.models},
        "models": across,
        "model_pairs": model_pairs(table),
        "paper": paper_side_by_side(run.spec.data, table, first, per_model[first], across["types"]),
    }


def study_json(run: StudyRun, analyses: dict[str, Any]) -> dict[str, Any]:
    units = []
    for r in run.results:
        unit, result = r["unit"], r["result"]
        for row in result["rows"]:
            units.append(
                {
                    "model": unit.model,
                    "intervention": unit.condition.label,
                    "target": unit.target,
                    "n": row.get("n"),
                    "metric": row["metric"],
                    "value": row["value"],
                    "ci": row.get("ci"),
                    "mdd": row.get("mdd"),
                    "seconds": round(result["seconds"], 2),
                    "cached": r["cached"],
                    "key": r["key"],
                }
            )
    spec = run.spec
    return {
        "spec": {"path": str(spec.path), "name": spec.name, **spec.raw, "data": spec.data},
        "executor": run.executor,
        "seconds": round(run.seconds, 1),
        "units": units,
        "failed": run.failed,
        "analyses": analyses,
    }


def _fmt(value, pct: bool = False, sign: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:+.1f}" if sign else f"{100 * value:.1f}"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _sizes(run: StudyRun, data: dict) -> list[str]:
    lines = ["## Sizes and what they can detect", "", "| target | n | MDD (two-sided 5%, 80% power) |", "|---|---|---|"]
    seen = set()
    for unit in data["units"]:
        key = (unit["target"], unit["metric"])
        if unit["intervention"] != "none" or key in seen or unit["n"] is None:
            continue
        seen.add(key)
        mdd = unit.get("mdd") or mdd_proportion(unit["value"], unit["n"])
        lines.append(f"| {unit['target']} {unit['metric']} | {unit['n']} | {mdd:.2f} |")
    lines += [
        "",
        "A change smaller than its MDD is no evidence either way: it is reported, never read as an effect. "
        "Questionnaire shares are per dimension (n items); jailbreak n counts goals (each under every attack).",
        "",
    ]
    return lines


def _dose_md(model: str, dose: dict, suites: list[str]) -> list[str]:
    lines = [f"## Dose-response ({model})", ""]
    head = "| edit | x alpha | target share % | shift, paired over items | off-target | perplexity | "
    lines += [head + " | ".join(suites) + " |", "|---|---|---|---|---|---|" + "---|" * len(suites)]
    for name, edit in dose["edits"].items():
        for p in edit["points"]:
            cells = [
                f"{p[s]['value']:.3f} [{p[s]['ci'][0]:.2f}, {p[s]['ci'][1]:.2f}]" if s in p else "-" for s in suites
            ]
            lines.append(
                f"| {name} | {p['multiple']:g} | {_fmt(p['target_share'], True)} | {_shift_test(p.get('target_shift_test'))} "
                f"| {_fmt(p['off_target_shift'], True, True)} | {_fmt(p['perplexity'])} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        f"Slopes per 10 points of target share (family of {dose['family_size']}, Holm-corrected):",
        "",
        "| edit | metric | slope / 10 pts | 95% CI | p | p (Holm) | conditions | n items |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, edit in dose["edits"].items():
        for suite, s in edit["slopes"].items():
            lines.append(
                f"| {name} | {suite} | {s['slope_per_10pts']:+.3f} | [{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}] | "
                f"{s['p']:.3f} | {s['p_holm']:.3f} | {s['conditions']} | {s['n_items']} |"
            )
    return lines + ["", f"![dose-response]({model}-dose.png)", ""]


def _section(title: str, present: bool, missing: str, columns: list[str]) -> list[str]:
    """A heading, then either a table header or the reason the section is empty."""
    if not present:
        return [f"## {title}", "", missing, ""]
    return [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _pole_md(model: str, by_pole: dict) -> list[str]:
    columns = ["dimension", "conditions", "perplexity", "attack", "ASR a", "ASR b", "a - b", "p", "p (Holm)"]
    missing = "Not run: needs the jailbreak suite under both vectors of a dimension."
    lines = _section(f"Jailbreak success by pole ({model})", bool(by_pole), missing, columns)
    if not by_pole:
        return lines
    for dim, e in by_pole.items():
        a, b = e["poles"]
        for attack, x in e["by_attack"].items():
            p = x["p_goal_clustered"] if attack == "all" else x["p"]
            holm_p = "-" if attack == "all" else f"{x['p_holm']:.3f}"
            lines.append(
                f"| {dim} ({a} vs {b}) | {' / '.join(e['conditions'])} | {' / '.join(_fmt(p) for p in e['perplexity'])} | "
                f"{attack} | {x[a]:.3f} | {x[b]:.3f} | {x['diff']:+.3f} | {p:.3f} | {holm_p} |"
            )
    size = next(iter(by_pole.values()))["attack_family_size"]
    note = (
        f"Per attack: exact McNemar over goals, Holm-corrected over the {size} attack rows of this table. "
        "All attacks: a sign-flip permutation over goals of each goal's mean difference (attacks on one "
        "goal are not independent), not corrected (one test per dimension)."
    )
    return lines + ["", note, "", f"![jailbreak by pole]({model}-poles.png)", ""]


def _null_md(model: str, null: dict) -> list[str]:
    columns = ["vector", "draws", "target metric", "effect", "null 95% range", "p", "p (Holm)"]
    missing = "Not run: set `null = N` in the spec."
    lines = _section(f"Against the random-direction null ({model})", bool(null), missing, columns)
    for name, e in null.items():
        m = e["metrics"][e["target_metric"]]
        lo, _, hi = m["percentiles"]
        lines.append(
            f"| {name} | {e['draws']} | {e['target_metric']} | {m['vector']:+.4f} | [{lo:+.4f}, {hi:+.4f}] | "
            f"{m['p']:.3f} | {e['target_p_holm']:.3f} |"
        )
    if null:
        lines += [
            "",
            "Null directions are matched to each vector in norm and perplexity; p is the vector's rank among them "
            "(two-sided), Holm-corrected across the vectors of this table.",
        ]
    return lines + [""]


def _shift_test(test: dict | None) -> str:
    """A trait shift's paired verdict: moved (p) or not detected (MDD), with its CI and n."""
    if not test:
        return "-"
    lo, hi = test["ci"]
    return f"{verdict(test)} [{100 * lo:+.1f}, {100 * hi:+.1f}], n {test['n']}"


def _prompt_md(model: str, versus: dict) -> list[str]:
    columns = ["pole", "arm", "trait shift (pts, per instrument)", "off-target (pts)", "perplexity"]
    columns.append("safety deltas vs none [95% CI]")
    missing = "Not run: needs a vector and the persona prompt for the same pole."
    lines = _section(f"Steering vs prompting ({model})", bool(versus), missing, columns)
    if not versus:
        return lines
    for pole, e in versus.items():
        for arm in ("vector", "prompt"):
            x = e[arm]
            tests = x.get("shift_test", {})
            shifts = ", ".join(f"{t}: {_shift_test(tests.get(t))}" for t in x["shift"])
            safety = "; ".join(
                f"{s} {d['delta']:+.3f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]" for s, d in x["safety_delta"].items()
            )
            lines.append(
                f"| {pole} | {e['labels'][arm]} | {shifts} | {_fmt(x['off_target_shift'], True, True)} | "
                f"{_fmt(x['perplexity_change'], True, True)}% | {safety or '-'} |"
            )
        at = e["vector_at_prompt_shift"]
        lines.append(
            f"| {pole} | vector at the prompt's shift | x{_fmt(at['multiple'])} | | {_fmt(at['perplexity_change'], True, True)}% | |"
        )
    return lines + ["", f"![steering vs prompting]({model}-prompting.png)", ""]


def _models_md(across: dict, units: list[dict]) -> list[str]:
    lines = ["## Across models", "", "| model | type (unsteered) |", "|---|---|"]
    lines += [f"| {m} | {t or '-'} |" for m, t in across["types"].items()]
    unsteered = [u for u in units if u["intervention"] == "none"]
    models = list(dict.fromkeys(u["model"] for u in unsteered))
    if len(models) > 1:
        metrics = list(dict.fromkeys((u["target"], u["metric"]) for u in unsteered))
        lines += ["", "Unsteered, per model (value [95% CI]):", ""]
        lines += ["| target | metric | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
        for target, metric in metrics:
            cells = []
            for model in models:
                u = next(
                    (u for u in unsteered if (u["model"], u["target"], u["metric"]) == (model, target, metric)), None
                )
                ci = u["ci"] if u else None
                cells.append("-" if u is None else f"{u['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
            lines.append(f"| {target} | {metric} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Association over all conditions (Pearson r, bootstrap 95% CI over conditions, permutation p, "
        f"Holm-corrected over the {across.get('family_size', 0)} associations tested; fewer than 5 conditions: "
        "n too small for a CI or a test):",
        "",
    ]
    lines += [
        "| first-pole share | metric | r | 95% CI | p | p (Holm) | n conditions |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, a in across["associations"].items():
        pole, suite = key.split("|")
        if a.get("ci") is None:
            lines.append(f"| {pole} | {suite} | - | {a.get('note', 'n too small')} | - | - | {a['n']} |")
            continue
        lines.append(
            f"| {pole} | {suite} | {a['r']:+.2f} | [{a['ci'][0]:+.2f}, {a['ci'][1]:+.2f}] | {a['p']:.3f} | "
            f"{a['p_holm']:.3f} | {a['n']} |"
        )
    return lines + [""]


def _pairs_md(pairs: list[dict]) -> list[str]:
    if not pairs:
        return []
    lines = [
        "## Model against model (unsteered, paired over items)",
        "",
        "Later model minus earlier one on the same items; 95% bootstrap CI over items; p: a paired "
        f"permutation over items, Holm-corrected over the {sum(1 for p in pairs if p['p'] == p['p'])} rows of this "
        "table; MDD: the smallest difference this paired design detects (two-sided 5%, 80% power, from the "
        "observed spread of the paired difference). A change that is not significant is not detected, not absent.",
        "",
        "| from | to | target | metric | before | change | 95% CI | p | p (Holm) | n | MDD |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in pairs:
        lo, hi = p["ci"]
        lines.append(
            f"| {p['from']} | {p['to']} | {p['target']} | {p['metric']} | {p['before']:.3f} | {p['delta']:+.3f} | "
            f"[{lo:+.3f}, {hi:+.3f}] | {p['p']:.3f} | {p['p_holm']:.3f} | {p['n_items']} | {p['mdd']:.3f} |"
        )
    return lines + [""]


def _paper_md(paper: dict) -> list[str]:
    lines = ["## The paper side by side", ""]
    if not paper.get("available"):
        return lines + [paper.get("note", "not available"), ""]
    lines += ["| figure | what | paper | ours | agreement |", "|---|---|---|---|---|"]
    for row in paper["rows"]:
        ours = row["ours"]
        if ours is None:
            text = "-"
        elif "type" in ours:
            text = ours["type"] or "-"
        else:
            text = f"{ours['delta']:+.3f}" + (f" [{ours['ci'][0]:+.2f}, {ours['ci'][1]:+.2f}]" if "ci" in ours else "")
        lines.append(f"| {row['figure']} | {row['what']} | {row['paper']} | {text} | {row['sentence']} |")
    return lines + [""]


def _plots(out: Path, model: str, analyses: dict, suites: list[str]) -> None:
    plt = pyplot()
    dose = analyses["dose_response"][model]["edits"]
    if dose:
        cols = ["target_share", "perplexity", *suites]
        fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.2), squeeze=False)
        for name, edit in dose.items():
            xs = [p["multiple"] for p in edit["points"]]
            for ax, col in zip(axes[0], cols, strict=True):
                ys = [p[col]["value"] if isinstance(p.get(col), dict) else p.get(col) for p in edit["points"]]
                pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
                lows = [p[col]["ci"][0] for p in edit["points"] if isinstance(p.get(col), dict)]
                highs = [p[col]["ci"][1] for p in edit["points"] if isinstance(p.get(col), dict)]
                if lows and len(lows) == len(xs):
                    ax.fill_between(xs, lows, highs, alpha=0.12)
                ax.set(title=col, xlabel="x recommended alpha")
        axes[0][0].legend(fontsize=6)
        save_figure(fig, out / f"{model}-dose.png")
    poles = analyses["jailbreak_by_pole"][model]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, e in enumerate(poles.values()):
        a, b = e["poles"]
        ax.bar([2 * k, 2 * k + 0.8], [e["by_attack"]["all"][a], e["by_attack"]["all"][b]], width=0.7)
        ax.text(2 * k, 0, a, ha="center", va="bottom")
        ax.text(2 * k + 0.8, 0, b, ha="center", va="bottom")
    ax.set(ylabel="attack success (all attacks)", title="jailbreak by steered pole", xticks=[])
    save_figure(fig, out / f"{model}-poles.png")
    versus = analyses["steering_vs_prompting"][model]
    fig, ax = plt.subplots(figsize=(5, 4))
    for arm, marker in (("vector", "o"), ("prompt", "D")):
        xs = [e[arm]["off_target_shift"] or 0 for e in versus.values()]
        ys = [next(iter(e[arm]["shift"].values())) or 0 for e in versus.values()]
        ax.scatter([100 * x for x in xs], [100 * y for y in ys], marker=marker, label=arm)
        for pole, x, y in zip(versus, xs, ys, strict=True):
            ax.annotate(pole, (100 * x, 100 * y), fontsize=8)
    ax.set(
        xlabel="largest off-target shift (pts)", ylabel="trait shift on the bank (pts)", title="steering vs prompting"
    )
    ax.legend()
    save_figure(fig, out / f"{model}-prompting.png")


def write_report(run: StudyRun, out: str | Path) -> dict[str, Any]:
    out = Path(out)
    analyses = analyse(run)
    data = study_json(run, analyses)
    suites = list(run.spec.suites)
    for model in run.spec.models:
        _plots(out, model, analyses, suites)
    lines = [
        f"# Study `{run.spec.name}`",
        "",
        f"Spec `{run.spec.path}`; executor {run.executor['kind']} ({run.executor['workers']} workers, "
        f"{run.executor.get('address') or 'in-process'}); {len(run.results)} units "
        f"({run.computed} computed, {len(run.results) - run.computed} from cache) in {run.seconds:.0f} s.",
        "",
    ]
    fast = [name for name, opts in run.spec.suites.items() if opts.get("fast")]
    if fast:
        lines += [
            f"Suites decoded in the opt-in fast mode (not bit-identical to the exact path; its verdict "
            f"agreement is measured in `benchmarks/RESULTS.md`): {', '.join(fast)}.",
            "",
        ]
    if run.failed:
        lines += ["**Failed units** (retried on the next run):", ""]
        lines += [f"- {f['unit']['intervention']['label']} / {f['unit']['target']}: {f['error']}" for f in run.failed]
        lines.append("")
    lines += _sizes(run, data)
    for model in run.spec.models:
        lines += _dose_md(model, analyses["dose_response"][model], suites)
        lines += _pole_md(model, analyses["jailbreak_by_pole"][model])
        lines += _prompt_md(model, analyses["steering_vs_prompting"][model])
        lines += _null_md(model, analyses["null"][model])
    lines += _models_md(analyses["models"], data["units"]) + _pairs_md(analyses.get("model_pairs", []))
    lines += _paper_md(analyses["paper"])
    write_json(out / "study.json", data)
    write_text(out / "study.md", "\n".join(lines))
    return data
