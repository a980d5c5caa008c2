"""``RunOptions``: how a run computes, passed explicitly to ``assess``, ``edit``, ``bench`` and
``study``. Nothing in traitlens reads a speed switch from ambient state: what a call does
follows from its arguments.

Two kinds of option, kept apart:

- **bit-identical** (a result is the same with or without them): ``memo`` (passes asked twice
  computed once; with a store, kept for later runs) and ``reuse_layers`` (a calibration
  computes the layers below a vector once per input).
- **opt-in, not bit-identical** (agreement measured in ``benchmarks/``): ``fast`` (the scorer's
  fast path, the persona replies' and the suites' decoding levers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from traitlens.memo import ScoreMemo, ScoreStore

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    fast: bool = False
    memo: ScoreMemo | None = None
    reuse_layers: bool = True
    lower_layers: Any = None  # a ``LowerLayers`` replay the passes go through (set by calibration)

    @classmethod
    def cached(cls, store: ScoreStore | None = None, **kwargs) -> RunOptions:
        """Options with a fresh memo (and ``store``; ``ScoreStore.default()`` for the shared one)."""
        return cls(memo=ScoreMemo(store), **kwargs)

    def through(self, lower_layers) -> RunOptions:
        """The same options, passes routed through ``lower_layers`` (``None``: the full forward)."""
        return replace(self, lower_layers=lower_layers)
