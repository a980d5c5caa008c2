"""The random-direction null: what directions of a vector's size and perplexity cost do to the
questionnaire and the suites, so a reported effect can be told from any perturbation."""

from traitlens.null.draws import KINDS, MAX_DRAWS, check_draws
from traitlens.null.run import QUESTIONNAIRE, NullResult, null_test, summarise

__all__ = ["KINDS", "MAX_DRAWS", "QUESTIONNAIRE", "NullResult", "check_draws", "null_test", "summarise"]
