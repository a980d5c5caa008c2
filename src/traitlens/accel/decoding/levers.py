"""``Levers``: the opt-in greedy decoding levers ``generate`` takes as one value.

Each lever changes how a batch is decoded, not what greedy decoding means; ``bucket`` and
``share_prefix`` only reorder and share work (exact), the others change the arithmetic or end
rows early (``compact`` and ``prefill_size`` write the cache in place, ``candidates`` picks among
a bfloat16 head's top candidates scored again exactly, ``stop_when`` ends a row once a rule
says its reply is decided). Their agreement with the plain loop is measured in ``benchmarks/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from traitlens.accel.decoding.loop import StopRule

__all__ = ["Levers"]


@dataclass(frozen=True)
class Levers:
    bucket: bool = False  # batch prompts of similar length together
    compact: bool = False  # drop finished rows
    stop_when: StopRule | None = None  # stop_when(new_ids) ends a row early
    share_prefix: bool = False  # the tokens a batch's prompts all start with, computed once
    prefill_size: int | None = None  # prefill a batch in parts of this many prompts, decode as one
    candidates: bool = False  # each token among a bfloat16 head's top candidates, scored again exactly

    def __post_init__(self) -> None:
        if self.prefill_size is not None and (isinstance(self.prefill_size, bool) or self.prefill_size < 1):
            raise ValueError(f"prefill_size must be a positive number of prompts, not {self.prefill_size!r}")

    @property
    def any(self) -> bool:
        return self != Levers()
