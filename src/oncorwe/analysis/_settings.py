"""The analysis settings read from a protocol, checked against the analysis table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from oncorwe.errors import ProtocolError

__all__ = ["AnalysisSettings", "published_path", "settings_from_protocol"]


@dataclass(frozen=True)
class AnalysisSettings:
    """What the protocol's ``[analysis]`` section asks for (see the protocol documentation)."""

    km_splits: tuple[str, ...]
    survival_rates_months: tuple[float, ...]
    landmark_weeks: float
    response_by: tuple[str, ...]
    cox_covariates: tuple[str, ...]
    cox_reference: Mapping[str, str]
    min_cell_count: int
    time_unit: str
    table1_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "km_splits": list(self.km_splits),
            "survival_rates_months": list(self.survival_rates_months),
            "landmark_weeks": self.landmark_weeks,
            "response_by": list(self.response_by),
            "cox_covariates": list(self.cox_covariates),
            "cox_reference": dict(sorted(self.cox_reference.items())),
            "min_cell_count": self.min_cell_count,
            "time_unit": self.time_unit,
            "table1_by": self.table1_by,
        }


def settings_from_protocol(protocol: Any) -> AnalysisSettings:
    """Read ``protocol.analysis``; every missing or ill-typed key is named in one ProtocolError."""
    section = getattr(protocol, "analysis", None)
    if section is None:
        raise ProtocolError("protocol has no [analysis] section")
    problems: list[str] = []

    def get(key: str) -> Any:
        value = section.get(key) if isinstance(section, Mapping) else getattr(section, key, None)
        if value is None and key != "table1_by":
            problems.append(f"analysis.{key}: missing")
        return value

    values = {key: get(key) for key in (
        "km_splits", "survival_rates_months", "landmark_weeks", "response_by", "cox_covariates",
        "cox_reference", "min_cell_count", "time_unit", "table1_by",
    )}
    if problems:
        raise ProtocolError(problems)
    if values["time_unit"] != "months":
        problems.append(f"analysis.time_unit: {values['time_unit']!r} is not supported (allowed: 'months')")
    if int(values["min_cell_count"]) < 0:
        problems.append("analysis.min_cell_count: must be >= 0")
    if float(values["landmark_weeks"]) <= 0:
        problems.append("analysis.landmark_weeks: must be > 0")
    if problems:
        raise ProtocolError(problems)
    return AnalysisSettings(
        km_splits=tuple(values["km_splits"]),
        survival_rates_months=tuple(float(m) for m in values["survival_rates_months"]),
        landmark_weeks=float(values["landmark_weeks"]),
        response_by=tuple(values["response_by"]),
        cox_covariates=tuple(values["cox_covariates"]),
        cox_reference={str(k): str(v) for k, v in dict(values["cox_reference"]).items()},
        min_cell_count=int(values["min_cell_count"]),
        time_unit=str(values["time_unit"]),
        table1_by=values["table1_by"] or None,
    )


def published_path(protocol: Any) -> Path | None:
    """The published-figures file the protocol's reference names, or None.

    A relative name is looked up beside the protocol file (``protocol.path`` / ``source_path`` when
    the protocol records it), then among the studies shipped with oncorwe.
    """
    reference = getattr(protocol, "reference", None)
    name = None
    if reference is not None:
        name = reference.get("published") if isinstance(reference, Mapping) else getattr(reference, "published", None)
    if not name:
        return None
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    for attr in ("path", "source_path", "source"):
        origin = getattr(protocol, attr, None)
        if isinstance(origin, str | Path) and Path(origin).is_file():
            beside = Path(origin).parent / candidate
            if beside.is_file():
                return beside
    shipped = resources.files("oncorwe.protocol") / "studies" / str(candidate)
    if shipped.is_file():
        return Path(str(shipped))
    raise ProtocolError(f"reference.published: file {name!r} not found beside the protocol nor among shipped studies")
