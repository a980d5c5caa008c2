"""``assess``: administer the questionnaire to a model and score the four dimensions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from traitlens.assess.logprob import READOUTS, run_logprob
from traitlens.assess.result import AssessmentResult
from traitlens.assess.sampling import model_sampler, run_sample
from traitlens.assess.scorer import ModelScorer
from traitlens.errors import TraitlensError
from traitlens.items import ItemBank, default_items

__all__ = ["Intervention", "PROTOCOLS", "assess"]

PROTOCOLS = ("logprob", "sample")


class Intervention(Protocol):
    """Anything that changes the model for a while (a steering vector at some alpha)."""

    def attach(self, model: Any) -> contextlib.AbstractContextManager: ...

    def describe(self) -> dict[str, Any]: ...


def assess(
    model,
    items: ItemBank | None = None,
    *,
    split: str = "eval",
    protocol: str = "logprob",
    readout: str = "auto",
    runs: int = 30,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 16,
    intervention: Intervention | None = None,
    progress: Callable[[int], None] | None = None,
) -> AssessmentResult:
    """Assess ``model`` (a ``LoadedModel``) on ``items`` (default: the shipped bank)."""
    if protocol not in PROTOCOLS:
        raise TraitlensError(f"unknown protocol '{protocol}': use {' or '.join(PROTOCOLS)}")
    if readout not in READOUTS:
        raise TraitlensError(f"unknown readout '{readout}': use {', '.join(READOUTS)}")
    if runs < 1:
        raise TraitlensError(f"--runs must be at least 1, not {runs}")
    bank = (items or default_items()).select(split)
    dimensions = bank.dimensions()
    start = time.perf_counter()
    context = intervention.attach(model) if intervention is not None else contextlib.nullcontext()
    with context:
        if protocol == "logprob":
            scorer = ModelScorer(model, batch_size=batch_size, progress=progress)
            dims, records, warnings = run_logprob(scorer, list(bank), dimensions, readout, seed)
            settings = {"readout": readout}
        else:
            sampler = model_sampler(model, batch_size=max(batch_size, runs))
            dims, records, warnings = run_sample(sampler, list(bank), dimensions, runs, temperature, seed, progress)
            settings = {"runs": runs, "temperature": temperature}
    settings.update(seed=seed, intervention=intervention.describe() if intervention else None)
    return AssessmentResult(
        model=model.fingerprint.to_dict(),
        protocol=protocol,
        split=split,
        items_source=bank.source,
        items_hash=bank.content_hash(),
        dimensions=dims,
        items=records,
        warnings=warnings,
        seconds=time.perf_counter() - start,
        settings=settings,
    )


def work_units(bank: ItemBank, protocol: str, readout: str = "auto") -> int:
    """How many progress ticks a run makes: sequences for logprob, items for sample."""
    if protocol != "logprob":
        return len(bank)
    return (4 if readout == "auto" else 2) * len(bank)
