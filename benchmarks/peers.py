"""The same steering (same vector, layer, alpha, prompts, greedy decoding) through traitlens,
repeng (ControlModel) and steering-vectors, each peer in its own virtual environment that this
script creates (repeng needs numpy<2, steering-vectors transformers<5), and llama.cpp (built here
from source, steering with traitlens' exported GGUF control vector): tokens/s and whether the
generated tokens agree."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _harness import ROOT, model_spec, parser, print_rows, prompt_batches, write_result
from safetensors.torch import save_file

from traitlens import load_model
from traitlens.steering import SteeringVector, apply_steering
from traitlens.steering.artifact import load_vector

VENV = ROOT.parent / ".bench-venvs" / "peers"
WORKER = ROOT / "_peer_worker.py"
PEER_PACKAGES = [
    "torch==2.13.0",
    "transformers>=4.45,<5",
    "numpy<2",
    "safetensors",
    "repeng==0.4.0",
    "steering-vectors==0.12.2",
]


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def pick_vector(model, quick: bool) -> SteeringVector:
    # The J->P vector: `make edit TRAIT=JP` is the main entry point, and its alpha moves the text.
    shipped = ROOT.parent / "results" / "vectors" / "smollm2-135m-instruct" / "JP"
    if not quick and (shipped / "meta.json").is_file():
        return load_vector(shipped)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(model.d_model, generator=g)
    return SteeringVector(
        {model.n_layers // 2: 3 * v / v.norm()}, model=model.fingerprint.to_dict(), trait="JP", recommended_alpha=1.0
    )


def config_dict(config) -> dict:
    rope = getattr(config, "rope_theta", None) or (getattr(config, "rope_parameters", None) or {}).get(
        "rope_theta", 10000.0
    )
    keys = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
        "head_dim",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    )
    return {k: getattr(config, k) for k in keys} | {"rope_theta": float(rope)}


def ours(model, vector, alpha, batches, n, fold, engine="generate") -> dict:
    """One round: a warm-up and one timed generation per batch (rounds repeat it); ``engine``:
    Hugging Face ``generate``, traitlens' own decoding ``loop`` (its default), or the opt-in
    ``compiled`` step."""
    from traitlens.accel.decoding import compiled_greedy, greedy

    out = {}
    pad = model.tokenizer.pad_token_id
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad)

    def run(ids, mask):
        if engine == "loop":
            return greedy(model.hf_model, ids, mask, n, [], pad)
        if engine == "compiled":
            return compiled_greedy(model.hf_model, ids, mask, n, [], pad)
        return model.hf_model.generate(input_ids=ids, attention_mask=mask, **kwargs)[:, ids.shape[1] :].tolist()

    for key, (ids, mask) in batches.items():
        with apply_steering(model, vector, alpha, fold=fold), torch.inference_mode():
            run(ids, mask)
            start = time.perf_counter()
            new = run(ids, mask)
            seconds = time.perf_counter() - start
        out[key] = {"tok_per_s": ids.shape[0] * n / seconds, "new_ids": new}
    return out


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of the reference's token positions where the other run has the same token."""
    same = sum(x == y for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=False))
    return same / sum(len(r) for r in a)


def llamacpp_round(model, vector, alpha, batches, args) -> dict:
    """llama.cpp on the model's own GGUF with the exported vector, batch 1 (its CLI decodes one
    sequence): best of ``args.rounds`` runs; an error is reported, not raised."""
    from _llamacpp import ensure_llamacpp, run_llamacpp

    from traitlens.models.registry import SMOLLM2_FILE, SMOLLM2_PACKAGE, _package_dir
    from traitlens.steering.interop import export_gguf

    try:
        binary = ensure_llamacpp()
        gguf = _package_dir(SMOLLM2_PACKAGE, "make install") / SMOLLM2_FILE
        ids, _ = batches["batch1"]
        prompt = model.tokenizer.decode(ids[0].tolist(), skip_special_tokens=False)
        with tempfile.TemporaryDirectory() as tmp:
            control = export_gguf(vector, Path(tmp) / "vector.gguf")
            runs = [run_llamacpp(binary, gguf, control, alpha, prompt, args.new_tokens) for _ in range(args.rounds)]
    except Exception as exc:  # noqa: BLE001 - the table says why a peer is missing
        return {"error": f"{type(exc).__name__}: {exc}"}
    best = max(runs, key=lambda r: r["tok_per_s"])
    new_ids = model.tokenizer(best["text"], add_special_tokens=False)["input_ids"][: args.new_tokens]
    return {"batch1": {"tok_per_s": best["tok_per_s"], "new_ids": [new_ids]}}


def write_job(model, vector, layer, alpha, batches, args, tmp: str) -> Path:
    """The weights and the vector as plain files, for a process that cannot import traitlens."""
    state = {k: v.contiguous() for k, v in model.hf_model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, f"{tmp}/weights.safetensors")
    job = {
        "config": config_dict(model.hf_model.config),
        "weights": f"{tmp}/weights.safetensors",
        "layer": layer,
        "vector": vector.offsets[layer].tolist(),
        "alpha": alpha,
        "new_tokens": args.new_tokens,
        "pad_id": model.tokenizer.pad_token_id,
        "batches": {k: {"ids": ids.tolist(), "mask": mask.tolist()} for k, (ids, mask) in batches.items()},
    }
    path = Path(f"{tmp}/job.json")
    path.write_text(json.dumps(job))
    return path


def keep_best(results: dict[str, dict], name: str, run: dict) -> None:
    """Merge one round: the fastest tokens/s per batch; an error replaces nothing that worked."""
    if "error" in run:
        results.setdefault(name, run)
        return
    best = results.get(name)
    if best is None or "error" in best:
        results[name] = run
        return
    for key, r in run.items():
        if r["tok_per_s"] > best[key]["tok_per_s"]:
            best[key] = r


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours and the peers")
    args = p.parse_args()
    if args.quick:
        args.new_tokens, args.rounds = 4, 1
    model = load_model(model_spec(args))
    vector = pick_vector(model, args.quick)
    layer, alpha = vector.layers[0], float(vector.recommended_alpha or 1.0)
    batches = prompt_batches(model)
    python = ensure_venv() if not args.quick else None
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        job_path = write_job(model, vector, layer, alpha, batches, args, tmp) if python is not None else None
        # Rounds alternate our process and the peers' process, so a slow spell on the machine
        # hits both sides alike; each side keeps its best round.
        for _ in range(args.rounds):
            keep_best(results, "traitlens (fused hook)", ours(model, vector, alpha, batches, args.new_tokens, False))
            keep_best(results, "traitlens (bias fold)", ours(model, vector, alpha, batches, args.new_tokens, "auto"))
            loop = ours(model, vector, alpha, batches, args.new_tokens, "auto", engine="loop")
            keep_best(results, "traitlens (bias fold, decoding loop: the default)", loop)
            compiled = ours(model, vector, alpha, batches, args.new_tokens, "auto", engine="compiled")
            keep_best(results, "traitlens (bias fold, compiled step: opt-in)", compiled)
            if job_path is not None:
                subprocess.run([str(python), str(WORKER), str(job_path), f"{tmp}/out.json"], check=True)
                for name, value in json.loads(Path(f"{tmp}/out.json").read_text()).items():
                    label = f"{name} (peer venv)" if name != "plain" else "plain HF, peer venv (transformers 4.x)"
                    keep_best(results, label, value)
    if not args.quick:
        results["llama.cpp (GGUF control vector)"] = llamacpp_round(model, vector, alpha, batches, args)
    reference = results["traitlens (fused hook)"]
    rows, summary = [], {}
    for name, per_batch in results.items():
        if "error" in per_batch:
            rows.append((name, f"failed: {per_batch['error'][:80]}"))
            continue
        for key, r in per_batch.items():
            ratio = reference[key]["tok_per_s"] / r["tok_per_s"]
            agree = agreement(reference[key]["new_ids"], r["new_ids"])
            summary[f"{name} {key}"] = {
                "tok_per_s": r["tok_per_s"],
                "traitlens_speed_ratio": ratio,
                "token_agreement": agree,
            }
            rows.append(
                (f"{name} {key}", f"{r['tok_per_s']:7.1f} tok/s  traitlens/this {ratio:5.2f}x  same tokens {agree:.0%}")
            )
    print_rows(f"peers: layer {layer}, alpha {alpha:.3g}, {args.new_tokens} new tokens", rows)
    write_result(
        "peers",
        args,
        {
            "layer": layer,
            "alpha": alpha,
            "trait": vector.trait,
            "results": summary,
            "errors": {k: v["error"] for k, v in results.items() if "error" in v},
        },
    )


if __name__ == "__main__":
    main()
