"""Administer an MBTI-M-style questionnaire and score E/I, S/N, T/F, J/P."""

from traitlens.assess.api import PROTOCOLS, Intervention, agreement, assess, check_system, work_units
from traitlens.assess.logprob import READOUTS
from traitlens.assess.result import AssessmentResult, DimensionResult

__all__ = [
    "assess",
    "agreement",
    "check_system",
    "work_units",
    "AssessmentResult",
    "DimensionResult",
    "Intervention",
    "PROTOCOLS",
    "READOUTS",
]
