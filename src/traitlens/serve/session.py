"""The playground's model work: one model, its shipped vectors, and one lock.

The steering hooks and bias folds live on the shared model, so every piece of model work takes
the lock: two requests never see each other's vector. Requests beyond ``MAX_QUEUE`` waiting are
refused at once rather than piling up. A stream takes the lock for one token at a time and never
holds it while suspended, so a client that goes away mid-stream leaves nothing locked.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from traitlens.chat import chat_ids, chat_messages
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS
from traitlens.options import RunOptions
from traitlens.serve.mix import check_mix, check_name, mix_steering, mix_vector
from traitlens.steering.artifact import FILES, save_vector, withdrawn
from traitlens.steering.vector import SteeringVector

__all__ = ["Playground", "Busy", "MAX_PROMPT_CHARS", "MAX_NEW_TOKENS", "MAX_QUEUE"]

MAX_PROMPT_CHARS = 2000
MAX_NEW_TOKENS = 256
MAX_QUEUE = 4


class Busy(Exception):
    """Too many requests are already waiting for the model."""


def load_library(directory: Path, model) -> dict[str, SteeringVector]:
    """Every vector under ``directory`` made for ``model`` (others are skipped, not fatal)."""
    from traitlens.steering.inject import load_intervention

    vectors = {}
    for path in sorted(p for p in Path(directory).iterdir() if (p / FILES["meta"]).is_file()):
        try:
            vectors[path.name] = load_intervention(path, model).vector  # checks fingerprint, layers, d_model
        except TraitlensError:
            continue
    return vectors


class Playground:
    def __init__(self, model, vectors: dict[str, SteeringVector], out: Path) -> None:
        self.model, self.vectors, self.out = model, vectors, Path(out)
        self._lock = threading.Lock()
        self._waiting = 0
        self._count = threading.Lock()
        self._base_ppl: float | None = None
        self.progress = {"done": 0, "total": 0}
        self.options = RunOptions.cached()  # the unsteered passes, read once for every mix

    @contextmanager
    def _turn(self, queued: bool = True):
        """The model's lock; ``queued`` turns wait in the bounded queue (a new request), others
        (a running stream's next token) only take the lock."""
        if queued:
            with self._count:
                if self._waiting >= MAX_QUEUE:
                    raise Busy(f"{MAX_QUEUE} requests are already waiting for the model; try again shortly")
                self._waiting += 1
        try:
            with self._lock:
                yield
        finally:
            if queued:
                with self._count:
                    self._waiting -= 1

    def _prompt(self, prompt: object, max_new_tokens: object) -> tuple[list[int], int]:
        if not isinstance(prompt, str) or not prompt.strip():
            raise TraitlensError("prompt must be non-empty text")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise TraitlensError(f"prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        if (
            isinstance(max_new_tokens, bool)
            or not isinstance(max_new_tokens, int)
            or not 1 <= max_new_tokens <= MAX_NEW_TOKENS
        ):
            raise TraitlensError(f"max_new_tokens must be an integer from 1 to {MAX_NEW_TOKENS}")
        return chat_ids(self.model.tokenizer, chat_messages(prompt)), max_new_tokens

    def health(self) -> dict[str, Any]:
        return {"model": self.model.name, "vectors": sorted(self.vectors)}

    def sliders(self) -> list[dict[str, Any]]:
        """One slider per dimension: its first-pole -> second-pole vector (EI, SN, TF, JP), with
        the reason a withdrawn one was withdrawn (the page marks it)."""
        out = []
        for dim, (first, second) in DIMENSIONS.items():
            if dim in self.vectors:
                reason = withdrawn(self.vectors[dim])
                out.append({"vector": dim, "left": first, "right": second, "min": -2, "max": 2, "withdrawn": reason})
        return out

    def probe_curves(self) -> dict[str, list[float | None]]:
        curves = {}
        for name, vector in self.vectors.items():
            per_layer = (vector.extra.get("probe") or {}).get("per_layer_heldout_accuracy") or {}
            if name in DIMENSIONS and per_layer:
                values = [per_layer.get(str(k)) for k in range(self.model.n_layers)]
                curves[name] = [v if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]
        return curves

    def _perplexity_change(self, steering) -> float:
        from traitlens.perplexity_guard import perplexity

        if self._base_ppl is None:
            self._base_ppl = perplexity(self.model)
        return perplexity(self.model, intervention=steering) / self._base_ppl - 1 if steering else 0.0

    def _greedy(self, ids: list[int], steering, max_new_tokens: int) -> Iterator[str]:
        """Greedy decoding, one token at a time, each step under ``steering``; yields the text
        so far after every token."""
        from traitlens.generation import _stop_ids

        stops = _stop_ids(self.model)
        cache, new = None, []
        inputs = torch.tensor([ids], device=self.model.device)
        for _ in range(max_new_tokens):
            context = steering.attach(self.model) if steering is not None else nullcontext()
            with context, torch.inference_mode():
                out = self.model.hf_model(input_ids=inputs, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            if token in stops:
                return
            new.append(token)
            yield self.model.tokenizer.decode(new, skip_special_tokens=True)
            inputs = torch.tensor([[token]], device=self.model.device)

    def stream(self, prompt: object, mix: object, max_new_tokens: object = 48) -> Iterator[dict[str, Any]]:
        """Events for the two columns, a token of each in turn, then the perplexity change.

        Each token is computed under the lock and yielded after it is released: the first waits
        in the queue like any request (``Busy`` comes from the first ``next``), later ones only
        take the lock, so streams and other requests interleave token by token."""
        ids, limit = self._prompt(prompt, max_new_tokens)
        steering = mix_steering(check_mix(mix, self.vectors), self.vectors)
        columns = {"unsteered": self._greedy(ids, None, limit), "steered": self._greedy(ids, steering, limit)}
        texts = {"unsteered": "", "steered": ""}
        queued = True
        while columns:
            for name in list(columns):
                with self._turn(queued):
                    queued = False
                    text = next(columns[name], None)
                if text is None:
                    del columns[name]
                    continue
                texts[name] = text
                yield {"column": name, "text": text}
        with self._turn(queued):
            change = self._perplexity_change(steering)
        yield {"done": True, **texts, "perplexity_change": change}

    def generate(self, prompt: object, mix: object, max_new_tokens: object = 48) -> dict[str, Any]:
        final = {}
        for event in self.stream(prompt, mix, max_new_tokens):
            final = event
        return {k: final[k] for k in ("unsteered", "steered", "perplexity_change")}

    def assess(self, mix: object) -> dict[str, Any]:
        """The four shares for the mix on the eval items, beside the unsteered ones (same readouts)."""
        from traitlens.assess import assess

        steering = mix_steering(check_mix(mix, self.vectors), self.vectors)
        with self._turn():
            self.progress = {"done": 0, "total": 0}

            def tick(n: int) -> None:
                self.progress["done"] += n

            base = assess(self.model, progress=tick, options=self.options)
            fixed = {d: r.readout for d, r in base.dimensions.items()}
            if steering:
                after = assess(
                    self.model, readout=fixed, intervention=steering, progress=tick, options=self.options,
                    content_free=False,  # a playground reading: shares only
                )  # fmt: skip
            else:
                after = base

        def shares(result):
            return {d: {r.poles[0]: r.share_first, r.poles[1]: 1 - r.share_first} for d, r in result.dimensions.items()}

        return {"type": after.type, "shares": shares(after), "unsteered_type": base.type, "unsteered": shares(base)}

    def save(self, mix: object, name: object) -> Path:
        mix, name = check_mix(mix, self.vectors), check_name(name)
        vector = mix_vector(mix, self.vectors)
        if vector is None:
            raise TraitlensError("the mix is empty: move a slider first")
        vector.recommended_alpha = 1.0
        vector.trait = "+".join(f"{k}*{v:g}" for k, v in mix.items())
        target = (self.out / name).resolve()
        if self.out.resolve() not in target.parents:
            raise TraitlensError("name must stay inside the output directory")
        return save_vector(vector, target)
