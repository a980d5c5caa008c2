"""Fast greedy decoding: a bit-identical replacement for ``generate``'s greedy loop, and the
opt-in levers (row compaction, early stop on a decided verdict) that the suites' fast mode uses."""

from traitlens.decoding.compiled import compiled_greedy
from traitlens.decoding.loop import StopRule, greedy, greedy_parts
from traitlens.decoding.speculative import speculative_greedy

__all__ = ["greedy", "greedy_parts", "compiled_greedy", "speculative_greedy", "StopRule"]
