"""Study specs: a TOML file naming models, interventions, instruments and suites, expanded into
units of work (model x intervention x instrument-or-suite). Every defect is found here, before
any model loads, and named by file, key and reason in one line.

Every unit is deterministic (log-probabilities, greedy decoding), so a spec has no seeds: an
old ``seeds`` key is refused rather than silently repeating the same measurement.

```toml
name = "paper"
models = ["smollm2-135m-instruct"]
vector_root = "../vectors"        # <root>/<model>/<NAME>; relative to this file
data = "../../shared/data"        # public sets for the suites (optional; --data overrides)

[interventions]
none = true
vectors = ["EI", "IE", "JP"]      # shipped vectors by name (or paths)
multiples = [0.5, 1.0, 1.5]       # of each vector's recommended alpha
personas = ["E", "I", "P"]        # persona-prompt conditions

[instruments]
bank = "eval"                     # the shipped bank's split
items = ["../instruments/words32.jsonl"]

[suites.privacy]
n = 50
at = "all"                        # every condition; "recommended": none, multiple 1, personas
kinds = ["none", "vector"]        # optional: only these kinds of condition (default: all)
fast = true                       # optional: the opt-in fast decoding of `bench --fast` (not
                                  # bit-identical; its verdict agreement is in benchmarks/RESULTS.md)
```

A top-level ``null = N`` adds, per model and vector at its recommended alpha, its questionnaire
effects beside N random directions of its size and perplexity cost (``traitlens.null``).
"""

from __future__ import annotations

import hashlib
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlens.errors import TraitlensError

__all__ = ["Condition", "Unit", "StudySpec", "load_spec", "file_digest"]

_TOP = {"name", "models", "vector_root", "data", "interventions", "instruments", "suites", "perplexity", "null"}
_INTERVENTIONS = {"none", "vectors", "multiples", "personas"}
_INSTRUMENTS = {"bank", "items"}
_SUITE_KEYS = {"n", "at", "kinds", "fast"}
_KINDS = ("none", "vector", "persona")
_AT = ("all", "recommended")


@dataclass(frozen=True)
class Condition:
    """One intervention: ``none``, a shipped vector at ``multiple`` x its recommended alpha, or
    the persona prompt for ``pole``."""

    kind: str  # none | vector | persona
    name: str = ""  # vector name (e.g. JP) or pole letter
    multiple: float = 0.0
    path: str = ""  # the vector directory, resolved per model

    @property
    def label(self) -> str:
        if self.kind == "vector":
            return f"{self.name} x{self.multiple:g}"
        return f"persona {self.name}" if self.kind == "persona" else "none"

    @property
    def recommended(self) -> bool:
        return self.kind != "vector" or self.multiple == 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "multiple": self.multiple, "label": self.label}


@dataclass(frozen=True)
class Unit:
    model: str
    condition: Condition
    target: str  # "bank:eval", "items:<stem>", "perplexity", "suite:<name>" or "null"
    n: int | None  # items per suite (None: all); null draws for "null"
    source: str = ""  # the file the target reads (items file, suite data), for its digest
    fast: bool = False  # a suite decoded in the opt-in fast mode
    readouts_from: str = ""  # the model whose train split chose the readouts (questionnaire units)

    def describe(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "intervention": self.condition.to_dict(),
            "target": self.target,
            "n": self.n,
        }
        out |= {"readouts_from": self.readouts_from} if self.readouts_from else {}
        return out | {"fast": True} if self.fast else out  # exact units keep the keys they had


@dataclass
class StudySpec:
    path: Path
    name: str
    models: list[str]
    conditions: dict[str, list[Condition]]  # per model
    instruments: list[tuple[str, str]]  # (target, source path)
    suites: dict[str, dict[str, Any]]
    data: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    null: int = 0  # random directions per vector at its recommended alpha (0: none)

    def units(self) -> list[Unit]:
        units = []
        for model in self.models:
            for condition in self.conditions[model]:
                units.append(Unit(model, condition, "perplexity", None))
                first = self.models[0]  # readouts are chosen once, on the first model, for every model
                units += [
                    Unit(model, condition, target, None, src, readouts_from=first) for target, src in self.instruments
                ]
                for suite, opts in self.suites.items():
                    if condition.kind in opts["kinds"] and (opts["at"] == "all" or condition.recommended):
                        units.append(Unit(model, condition, f"suite:{suite}", opts["n"], self.data or "", opts["fast"]))
                if self.null and condition.kind == "vector" and condition.recommended:
                    units.append(Unit(model, condition, "null", self.null, readouts_from=first))
        return units


def _fail(path: Path, key: str, reason: str) -> TraitlensError:
    return TraitlensError(f"{path}: {key}: {reason}")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, or of every file under a directory (names and contents)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(str(item.relative_to(path) if path.is_dir() else item.name).encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


def _list(path: Path, raw: dict, key: str, kind: type, where: str = "") -> list:
    value = raw.get(key, [])
    name = f"{where}{key}"
    if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        noun = "numbers" if isinstance(kind, tuple) else {"str": "strings", "int": "integers"}[kind.__name__]
        raise _fail(path, name, f"expected a list of {noun}")
    if len(set(map(str, value))) != len(value):
        raise _fail(path, name, f"duplicate entry {next(v for v in value if value.count(v) > 1)!r}")
    return value


def _models(path: Path, raw: dict) -> list[str]:
    from traitlens.models.registry import BUILTIN_MODELS

    models = _list(path, raw, "models", str)
    if not models:
        raise _fail(path, "models", "empty: name at least one model")
    resolved = []
    for model in models:
        if model in BUILTIN_MODELS:
            resolved.append(model)
        elif (path.parent / model).exists():  # a checkpoint beside the spec: relative to it, like data
            resolved.append(os.path.relpath((path.parent / model).resolve()))
        elif Path(model).exists():
            resolved.append(model)
        else:
            raise _fail(path, "models", f"unknown model '{model}' (not built in, not a path)")
    return resolved


def _conditions(path: Path, raw: dict, models: list[str], root: Path) -> dict[str, list[Condition]]:
    from traitlens.instrument.personas import PERSONAS

    block = raw.get("interventions", {})
    if not isinstance(block, dict):
        raise _fail(path, "interventions", "expected a table")
    for key in block:
        if key not in _INTERVENTIONS:
            raise _fail(path, f"interventions.{key}", f"unknown key (known: {', '.join(sorted(_INTERVENTIONS))})")
    multiples = _list(path, block, "multiples", (int, float), "interventions.") or [1.0]
    for m in multiples:
        if not math.isfinite(m):
            raise _fail(path, "interventions.multiples", f"{m} is not finite")
    personas = _list(path, block, "personas", str, "interventions.")
    for pole in personas:
        if pole not in PERSONAS:
            raise _fail(path, "interventions.personas", f"unknown pole '{pole}'")
    vectors = _list(path, block, "vectors", str, "interventions.")
    none = block.get("none", True)
    if not isinstance(none, bool):
        raise _fail(path, "interventions.none", "expected true or false")
    out = {}
    for model in models:
        conditions = [Condition("none")] if none else []
        for name in vectors:
            where = path.parent / name if "/" in name else root / Path(model).name / name
            if not (where / "meta.json").is_file():
                raise _fail(path, "interventions.vectors", f"no vector '{name}' for {model} (looked in {where})")
            conditions += [Condition("vector", name, float(m), str(where)) for m in multiples if m != 0]
        conditions += [Condition("persona", pole) for pole in personas]
        if not conditions:
            raise _fail(path, "interventions", "empty grid: no condition to run")
        out[model] = conditions
    return out


def _instruments(path: Path, raw: dict) -> list[tuple[str, str]]:
    block = raw.get("instruments", {"bank": "eval"})
    if not isinstance(block, dict):
        raise _fail(path, "instruments", "expected a table")
    for key in block:
        if key not in _INSTRUMENTS:
            raise _fail(path, f"instruments.{key}", f"unknown key (known: {', '.join(sorted(_INSTRUMENTS))})")
    out = []
    bank = block.get("bank", "eval")
    if bank:
        if bank not in ("train", "eval", "all"):
            raise _fail(path, "instruments.bank", f"'{bank}' is not train, eval or all")
        out.append((f"bank:{bank}", ""))
    for item in _list(path, block, "items", str, "instruments."):
        file = (path.parent / item).resolve()
        if not file.is_file():
            raise _fail(path, "instruments.items", f"file not found: {item}")
        out.append((f"items:{file.stem}", str(file)))
    return out


def _suites(path: Path, raw: dict, data: str | None) -> dict[str, dict[str, Any]]:
    from traitlens.bench import SUITES
    from traitlens.bench.loaders import SHIPPED

    block = raw.get("suites", {})
    if not isinstance(block, dict):
        raise _fail(path, "suites", "expected a table of suites")
    out = {}
    for name, opts in block.items():
        if name not in SUITES:
            raise _fail(path, f"suites.{name}", f"unknown suite (known: {', '.join(SUITES)})")
        if not isinstance(opts, dict):
            raise _fail(path, f"suites.{name}", "expected a table with n and at")
        for key in opts:
            if key not in _SUITE_KEYS:
                raise _fail(path, f"suites.{name}.{key}", "unknown key (known: at, fast, kinds, n)")
        n = opts.get("n")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise _fail(path, f"suites.{name}.n", f"expected a positive integer, not {n!r}")
        at = opts.get("at", "recommended")
        if at not in _AT:
            raise _fail(path, f"suites.{name}.at", f"'{at}' is not one of {', '.join(_AT)}")
        kinds = opts.get("kinds", list(_KINDS))
        if not isinstance(kinds, list) or not kinds or any(k not in _KINDS for k in kinds):
            raise _fail(path, f"suites.{name}.kinds", f"expected a non-empty list of {', '.join(_KINDS)}")
        fast = opts.get("fast", False)
        if not isinstance(fast, bool):
            raise _fail(path, f"suites.{name}.fast", f"expected true or false, not {fast!r}")
        if data is None and name not in SHIPPED:
            raise _fail(path, f"suites.{name}", "has no shipped sample: set data (or pass --data)")
        out[name] = {"n": n, "at": at, "kinds": kinds, "fast": fast}
    return out


def load_spec(path: str | Path, data: str | None = None) -> StudySpec:
    """Read and validate a spec; ``data`` (a directory of public sets) overrides the spec's."""
    path = Path(path)
    if not path.is_file():
        raise TraitlensError(f"study spec not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TraitlensError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    for key in raw:
        if key == "seeds":
            raise _fail(path, key, "studies have no seeds (every unit is deterministic): delete the line")
        if key not in _TOP:
            raise _fail(path, key, f"unknown key (known: {', '.join(sorted(_TOP))})")
    models = _models(path, raw)
    root = path.parent / raw.get("vector_root", "vectors")
    if data is None and raw.get("data"):
        data = str((path.parent / raw["data"]).resolve())
    if data is not None and not Path(data).exists():
        raise _fail(path, "data", f"path does not exist: {data}")
    from traitlens.null.draws import MAX_DRAWS  # the null's own bound (imported here: it brings torch)

    null = raw.get("null", 0)
    if "null" in raw and (isinstance(null, bool) or not isinstance(null, int) or not 1 <= null <= MAX_DRAWS):
        raise _fail(path, "null", f"expected a positive integer of draws (at most {MAX_DRAWS}), not {null!r}")
    spec = StudySpec(
        path,
        str(raw.get("name", path.stem)),
        models,
        _conditions(path, raw, models, root),
        _instruments(path, raw),
        _suites(path, raw, data),
        data,
        raw,
        null,
    )
    units = spec.units()
    keys = [repr(u.describe()) for u in units]
    if len(set(keys)) != len(keys):
        raise _fail(path, "interventions", "duplicate units (the same condition twice)")
    return spec
