"""Padding and batching of token sequences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import torch

__all__ = ["pad_left", "pad_right", "batched", "by_length", "shared_prefix"]

T = TypeVar("T")


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad to one length, so the last column is every sequence's last token."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.as_tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad: positions line up with the unpadded sequence, so no position ids shift."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def by_length(seqs: Sequence[Sequence[int]]) -> list[int]:
    """Indices of ``seqs``, shortest first (stable): batches of similar length pad little."""
    return sorted(range(len(seqs)), key=lambda k: len(seqs[k]))


def shared_prefix(seqs: Sequence[Sequence[int]]) -> list[int]:
    """The tokens every sequence starts with, leaving each at least one of its own."""
    first = seqs[0]
    limit = min(len(s) for s in seqs) - 1
    length = 0
    while length < limit and all(s[length] == first[length] for s in seqs):
        length += 1
    return list(first[:length])
