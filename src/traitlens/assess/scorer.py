"""Batched log-probabilities from a model: the only place assess touches the network weights.

A ``Scorer`` answers two questions; tests substitute fakes with planted answers.

Inside ``score_memo()`` a ``ModelScorer`` told the model's ``state`` (what is attached to it:
``"none"``, or an intervention's fingerprint) keeps its results, keyed by that state and the exact
token ids and batching, so a pipeline that asks the same question twice (the validity checks and
the baseline both read the plain label readout; the steered assessment and its per-readout
views score the same options) computes it once. The numbers are those of the first computation,
bit for bit. The block's contract: nothing attaches to the model behind the scorers' backs.
Given a ``ScoreStore``, the block also keeps its results on disk for later runs (``store``).

Inside ``fast_scoring()`` (opt-in: ``traitlens edit --fast``) scorers take a faster path that is
not bit-identical: the tokens every prompt of a batch starts with (the chat template's system
turn) run once and every row continues from that cache, and batches are cut from prompts sorted
by length (answers by length too), so little of a batch is padding. Its results are memoised and
stored under their own keys.
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
from traitlens.batching import batched, by_length, pad_left, pad_right, shared_prefix
from traitlens.chat import chat_ids
from traitlens.decoding.plan import CALL_COST
from traitlens.errors import TraitlensError
from traitlens.models import LoadedModel
from traitlens.models.reuse import expanded, forward, select_rows

__all__ = ["Scorer", "ModelScorer", "score_memo", "active_store", "fast_scoring", "fast_scoring_on"]

_MEMO: ContextVar[tuple[OrderedDict, ScoreStore | None] | None] = ContextVar("traitlens_score_memo", default=None)
_FAST: ContextVar[bool] = ContextVar("traitlens_fast_scoring", default=False)
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


@contextlib.contextmanager
def fast_scoring(on: bool = True) -> Iterator[None]:
    """Scorers created inside this block take the fast path (see the module's docstring)."""
    token = _FAST.set(on)
    try:
        yield
    finally:
        _FAST.reset(token)


def fast_scoring_on() -> bool:
    """Whether we are inside ``fast_scoring()`` (other passes of a pipeline, such as the persona
    source's replies, take their opt-in levers there too)."""
    return _FAST.get()


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

    def __init__(
        self,
        model: LoadedModel,
        batch_size: int = 16,
        progress=None,
        state: str | None = None,
        fast: bool | None = None,
    ):
        self.model = model
        self.fast = _FAST.get() if fast is None else fast  # None: as the enclosing ``fast_scoring`` says
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
        if block is None or self.state is None or (self.state == "none" and not self.model.untouched()):
            return compute()  # "none" with something attached would file steered numbers as plain ones
        memo, store = block
        path = ("fast",) if self.fast else ()  # the exact path keeps the keys it always had
        what = repr((*self.model.identity, self.state, self.batch_size, kind, inputs, *path))
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
        chunks = batched(groups, self.batch_size) if not self.fast else self._fast_chunks(groups, answers)
        start = self._shared_start([p for p, _ in groups])
        for chunk in chunks:
            rows = [k for _, ks in chunk for k in ks]
            owner = torch.repeat_interleave(torch.arange(len(chunk)), torch.tensor([len(ks) for _, ks in chunk]))
            prompts_ = [list(p) for p, _ in chunk]
            scores[rows] = self._shared_prompt_batch(prompts_, owner, [answers[k] for k in rows], start)
            self._tick(len(rows))
        return scores

    def _fast_chunks(self, groups: list, answers: Sequence[Sequence[int]]) -> list[list]:
        """Batches of at most twice ``batch_size`` answers, by answer length (a prompt with more
        answers than that is split), so the answers of one batch pad little."""
        cut = 2 * self.batch_size
        pieces = [
            (prompt, list(piece))
            for prompt, ks in groups
            for piece in batched(sorted(ks, key=lambda k: len(answers[k])), cut)
        ]
        pieces.sort(key=lambda g: (max(len(answers[k]) for k in g[1]), len(g[0])))
        chunks: list[list] = [[]]
        for piece in pieces:
            if sum(len(ks) for _, ks in chunks[-1]) + len(piece[1]) > cut:
                chunks.append([])
            chunks[-1].append(piece)
        return [c for c in chunks if c]

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
        if self.fast and self._unembedding_outside():
            later = self._real_positions(tails, full_mask, cache, targets, tail_mask)
        else:
            rest, _ = self._forward(tails, full_mask, 0, cache=cache, use_cache=True)
            later = rest.gather(-1, targets[..., None])[..., 0] * tail_mask
        return (first + later.sum(-1)).numpy().astype(float)

    def _unembedding_outside(self) -> bool:
        """Can the fast path apply the unembedding itself (``lm_head`` after the final ``norm``,
        no soft-capping)? Checked against the model's own logits on every pass."""
        fast_model = self.model.fast_model
        return (
            hasattr(fast_model, "lm_head")
            and hasattr(getattr(fast_model, "model", None), "norm")
            and not getattr(fast_model.config, "final_logit_softcapping", None)
        )

    def _real_positions(self, ids, mask, cache, targets, real) -> torch.Tensor:
        """Fast path: log-probabilities of ``targets`` at the real (unpadded) positions of ``ids``
        only; the final norm's output is caught and only those rows meet the unembedding."""
        fast_model = self.model.fast_model
        caught: list[torch.Tensor] = []
        handle = fast_model.model.norm.register_forward_hook(lambda module, args, out: caught.append(out))
        try:
            last, _ = self._forward(ids, mask, 1, cache=cache)
        finally:
            handle.remove()
        where = real.bool().to(caught[-1].device)
        with torch.inference_mode():
            check = fast_model.lm_head(caught[-1][:, -1]).float().log_softmax(-1).cpu()
            if not torch.allclose(check, last[:, -1], atol=1e-3):
                raise RuntimeError("fast scoring: the model's logits are not lm_head(norm(...)); use the exact path")
            logits = fast_model.lm_head(caught[-1][where]).float()
            picked = logits.gather(-1, targets.to(logits.device)[where][:, None])[:, 0] - logits.logsumexp(-1)
        out = torch.zeros(real.shape)
        out[real.bool()] = picked.cpu()
        return out
