"""A KV cache layer with room to grow: decoding writes each new column in place.

Hugging Face's ``DynamicLayer`` concatenates every step (``torch.cat``), which copies the whole
cache once per generated token; in a large decoding batch that copy costs as much as the step's
arithmetic. ``RoomyLayer`` keeps keys and values in a buffer with spare columns and hands the
attention a view of the filled ones, so a step writes one column. Arithmetic on the same numbers;
opt-in all the same (the attention reads strided views), with its agreement measured by the
suites benchmark.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["RoomyLayer", "kv_bytes_per_token"]


def kv_bytes_per_token(model) -> int:
    """Bytes one token adds to one row's KV cache (keys and values, every layer)."""
    config = model.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = next(model.parameters()).element_size()
    return 2 * config.num_hidden_layers * heads * dim * element


class RoomyLayer(DynamicLayer):
    """A ``DynamicLayer`` holding ``keys``/``values`` with ``room`` spare columns."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.length = keys.shape[-2]
        self._keys = self._room(keys, room)
        self._values = self._room(values, room)
        self._expose()

    @staticmethod
    def _room(states: torch.Tensor, room: int) -> torch.Tensor:
        batch, heads, length, dim = states.shape
        buffer = states.new_empty(batch, heads, length + max(room, 1), dim)
        buffer[:, :, :length] = states
        return buffer

    def _expose(self) -> None:
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        new = key_states.shape[-2]
        if self.length + new > self._keys.shape[-2]:  # out of room: double it
            self._keys = self._room(self.keys, self.length + new)
            self._values = self._room(self.values, self.length + new)
        self._keys[:, :, self.length : self.length + new] = key_states
        self._values[:, :, self.length : self.length + new] = value_states
        self.length += new
        self._expose()
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows ``beam_idx`` in that order. When each row either stays or moves down into a
        slot no kept row still occupies (how the decoding loop compacts), only the moved rows
        are copied, in place; otherwise the whole cache is gathered."""
        index = beam_idx.to(self.device)
        rows = index.shape[0]
        staying = index == torch.arange(rows, device=self.device)
        targets = (~staying).nonzero().squeeze(1)
        sources = index[targets]
        if bool((sources >= rows).all()) and len(set(index.tolist())) == rows:
            for buffer in (self._keys, self._values):
                buffer[targets] = buffer[sources]
            self._keys, self._values = self._keys[:rows], self._values[:rows]
        else:
            self._keys = self._keys.index_select(0, index)
            self._values = self._values.index_select(0, index)
        self._expose()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._expose()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._keys = self._keys.repeat_interleave(repeats, dim=0)
        self._values = self._values.repeat_interleave(repeats, dim=0)
        self._expose()

    def reset(self) -> None:
        self.length = 0
        self._expose()

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self.length = self.keys.shape[-2]
        self._expose()
