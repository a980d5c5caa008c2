"""Greedy or sampled generation, batched with left padding.

The fast path is the plain Hugging Face module (``backend="hf"``); the TransformerLens bridge
(``backend="bridge"``) is slower and is kept for checks and for hooks that only exist on the
bridge. Greedy decoding on the fast path runs ``traitlens.accel.decoding.greedy``, bit-identical
to ``generate(do_sample=False)`` (``engine="generate"`` runs that reference). Opt-in levers that change the arithmetic (``bucket``, ``compact``,
``stop_when``) are documented in ``traitlens.accel.decoding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from traitlens.accel.batching import batched, by_length, pad_left
from traitlens.accel.decoding.compiled import compiled_greedy
from traitlens.accel.decoding.levers import Levers
from traitlens.accel.decoding.loop import Part, greedy_parts
from traitlens.accel.decoding.plan import plan_parts
from traitlens.accel.decoding.speculative import speculative_greedy
from traitlens.models import LoadedModel

__all__ = ["Generation", "generate", "ENGINES"]

# loop: bit-identical to generate, the default; generate: Hugging Face's own (the reference);
# compiled: opt-in, a torch.compile'd step over a static cache (its token agreement is measured).
ENGINES = ("loop", "generate", "compiled", "speculative")


@dataclass(frozen=True)
class Generation:
    prompt_ids: list[int]
    new_ids: list[int]
    text: str


def _trim(ids: list[int], stop_ids: set[int]) -> list[int]:
    for index, token in enumerate(ids):
        if token in stop_ids:
            return ids[:index]
    return ids


def _parts(chunk, pad_id: int, share_prefix: bool, size: int) -> list[Part]:
    """The batch as prefill parts of at most ``size`` prompts; with ``share_prefix``, planned
    (``traitlens.accel.decoding.plan``): each part's shared prefix runs once where that pays."""
    if share_prefix:
        return plan_parts(chunk, pad_id, size)
    return [((), *pad_left(sub, pad_id)) for sub in batched(chunk, size)]


def _stop_ids(model: LoadedModel) -> set[int]:
    tokenizer = model.tokenizer
    stops = {tokenizer.eos_token_id}
    eos = model.hf_model.generation_config.eos_token_id
    stops.update(eos if isinstance(eos, list) else [eos])
    return {s for s in stops if s is not None}


@torch.inference_mode()
def _generate_hf(model, ids, mask, max_new_tokens, temperature, use_cache, pad_id, stops):
    kwargs = (
        dict(do_sample=False) if temperature <= 0 else dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    )
    out = model.hf_model.generate(
        input_ids=ids.to(model.device),
        attention_mask=mask.to(model.device),
        max_new_tokens=max_new_tokens,
        use_cache=use_cache,
        pad_token_id=pad_id,
        eos_token_id=sorted(stops),
        **kwargs,
    )
    return out[:, ids.shape[1] :].cpu()


@torch.inference_mode()
def _generate_bridge(model, ids, mask, max_new_tokens, temperature, use_cache, pad_id, stops):
    out = model.bridge.generate(
        ids.to(model.device),
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=max(temperature, 1e-6),
        use_past_kv_cache=use_cache,
        stop_at_eos=True,
        eos_token_id=sorted(stops)[0],
        attention_mask=mask.to(model.device),
        verbose=False,
        return_type="tokens",
    )
    return out[:, ids.shape[1] :].cpu()


def generate(
    model: LoadedModel,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
    use_cache: bool = True,
    backend: str = "hf",
    steering=None,
    engine: str = "loop",
    levers: Levers = Levers(),
    draft: LoadedModel | None = None,
) -> list[Generation]:
    """Continue each prompt (token ids, e.g. from ``chat_ids``); greedy when temperature is 0.

    ``steering`` (a ``traitlens.steering.Steering``) is installed per batch, so ``response``
    positions start right after that batch's (left-padded) prompts. Fast path only.
    ``levers`` (opt-in, greedy, fast path: ``accel.decoding.Levers``) change how batches are
    decoded. ``engine="compiled"`` compiles the one-token step; ``engine="speculative"`` (opt-in, greedy, one prompt at a time) lets ``draft`` (the same
    checkpoint in bfloat16) propose tokens that the model verifies several at a time
    (``decoding.speculative``)."""
    if steering is not None and backend != "hf":
        raise ValueError("steered generation runs on the fast path (backend='hf')")
    if backend not in ("hf", "bridge"):
        raise ValueError(f"backend must be 'hf' or 'bridge', not {backend!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    looped = backend == "hf" and temperature <= 0 and use_cache and engine != "generate"
    if levers.any and not (looped and engine == "loop"):
        raise ValueError("decoding levers need greedy decoding on the fast path (engine='loop')")
    if engine in ("compiled", "speculative") and not looped:
        raise ValueError(f"engine='{engine}' is greedy decoding on the fast path (backend='hf', temperature 0)")
    if engine in ("compiled", "speculative") and steering is not None and steering.positions != "all":
        raise ValueError(f"engine='{engine}' steers at all positions only (position masks read a Python counter)")
    if (engine == "speculative") != (draft is not None):
        raise ValueError("engine='speculative' needs a draft model, and only it takes one")
    if draft is not None and draft.hf_model.config.vocab_size != model.hf_model.config.vocab_size:
        raise ValueError("the draft model must share the model's vocabulary")
    run = _generate_hf if backend == "hf" else _generate_bridge
    pad_id = model.tokenizer.pad_token_id
    stops = _stop_ids(model)
    torch.manual_seed(seed)
    prompts = list(prompts)
    order = by_length(prompts) if levers.bucket else list(range(len(prompts)))
    results: dict[int, Generation] = {}
    for rows in batched(order, 1 if draft is not None else batch_size):
        chunk = [prompts[k] for k in rows]
        parts = _parts(chunk, pad_id, levers.share_prefix, levers.prefill_size or len(chunk))
        width = max(len(shared) + ids.shape[1] for shared, ids, _ in parts)  # where every row's prompt ends
        context = steering.attach(model, prompt_length=width) if steering is not None else nullcontext()
        drafting = steering.attach(draft, prompt_length=width) if steering is not None and draft else nullcontext()
        with context, drafting:
            if draft is not None:
                new = [speculative_greedy(model.hf_model, draft.hf_model, chunk[0], max_new_tokens, stops)]
            elif looped and engine == "loop":
                new = greedy_parts(
                    model.hf_model, parts, max_new_tokens, stops, pad_id, compact=levers.compact,
                    stop_when=levers.stop_when, roomy=levers.prefill_size is not None, candidates=levers.candidates,
                )  # fmt: skip
            elif looped:
                new = compiled_greedy(model.hf_model, *pad_left(chunk, pad_id), max_new_tokens, stops, pad_id)
            else:
                ids, mask = pad_left(chunk, pad_id)
                new = run(model, ids, mask, max_new_tokens, temperature, use_cache, pad_id, stops).tolist()
        for k, prompt, row in zip(rows, chunk, new, strict=True):
            kept = _trim(row, stops)
            text = model.tokenizer.decode(kept, skip_special_tokens=True)
            results[k] = Generation(list(prompt), kept, text)
    return [results[k] for k in range(len(prompts))]
