"""The assessment result: what the CLI prints, the JSON holds and the Python API returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlens._io import write_json
from traitlens.errors import TraitlensError
from traitlens.instrument.items import DIMENSIONS

__all__ = ["DimensionResult", "AssessmentResult"]


@dataclass
class DimensionResult:
    dimension: str
    share_first: float  # share of the first pole (E, S, T or J)
    ci95_first: tuple[float, float]
    n_items: int
    readout: str  # "label", "option" or "sample"
    readout_reason: str
    reliability: dict[str, float] = field(default_factory=dict)
    valid: bool = True  # False: no readout passed the validity checks, so no letter is given

    @property
    def poles(self) -> tuple[str, str]:
        return DIMENSIONS[self.dimension]

    @property
    def letter(self) -> str:
        first, second = self.poles
        if not self.valid:
            return "?"  # the instrument cannot say for this model
        if abs(self.share_first - 0.5) < 1e-9:
            return "X"  # undetermined: exactly balanced
        return first if self.share_first > 0.5 else second

    def share(self, pole: str) -> float:
        return self.share_first if pole == self.poles[0] else 1.0 - self.share_first

    def to_dict(self) -> dict[str, Any]:
        first, second = self.poles
        lo, hi = self.ci95_first
        return {
            first: round(self.share_first, 6),
            second: round(1 - self.share_first, 6),
            "ci95": {first: [round(lo, 6), round(hi, 6)], second: [round(1 - hi, 6), round(1 - lo, 6)]},
            "letter": self.letter,
            "n_items": self.n_items,
            "readout": self.readout,
            "readout_reason": self.readout_reason,
            "valid": self.valid,
            "reliability": {k: (None if v != v else round(v, 6)) for k, v in self.reliability.items()},
        }

    @classmethod
    def from_dict(cls, dimension: str, data: dict[str, Any]) -> DimensionResult:
        first = DIMENSIONS[dimension][0]
        reliability = {k: float("nan") if v is None else v for k, v in data.get("reliability", {}).items()}
        return cls(
            dimension,
            data[first],
            tuple(data["ci95"][first]),
            data["n_items"],
            data["readout"],
            data.get("readout_reason", ""),
            reliability,
            data.get("valid", True),
        )


@dataclass
class AssessmentResult:
    model: dict[str, Any]
    protocol: str
    split: str
    items_source: str
    items_hash: str
    dimensions: dict[str, DimensionResult]
    items: list[dict[str, Any]]
    warnings: list[str]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    # readout validity per dimension, option-length balance, agreement with a second instrument
    validity: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return "".join(self.dimensions[d].letter if d in self.dimensions else "-" for d in DIMENSIONS)

    @property
    def reliable(self) -> bool:
        return not self.warnings

    def pole_by_item(self, pole: str) -> dict[str, float]:
        """Each item's probability of ``pole`` (a letter), by item id, on the dimension it names:
        the per-item values a paired test of that pole's shift pairs."""
        dimension = next((d for d, poles in DIMENSIONS.items() if pole in poles), None)
        if dimension is None:
            raise ValueError(f"{pole!r} is no pole of {', '.join(DIMENSIONS)}")
        first = pole == DIMENSIONS[dimension][0]
        return {r["id"]: r["p_first"] if first else 1 - r["p_first"] for r in self.items if r["dimension"] == dimension}

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "dimensions": {d: r.to_dict() for d, r in self.dimensions.items()},
            "protocol": self.protocol,
            "split": self.split,
            "reliable": self.reliable,
            "warnings": self.warnings,
            "model": self.model,
            "items_source": self.items_source,
            "items_hash": self.items_hash,
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "validity": self.validity,
            "items": self.items,
        }

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> AssessmentResult:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            dims = {d: DimensionResult.from_dict(d, v) for d, v in data["dimensions"].items()}
            return cls(
                data["model"],
                data["protocol"],
                data["split"],
                data["items_source"],
                data["items_hash"],
                dims,
                data["items"],
                data["warnings"],
                data["seconds"],
                data.get("settings", {}),
                data.get("validity", {}),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TraitlensError(f"{path}: not a readable assessment.json ({exc})") from None


def record(**values: Any) -> dict[str, Any]:
    """A per-item JSON record with floats rounded (the JSON is for reading, not re-analysis)."""

    def clean(v):
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    return {k: clean(v) for k, v in values.items()}
