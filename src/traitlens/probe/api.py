"""``probe``: where does each trait dimension live? Per-layer probes and trait directions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from traitlens._io import atomic_write, write_json
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS, default_items
from traitlens.probe.collect import Activations, collect
from traitlens.probe.contrast import ContrastSet, item_pairs, statement_pairs
from traitlens.probe.layers import LayerResult, choose_best_layer, permutation_test, probe_layer
from traitlens.probe.methods import Direction, get_method

__all__ = ["DimensionProbe", "ProbeResult", "probe", "default_contrast", "parse_traits"]


def parse_traits(text: str) -> list[str]:
    """'all' or a dimension, in either letter order (JP, PJ); returns dimension names."""
    if text.strip().lower() == "all":
        return list(DIMENSIONS)
    from traitlens.instrument.items import Trait

    return [Trait.parse(part).dimension for part in text.split(",")]


def default_contrast() -> ContrastSet:
    """Questionnaire items (position-free) plus our first-person statement pairs."""
    return item_pairs(default_items()) + statement_pairs()


@dataclass
class DimensionProbe:
    dimension: str
    layers: list[LayerResult]
    best_layer: int
    directions: dict[int, Direction] = field(repr=False)
    n_train: int = 0
    n_heldout: int = 0

    @property
    def best(self) -> LayerResult:
        return next(r for r in self.layers if r.layer == self.best_layer)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "layers": [r.to_dict() for r in self.layers],
            "best_layer": self.best_layer,
            "best_heldout_accuracy": round(best.heldout_accuracy, 6),
            "best_heldout_separation": round(best.heldout_separation, 6),
            "informative_layers": [r.layer for r in self.layers if r.informative],
            "n_train_pairs": self.n_train,
            "n_heldout_pairs": self.n_heldout,
            "direction_stats": {str(layer): d.stats() | d.extra for layer, d in self.directions.items()},
        }


@dataclass
class ProbeResult:
    model: dict[str, Any]
    contrast: str
    contrast_hash: str
    hook: str
    reduce: str
    method: str
    dimensions: dict[str, DimensionProbe]
    cosine_layer: int | None
    cosine_matrix: list[list[float]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": {d: p.to_dict() for d, p in self.dimensions.items()},
            "cosine": {"layer": self.cosine_layer, "dimensions": list(self.dimensions), "matrix": self.cosine_matrix},
            "model": self.model,
            "contrast": self.contrast,
            "contrast_hash": self.contrast_hash,
            "hook": self.hook,
            "reduce": self.reduce,
            "method": self.method,
            "seconds": round(self.seconds, 2),
        }

    def save(self, out: str | Path) -> None:
        """``probe.json`` plus every direction in ``directions.safetensors`` (``{dim}.{layer}``)."""
        from safetensors.torch import save_file

        out = Path(out)
        write_json(out / "probe.json", self.to_dict())
        tensors = {
            f"{d}.{layer}": v.vector.contiguous()
            for d, p in self.dimensions.items()
            for layer, v in p.directions.items()
        }
        atomic_write(out / "directions.safetensors", lambda tmp: save_file(tensors, str(tmp)))


def _split(acts: Activations, split: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rows = [k for k, p in enumerate(acts.contrast.pairs) if p.split == split]
    groups = np.array([acts.contrast.pairs[k].group for k in rows])
    return acts.first[rows], acts.second[rows], groups


def probe_dimension(
    acts: Activations,
    method_name: str,
    permutations: int,
    seed: int,
    tick: Callable[[int], None] | None = None,
    with_probe: bool = True,
) -> DimensionProbe:
    dim = acts.contrast.pairs[0].dimension
    pos, neg, groups = _split(acts, "train")
    pos_eval, neg_eval, _ = _split(acts, "eval")
    if len(set(groups)) < 3 or len(pos_eval) < 2:
        raise TraitlensError(
            f"{dim}: too few contrast pairs to probe ({len(set(groups))} train groups, {len(pos_eval)} eval pairs)"
        )
    k_layers = range(len(acts.layers))
    observed, p_values, null95 = permutation_test(
        [pos[:, k].double().numpy() for k in k_layers],
        [neg[:, k].double().numpy() for k in k_layers],
        groups,
        permutations,
        seed,
    )
    method = get_method(method_name)
    results, directions = [], {}
    for k, layer in enumerate(acts.layers):
        result, direction = probe_layer(
            layer,
            (pos[:, k], neg[:, k]),
            (pos_eval[:, k], neg_eval[:, k]),
            groups,
            method,
            (float(observed[k]), float(p_values[k]), null95),
            with_probe,
        )
        results.append(result)
        directions[layer] = direction
        if tick:
            tick(1)
    best = choose_best_layer(results)
    return DimensionProbe(dim, results, best.layer, directions, len(pos), len(pos_eval))


def _cosines(dims: dict[str, DimensionProbe]) -> tuple[int | None, list[list[float]]]:
    """Cosines between the dimensions' directions at one common layer (the median best layer)."""
    if not dims:
        return None, []
    layer = int(np.median([p.best_layer for p in dims.values()]))
    vectors = [p.directions[layer].vector for p in dims.values()]
    return layer, [[round(float(a @ b), 4) for b in vectors] for a in vectors]


def probe(
    model,
    traits: str | Sequence[str] = "all",
    contrast: ContrastSet | None = None,
    hook: str = "resid_post",
    reduce: str = "last",
    method: str = "probe",
    layers: Sequence[int] | None = None,
    permutations: int = 200,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> ProbeResult:
    """Probe every requested dimension at every layer (or ``layers``) of ``model``."""
    get_method(method)  # validate early
    dims = parse_traits(traits) if isinstance(traits, str) else list(traits)
    contrast = contrast or default_contrast()
    start = time.perf_counter()
    results = {}
    for dim in dims:
        subset = contrast.for_dimension(dim)
        contrast.check(dim)
        tick = progress(f"collect {dim}", 2 * len(subset)) if progress else None
        acts = collect(model, subset, layers, hook, reduce, batch_size, progress=tick)
        tick = progress(f"probe {dim}", len(acts.layers)) if progress else None
        results[dim] = probe_dimension(acts, method, permutations, seed, tick)
    layer, matrix = _cosines(results)
    return ProbeResult(
        model.fingerprint.to_dict(),
        contrast.name,
        contrast.content_hash(),
        hook,
        reduce,
        method,
        results,
        layer,
        matrix,
        time.perf_counter() - start,
    )
