"""Fast greedy decoding: a bit-identical replacement for ``generate``'s greedy loop, and the
opt-in levers (row compaction, early stop on a decided verdict) that the suites' fast mode uses."""

from traitlens.decoding.compiled import compiled_greedy
from traitlens.decoding.loop import StopRule, greedy

__all__ = ["greedy", "compiled_greedy", "StopRule"]
