"""Steered greedy decoding, side by side in one run: Hugging Face's eager ``generate`` (the
reference), traitlens' decoding loop (bit-identical, the default), the opt-in compiled step, and
the opt-in bfloat16 weights, at batch 1 and 8; at batch 1 also the opt-in speculative engine
(the float32 model verifying tokens its bfloat16 copy drafts, six at a time). All steer with the same exported vector (a folded
bias: the real J->P vector of the default model when it is there). Each figure is also given as
a fraction of the bandwidth bound: weight bytes read per decoding step over the measured read
bandwidth of this machine.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from _harness import PROMPTS, model_spec, parser, print_rows, write_result

from traitlens import load_model
from traitlens.accel.batching import pad_left
from traitlens.accel.decoding import compiled_greedy, greedy, speculative_greedy
from traitlens.accel.precision import cpu_has_bf16
from traitlens.chat import chat_ids, chat_messages
from traitlens.steering import Steering, SteeringVector
from traitlens.steering.inject import load_intervention

ROOT = Path(__file__).resolve().parent.parent


def read_bandwidth(mib: int = 1024, repeats: int = 5) -> float:
    """Bytes per second that a full read of a ``mib`` MiB float32 tensor reaches (best of N)."""
    x = torch.ones(mib * 2**18)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best


def weight_bytes(module) -> int:
    """Bytes of distinct parameters (a tied embedding counts once: the head reads it all)."""
    seen = {id(p): p.numel() * p.element_size() for p in module.parameters()}
    return sum(seen.values())


def _steering(model) -> Steering:
    path = ROOT / "results" / "vectors" / model.name / "JP"
    if (path / "vector.safetensors").is_file():
        return load_intervention(path, model)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(model.d_model, generator=g)
    layer = model.n_layers // 2
    return Steering(SteeringVector({layer: 4.0 * v / v.norm()}, model=model.fingerprint.to_dict(), trait="JP"), 1.0)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prompts", type=int, default=4, help="batch-1 prompts (each decoded alone)")
    args = p.parse_args()
    if args.quick:
        args.new_tokens, args.repeats, args.prompts = 8, 1, 2
    spec = model_spec(args)
    fp32 = load_model(spec)
    # bfloat16 arms (and the speculative engine, drafted in bfloat16) only where the CPU has
    # bfloat16 natively; elsewhere they are left out of the table
    bf16 = load_model(spec, dtype="bfloat16") if cpu_has_bf16() else None
    n = args.new_tokens
    pad = fp32.tokenizer.pad_token_id
    prompts = [chat_ids(fp32.tokenizer, chat_messages(t)) for t in PROMPTS]

    def hf(model, ids, mask):
        with torch.inference_mode():
            out = model.hf_model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=pad,
            )
        return out[:, ids.shape[1] :].tolist()

    variants = {
        "hf_eager": lambda ids, mask: hf(fp32, ids, mask),
        "loop": lambda ids, mask: greedy(fp32.hf_model, ids, mask, n, [], pad),
        "compiled": lambda ids, mask: compiled_greedy(fp32.hf_model, ids, mask, n, [], pad),
    }
    one_row = {}  # batch 1 only: the float32 model verifies what its bfloat16 copy drafts
    if bf16 is not None:
        variants["bf16_loop"] = lambda ids, mask: greedy(bf16.hf_model, ids, mask, n, [], pad)
        variants["bf16_compiled"] = lambda ids, mask: compiled_greedy(bf16.hf_model, ids, mask, n, [], pad)
        one_row["speculative"] = lambda ids, mask: [
            speculative_greedy(fp32.hf_model, bf16.hf_model, ids[0].tolist(), n, [])
        ]
    batches = {"batch1": [pad_left([q], pad) for q in prompts[: args.prompts]], "batch8": [pad_left(prompts[:8], pad)]}
    steer32 = _steering(fp32)
    bandwidth = read_bandwidth(64 if args.quick else 1024)
    bound = {"fp32": bandwidth / weight_bytes(fp32.hf_model)}
    if bf16 is not None:
        bound["bf16"] = bandwidth / weight_bytes(bf16.hf_model)
    results = {}
    with steer32.attach(fp32), _steering(bf16).attach(bf16) if bf16 is not None else nullcontext():
        for key, inputs in batches.items():
            engines = variants | (one_row if key == "batch1" else {})
            tokens = {name: [fn(*batch) for batch in inputs] for name, fn in engines.items()}  # warm-up, compiles
            rates: dict[str, float] = {}
            names = list(engines)
            for round_ in range(args.repeats):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    for batch in inputs:
                        engines[name](*batch)
                    rate = sum(b[0].shape[0] for b in inputs) * n / (time.perf_counter() - start)
                    rates[name] = max(rates.get(name, 0.0), rate)
            ref = [row for out in tokens["hf_eager"] for row in out]
            entry: dict[str, float] = {"hf_eager_tok_s": rates["hf_eager"]}
            for name in names[1:]:
                rows = [row for out in tokens[name] for row in out]
                same = sum(a == b for x, y in zip(ref, rows, strict=True) for a, b in zip(x, y, strict=True))
                entry[f"{name}_tok_s"] = rates[name]
                entry[f"{name}_ratio_vs_hf_eager"] = rates[name] / rates["hf_eager"]
                entry[f"{name}_same_tokens"] = same / sum(len(x) for x in ref)
                entry[f"{name}_fraction_of_bound"] = rates[name] / (
                    bound["bf16" if name.startswith("bf16") else "fp32"] * (1 if key == "batch1" else 8)
                )
            entry["hf_eager_fraction_of_bound"] = rates["hf_eager"] / (bound["fp32"] * (1 if key == "batch1" else 8))
            # The headline: the fastest engine whose float32 tokens are all the reference's.
            exact = [v for v in ("compiled", "loop", "speculative") if entry.get(f"{v}_same_tokens") == 1.0]
            best = max(exact, key=lambda v: entry[f"{v}_ratio_vs_hf_eager"]) if exact else "loop"
            entry |= {
                "engine": best,
                "ratio_vs_hf_eager": entry[f"{best}_ratio_vs_hf_eager"],
                "same_tokens": entry[f"{best}_same_tokens"],
                "fraction_of_bound": entry[f"{best}_fraction_of_bound"],
                "bf16_ratio_vs_hf_eager": max(
                    entry["bf16_loop_ratio_vs_hf_eager"], entry["bf16_compiled_ratio_vs_hf_eager"]
                )
                if bf16 is not None
                else None,
            }
            results[key] = entry
    rows = []
    for key, entry in results.items():
        rows.append((f"{key}: hf_eager", f"{entry['hf_eager_tok_s']:7.1f} tok/s"))
        for name in [k[: -len("_tok_s")] for k in entry if k.endswith("_tok_s") and k != "hf_eager_tok_s"]:
            rows.append(
                (
                    f"{key}: {name}",
                    f"{entry[f'{name}_tok_s']:7.1f} tok/s  {entry[f'{name}_ratio_vs_hf_eager']:5.2f}x  "
                    f"same tokens {entry[f'{name}_same_tokens']:.0%}  {entry[f'{name}_fraction_of_bound']:.0%} of bound",
                )
            )
    print_rows(f"steered greedy decoding, {n} tokens; bound fp32 {bound['fp32']:.1f} tok/s per row", rows)
    write_result(
        "decode",
        args,
        {
            "new_tokens": n,
            "read_bandwidth_gb_s": bandwidth / 1e9,
            "weight_mb": {name: weight_bytes(m.hf_model) / 1e6 for name, m in (("fp32", fp32), ("bf16", bf16)) if m},
            "bound_tok_s": bound,
            "steering": steer32.describe(),
            **results,
        },
    )


if __name__ == "__main__":
    main()
