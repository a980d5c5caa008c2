"""Refresh benchmarks/RESULTS.md from results/benchmarks/*.json (full runs, not --quick)."""

from __future__ import annotations

import json

from _harness import RESULTS_DIR, ROOT

from traitlens._io import write_text

HEADER = """# Benchmark results

Produced by `make perf` (each part alone: `python benchmarks/<name>.py`). Every table compares
things measured in the same run; absolute times on a shared 2-core machine are noise, the ratios
are the result. Regenerated from `results/benchmarks/*.json` by `python benchmarks/report.py`;
the notes under each table are written by hand after reading the numbers.
"""


def _machine(data: dict) -> str:
    m = data["machine"]
    return f"{m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), {m['device']}; peak RSS {data['peak_rss_mb']:.0f} MB"


def section(name: str, data: dict) -> str:
    lines = [f"## {name}", "", f"Command: `{data['command']}`  ", f"Machine: {_machine(data)}", ""]
    if name == "steering_speed":
        lines += ["| batch | variant | tok/s | vs plain HF |", "|---|---|---|---|"]
        for batch, rates in data["tokens_per_s"].items():
            for variant, rate in rates.items():
                lines.append(f"| {batch} | {variant} | {rate:.1f} | {data['ratios_vs_hf'][batch][variant]:.3f}x |")
    elif name == "peers":
        lines += [
            f"Vector {data['trait']} at layer {data['layer']}, alpha {data['alpha']:.3g}.",
            "",
            "| run | tok/s | traitlens (fused) / this | same tokens as traitlens |",
            "|---|---|---|---|",
        ]
        for run, r in data["results"].items():
            lines.append(
                f"| {run} | {r['tok_per_s']:.1f} | {r['traitlens_speed_ratio']:.2f}x | {r['token_agreement']:.0%} |"
            )
        lines += [f"| {k} | failed: {v} | | |" for k, v in data.get("errors", {}).items()]
    elif name == "collection":
        lines += ["| run | sequences/s |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in data["seq_per_s"].items()]
        lines += [
            "",
            f"collect / bridge forward: **{data['ratio_vs_bridge_forward']:.2f}x** (goal >= 0.9); collect / HF forward: "
            f"{data['ratio_vs_hf_forward']:.2f}x; speed-up over unfiltered run_with_cache: {data['speedup_vs_run_with_cache']:.2f}x",
        ]
    elif name == "assess_protocols":
        lines += [
            f"{data['n_items']} eval items, sample protocol {data['runs']} runs: logprob {data['seconds']['logprob']:.1f} s, "
            f"sample {data['seconds']['sample']:.1f} s, **speed-up {data['speedup']:.1f}x** (goal >= 10x); mean |share "
            f"difference| {data['mean_abs_share_difference']:.3f}.",
            "",
            "| dimension | logprob | sample | sample position bias | sample Fleiss kappa |",
            "|---|---|---|---|---|",
        ]
        for dim, r in data["logprob"].items():
            s = data["sample"][dim]
            first = next(iter(r))
            lines.append(
                f"| {dim} | {first} {r[first]:.3f} | {first} {s[first]:.3f} | {s['reliability']['position_bias']:.2f} | "
                f"{s['reliability']['fleiss_kappa']:.2f} |"
            )
    elif name == "kernel":
        lines += ["| device | dtype | d_model | tokens | fused / unfused speed-up |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['device']} | {r['dtype']} | {r['d_model']} | {r['tokens']} | {r['speedup']:.2f}x |"
            for r in data["records"]
        ]
    elif name == "scaling":
        lines += ["| axis | size | collect (s) | probe (s) |", "|---|---|---|---|"]
        lines += [f"| {axis} | {n} | {c:.2f} | {t:.2f} |" for axis, rows in data["table"].items() for n, c, t in rows]
        lines += ["", "| measure | exponent k (time ~ size^k) |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in data["exponents"].items()]
    elif name == "study_workers":
        lines += [
            f"The same {data['units']}-unit study on {data['model']}, from an empty cache: 1 worker "
            f"{data['seconds']['workers1']:.0f} s, 2 workers {data['seconds']['workers2']:.0f} s: "
            f"**{data['speedup_2_over_1']:.2f}x** with 2 workers on {data['machine']['cores']} cores.",
        ]
    elif name == "decode":
        lines += _decode(data)
    elif name == "suites":
        lines += _suites(data)
    elif name == "calibration":
        lines += _calibration(data)
    return "\n".join(lines) + "\n"


def _decode(data: dict) -> list[str]:
    bound = data["bound_tok_s"]
    lines = [
        f"Steered ({data['steering']['trait']}, layers {data['steering']['layers']}), greedy, {data['new_tokens']} tokens. "
        f"Read bandwidth {data['read_bandwidth_gb_s']:.1f} GB/s over {data['weight_mb']['fp32']:.0f} MB of float32 "
        f"weights: at most **{bound['fp32']:.1f} tok/s** per row (bfloat16: {bound['bf16']:.1f}).",
        "",
        "| batch | engine | tok/s | vs HF eager generate | same greedy tokens | of the bound |",
        "|---|---|---|---|---|---|",
    ]
    for batch in ("batch1", "batch8"):
        r = data[batch]
        lines.append(
            f"| {batch} | HF eager generate | {r['hf_eager_tok_s']:.1f} | 1.00x | 100% | {r['hf_eager_fraction_of_bound']:.0%} |"
        )
        for engine in [
            e for e in ("loop", "compiled", "bf16_loop", "bf16_compiled", "speculative") if f"{e}_tok_s" in r
        ]:
            lines.append(
                f"| {batch} | {engine} | {r[f'{engine}_tok_s']:.1f} | {r[f'{engine}_ratio_vs_hf_eager']:.2f}x | "
                f"{r[f'{engine}_same_tokens']:.0%} | {r[f'{engine}_fraction_of_bound']:.0%} |"
            )
    b1 = data["batch1"]
    lines += [
        "",
        f"Headline (batch 1, float32, identical tokens): **{b1['engine']} {b1['ratio_vs_hf_eager']:.2f}x** "
        f"(goal >= 1.5x); bfloat16 **{b1['bf16_ratio_vs_hf_eager']:.2f}x** (goal >= 2x); batch 8 "
        f"{data['batch8']['ratio_vs_hf_eager']:.2f}x (goal: no slower).",
    ]
    return lines


def _suites(data: dict) -> list[str]:
    items = ", ".join(f"{k} {v}" for k, v in data["items"].items())
    lines = [
        f"Items (verdicts) per suite: {items}.",
        "",
        "| path | seconds | speed-up | same verdicts |",
        "|---|---|---|---|",
    ]
    for name, seconds in data["seconds"].items():
        lines.append(
            f"| {name} | {seconds:.1f} | {data['speedups'][name]:.2f}x | {data['agreement'][name]['overall']:.1%} |"
        )
    lines += [
        "",
        f"`--fast`: **{data['speedup']:.2f}x** at {data['verdict_agreement']:.1%} verdict agreement (goal >= 3x at >= 98%); "
        f"with bfloat16 {data['bf16_speedup']:.2f}x at {data['bf16_verdict_agreement']:.1%}.",
    ]
    return lines


def _calibration(data: dict) -> list[str]:
    lines = ["| arm | edit (s) | frontier search (s) | curve points | chosen |", "|---|---|---|---|---|"]
    for arm, a in data["arms"].items():
        lines.append(
            f"| {arm} | {a['edit']:.1f} | {a['frontier_search']:.1f} | {a['points']} | "
            f"{a['recipe']}, layer {a['layer']}, alpha {a['alpha']:.4g} |"
        )
    lines += [
        "",
        f"`edit --trait {data['trait']} --no-bench`: **{data['speedup']:.2f}x** (goal >= 3x), the alpha curves "
        f"{data['frontier_search_speedup']:.2f}x; same recipe, layer and alpha: {data['same_choice']}; every curve "
        f"point identical: {data['same_curve']}.",
    ]
    warm = data.get("warm")
    if warm:
        lines.append(
            f"Warm (`--score-cache`, the default: a {warm['with']} edit of the same model ran first and filled the "
            f"store): **{warm['speedup']:.2f}x** the reference, every curve point and the choice identical to the "
            f"cold default: {warm['same_choice_and_curve']}."
        )
    labels = {"fast": "Opt-in fast path (`--fast`), cold", "fast_warm": "Opt-in fast path, warm (a fast"}
    for name, agree in (data.get("fast") or {}).items():
        label = labels[name] + (f" {warm['with']} edit filled a fresh store)" if name == "fast_warm" and warm else "")
        lines.append(
            f"{label}: **{agree['speedup']:.2f}x** the reference; same recipe, layer and alpha as the default: "
            f"{agree['same_choice']}; over the {agree['shared_points']} strengths both curves evaluated, the train "
            f"share differs by at most {agree['max_share_diff']:.1e} and perplexity by at most "
            f"{agree['max_ppl_rel_diff']:.1e} (relative)."
        )
    bf16 = data.get("bfloat16")
    if bf16:
        lines.append(
            f"Opt-in bfloat16 weights (`--dtype bfloat16`): **{bf16['speedup']:.2f}x** the reference; same recipe, "
            f"layer and alpha as float32: {bf16['same_choice']} (train share {bf16['train_share'][1]:.4f} vs "
            f"{bf16['train_share'][0]:.4f}); over the {bf16['shared_points']} strengths both curves evaluated, the "
            f"train share differs by at most {bf16['max_share_diff']:.4f} and perplexity by at most "
            f"{bf16['max_ppl_rel_diff']:.2%}."
        )
    return lines


def main() -> None:
    notes_path = ROOT / "NOTES.md"
    parts = [HEADER]
    for name in (
        "steering_speed",
        "peers",
        "collection",
        "assess_protocols",
        "kernel",
        "scaling",
        "study_workers",
        "decode",
        "suites",
        "calibration",
    ):
        path = RESULTS_DIR / f"{name}.json"
        if path.is_file():
            parts.append(section(name, json.loads(path.read_text())))
    if notes_path.is_file():
        parts.append(notes_path.read_text())
    print(write_text(ROOT / "RESULTS.md", "\n".join(parts)))


if __name__ == "__main__":
    main()
