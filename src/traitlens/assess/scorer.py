"""Batched log-probabilities from a model: the only place assess touches the network weights.

A ``Scorer`` answers two questions; tests substitute fakes with planted answers.

A ``ModelScorer`` told the model's ``state`` (what is attached to it: ``"none"``, or an
intervention's fingerprint) keeps its results in the run's ``ScoreMemo`` (``options.memo``),
keyed by that state and the exact token ids and batching; the numbers are those of the first
computation, bit for bit. The contract: nothing attaches to the model behind the scorer's back
(a model that is not ``untouched()`` while the state says ``"none"`` is never memoised).
``options.fast`` takes the opt-in fast path (``traitlens.accel.scoring``), memoised under keys of
its own; ``options.lower_layers`` routes every pass through a calibration's replay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from traitlens.accel.batching import batched, by_length, pad_left, pad_right, shared_prefix
from traitlens.accel.decoding.plan import CALL_COST
from traitlens.accel.lower_layers import expanded, forward, select_rows
from traitlens.accel.scoring import fast_chunks, real_positions, unembedding_outside
from traitlens.assess.requests import LABELS, LabelRequest, OptionRequest
from traitlens.chat import chat_ids
from traitlens.errors import TraitlensError
from traitlens.models import LoadedModel
from traitlens.options import RunOptions

__all__ = ["Scorer", "ModelScorer"]


class Scorer(Protocol):
    def label_logprobs(self, requests: Sequence[LabelRequest]) -> np.ndarray:
        """[n, 2]: next-token log-probabilities of the labels "1" and "2"."""

    def option_logprobs(self, requests: Sequence[OptionRequest]) -> np.ndarray:
        """[n, 2]: summed log-likelihood of each option's text as the reply, and its token count."""


class ModelScorer:
    """Scores on the model's plain HF module (no hook wrappers), so steering hooks apply."""

    def __init__(
        self,
        model: LoadedModel,
        batch_size: int = 16,
        progress=None,
        state: str | None = None,
        options: RunOptions | None = None,
    ):
        self.model = model
        self.options = options or RunOptions()
        self.fast = self.options.fast
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
                self.model.hf_model,
                self.options.lower_layers,
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
        memo = self.options.memo
        if memo is None or self.state is None or (self.state == "none" and not self.model.untouched()):
            return compute()  # "none" with something attached would file steered numbers as plain ones
        path = ("fast",) if self.fast else ()  # the exact path keeps the keys it always had
        what = (*self.model.identity, self.state, self.batch_size, kind, inputs, *path)
        return memo.arrays(what, compute, on_hit=lambda: self._tick(ticks))

    def next_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        """[n, len(token_ids)]: log-probabilities of ``token_ids`` right after each prompt."""
        inputs = (tuple(map(tuple, prompts)), tuple(token_ids))
        return self._memoised("next", inputs, len(prompts), lambda: self._next_token_logprobs(prompts, token_ids))

    def _next_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        out = np.zeros((len(prompts), len(token_ids)), dtype=np.float32)  # the dtype of the log-probabilities
        order = by_length(prompts) if self.fast else list(range(len(prompts)))
        start = self._shared_start(prompts)
        for chunk in batched(order, self.batch_size):
            logprobs = self._prompt_pass([prompts[k] for k in chunk], start, use_cache=False)[0][:, -1, :]
            out[list(chunk)] = logprobs[:, list(token_ids)].numpy()
            self._tick(len(chunk))
        return out

    def _shared_start(self, prompts: Sequence[Sequence[int]]) -> tuple[list[int], object] | None:
        """Fast path: the tokens every prompt starts with (the chat template's system turn), run
        once as one row into a cache that every batch continues from; ``None`` on the exact path,
        or where it would not pay for its call."""
        prefix = shared_prefix(prompts) if self.fast and len(prompts) > 1 else []
        if (len(prompts) - 1) * len(prefix) <= CALL_COST:
            return None
        ids, mask = torch.tensor([prefix]), torch.ones(1, len(prefix), dtype=torch.long)
        return prefix, self._forward(ids, mask, 1, use_cache=True)[1]

    def _prompt_pass(self, prompts: Sequence[Sequence[int]], start=None, use_cache: bool = True):
        """(last position's log-probabilities, cache, mask) of a batch of prompts, left-padded;
        from a ``_shared_start``, each row continues from its cache (padding then sits between
        the prefix and each prompt's own tokens)."""
        pad = self.model.tokenizer.pad_token_id
        if start is None:
            ids, mask = pad_left(prompts, pad)
            return (*self._forward(ids, mask, 1, use_cache=use_cache), mask)
        prefix, shared = start
        cache = expanded(shared, torch.zeros(len(prompts), dtype=torch.long, device=self.model.device))
        ids, own = pad_left([p[len(prefix) :] for p in prompts], pad)
        mask = torch.cat([torch.ones(len(prompts), len(prefix), dtype=own.dtype), own], dim=1)
        return (*self._forward(ids, mask, 1, cache=cache, use_cache=use_cache), mask)

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
        groups = list(by_prompt.items())
        chunks = batched(groups, self.batch_size) if not self.fast else fast_chunks(groups, answers, self.batch_size)
        start = self._shared_start([p for p, _ in groups])
        for chunk in chunks:
            rows = [k for _, ks in chunk for k in ks]
            owner = torch.repeat_interleave(torch.arange(len(chunk)), torch.tensor([len(ks) for _, ks in chunk]))
            prompts_ = [list(p) for p, _ in chunk]
            scores[rows] = self._shared_prompt_batch(prompts_, owner, [answers[k] for k in rows], start)
            self._tick(len(rows))
        return scores

    def _check_length(self, requests, lengths: Sequence[int]) -> None:
        """An item longer than the model's context cannot be scored: say so before any work."""
        context = getattr(self.model.hf_model.config, "max_position_embeddings", None)
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

    def _shared_prompt_batch(self, prompts, owner: torch.Tensor, answers, start=None) -> np.ndarray:
        """Scores ``answers[n]`` after ``prompts[owner[n]]``; each prompt is computed once."""
        pad = self.model.tokenizer.pad_token_id
        if any(not a for a in answers):
            raise TraitlensError("cannot score an empty answer (an option or choice with no text)")
        last, cache, mask = self._prompt_pass(prompts, start)
        # The prompt's last position predicts each answer's first token.
        first = last[owner, -1, [a[0] for a in answers]]
        if max(len(a) for a in answers) == 1:
            return first.numpy().astype(float)
        # Feed every answer but its last token, after its prompt's cached pass; position j then
        # predicts token j + 1.
        tails, tail_mask = pad_right([a[:-1] for a in answers], pad)
        select_rows(cache, owner.to(self.model.device))
        targets = torch.zeros_like(tails)
        for row, answer in enumerate(answers):
            targets[row, : len(answer) - 1] = torch.as_tensor(answer[1:])
        full_mask = torch.cat([mask[owner], tail_mask], dim=1)
        if self.fast and unembedding_outside(self.model.hf_model):
            run = lambda: self._forward(tails, full_mask, 1, cache=cache)[0]  # noqa: E731
            later = real_positions(self.model.hf_model, run, targets, tail_mask)
        else:
            rest, _ = self._forward(tails, full_mask, 0, cache=cache, use_cache=True)
            later = rest.gather(-1, targets[..., None])[..., 0] * tail_mask
        return (first + later.sum(-1)).numpy().astype(float)
