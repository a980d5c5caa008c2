"""The reverse direction: does making a model safer change its personality?"""

from traitlens.reverse.direction import SafetyDirection, SafetyPrompts, fit_safety_direction, safety_prompts
from traitlens.reverse.run import ReverseResult, reverse

__all__ = ["SafetyDirection", "SafetyPrompts", "fit_safety_direction", "safety_prompts", "ReverseResult", "reverse"]
