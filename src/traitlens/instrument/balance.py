"""Length balance of paired texts: is one pole's wording systematically the longer one?

A readout that scores an option's text (mean log-likelihood, say) can pick up length instead of
content when one pole's option is usually the longer. Checked per dimension on token counts:
each pole's text should be the longer about as often as the other's, and the mean token-length
difference should stay under one token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "LengthBalance",
    "length_balance",
    "pole_texts",
    "position_problems",
    "split_problems",
    "bank_problems",
    "MAX_MEAN_DIFF",
    "MAX_LONGER_IMBALANCE",
]

MAX_MEAN_DIFF = 1.0  # tokens
# |pairs where the first pole is longer - pairs where the second is| may be at most this share
# of all pairs (and at least 2, so a handful of unequal pairs in a short instrument is no fault).
MAX_LONGER_IMBALANCE = 0.2


@dataclass(frozen=True)
class LengthBalance:
    dimension: str
    n_pairs: int
    first_longer: int
    second_longer: int
    mean_diff: float  # mean tokens(first pole) - tokens(second pole)

    @property
    def balanced(self) -> bool:
        allowed = max(2.0, MAX_LONGER_IMBALANCE * self.n_pairs)
        return abs(self.mean_diff) < MAX_MEAN_DIFF and abs(self.first_longer - self.second_longer) <= allowed

    def describe(self) -> str:
        return (
            f"{self.dimension}: first pole's text longer in {self.first_longer} of "
            f"{self.first_longer + self.second_longer} differing pairs, mean difference {self.mean_diff:+.2f} tokens"
        )

    def to_dict(self) -> dict:
        return {
            "n_pairs": self.n_pairs,
            "first_longer": self.first_longer,
            "second_longer": self.second_longer,
            "mean_token_diff": round(self.mean_diff, 4),
            "balanced": self.balanced,
        }


def length_balance(
    pairs: Iterable[tuple[str, str, str]], count_tokens: Callable[[str], int]
) -> dict[str, LengthBalance]:
    """``pairs``: (dimension, first pole's text, second pole's text); one entry per dimension."""
    diffs: dict[str, list[int]] = {}
    for dimension, first, second in pairs:
        diffs.setdefault(dimension, []).append(count_tokens(first) - count_tokens(second))
    return {
        dim: LengthBalance(dim, len(d), sum(x > 0 for x in d), sum(x < 0 for x in d), sum(d) / len(d))
        for dim, d in diffs.items()
    }


def pole_texts(items: Iterable) -> list[tuple[str, str, str]]:
    """(dimension, first pole's option text, second pole's option text) per item."""
    return [
        (i.dimension, i.option_for(i.first_pole).text, next(o.text for o in i.options if o.pole != i.first_pole))
        for i in items
    ]


def position_problems(items: Iterable) -> list[str]:
    """Per dimension and split: is one pole's option listed first much more often? (The
    label readout and any reader of a listed item sees the order; a balanced bank lists each
    pole first in about half of the items.)"""
    counts: dict[tuple[str, str], list[int]] = {}
    for item in items:
        first = item.options[0].pole == item.first_pole
        counts.setdefault((item.dimension, item.split), []).append(int(first))
    problems = []
    for (dim, split), firsts in sorted(counts.items()):
        n, ahead = len(firsts), sum(firsts)
        if abs(ahead - (n - ahead)) > max(2.0, MAX_LONGER_IMBALANCE * n):
            problems.append(f"{dim} {split}: the first pole's option is listed first in {ahead} of {n} items")
    return problems


def split_problems(items: Iterable, required: tuple[str, ...] = ("train", "eval")) -> list[str]:
    """Dimensions that lack a split: without train items every choice is made on the items reported."""
    present: dict[str, set[str]] = {}
    for item in items:
        present.setdefault(item.dimension, set()).add(item.split)
    return [
        f"{dim}: no {', '.join(s for s in required if s not in splits)} items"
        for dim, splits in present.items()
        if any(s not in splits for s in required)
    ]


def bank_problems(
    items, count_tokens: Callable[[str], int] | None = None, required: tuple[str, ...] = ("train", "eval")
) -> list[str]:
    """Everything unbalanced or missing in a bank, one line each: the ``required`` splits,
    option positions and (with ``count_tokens``; else words) option lengths per split."""
    items = list(items)
    count = count_tokens or (lambda text: len(text.split()))
    problems = split_problems(items, required) + position_problems(items)
    for split in sorted({i.split for i in items}):
        pairs = pole_texts(i for i in items if i.split == split)
        problems += [
            f"{split} options are length-unbalanced: {b.describe()}"
            for b in length_balance(pairs, count).values()
            if not b.balanced
        ]
    return problems
