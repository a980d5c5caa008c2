"""Runs inside the peers' own virtual environment (repeng needs numpy<2, steering-vectors needs
transformers<5): loads the same weights, applies the same vector with each library, and times
greedy generation. Reads a job JSON, writes a result JSON. No traitlens import here."""

from __future__ import annotations

import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM


def load(job):
    config = LlamaConfig(**job["config"])
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(load_file(job["weights"]), strict=False, assign=True)
    model.tie_weights()
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    return model.eval()


def timed_generate(model, job, batch):
    ids = torch.tensor(batch["ids"])
    mask = torch.tensor(batch["mask"])
    n = job["new_tokens"]
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=job["pad_id"])
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=mask, **kwargs)  # warm-up
        start = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        seconds = time.perf_counter() - start
    # One timed run; peers.py alternates rounds of this process and its own and keeps the best.
    return {"tok_per_s": ids.shape[0] * n / seconds, "new_ids": out[:, ids.shape[1] :].tolist()}


def main() -> None:
    job = json.load(open(sys.argv[1]))
    model = load(job)
    layer, vector = job["layer"], torch.tensor(job["vector"]) * job["alpha"]
    results = {}
    try:
        import repeng

        wrapped = repeng.ControlModel(model, [layer])
        control = repeng.ControlVector(model_type="llama", directions={layer: vector.numpy()})
        wrapped.set_control(control, coeff=1.0)
        results["repeng"] = {key: timed_generate(wrapped, job, b) for key, b in job["batches"].items()}
        wrapped.reset()
        model = wrapped.unwrap()
    except Exception as exc:  # report, do not hide: the table says why a peer is missing
        results["repeng"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        from steering_vectors import SteeringVector

        steering = SteeringVector(layer_activations={layer: vector}, layer_type="decoder_block")
        with steering.apply(model, multiplier=1.0):
            results["steering-vectors"] = {key: timed_generate(model, job, b) for key, b in job["batches"].items()}
    except Exception as exc:
        results["steering-vectors"] = {"error": f"{type(exc).__name__}: {exc}"}
    results["plain"] = {key: timed_generate(model, job, b) for key, b in job["batches"].items()}
    json.dump(results, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
