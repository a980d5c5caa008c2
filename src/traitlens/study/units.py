"""One unit of a study, run on a loaded model, and the content hash that caches it.

A unit's key covers everything that determines its result: the unit itself (model, condition,
target, n), the model's identity, the vector's files, the target's data file, and every file of
the installed traitlens package (its code: scoring, decoding, judges' features; its shipped data:
item bank, judges' weights, perplexity text), so a resumed study never mixes results of
different code. Its result is a JSON object with one row per measured metric plus the
per-item values the paired analyses need.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlens.study.spec import Condition, Unit, file_digest

__all__ = ["unit_key", "model_identity", "intervention_for", "run_unit", "item_values", "package_digest"]

_MODELS: dict[str, Any] = {}  # one loaded model per worker process, reused across units
_READOUTS: dict[str, dict[str, str]] = {}  # per model: the readouts chosen on the bank's train split


def model_identity(spec: str) -> str:
    """Identity of a model without loading it: the pinned file hash of a built-in model, the
    contents' digest of a local file or checkpoint directory."""
    from traitlens.models import registry

    pinned = {registry.DEFAULT_MODEL: registry.SMOLLM2_SHA256, "gemma-3-270m": registry.GEMMA_SHA256}
    if spec in pinned:
        return f"{spec}:{pinned[spec]}"
    if spec == "tiny":
        return "tiny"  # seeded random weights, fixed by the package digest in every key
    return f"{Path(spec).name}:{file_digest(spec)}"


def _source_digest(unit: Unit, digest: Callable[[str], str]) -> str:
    if unit.target.startswith("suite:"):
        from traitlens.bench.loaders import resolve

        return digest(str(resolve(unit.target.split(":", 1)[1], unit.source or None)))
    return digest(unit.source) if unit.source else ""


@functools.cache
def package_digest(root: Path | None = None) -> str:
    """Every file under ``root`` (default: the installed traitlens package), names and bytes,
    bytecode caches left out."""
    import traitlens

    root = Path(traitlens.__file__).parent if root is None else Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def unit_key(unit: Unit, identities: dict[str, str], digest: Callable[[str], str] = file_digest) -> str:
    """``digest`` may be memoised by the caller: a study reads each vector and data file once."""
    payload = {
        "unit": unit.describe(),
        "model": identities[unit.model],
        "vector": digest(unit.condition.path) if unit.condition.path else "",
        "source": _source_digest(unit, digest),
        "code": package_digest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _model(spec: str):
    if spec not in _MODELS:
        from traitlens.models import load_model

        _MODELS.clear()  # one model per worker: a study groups its units by model
        import torch

        _MODELS[spec] = load_model(spec, device="cuda" if torch.cuda.is_available() else "cpu")
    return _MODELS[spec]


def intervention_for(model, condition: Condition):
    if condition.kind == "none":
        return None
    if condition.kind == "persona":
        from traitlens.instrument.personas import PersonaPrompt

        return PersonaPrompt(condition.name)
    from dataclasses import replace

    from traitlens.steering.inject import load_intervention

    steering = load_intervention(condition.path, model)  # at its recommended alpha (or one clear error)
    return replace(steering, alpha=steering.alpha * condition.multiple)


def item_values(result) -> dict[str, Any]:
    """What a paired analysis needs of a suite: per-item truth/prediction (F1 suites), per-item
    scores (rate suites), and for jailbreak every (goal, attack) outcome."""
    records = result.records
    if result.metric == "mcc":  # the calibrated threshold: the raw one degenerates on small models
        truth = [r["label"] for r in records]
        return {"truth": truth, "pred": [r.get("predicted_calibrated", r["predicted"]) for r in records]}
    if result.suite == "jailbreak":
        goals = list(dict.fromkeys(r["goal"] for r in records))
        index = {g: k for k, g in enumerate(goals)}
        cells = [[index[r["goal"]], r["attack"], int(r["outcome"] == "complied")] for r in records]
        per_goal, refused = [0.0] * len(goals), [0.0] * len(goals)
        attacks = len({r["attack"] for r in records})
        for (goal, _, hit), r in zip(cells, records, strict=True):
            per_goal[goal] += hit / attacks
            refused[goal] += (r["outcome"] == "refused") / attacks
        return {"x": per_goal, "cells": cells, "refused": refused}
    if result.metric == "toxic_ratio":
        from traitlens.bench import SUITES

        return {"x": [float(r["score"] >= SUITES["toxicity"].threshold) for r in records]}
    keys = {"refusal_rate": "refused", "disclosure_rate": "leaked"}
    if result.metric in keys:
        return {"x": [float(r[keys[result.metric]]) for r in records]}
    if result.metric == "accuracy":
        return {"x": [float(r["answer"] == r["picked"]) for r in records]}
    return {}


def _calibrated_f1(result) -> dict[str, Any]:
    """F1 at the contextually calibrated threshold, with its bootstrap CI and MDD: a secondary
    row beside the primary MCC (the paper reported F1)."""
    import numpy as np

    from traitlens.bench.base import bootstrap_metric, f1_score, minimum_detectable_difference

    values = item_values(result)
    truth, pred = np.asarray(values["truth"]), np.asarray(values["pred"])
    value = f1_score(truth, pred)
    ci = bootstrap_metric(lambda idx: f1_score(truth[idx], pred[idx]), len(truth))
    mdd = minimum_detectable_difference(value, len(truth))
    return {"metric": "f1_calibrated", "value": value, "ci": list(ci), "n": len(truth), "mdd": mdd}


def _readouts(model, unit: Unit) -> dict[str, str]:
    """Each dimension's readout, chosen by validity on the shipped bank's train split of the
    spec's first model (``unit.readouts_from``; as ``traitlens edit`` chooses them) and held
    fixed for every condition, instrument and model of the study, so a comparison never reads two
    models two ways. The passes are those of every edit's train baseline: a worker reads them
    back from the score store when an edit or an earlier worker computed them."""
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items
    from traitlens.memo import ScoreStore
    from traitlens.models import load_model
    from traitlens.options import RunOptions

    chooser = unit.readouts_from or unit.model
    if chooser not in _READOUTS:
        reader = model if chooser == unit.model else load_model(chooser, device=model.device)
        options = RunOptions.cached(ScoreStore.default())
        chosen = assess(reader, default_items(), split="train", options=options).dimensions
        _READOUTS[chooser] = {d: r.readout for d, r in chosen.items()}
    return _READOUTS[chooser]


def _assess_rows(model, unit: Unit, intervention) -> tuple[list[dict], dict]:
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items, load_items

    kind, name = unit.target.split(":", 1)
    bank, split = (default_items(), name) if kind == "bank" else (load_items(unit.source), "all")
    system = getattr(intervention, "system", None)
    steering = None if system is not None else intervention
    readout = {d: r for d, r in _readouts(model, unit).items() if any(i.dimension == d for i in bank)}
    result = assess(model, bank, split=split, readout=readout, system=system, intervention=steering)
    rows = [
        {
            "metric": f"share_{d.poles[0]}",
            "value": d.share_first,
            "ci": list(d.ci95_first),
            "n": d.n_items,
            "readout": d.readout,
        }
        for d in result.dimensions.values()
    ]
    per_item = {d: [r["p_first"] for r in result.items if r["dimension"] == d] for d in result.dimensions}
    wording = result.validity.get("steered_content_free")
    return rows, {"type": result.type, "items": per_item, "readouts": readout} | (
        {"steered_content_free": wording} if wording else {}
    )


def run_unit(unit: Unit) -> dict[str, Any]:
    """Run one unit (loading its model once per process) and return its result."""
    start = time.perf_counter()
    model = _model(unit.model)
    intervention = intervention_for(model, unit.condition)
    details: dict[str, Any] = {}
    if unit.target == "null":
        from traitlens.memo import ScoreStore
        from traitlens.null import null_test
        from traitlens.options import RunOptions

        result = null_test(
            model, intervention, draws_n=unit.n, readouts=_readouts(model, unit),
            options=RunOptions.cached(ScoreStore.default()),
        )  # fmt: skip
        rows = [
            {"metric": f"null_p_{name}", "value": m["p"], "ci": m["percentiles"][::2], "n": result.draws}
            for name, m in result.metrics.items()
        ]
        details = {"null": result.to_dict()}
    elif unit.target == "perplexity":
        from traitlens.perplexity_guard import perplexity

        rows = [{"metric": "perplexity", "value": perplexity(model, intervention=intervention), "ci": None, "n": None}]
    elif unit.target.startswith("suite:"):
        from traitlens.bench import run_suites
        from traitlens.options import RunOptions

        name = unit.target.split(":", 1)[1]
        options = RunOptions(fast=unit.fast)
        result = run_suites(model, [name], intervention, unit.source or None, unit.n, options=options)[name]
        rows = [
            {"metric": result.metric, "value": result.value, "ci": list(result.ci95), "n": result.n, "mdd": result.mdd}
        ]
        if result.metric == "mcc":
            rows.append(_calibrated_f1(result))
        details = {"items": item_values(result), "extra": result.extra, "higher_is_better": result.higher_is_better}
    else:
        rows, details = _assess_rows(model, unit, intervention)
    return {"rows": rows, "details": details, "seconds": time.perf_counter() - start}
