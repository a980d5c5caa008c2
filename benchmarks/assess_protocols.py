"""logprob protocol (one pass, both orders) vs the paper's sample protocol (30 runs), same items:
wall-time ratio and agreement of the per-dimension shares."""

from __future__ import annotations

import numpy as np
from _harness import model_spec, parser, print_rows, timer, write_result

from traitlens import load_model
from traitlens.assess import assess
from traitlens.instrument.items import default_items


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--per-dimension", type=int, default=8, help="eval items per dimension")
    args = p.parse_args()
    if args.quick:
        args.runs, args.per_dimension = 3, 2
    model = load_model(model_spec(args))
    bank = default_items().select("eval")
    chosen = [i for d in bank.dimensions() for i in bank.by_dimension(d)[: args.per_dimension]]
    items = type(bank)(tuple(chosen), bank.source)
    times: dict[str, float] = {}
    assess(model, items, readout="option")  # warm-up
    with timer(times, "logprob"):
        logprob = assess(model, items)
    with timer(times, "sample"):
        sample = assess(model, items, protocol="sample", runs=args.runs)
    dims = list(logprob.dimensions)
    a = np.array([logprob.dimensions[d].share_first for d in dims])
    b = np.array([sample.dimensions[d].share_first for d in dims])
    ratio = times["sample"] / times["logprob"]
    rows = [
        ("items", f"{len(items)} ({args.per_dimension} per dimension), sample runs {args.runs}"),
        ("logprob seconds", f"{times['logprob']:.1f}"),
        ("sample seconds", f"{times['sample']:.1f}"),
        ("speed-up logprob / sample", f"{ratio:.1f}x (goal >= 10x)"),
        ("logprob type", logprob.type),
        ("sample type", sample.type),
        ("letters agreeing", f"{sum(logprob.dimensions[d].letter == sample.dimensions[d].letter for d in dims)}/4"),
        ("mean |share difference|", f"{np.abs(a - b).mean():.3f}"),
    ]
    rows += [(f"  {d} logprob vs sample", f"{x:.3f} vs {y:.3f}") for d, x, y in zip(dims, a, b, strict=True)]
    rows += [
        (
            f"  {d} sample position bias / kappa",
            f"{sample.dimensions[d].reliability['position_bias']:.2f} / {sample.dimensions[d].reliability['fleiss_kappa']:.2f}",
        )
        for d in dims
    ]
    print_rows("assessment protocols", rows)
    write_result(
        "assess_protocols",
        args,
        {
            "seconds": times,
            "speedup": ratio,
            "runs": args.runs,
            "n_items": len(items),
            "logprob": {d: logprob.dimensions[d].to_dict() for d in dims},
            "sample": {d: sample.dimensions[d].to_dict() for d in dims},
            "mean_abs_share_difference": float(np.abs(a - b).mean()),
        },
    )


if __name__ == "__main__":
    main()
