"""Run a study's units on Ray (local by default, or a cluster at ``--address``) or in-process,
caching each finished unit on disk under its content hash.

A killed study resumes where it stopped (finished units are read back, not recomputed); a
finished one re-renders its report without loading a model; a unit that crashes is recorded as
failed with its error and retried on the next run, and the study goes on.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlens._io import write_json
from traitlens.errors import TraitlensError
from traitlens.study.spec import StudySpec, Unit, file_digest
from traitlens.study.units import model_identity, run_unit, unit_key

__all__ = ["EXECUTORS", "StudyRun", "execute", "default_workers", "check_address"]

EXECUTORS = ("ray", "local")


@dataclass
class StudyRun:
    spec: StudySpec
    executor: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)  # per unit: unit, key, result, cached
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def computed(self) -> int:
        return sum(not r["cached"] for r in self.results)


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def default_workers() -> int:
    """One worker per two cores: each worker loads its own model and measures the readouts'
    validity once, and torch uses two threads well (measured in ``benchmarks/study_workers.py``)."""
    return max(1, _cores() // 2)


def check_address(address: str) -> None:
    """An unreachable cluster is one clear line, not a minute of retries."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise TraitlensError(f"--address must be HOST:PORT, not '{address}'")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise TraitlensError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None


def _safe_run(unit: Unit) -> dict[str, Any]:
    try:
        return run_unit(unit)
    except Exception as exc:  # a unit's crash is its result; the study goes on
        message = str(exc).splitlines()[0] if str(exc) else ""
        return {"failed": f"{type(exc).__name__}: {message}"[:500]}


def _ray_task():
    import ray

    @ray.remote(num_cpus=1)
    def task(unit: Unit, threads: int) -> dict[str, Any]:
        import torch

        torch.set_num_threads(threads)
        return _safe_run(unit)

    return task


def _start_ray(workers: int, address: str | None) -> tuple[Any, dict[str, Any]]:
    import logging

    import ray

    env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONPATH") if k in os.environ}
    options = {"log_to_driver": False, "logging_level": logging.ERROR, "runtime_env": {"env_vars": env}}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, **options)
    resources = ray.cluster_resources()
    return ray, {"kind": "ray", "workers": int(resources.get("CPU", workers)), "address": address or "local"}


def execute(
    spec: StudySpec,
    out: str | Path,
    *,
    executor: str = "ray",
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    dry: bool = False,
) -> StudyRun:
    """Run every unit of ``spec`` not already cached under ``out/units``; ``progress(done, total)``.
    ``dry``: run nothing, only read back what is cached (a report without a model)."""
    if executor not in EXECUTORS:
        raise TraitlensError(f"unknown executor '{executor}' (choose from {', '.join(EXECUTORS)})")
    if address and not dry:
        check_address(address)
    start = time.perf_counter()
    unit_dir = Path(out) / "units"
    identities = {m: model_identity(m) for m in spec.models}
    units = spec.units()
    digest = functools.cache(file_digest)  # each vector and data file is read once, not per unit
    keys = [unit_key(u, identities, digest) for u in units]
    cached = {k for k in keys if (unit_dir / f"{k}.json").is_file()}
    pending = [] if dry else [(u, k) for u, k in zip(units, keys, strict=True) if k not in cached]
    done = len(cached)
    workers = workers or default_workers()
    info: dict[str, Any] = {"kind": executor, "workers": workers if executor == "ray" else 1, "address": None}
    if progress:
        progress(done, len(units))
    failed: dict[str, dict] = {}

    def finish(unit: Unit, key: str, result: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if "failed" in result:
            failed[key] = {"unit": unit.describe(), "key": key, "error": result["failed"]}
        else:
            write_json(unit_dir / f"{key}.json", {"key": key, "unit": unit.describe(), "result": result})
        if progress:
            progress(done, len(units))

    if pending and executor == "local":
        for unit, key in pending:
            finish(unit, key, _safe_run(unit))
    elif pending:
        ray, info = _start_ray(workers, address)
        try:
            task = _ray_task()
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            threads = max(1, _cores() // max(1, min(info["workers"], len(pending))))
            futures = {task.options(num_gpus=gpus).remote(u, threads): (u, k) for u, k in pending}
            while futures:
                ready, _ = ray.wait(list(futures), num_returns=1)
                unit, key = futures.pop(ready[0])
                finish(unit, key, ray.get(ready[0]))
        finally:
            ray.shutdown()
    run = StudyRun(spec, info, failed=list(failed.values()))
    for unit, key in zip(units, keys, strict=True):
        path = unit_dir / f"{key}.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            run.results.append({"unit": unit, "key": key, "result": stored["result"], "cached": key in cached})
    run.seconds = time.perf_counter() - start
    return run
