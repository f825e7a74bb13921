"""The result of the analysis stage: named tables (polars) and the settings they were made with.

Written as one Parquet file per table plus ``analysis.json`` (settings and study information), and
read back unchanged, so the report (or a reader) can work from a finished analysis alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import polars as pl

from oncorwe.errors import InputError
from oncorwe.model.results import read_stage_result, write_stage_result

__all__ = ["PATIENT_LEVEL_TABLES", "TABLE_NAMES", "AnalysisResult"]

#: Every table of an analysis result, in report order.
TABLE_NAMES = (
    "attrition",
    "reconciliation",
    "quarantine_summary",
    "table1",
    "table1_smd",
    "response",
    "response_tests",
    "survival_summary",
    "survival_rates",
    "survival_curves",
    "logrank",
    "descriptives",
    "landmark",
    "cox_models",
    "cox",
    "cox_ph_test",
    "subsequent",
    "regimens",
    # grade >= threshold adverse events of the index line (issue 16; empty without [adverse_events])
    "toxicity",
    # the adjusted comparison, competing risks and imputation (issue 15; empty without them)
    "adjusted_weights",
    "adjusted_balance",
    "adjusted_overlap",
    "adjusted_km",
    "adjusted_survival",
    "adjusted_cox",
    "competing_curves",
    "competing_incidence",
    "competing_tests",
    "competing_fine_gray",
    "published",
)

#: Tables only an analysis of the patient rows makes (not ``oncorwe combine``, which has counts).
PATIENT_LEVEL_TABLES = (
    "adjusted_weights", "adjusted_balance", "adjusted_overlap", "adjusted_km", "adjusted_survival",
    "adjusted_cox", "competing_curves", "competing_incidence", "competing_tests",
    "competing_fine_gray", "toxicity",
)


@dataclass(frozen=True)
class AnalysisResult:
    """Every table the protocol's analyses produce, and the settings used.

    Attributes
    ----------
    info : study name, title, reference, the number of patients and centres, and the analysis
        settings (splits, rate times, landmark, Cox covariates, min_cell_count, ...). JSON-able.
    tables : table name -> polars frame; the names are :data:`TABLE_NAMES` (a table the run did not
        make, e.g. ``attrition`` when no cohort result was passed, is an empty frame).
    """

    info: Mapping[str, Any]
    tables: Mapping[str, pl.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tables) - set(TABLE_NAMES))
        if unknown:
            raise InputError(f"AnalysisResult: unknown table name(s) {', '.join(unknown)}")
        full = {name: self.tables.get(name, pl.DataFrame()) for name in TABLE_NAMES}
        object.__setattr__(self, "tables", MappingProxyType(full))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self.tables:
            raise InputError(f"AnalysisResult has no table {name!r}; tables: {', '.join(TABLE_NAMES)}")
        return self.tables[name]

    def to_dict(self) -> dict[str, Any]:
        """Settings and tables as plain Python (tables as lists of row dicts)."""
        return {"info": dict(self.info), "tables": {k: v.to_dicts() for k, v in self.tables.items()}}

    def write(self, directory: str | Path) -> Path:
        """Write ``analysis.json`` and ``<table>.parquet`` into ``directory`` (created); returns it."""
        return write_stage_result(directory, "analysis", {"info": dict(self.info)}, self.tables)

    @classmethod
    def read(cls, directory: str | Path) -> AnalysisResult:
        """Read a result written by :meth:`write`."""
        meta, tables = read_stage_result(directory, "analysis")
        return cls(info=meta["info"], tables=tables)


