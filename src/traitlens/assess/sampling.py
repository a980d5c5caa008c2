"""The paper's ``sample`` protocol: N runs per item, each option order shown in half of them,
sampled replies parsed for an answer. Unparseable replies are counted and reported, never
guessed, and agreement (Fleiss' kappa) is computed over the parsed answers only."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from traitlens.assess.requests import LabelRequest
from traitlens.assess.result import DimensionResult, record
from traitlens.assess.stats import fleiss_kappa, ratio_bootstrap_ci

__all__ = ["parse_answer", "run_sample", "model_sampler", "balanced_orders", "Sampler"]

# requests, temperature, seed -> one reply per request
Sampler = Callable[[Sequence[LabelRequest], float, int], list[str]]

_LEADING_LABEL = re.compile(r"^\W*(?:answer\W*)?([12])(?!\d)", re.IGNORECASE)
_ANY_LABEL = re.compile(r"(?<!\d)([12])(?!\d)")


def parse_answer(reply: str, request: LabelRequest) -> int | None:
    """Position (0 or 1) the reply chose, or None. A leading label wins; else exactly one label
    anywhere; else exactly one option's text quoted."""
    text = reply.strip()
    match = _LEADING_LABEL.match(text)
    if match:
        return int(match.group(1)) - 1
    labels = set(_ANY_LABEL.findall(text))
    if len(labels) == 1:
        return int(labels.pop()) - 1
    lowered = text.lower()
    quoted = [k for k, option in enumerate(request.shown) if option.text.lower()[:30] in lowered]
    return quoted[0] if len(quoted) == 1 else None


def balanced_orders(runs: int, item, extra_to_first: bool = True) -> list[tuple[int, int]]:
    """Each option order in half of the runs. With an odd count the extra run shows the item's
    first pole at position 1 when ``extra_to_first`` (callers alternate it over a dimension's
    items), so a position-only model lands at 50% whatever the seed."""
    at_one = (runs + 1) // 2 if extra_to_first else runs // 2  # runs showing the first pole at label 1
    first_at_one = (0, 1) if item.options[0].pole == item.first_pole else (1, 0)
    other = (first_at_one[1], first_at_one[0])
    return [first_at_one] * at_one + [other] * (runs - at_one)


def model_sampler(model, max_new_tokens: int = 6, batch_size: int = 32) -> Sampler:
    from traitlens.chat import chat_ids
    from traitlens.generation import generate

    def sample(requests: Sequence[LabelRequest], temperature: float, seed: int) -> list[str]:
        prompts = [chat_ids(model.tokenizer, r.messages()) for r in requests]
        out = generate(
            model, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size
        )
        return [g.text for g in out]

    return sample


def run_sample(
    sampler: Sampler,
    items: Sequence,
    dimensions: Sequence[str],
    runs: int = 30,
    temperature: float = 0.7,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    system: str | None = None,
) -> tuple[dict[str, DimensionResult], list[dict], list[str]]:
    per_item: dict[str, dict] = {}
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        turn = seen[item.dimension] = seen.get(item.dimension, -1) + 1
        orders = balanced_orders(runs, item, extra_to_first=turn % 2 == 0)
        requests = [LabelRequest(item, order, system) for order in orders]
        replies = sampler(requests, temperature, seed * 100_003 + index)
        picks = [parse_answer(reply, request) for reply, request in zip(replies, requests, strict=True)]
        poles = [None if p is None else request.pole_at(p) for p, request in zip(picks, requests, strict=True)]
        per_item[item.id] = {
            "first": sum(p == item.first_pole for p in poles),
            "second": sum(p is not None and p != item.first_pole for p in poles),
            "unparsed": sum(p is None for p in poles),
            "position1": sum(p == 0 for p in picks),
            "replies": replies[:5],
        }
        if progress is not None:
            progress(1)
    results, records, warnings = {}, [], []
    for dim in dimensions:
        dim_items = [i for i in items if i.dimension == dim]
        counts = [per_item[i.id] for i in dim_items]
        first = np.array([c["first"] for c in counts])
        parsed = np.array([c["first"] + c["second"] for c in counts])
        unparsed = int(sum(c["unparsed"] for c in counts))
        share = float(first.sum() / parsed.sum()) if parsed.sum() else 0.5
        kappa = fleiss_kappa([[c["first"], c["second"]] for c in counts])  # "unparsed" is no answer
        rel = {
            "position_bias": float(sum(c["position1"] for c in counts) / max(parsed.sum(), 1)),
            "unparsed_share": unparsed / (runs * len(dim_items)),
            "fleiss_kappa": kappa,
        }
        results[dim] = DimensionResult(
            dim,
            share,
            ratio_bootstrap_ci(first, parsed, seed=seed),
            len(dim_items),
            "sample",
            f"{runs} sampled runs at temperature {temperature}",
            rel,
        )
        if rel["unparsed_share"] > 0.2:
            warnings.append(f"{dim}: {rel['unparsed_share']:.0%} of sampled replies had no parseable answer")
        if rel["position_bias"] >= 0.8 or rel["position_bias"] <= 0.2:
            warnings.append(
                f"{dim}: sampled answers are position-driven (position 1 chosen {rel['position_bias']:.0%})"
            )
        for item, c in zip(dim_items, counts, strict=True):
            total = c["first"] + c["second"]
            records.append(
                record(
                    id=item.id,
                    dimension=dim,
                    first_pole=item.first_pole,
                    p_first=c["first"] / total if total else None,
                    **c,
                )
            )
    return results, records, warnings
