"""The generation-bound safety suites end to end, side by side in one run: today's path (Hugging
Face ``generate`` at batch 8), the default decoding loop (bit-identical), the opt-in ``--fast``
mode (batches of 32 by prompt length, finished rows dropped, a row ended once its refusal is
decided), and ``--fast`` with bfloat16 weights. Speed is the ratio of wall times; agreement is
the share of items whose verdict (jailbreak outcome, over-refusal refused, toxic, leaked) equals
today's path.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from _harness import model_spec, parser, print_rows, write_result

import traitlens.bench.common as common
from traitlens import load_model
from traitlens.accel.precision import cpu_has_bf16
from traitlens.bench import run_suites
from traitlens.generation import generate
from traitlens.options import RunOptions

SUITES = ("jailbreak", "overrefusal", "toxicity", "leakage")


def verdicts(results) -> dict[str, list]:
    """Per suite, each item's verdict in a comparable form."""
    out = {}
    for name, result in results.items():
        records = result.records
        if name == "jailbreak":
            out[name] = [r["outcome"] for r in records]
        elif name == "overrefusal":
            out[name] = [r["refused"] for r in records]
        elif name == "toxicity":
            out[name] = [r["score"] >= 0.5 for r in records]
        else:
            out[name] = [r["leaked"] for r in records]
    return out


def timed(model, limit, data, fast=False, engine="loop", suites=SUITES):
    original = common.generate
    common.generate = functools.partial(generate, engine=engine)  # which engine the suites decode with
    try:
        start = time.perf_counter()
        results = run_suites(model, suites, None, data, limit, options=RunOptions(fast=fast))
        return time.perf_counter() - start, results
    finally:
        common.generate = original


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--limit", type=int, default=40, help="items per suite (jailbreak: goals, x5 attacks)")
    p.add_argument("--data", type=Path, default=None, help="public data root (default: the shipped samples)")
    args = p.parse_args()
    if args.quick:
        args.limit = 4
    spec = model_spec(args)
    fp32 = load_model(spec)
    # bfloat16 only where the CPU has it natively (AMX or AVX512-BF16); elsewhere its arm is left out
    bf16 = load_model(spec, dtype="bfloat16") if cpu_has_bf16() else None
    for model, engine in ((fp32, "generate"), (fp32, "loop"), (bf16, "loop")):  # warm-up: judges, first batches
        if model is not None:
            timed(model, 2, args.data, fast=model is bf16, engine=engine)
    runs = {
        "today (HF generate, batch 8)": lambda s: timed(fp32, args.limit, args.data, engine="generate", suites=s),
        "default (decoding loop, batch 8)": lambda s: timed(fp32, args.limit, args.data, suites=s),
        "fast": lambda s: timed(fp32, args.limit, args.data, fast=True, suites=s),
    }
    if bf16 is not None:
        runs["fast + bfloat16"] = lambda s: timed(bf16, args.limit, args.data, fast=True, suites=s)
    # Suite by suite, every path in turn (rotated): a slow spell on the machine hits all paths.
    seconds = dict.fromkeys(runs, 0.0)
    results: dict[str, dict] = {name: {} for name in runs}
    names = list(runs)
    for k, suite in enumerate(SUITES):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            spent, out = runs[name]([suite])
            seconds[name] += spent
            results[name] |= out
    ref = verdicts(results["today (HF generate, batch 8)"])
    table, agreement = [], {}
    for name in runs:
        got = verdicts(results[name])
        same = {s: sum(a == b for a, b in zip(ref[s], got[s], strict=True)) for s in SUITES}
        agreement[name] = {
            "overall": sum(same.values()) / sum(len(ref[s]) for s in SUITES),
            **{s: same[s] / len(ref[s]) for s in SUITES},
        }
        speedup = seconds["today (HF generate, batch 8)"] / seconds[name]
        table.append((name, f"{seconds[name]:7.1f} s  {speedup:5.2f}x  verdicts same {agreement[name]['overall']:.1%}"))
    print_rows(f"generation-bound suites ({', '.join(SUITES)}), limit {args.limit}", table)
    base = seconds["today (HF generate, batch 8)"]
    write_result(
        "suites",
        args,
        {
            "suites": list(SUITES),
            "limit": args.limit,
            "items": {s: len(v) for s, v in ref.items()},
            "seconds": seconds,
            "speedups": {k: base / v for k, v in seconds.items()},
            "agreement": agreement,
            "metrics": {k: {s: r.value for s, r in res.items()} for k, res in results.items()},
            "speedup": base / seconds["fast"],
            "verdict_agreement": agreement["fast"]["overall"],
            "bf16_speedup": base / seconds["fast + bfloat16"] if bf16 is not None else None,
            "bf16_verdict_agreement": agreement["fast + bfloat16"]["overall"] if bf16 is not None else None,
        },
    )


if __name__ == "__main__":
    main()
