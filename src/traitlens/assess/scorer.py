"""Batched log-probabilities from a model: the only place assess touches the network weights.

A ``Scorer`` answers two questions; tests substitute fakes with planted answers.

Inside ``score_memo()`` a ``ModelScorer`` told the model's ``state`` (what is attached to it:
``"none"``, or an intervention's fingerprint) keeps its results, keyed by that state and the exact
token ids and batching, so a pipeline that asks the same question twice (the validity checks and
the baseline both read the plain label readout; the steered assessment and its per-readout
views score the same options) computes it once. The numbers are those of the first computation,
bit for bit. The block's contract: nothing attaches to the model behind the scorers' backs.
Given a ``ScoreStore``, the block also keeps its results on disk for later runs (``store``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Protocol

import numpy as np
import torch

from traitlens.assess.requests import LABELS, LabelRequest, OptionRequest
from traitlens.assess.store import ScoreStore, environment
from traitlens.batching import batched, pad_left, pad_right
from traitlens.chat import chat_ids
from traitlens.errors import TraitlensError
from traitlens.models import LoadedModel
from traitlens.models.reuse import forward, select_rows

__all__ = ["Scorer", "ModelScorer", "score_memo", "active_store"]

_MEMO: ContextVar[tuple[OrderedDict, ScoreStore | None] | None] = ContextVar("traitlens_score_memo", default=None)
MEMO_SIZE = 256  # results kept in memory per block (each a few kB)


@contextlib.contextmanager
def score_memo(store: ScoreStore | None = None) -> Iterator[OrderedDict]:
    """Scorers with a known ``state`` reuse each other's results inside this block (and, with a
    ``store``, the results of earlier runs, keeping their own there too)."""
    memo: OrderedDict = OrderedDict()
    token = _MEMO.set((memo, store))
    try:
        yield memo
    finally:
        _MEMO.reset(token)


def active_store() -> ScoreStore | None:
    """The store of the ``score_memo`` block we are in (``None``: none, or a block without one)."""
    block = _MEMO.get()
    return block[1] if block is not None else None


class Scorer(Protocol):
    def label_logprobs(self, requests: Sequence[LabelRequest]) -> np.ndarray:
        """[n, 2]: next-token log-probabilities of the labels "1" and "2"."""

    def option_logprobs(self, requests: Sequence[OptionRequest]) -> np.ndarray:
        """[n, 2]: summed log-likelihood of each option's text as the reply, and its token count."""


class ModelScorer:
    """Scores on the model's plain HF module (no hook wrappers), so steering hooks apply."""

    def __init__(self, model: LoadedModel, batch_size: int = 16, progress=None, state: str | None = None):
        self.model = model
        self.batch_size = batch_size
        self.progress = progress  # callable(n_done) or None
        self.state = state  # what is attached to the model now; None: results are not memoised
        tokenizer = model.tokenizer
        self.label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"][0] for label in LABELS]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, keep: int, cache=None, use_cache: bool = False):
        """Log-probabilities at the last ``keep`` positions only (0: all): the unembedding of every
        position (49k-wide on the default model) would cost more than the transformer itself.
        ``mask`` also covers any ``cache``d prefix, and the position ids follow from it. Returns
        the log-probabilities (on the CPU) and the cache."""
        device = self.model.device
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        with torch.inference_mode():
            out = forward(
                self.model,
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                past_key_values=cache,
                use_cache=use_cache,
                logits_to_keep=keep,
            )
        return out.logits.float().log_softmax(-1).cpu(), out.past_key_values

    def _tick(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)

    def _memoised(self, kind: str, inputs: tuple, ticks: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
        block = _MEMO.get()
        if block is None or self.state is None:
            return compute()
        memo, store = block
        what = repr((*self.model.identity, self.state, self.batch_size, kind, inputs))
        key = hashlib.sha256(what.encode()).hexdigest()
        if key in memo:
            memo.move_to_end(key)
            self._tick(ticks)
            return memo[key].copy()
        stored = hashlib.sha256(f"{key}{environment()}".encode()).hexdigest() if store is not None else None
        value = store.load(stored) if stored is not None else None
        if value is None:
            value = compute()
            if stored is not None:
                store.save(stored, value)
        else:
            self._tick(ticks)
        memo[key] = value
        while len(memo) > MEMO_SIZE:
            memo.popitem(last=False)
        return value.copy()

    def next_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        """[n, len(token_ids)]: log-probabilities of ``token_ids`` right after each prompt."""
        inputs = (tuple(map(tuple, prompts)), tuple(token_ids))
        return self._memoised("next", inputs, len(prompts), lambda: self._next_token_logprobs(prompts, token_ids))

    def _next_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        rows = []
        for chunk in batched(list(prompts), self.batch_size):
            ids, mask = pad_left(chunk, self.model.tokenizer.pad_token_id)
            logprobs = self._forward(ids, mask, 1)[0][:, -1, :]
            rows.append(logprobs[:, list(token_ids)].numpy())
            self._tick(len(chunk))
        return np.concatenate(rows) if rows else np.zeros((0, len(token_ids)))

    def continuation_logprobs(self, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]) -> np.ndarray:
        """[n]: mean per-token log-likelihood of each answer after its prompt."""
        sums = self.continuation_loglik(prompts, answers)
        return sums / np.array([len(a) for a in answers], dtype=float)

    def continuation_loglik(self, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]) -> np.ndarray:
        """[n]: summed log-likelihood of each answer after its prompt.

        Answers to the same prompt (an item's two options) share one pass over it: the prompt runs
        once into the KV cache and each answer continues from its copy. Prompts are several times
        longer than answers, so this nearly halves the option readout (and every calibration step)."""
        inputs = (tuple(map(tuple, prompts)), tuple(map(tuple, answers)))
        return self._memoised("loglik", inputs, len(prompts), lambda: self._continuation_loglik(prompts, answers))

    def _continuation_loglik(self, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]) -> np.ndarray:
        by_prompt: dict[tuple[int, ...], list[int]] = {}
        for k, prompt in enumerate(prompts):
            by_prompt.setdefault(tuple(prompt), []).append(k)
        scores = np.zeros(len(prompts))
        for chunk in batched(list(by_prompt.items()), self.batch_size):
            rows = [k for _, ks in chunk for k in ks]
            owner = torch.repeat_interleave(torch.arange(len(chunk)), torch.tensor([len(ks) for _, ks in chunk]))
            scores[rows] = self._shared_prompt_batch([list(p) for p, _ in chunk], owner, [answers[k] for k in rows])
            self._tick(len(rows))
        return scores

    def _check_length(self, requests, lengths: Sequence[int]) -> None:
        """An item longer than the model's context cannot be scored: say so before any work."""
        context = getattr(self.model.fast_model.config, "max_position_embeddings", None)
        if context is None:
            return
        for request, length in zip(requests, lengths, strict=True):
            if length > context:
                raise TraitlensError(
                    f"item {request.item.id}: {length} tokens, longer than the model's context of {context}"
                )

    def label_logprobs(self, requests: Sequence[LabelRequest]) -> np.ndarray:
        prompts = [chat_ids(self.model.tokenizer, r.messages()) for r in requests]
        self._check_length(requests, [len(p) + 1 for p in prompts])
        return self.next_token_logprobs(prompts, self.label_ids)

    def option_logprobs(self, requests: Sequence[OptionRequest]) -> np.ndarray:
        tokenizer = self.model.tokenizer
        prompts = [chat_ids(tokenizer, r.messages()) for r in requests]
        answers = [tokenizer(r.option.text, add_special_tokens=False)["input_ids"] for r in requests]
        self._check_length(requests, [len(p) + len(a) for p, a in zip(prompts, answers, strict=True)])
        lengths = np.array([len(a) for a in answers], dtype=float)
        return np.stack([self.continuation_loglik(prompts, answers), lengths], axis=1)

    def _shared_prompt_batch(self, prompts, owner: torch.Tensor, answers) -> np.ndarray:
        """Scores ``answers[n]`` after ``prompts[owner[n]]``; each prompt is computed once."""
        pad = self.model.tokenizer.pad_token_id
        if any(not a for a in answers):
            raise TraitlensError("cannot score an empty answer (an option or choice with no text)")
        ids, mask = pad_left(prompts, pad)
        last, cache = self._forward(ids, mask, 1, use_cache=True)
        # The prompt's last position predicts each answer's first token.
        first = last[owner, -1, [a[0] for a in answers]]
        if max(len(a) for a in answers) == 1:
            return first.numpy().astype(float)
        # Feed every answer but its last token, after its prompt's cached pass; position j then
        # predicts token j + 1.
        tails, tail_mask = pad_right([a[:-1] for a in answers], pad)
        select_rows(cache, owner.to(self.model.device))
        rest, _ = self._forward(tails, torch.cat([mask[owner], tail_mask], dim=1), 0, cache=cache, use_cache=True)
        targets = torch.zeros_like(tails)
        for row, answer in enumerate(answers):
            targets[row, : len(answer) - 1] = torch.as_tensor(answer[1:])
        later = rest.gather(-1, targets[..., None])[..., 0] * tail_mask
        return (first + later.sum(-1)).numpy().astype(float)
