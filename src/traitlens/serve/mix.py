"""A mix: strengths per shipped vector, in multiples of each vector's recommended alpha.

One composite vector carries the whole mix (offsets on a shared layer add), so a mix is applied,
measured and saved exactly like any other steering vector.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from traitlens.errors import TraitlensError
from traitlens.steering.inject import Steering
from traitlens.steering.vector import SteeringVector, compose

__all__ = ["MIX_LIMIT", "check_mix", "mix_vector", "mix_steering", "check_name"]

MIX_LIMIT = 3.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_mix(mix: object, vectors: Mapping[str, SteeringVector]) -> dict[str, float]:
    if not isinstance(mix, dict):
        raise TraitlensError("mix must be an object of vector names to strengths")
    out = {}
    for name, value in mix.items():
        if name not in vectors:
            raise TraitlensError(f"unknown vector '{name}' in mix: use {', '.join(sorted(vectors))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TraitlensError(f"mix strength for '{name}' must be a finite number, not {value!r}")
        if abs(value) > MIX_LIMIT:
            raise TraitlensError(f"mix strength for '{name}' is {value}; the limit is -{MIX_LIMIT}..{MIX_LIMIT}")
        if value:
            out[name] = float(value)
    return out


def mix_vector(mix: Mapping[str, float], vectors: Mapping[str, SteeringVector]) -> SteeringVector | None:
    """The mix as one vector at alpha = 1, or None for the unsteered model."""
    parts = [vectors[name].scaled(value * (vectors[name].recommended_alpha or 1.0)) for name, value in mix.items()]
    if not parts:
        return None
    vector = compose(parts)
    vector.extra = {"mix": dict(mix)}
    return vector


def mix_steering(mix: Mapping[str, float], vectors: Mapping[str, SteeringVector]) -> Steering | None:
    vector = mix_vector(mix, vectors)
    return Steering(vector, 1.0) if vector is not None else None


def check_name(name: object) -> str:
    """A saved mix's directory name: letters, digits, '-' and '_' only, so it cannot leave the
    output directory."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TraitlensError("name must be 1-64 letters, digits, '-' or '_' (starting with a letter or digit)")
    return name
