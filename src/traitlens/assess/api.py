"""``assess``: administer the questionnaire to a model and score the four dimensions."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any, Protocol

from traitlens.assess.contexts import FOUR, ContextSet, context_set
from traitlens.assess.logprob import READOUTS, label_gate, run_logprob
from traitlens.assess.readouts import CORRECTED_READOUTS, SCORED_READOUTS, option_prior
from traitlens.assess.result import AssessmentResult
from traitlens.assess.sampling import model_sampler, run_sample
from traitlens.assess.scorer import ModelScorer
from traitlens.assess.validity import (
    WORDING_FLAG,
    content_free_shares,
    measure_validity,
)
from traitlens.errors import TraitlensError
from traitlens.instrument.balance import bank_problems, length_balance, pole_texts
from traitlens.instrument.items import ItemBank, default_items
from traitlens.options import RunOptions

__all__ = [
    "Intervention",
    "PROTOCOLS",
    "MAX_SYSTEM_CHARS",
    "assess",
    "agreement",
    "check_system",
    "readout_items",
    "work_units",
]

PROTOCOLS = ("logprob", "sample")
MAX_SYSTEM_CHARS = 2000
MAX_RUNS = 1000  # sampled runs per item: every run of an item is one row of a batch


class Intervention(Protocol):
    """Anything that changes the model for a while (a steering vector at some alpha)."""

    def attach(self, model: Any) -> contextlib.AbstractContextManager: ...

    def describe(self) -> dict[str, Any]: ...


def _state(intervention) -> str | None:
    """What the scorer's results depend on besides their inputs: ``"none"``, an intervention's
    fingerprint, or ``None`` (an intervention without one: its results are not memoised)."""
    if intervention is None:
        return "none"
    fingerprint = getattr(intervention, "fingerprint", None)
    return f"intervention:{fingerprint()}" if callable(fingerprint) else None


def check_system(system: str | None) -> None:
    if system is None:
        return
    if not isinstance(system, str) or not system.strip():
        raise TraitlensError("--system must not be empty")
    if len(system) > MAX_SYSTEM_CHARS:
        raise TraitlensError(f"--system is {len(system)} characters long; the limit is {MAX_SYSTEM_CHARS}")


def _balance(model, bank: ItemBank, bank_all: ItemBank, strict: bool) -> tuple[dict, list[str]]:
    """The reported items' length balance, and every problem of the whole bank (missing splits,
    option positions, lengths per split): warnings, or with ``strict`` one error."""

    @functools.cache  # the reported items' texts are counted for both reports
    def count(text: str) -> int:
        return len(model.tokenizer(text, add_special_tokens=False)["input_ids"])

    # Missing splits are only an error under --strict: without it, a bank without train items
    # is read as before, and its warning is the one the auto readouts give.
    problems = bank_problems(bank_all.items, count, required=("train", "eval") if strict else ())
    if strict and problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise TraitlensError(f"{bank_all.source}: {problems[0]}{more}; without --strict it is assessed with a warning")

    balance = length_balance(pole_texts(bank), count)
    return {d: b.to_dict() for d, b in balance.items()}, [f"{bank_all.source}: {p}" for p in problems]


def readout_items(bank: ItemBank, reported: ItemBank, dimensions: list[str]) -> tuple[ItemBank, str]:
    """The items whose validity checks choose the ``auto`` readouts of ``dimensions``: ``bank``'s
    train items, so the choice never sees an item it reports (as ``edit`` and the study choose);
    a bank without train items for them falls back to the ``reported`` items, and says so."""
    train = tuple(i for i in bank if i.split == "train" and i.dimension in dimensions)
    if dimensions and all(any(i.dimension == d for i in train) for d in dimensions):
        return ItemBank(train, bank.source), "train"
    return reported, "reported"


def assess(
    model,
    items: ItemBank | None = None,
    *,
    split: str = "eval",
    protocol: str = "logprob",
    readout: str | dict[str, str] = "auto",
    system: str | None = None,
    runs: int = 30,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 16,
    intervention: Intervention | None = None,
    validity: bool | None = None,
    progress: Callable[[int], None] | None = None,
    options: RunOptions | None = None,
    content_free: bool = True,
    contexts: str | ContextSet = "four",
    strict: bool = False,
) -> AssessmentResult:
    """Assess ``model`` (a ``LoadedModel``) on ``items`` (default: the shipped bank).

    ``system`` is a system prompt for every question (a persona is assessed like any other
    intervention). The corrected readouts' priors and the validity checks are measured on the
    model without ``intervention`` and without ``system``; ``validity`` (default: only when
    ``readout`` is ``auto``, which needs it) adds them to the result. ``auto`` readouts are
    chosen by the validity checks on the bank's train items (``readout_items``), never on the
    items reported unless the bank has no train items. With an ``intervention`` (logprob
    protocol), ``content_free`` also reads each dimension's content-free share under it and
    without it, on the reported items (``validity.steered_content_free``): how far the
    intervention moved the wording rather than the answer. ``options`` says how the passes run
    (``RunOptions``: a memo that a series of calls shares, the opt-in fast path); the result
    does not depend on them unless ``options.fast``. ``contexts`` names the neutral contexts of
    the prior and of the content-free check (``traitlens.assess.contexts``): ``four`` (four
    questions each, gated on the mean) or ``wide`` (33 and 16 of four kinds, gated on every
    context); the check's spread over its contexts is in ``validity.content_free_spread``. A
    bank with a missing split or unbalanced option positions or lengths is assessed with a
    warning, or with ``strict`` refused before any pass."""
    if protocol not in PROTOCOLS:
        raise TraitlensError(f"unknown protocol '{protocol}': use {' or '.join(PROTOCOLS)}")
    named = set(readout.values()) if isinstance(readout, dict) else {readout}
    for name in named:
        if name not in READOUTS:
            raise TraitlensError(f"unknown readout '{name}': use {', '.join(READOUTS)}")
    if not 1 <= runs <= MAX_RUNS:
        raise TraitlensError(f"--runs must be between 1 and {MAX_RUNS}, not {runs}")
    check_system(system)
    contexts = context_set(contexts)
    bank_all = items or default_items()
    bank = bank_all.select(split)
    dimensions = bank.dimensions()
    start = time.perf_counter()
    extra: dict[str, Any] = {}
    balance, warnings_before = _balance(model, bank, bank_all, strict)
    extra["length_balance"] = balance
    # Something attached behind assess' back (a hook, a fold) is not in any key: nothing computed
    # on such a model is memoised or stored, so it can never be read back as the plain model's.
    clean = model.untouched()
    if protocol == "logprob":
        state = "none" if clean else None
        scorer = ModelScorer(model, batch_size=batch_size, progress=progress, state=state, options=options)
        auto = [d for d in dimensions if (readout.get(d, "auto") if isinstance(readout, dict) else readout) == "auto"]
        chooser, chosen_on = readout_items(bank_all, bank, auto) if auto else (bank, "reported")

        def prior_of(items: ItemBank) -> dict:
            return option_prior(scorer, list(items), contexts.prior)

        prior, checks = None, None
        if auto or named & set(CORRECTED_READOUTS) or validity:
            prior = prior_of(bank)
        if auto or validity:
            chooser_prior = prior if chooser is bank else prior_of(chooser)
            checks = measure_validity(
                scorer, list(chooser), SCORED_READOUTS, chooser_prior, contexts=contexts, label_gate=label_gate
            )
            extra["readouts"] = checks.to_dict()
            extra["contexts"] = contexts.name
            extra["content_free_spread"] = {
                d: {r: s.to_dict() for r, s in by.items()} for d, by in checks.spread.items()
            }
            extra["readouts_measured_on"] = chosen_on
            if auto and chosen_on == "reported":
                warnings_before.append(
                    f"{bank.source} has no train items for {', '.join(auto)}: the auto readouts were chosen on the "
                    "items reported; pass fixed readouts chosen elsewhere for an unbiased reading"
                )
    steered_free = None
    context = intervention.attach(model) if intervention is not None else contextlib.nullcontext()
    with context:
        if protocol == "logprob":
            scorer.state = _state(intervention) if clean else None
            dims, records, warnings = run_logprob(
                scorer, list(bank), dimensions, readout, seed, prior=prior, validity=checks, system=system
            )
            settings = {"readout": readout}
            used = {d: r.readout for d, r in dims.items()}
            steered_free = (
                content_free_shares(scorer, list(bank), used, prior, contexts.check)
                if intervention is not None and content_free
                else None
            )
        else:
            sampler = model_sampler(model, batch_size=max(batch_size, runs))
            dims, records, warnings = run_sample(
                sampler, list(bank), dimensions, runs, temperature, seed, progress, system=system
            )
            settings = {"runs": runs, "temperature": temperature}
    if steered_free is not None:
        scorer.state = "none" if clean else None
        plain_free = content_free_shares(scorer, list(bank), used, prior, contexts.check)
        extra["steered_content_free"] = {
            d: {
                "readout": used[d],
                "steered": round(share, 6),
                "unsteered": round(plain_free[d], 6),
                "wording_shift": round(share - plain_free[d], 6),
                "flagged": abs(share - plain_free[d]) > WORDING_FLAG,
            }
            for d, share in steered_free.items()
        }
    settings.update(
        contexts=contexts.name, seed=seed, system=system, intervention=intervention.describe() if intervention else None
    )
    return AssessmentResult(
        model=model.fingerprint.to_dict(),
        protocol=protocol,
        split=split,
        items_source=bank.source,
        items_hash=bank.content_hash(),
        dimensions=dims,
        items=records,
        warnings=warnings_before + warnings,
        seconds=time.perf_counter() - start,
        settings=settings,
        validity=extra,
    )


def agreement(first: AssessmentResult, second: AssessmentResult) -> dict[str, Any]:
    """Do two instruments say the same about one model? Per shared dimension: both shares, their
    difference and whether the letters agree; and whether the types agree."""
    shared = [d for d in first.dimensions if d in second.dimensions]
    per_dim = {}
    for dim in shared:
        a, b = first.dimensions[dim], second.dimensions[dim]
        per_dim[dim] = {
            "share_first": [round(a.share_first, 6), round(b.share_first, 6)],
            "difference": round(a.share_first - b.share_first, 6),
            "letters": [a.letter, b.letter],
            "letters_agree": a.letter == b.letter and a.letter not in ("?", "X"),
        }
    return {
        "instruments": [first.items_source, second.items_source],
        "types": [first.type, second.type],
        "types_agree": first.type == second.type and "?" not in first.type,
        "dimensions": per_dim,
    }


def work_units(
    bank: ItemBank,
    protocol: str,
    readout: str = "auto",
    choose_on: ItemBank | None = None,
    contexts: ContextSet = FOUR,
) -> int:
    """How many progress ticks a run makes: scored sequences for logprob, items for sample.
    ``choose_on``: the items the ``auto`` readouts are chosen on, when not ``bank`` itself."""
    if protocol != "logprob":
        return len(bank)
    n = len(bank)
    main = 4 * n if readout == "auto" else 2 * n
    if readout == "auto":  # prior, content-free questions, two personas per dimension
        other = choose_on is not None and choose_on.content_hash() != bank.content_hash()
        c = len(choose_on) if other else n
        prior = 2 * (n + (c if other else 0)) * len(contexts.prior)
        return main + prior + 4 * c * len(contexts.check) + 8 * c
    if readout in CORRECTED_READOUTS:
        return main + 2 * n * len(contexts.prior)
    return main
