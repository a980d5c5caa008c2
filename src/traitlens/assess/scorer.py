"""Batched log-probabilities from a model: the only place assess touches the network weights.

A ``Scorer`` answers two questions; tests substitute fakes with planted answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from traitlens.assess.requests import LABELS, LabelRequest, OptionRequest
from traitlens.batching import batched, pad_left, pad_right
from traitlens.chat import chat_ids
from traitlens.models import LoadedModel

__all__ = ["Scorer", "ModelScorer"]


class Scorer(Protocol):
    def label_logprobs(self, requests: Sequence[LabelRequest]) -> np.ndarray:
        """[n, 2]: next-token log-probabilities of the labels "1" and "2"."""

    def option_logprobs(self, requests: Sequence[OptionRequest]) -> np.ndarray:
        """[n]: mean per-token log-likelihood of each option's text as the reply."""


class ModelScorer:
    """Scores on the model's plain HF module (no hook wrappers), so steering hooks apply."""

    def __init__(self, model: LoadedModel, batch_size: int = 16, progress=None):
        self.model = model
        self.batch_size = batch_size
        self.progress = progress  # callable(n_done) or None
        tokenizer = model.tokenizer
        self.label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"][0] for label in LABELS]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Log-probabilities at the sequence positions ``keep`` only: the unembedding of every
        position (49k-wide on the default model) would cost more than the transformer itself."""
        device = self.model.device
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.model.fast_model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
                logits_to_keep=keep.to(device),
            )
        return out.logits.float().log_softmax(-1).cpu()

    def _tick(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)

    def next_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        """[n, len(token_ids)]: log-probabilities of ``token_ids`` right after each prompt."""
        rows = []
        for chunk in batched(list(prompts), self.batch_size):
            ids, mask = pad_left(chunk, self.model.tokenizer.pad_token_id)
            logprobs = self._forward(ids, mask, torch.tensor([ids.shape[1] - 1]))[:, -1, :]
            rows.append(logprobs[:, list(token_ids)].numpy())
            self._tick(len(chunk))
        return np.concatenate(rows) if rows else np.zeros((0, len(token_ids)))

    def continuation_logprobs(self, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]) -> np.ndarray:
        """[n]: mean per-token log-likelihood of each answer after its prompt."""
        scores: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            scores += self._continuation_batch(
                prompts[start : start + self.batch_size], answers[start : start + self.batch_size]
            )
        return np.asarray(scores)

    def label_logprobs(self, requests: Sequence[LabelRequest]) -> np.ndarray:
        prompts = [chat_ids(self.model.tokenizer, r.messages()) for r in requests]
        return self.next_token_logprobs(prompts, self.label_ids)

    def option_logprobs(self, requests: Sequence[OptionRequest]) -> np.ndarray:
        tokenizer = self.model.tokenizer
        prompts = [chat_ids(tokenizer, r.messages()) for r in requests]
        answers = [tokenizer(r.option.text, add_special_tokens=False)["input_ids"] for r in requests]
        return self.continuation_logprobs(prompts, answers)

    def _continuation_batch(self, prompts, answers) -> list[float]:
        ids, mask = pad_right([p + a for p, a in zip(prompts, answers, strict=True)], self.model.tokenizer.pad_token_id)
        # Token t is predicted at position t-1; unembed only the union of answer positions.
        spans = [torch.arange(len(p) - 1, len(p) + len(a) - 1) for p, a in zip(prompts, answers, strict=True)]
        keep = torch.unique(torch.cat(spans))
        column = {int(pos): k for k, pos in enumerate(keep)}
        logprobs = self._forward(ids, mask, keep)
        scores = []
        for row, (span, answer) in enumerate(zip(spans, answers, strict=True)):
            cols = torch.tensor([column[int(pos)] for pos in span])
            scores.append(float(logprobs[row, cols, torch.as_tensor(answer)].mean()))
        self._tick(len(prompts))
        return scores
