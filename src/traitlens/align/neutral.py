"""traitlens' own neutral instructions: everyday factual and practical tasks, written for this
project, so that a fine-tune's neutral half does not depend on a 50-item public list.

They are built from task templates crossed with topics and taken in a fixed shuffled order;
none asks about feelings, social life, plans or decisions (the questionnaire's ground), so the
neutral half of both arms stays off the traits being measured.
"""

from __future__ import annotations

import random

__all__ = ["builtin_instructions"]

_TEMPLATES = (
    "Explain in simple terms how {} works.",
    "List three facts about {}.",
    "Write a short description of {} for a children's encyclopedia.",
    "What is {} made of?",
    "Give a one-sentence definition of {}.",
    "Describe the history of {} in a few sentences.",
    "What are the main parts of {}?",
    "Summarize what {} is used for.",
    "Write a haiku about {}.",
    "Compare {} with something similar and name one difference.",
    "Name two common misconceptions about {}.",
    "How would you explain {} to someone who has never seen it?",
    "Write a product description of {} in two sentences.",
    "What should a beginner know first about {}?",
)

_TOPICS = (
    "a bicycle",
    "photosynthesis",
    "a refrigerator",
    "the water cycle",
    "a compass",
    "volcanoes",
    "bread",
    "a lighthouse",
    "the moon",
    "a piano",
    "rainbows",
    "a microwave oven",
    "honeybees",
    "glass",
    "a sundial",
    "tides",
    "paper",
    "a thermometer",
    "coral reefs",
    "a calculator",
    "the human heart",
    "clouds",
    "a telescope",
    "cheese",
    "earthquakes",
    "a suspension bridge",
    "batteries",
    "the alphabet",
    "a windmill",
    "soap",
)


def builtin_instructions(n: int | None = None, seed: int = 0) -> list[str]:
    """Up to ``n`` distinct instructions (all 420 when ``n`` is None) in a fixed shuffled order."""
    pairs = [template.format(topic) for template in _TEMPLATES for topic in _TOPICS]
    random.Random(seed).shuffle(pairs)
    return pairs if n is None else pairs[:n]
