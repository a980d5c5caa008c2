"""Activation collection (all layers, resid_post, last token) vs a plain forward pass of the same
batches with no hooks, and vs ``run_with_cache`` with no filter (what users often write)."""

from __future__ import annotations

import torch
from _harness import model_spec, parser, print_rows, timer, write_result

from traitlens import load_model
from traitlens.accel.batching import batched, pad_right
from traitlens.probe.api import default_contrast
from traitlens.probe.collect import collect, encode_side


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--pairs", type=int, default=64, help="contrast pairs (sequences = 2x)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    if args.quick:
        args.pairs, args.repeats = 8, 1
    model = load_model(model_spec(args))
    contrast = default_contrast().for_dimension("JP")
    contrast = type(contrast)(contrast.pairs[: args.pairs], contrast.name)
    encoded = [encode_side(model.tokenizer, s) for pair in contrast.pairs for s in (pair.first, pair.second)]
    batches = [
        pad_right([e.ids for e in chunk], model.tokenizer.pad_token_id)[0]
        for chunk in batched(encoded, args.batch_size)
    ]
    n = len(encoded)

    def plain_bridge():
        with torch.inference_mode():
            for ids in batches:
                model.bridge(ids)

    def plain_hf():
        with torch.inference_mode():
            for ids in batches:
                model.hf_model(ids, logits_to_keep=1)

    def unfiltered_cache():
        with torch.inference_mode():
            for ids in batches:
                _, cache = model.bridge.run_with_cache(ids)
                del cache

    def ours():
        collect(model, contrast, hook="resid_post", reduce="last", batch_size=args.batch_size, use_cache=False)

    runs = {
        "traitlens collect": ours,
        "bridge forward, no hooks": plain_bridge,
        "HF forward, no hooks": plain_hf,
        "run_with_cache, no filter": unfiltered_cache,
    }
    ours()  # warm-up
    best: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved repeats, best of each: robust to load spikes
        for name, fn in runs.items():
            times: dict[str, float] = {}
            with timer(times, name):
                fn()
            best[name] = min(best.get(name, float("inf")), times[name])
    rate = {k: n / v for k, v in best.items()}
    c = rate["traitlens collect"]
    rows = [(k, f"{v:.1f} seq/s") for k, v in rate.items()]
    rows += [
        ("collect / bridge forward", f"{c / rate['bridge forward, no hooks']:.2f}x (goal >= 0.9)"),
        ("collect / HF forward", f"{c / rate['HF forward, no hooks']:.2f}x"),
        ("collect / run_with_cache", f"{c / rate['run_with_cache, no filter']:.2f}x speed-up"),
    ]
    print_rows(f"collection: {n} sequences, {model.n_layers} layers, batch {args.batch_size}", rows)
    write_result(
        "collection",
        args,
        {
            "sequences": n,
            "layers": model.n_layers,
            "seq_per_s": rate,
            "ratio_vs_bridge_forward": c / rate["bridge forward, no hooks"],
            "ratio_vs_hf_forward": c / rate["HF forward, no hooks"],
            "speedup_vs_run_with_cache": c / rate["run_with_cache, no filter"],
        },
    )


if __name__ == "__main__":
    main()
