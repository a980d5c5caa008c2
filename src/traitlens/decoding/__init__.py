"""Fast greedy decoding: a bit-identical replacement for ``generate``'s greedy loop, and the
opt-in levers (row compaction, early stop on a decided verdict) that the suites' fast mode uses."""

from traitlens.decoding.compiled import compiled_greedy
from traitlens.decoding.loop import StopRule, greedy, greedy_parts

__all__ = ["greedy", "greedy_parts", "compiled_greedy", "StopRule"]
