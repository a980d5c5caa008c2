"""A safety (refusal) direction: the difference in means of residual activations on harmful and
harmless instructions, per layer (Arditi et al., 2024), read at the last prompt position, where
the model decides how to begin its reply.

Prompts come from the public sets under a data directory (AdvBench, HarmBench, JailbreakBench
goals; XSTest safe prompts and the harmless Alpaca instructions of safety-tuned-llamas), or from
our shipped samples. One in four prompts of each kind, chosen by a hash of its text, is held out:
the layer is chosen on the rest, and the direction is checked on prompts it was not built from.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from traitlens.accel.batching import batched, pad_left
from traitlens.bench.loaders import read_goals, read_prompts, resolve
from traitlens.chat import chat_ids, chat_messages
from traitlens.errors import TraitlensError
from traitlens.probe.layers import separation
from traitlens.probe.methods import MeanDifference
from traitlens.steering.vector import SteeringVector

__all__ = ["SafetyPrompts", "SafetyDirection", "safety_prompts", "prompt_activations", "fit_safety_direction"]

HARMFUL_SETS = (
    "safety/advbench/harmful_behaviors.csv",
    "safety/harmbench/harmbench_behaviors_text_all.csv",
    "safety/jailbreakbench/jbb_harmful_behaviors.json",
)
HARMLESS_SETS = ("safety/xstest/xstest_prompts.csv", "safety/safety_tuned_llamas/I-Alpaca.json")


def _held_out(text: str) -> bool:
    return zlib.crc32(text.encode()) % 4 == 0


@dataclass
class SafetyPrompts:
    harmful: list[str]
    harmless: list[str]
    source: str

    def split(self, held_out: bool) -> SafetyPrompts:
        return SafetyPrompts(
            [p for p in self.harmful if _held_out(p) == held_out],
            [p for p in self.harmless if _held_out(p) == held_out],
            f"{self.source} ({'held out' if held_out else 'build'})",
        )


def _alpaca_instructions(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    instructions = data.get("instructions", []) if isinstance(data, dict) else []
    inputs = data.get("inputs", [""] * len(instructions)) if isinstance(data, dict) else []
    return [f"{i}\n\n{x}".strip() for i, x in zip(instructions, inputs, strict=False) if isinstance(i, str) and i]


def safety_prompts(data: str | Path | None = None, limit: int | None = None) -> SafetyPrompts:
    """Harmful and harmless instructions: the public sets under ``data``, else our samples."""
    if data is None:
        harmful = read_goals(resolve("jailbreak", None))
        harmless = read_prompts(resolve("overrefusal", None), keep_label="safe")
        source = "traitlens samples"
    else:
        root = Path(data)
        if not root.is_dir():
            raise TraitlensError(f"data directory not found: {root}")
        harmful, harmless = [], []
        for rel in HARMFUL_SETS:
            if (root / rel).is_file():
                harmful += read_goals(root / rel)
        for rel in HARMLESS_SETS:
            path = root / rel
            if path.is_file():
                harmless += _alpaca_instructions(path) if path.suffix == ".json" else read_prompts(path, "safe")
        source = str(root)
    harmful, harmless = list(dict.fromkeys(harmful)), list(dict.fromkeys(harmless))
    if len(harmful) < 8 or len(harmless) < 8:
        raise TraitlensError(f"{source}: need at least 8 harmful and 8 harmless prompts")
    if limit is not None:
        rng = np.random.default_rng(0)
        harmful = [harmful[k] for k in sorted(rng.permutation(len(harmful))[:limit])]
        harmless = [harmless[k] for k in sorted(rng.permutation(len(harmless))[:limit])]
    return SafetyPrompts(harmful, harmless, source)


def prompt_activations(model, prompts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
    """[n, n_layers, d_model]: resid_post of every layer at the last prompt position (the
    generation prompt included), on the fast path with left padding."""
    encoded = [chat_ids(model.tokenizer, chat_messages(p)) for p in prompts]
    rows = []
    for chunk in batched(encoded, batch_size):
        ids, mask = pad_left(chunk, model.tokenizer.pad_token_id)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model.hf_model(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                position_ids=positions.to(model.device),
                output_hidden_states=True,
            )
        # hidden_states[0] is the embedding; [L + 1] is the output of decoder layer L.
        rows.append(torch.stack([h[:, -1].float().cpu() for h in out.hidden_states[1:]], dim=1))
    return torch.cat(rows)


@dataclass
class SafetyDirection:
    layer: int
    vector: SteeringVector  # unit direction x the layer's residual norm, towards "harmful / refuse"
    separation: dict[int, float]  # held-out d' per layer (the build split chose nothing by it)
    build_separation: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "build_separation": {str(k): round(v, 4) for k, v in self.build_separation.items()},
            "heldout_separation": {str(k): round(v, 4) for k, v in self.separation.items()},
        }


def fit_safety_direction(model, prompts: SafetyPrompts, batch_size: int = 16) -> SafetyDirection:
    """Directions per layer on the build split; the layer whose direction separates the build
    prompts best (halves of the build split cross-checked) is used; held-out d' is reported."""
    build, held = prompts.split(False), prompts.split(True)
    if min(len(build.harmful), len(build.harmless), len(held.harmful), len(held.harmless)) < 2:
        raise TraitlensError(f"{prompts.source}: too few prompts to build and check a direction")
    acts = {name: prompt_activations(model, getattr(s, kind), batch_size) for name, s, kind in (
        ("bh", build, "harmful"), ("bl", build, "harmless"), ("hh", held, "harmful"), ("hl", held, "harmless"))}  # fmt: skip
    method = MeanDifference()
    build_sep, held_sep, directions = {}, {}, {}
    half_h, half_l = len(acts["bh"]) // 2, len(acts["bl"]) // 2
    for layer in range(model.n_layers):
        directions[layer] = method.fit(acts["bh"][:, layer], acts["bl"][:, layer])
        # Choose on the build split only: a direction from one half, scored on the other.
        if half_h >= 2 and half_l >= 2:
            first = method.fit(acts["bh"][:half_h, layer], acts["bl"][:half_l, layer])
            build_sep[layer] = separation(first, acts["bh"][half_h:, layer], acts["bl"][half_l:, layer])
        else:
            build_sep[layer] = separation(directions[layer], acts["bh"][:, layer], acts["bl"][:, layer])
        held_sep[layer] = separation(directions[layer], acts["hh"][:, layer], acts["hl"][:, layer])
    # Late layers separate trivially well but steer the output token by token; search the middle.
    candidates = range(model.n_layers // 4, max(model.n_layers * 3 // 4, model.n_layers // 4 + 1))
    layer = max(candidates, key=lambda k: build_sep[k])
    chosen = directions[layer]
    vector = SteeringVector(
        {layer: chosen.vector * chosen.resid_norm},
        model=model.fingerprint.to_dict(),
        trait="SAFE",
        method="meandiff:harmful-harmless",
        scale_mode="resid_norm",
        scales={layer: chosen.resid_norm},
        stats={layer: chosen.stats()},
    )
    return SafetyDirection(layer, vector, held_sep, build_sep)
