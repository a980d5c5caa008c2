"""Greedy next tokens without the full float32 unembedding: candidates first, then exact scores.

At a decoding step of a large batch the unembedding (vocabulary x d_model, 49k x 576 on the
default model) is a fifth of the arithmetic, and greedy decoding needs only its argmax. A
bfloat16 copy of the head (AMX: several times faster here) ranks the vocabulary; the top
``k`` candidates of each row are then scored again in the model's own precision, from the
same weights, and the best of those is the token. The argmax differs from the full product's
only when the true best token is not among the bfloat16 top ``k`` (its error is a few hundredths
of a logit, the ``k``-th candidate is usually whole logits behind) or when two candidates tie
within rounding (the exact rescoring sums in another order than the full product). Opt-in, part
of the suites' fast mode, where ``benchmarks/suites.py`` measures its verdict agreement.
"""

from __future__ import annotations

import torch

__all__ = ["CandidateHead", "candidate_head", "CANDIDATES"]

CANDIDATES = 8  # rows' top tokens by the bfloat16 head that are scored again exactly


class CandidateHead:
    """Greedy tokens from final hidden states through ``head`` (an ``nn.Linear``)."""

    def __init__(self, head: torch.nn.Linear, k: int = CANDIDATES) -> None:
        self.head, self.k = head, k
        self._low: torch.Tensor | None = None
        self._source: tuple[int, int] | None = None

    def _low_weight(self) -> torch.Tensor:
        weight = self.head.weight
        source = (weight.data_ptr(), weight._version)
        if self._low is None or self._source != source:  # rebuilt if the weights were changed
            self._low, self._source = weight.detach().to(torch.bfloat16), source
        return self._low

    @torch.inference_mode()
    def argmax(self, hidden: torch.Tensor) -> torch.Tensor:
        """[rows] token ids for hidden states [rows, d_model]."""
        weight, bias = self.head.weight, self.head.bias
        low = hidden.to(torch.bfloat16) @ self._low_weight().T
        if bias is not None:
            low = low + bias.to(low.dtype)
        candidates = low.topk(min(self.k, low.shape[-1]), dim=-1).indices  # [rows, k]
        exact = torch.einsum("rd,rkd->rk", hidden.to(weight.dtype), weight[candidates])
        if bias is not None:
            exact = exact + bias[candidates]
        return candidates.gather(-1, exact.argmax(-1, keepdim=True))[:, 0]


def candidate_head(model) -> CandidateHead | None:
    """The model's ``CandidateHead`` (kept on the model), or ``None`` where it cannot help: a
    head already in low precision, or one that is not a plain linear layer."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.weight.dtype != torch.float32:
        return None
    cached = getattr(model, "_traitlens_candidate_head", None)
    if cached is None or cached.head is not head:
        cached = CandidateHead(head)
        model._traitlens_candidate_head = cached
    return cached
