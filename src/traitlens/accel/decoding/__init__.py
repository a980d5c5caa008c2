"""Fast greedy decoding: a bit-identical replacement for ``generate``'s greedy loop, and the
opt-in levers (row compaction, early stop on a decided verdict) that the suites' fast mode uses."""

from traitlens.accel.decoding.compiled import compiled_greedy
from traitlens.accel.decoding.levers import Levers
from traitlens.accel.decoding.loop import StopRule, greedy, greedy_parts
from traitlens.accel.decoding.speculative import speculative_greedy

__all__ = ["greedy", "greedy_parts", "compiled_greedy", "speculative_greedy", "Levers", "StopRule"]
