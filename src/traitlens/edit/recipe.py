"""Edit recipes: where a trait direction comes from, how it is fitted, where it is injected.

A recipe is ``SOURCES/METHOD/PLACEMENT/MODE``, e.g. ``items+statements/meandiff/band2/add``:

- SOURCES, joined by ``+``: ``items`` (questionnaire stems answered with each option),
  ``statements`` (our first-person statement pairs), ``persona`` (the model's own answers under
  each pole's persona prompt, as in persona vectors), ``pairs`` (paired-answer files given by the
  user, e.g. the Machine-Mindset pairs);
- METHOD: ``meandiff``, ``probe`` or ``pca`` (see ``traitlens.probe.methods``);
- PLACEMENT: ``best`` (the source's best held-out layer on the train pairs), ``bandK`` (that
  layer +-K, the strength shared equally among the layers), ``A-B`` or ``L`` (explicit layers);
- MODE: ``add``, ``add_norm`` (norm-preserving) or ``project`` (see ``steering.kernels``).

Named presets stand for common recipes (``default``, ``band``, ``persona``, ...). Positions are
always ``all``: a questionnaire readout scores the answer at the prompt's last position, so a
response-only edit would not touch what the frontier measures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from traitlens.errors import TraitlensError
from traitlens.instrument.items import Trait
from traitlens.probe.methods import METHODS, Direction
from traitlens.steering.kernels import MODES
from traitlens.steering.vector import SteeringVector

__all__ = [
    "SOURCES",
    "PRESETS",
    "DEFAULT_RECIPES",
    "Recipe",
    "parse_recipe",
    "parse_recipes",
    "recipe_layers",
    "recipe_vector",
]

SOURCES = ("items", "statements", "persona", "pairs")
PRESETS = {
    "default": "items+statements/meandiff/best/add",
    "band": "items+statements/meandiff/band2/add",
    "norm": "items+statements/meandiff/best/add_norm",
    "pca": "items+statements/pca/best/add",
    "probe": "items+statements/probe/best/add",
    "persona": "persona/meandiff/best/add",
    "persona-band": "items+statements+persona/meandiff/band2/add",
    "pairs": "pairs/meandiff/best/add",
    "pairs-band": "items+statements+pairs/meandiff/band2/add",
}
# What `traitlens edit` compares when no --recipes are given (pairs-band joins when --pairs is).
# The persona and pairs sources alone are presets, not defaults: on the default model their best
# layers sit at the top of the stack and they moved J->P least of all seven (results/vectors/NOTES.md).
DEFAULT_RECIPES = ("default", "band", "norm", "persona-band")
_PLACEMENT = re.compile(r"^(best|band(\d+)|(\d+)(?:-(\d+))?)$")


@dataclass(frozen=True)
class Recipe:
    name: str
    sources: tuple[str, ...]
    method: str
    placement: str  # best | bandK | A-B | L
    mode: str

    @property
    def spec(self) -> str:
        return f"{'+'.join(self.sources)}/{self.method}/{self.placement}/{self.mode}"

    def to_dict(self) -> dict:
        return asdict(self) | {"spec": self.spec}


def parse_recipe(text: str) -> Recipe:
    """A preset name or a ``SOURCES/METHOD/PLACEMENT/MODE`` spec; a bad one is one clear error."""
    text = text.strip()
    spec = PRESETS.get(text, text)
    name = text if text in PRESETS else spec
    parts = spec.split("/")
    if len(parts) != 4:
        raise TraitlensError(
            f"unknown recipe '{text}': use a preset ({', '.join(PRESETS)}) or SOURCES/METHOD/PLACEMENT/MODE"
        )
    sources, method, placement, mode = parts
    names = tuple(s for s in sources.split("+"))
    for source in names:
        if source not in SOURCES:
            raise TraitlensError(f"recipe '{text}': unknown source '{source}' (choose from {', '.join(SOURCES)})")
    if len(set(names)) != len(names):
        raise TraitlensError(f"recipe '{text}': a source is listed twice")
    if method not in METHODS:
        raise TraitlensError(f"recipe '{text}': unknown method '{method}' (choose from {', '.join(METHODS)})")
    if mode not in MODES:
        raise TraitlensError(f"recipe '{text}': unknown mode '{mode}' (choose from {', '.join(MODES)})")
    match = _PLACEMENT.fullmatch(placement)
    if match is None:
        raise TraitlensError(f"recipe '{text}': placement '{placement}' is not best, bandK, A-B or L")
    if match.group(4) is not None and int(match.group(4)) < int(match.group(3)):
        raise TraitlensError(f"recipe '{text}': layer band {placement} is empty")
    return Recipe(name, names, method, placement, mode)


def parse_recipes(items: str | Sequence[str]) -> list[Recipe]:
    """A comma-separated list (or a sequence) of recipes; duplicates and an empty list are errors."""
    texts = [t for t in (items.split(",") if isinstance(items, str) else items) if t.strip()]
    if not texts:
        raise TraitlensError("no recipes given")
    recipes = [parse_recipe(t) for t in texts]
    specs = [r.spec for r in recipes]
    if len(set(specs)) != len(specs):
        raise TraitlensError(f"recipe {next(s for s in specs if specs.count(s) > 1)} is listed twice")
    return recipes


def recipe_layers(recipe: Recipe, best: int | None, n_layers: int) -> list[int]:
    """The layers a recipe edits: explicit ones must lie inside the model; bands are clipped to it."""
    match = _PLACEMENT.fullmatch(recipe.placement)
    if match.group(3) is not None:  # explicit
        low = int(match.group(3))
        high = int(match.group(4)) if match.group(4) is not None else low
        if high >= n_layers:
            raise TraitlensError(
                f"recipe '{recipe.name}': layers {recipe.placement} lie outside the model's 0..{n_layers - 1}"
            )
        return list(range(low, high + 1))
    if best is None:
        raise TraitlensError(f"recipe '{recipe.name}': no best layer to place it at")
    width = int(match.group(2) or 0)
    return list(range(max(0, best - width), min(n_layers - 1, best + width) + 1))


def recipe_vector(
    model, trait: Trait, recipe: Recipe, directions: dict[int, Direction], layers: Sequence[int]
) -> SteeringVector:
    """Offset at alpha = 1: each layer's unit direction towards the target pole times its residual
    norm, divided by the number of layers (a band spreads one edit's strength over its layers)."""
    sign = trait.sign  # directions point to the dimension's first pole
    share = 1.0 / len(layers)
    offsets, scales, stats = {}, {}, {}
    for layer in layers:
        direction = directions[layer]
        scales[layer] = direction.resid_norm * share
        offsets[layer] = sign * scales[layer] * direction.vector
        stats[layer] = direction.stats()
    return SteeringVector(
        offsets,
        hook="resid_post",
        model=model.fingerprint.to_dict(),
        trait=str(trait),
        method=recipe.method,
        scale_mode="resid_norm",
        scales=scales,
        stats=stats,
        extra={"recipe": recipe.to_dict() | {"layers": list(layers)}},
    )
