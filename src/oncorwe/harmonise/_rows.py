"""What harmonising a centre accumulates: canonical rows, quarantine entries and problems.

Kept as plain mutable collectors inside one call of :func:`oncorwe.harmonise.run`; the public
result is the frozen :class:`oncorwe.model.CanonicalModel`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

__all__ = ["Accumulator", "TableKey"]

#: (file, sheet) of a source table
TableKey = tuple[str, str | None]


@dataclass
class Accumulator:
    """Rows for the canonical tables of one study, and everything set aside."""

    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    exposures: list[dict[str, Any]] = field(default_factory=list)
    assessments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: (centre, file, sheet) -> records read
    read: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    #: (centre, file, sheet) -> rejected rows
    rejected: dict[tuple[str, str, str | None], set[int]] = field(default_factory=dict)
    #: (centre, file, sheet, row) -> patient_id the row belongs to
    row_patient: dict[tuple[str, str, str | None, int], str] = field(default_factory=dict)
    columns: list[dict[str, Any]] = field(default_factory=list)
    #: whole frames (OMOP sources, executed in bulk): canonical table name -> frames
    frames: dict[str, list[pl.DataFrame]] = field(
        default_factory=lambda: {name: [] for name in ("patients", "person", "conditions", "observations",
                                                       "concept_ancestor", "drug_exposures", "assessments",
                                                       "events")}
    )
    #: quarantine entries as frames (QUARANTINE_SCHEMA)
    quarantine_frames: list[pl.DataFrame] = field(default_factory=list)
    #: (centre_id, file, sheet, row, patient_id) frames: which patient each bulk-read row belongs to
    row_frames: list[pl.DataFrame] = field(default_factory=list)

    def quarantine_value(
        self,
        centre: str,
        file: str,
        sheet: str | None,
        row: int,
        field_name: str,
        raw: str | None,
        reason: str,
        *,
        reject: bool,
    ) -> None:
        """Record a doubtful value; ``reject`` drops the whole record, else only the value."""
        self.quarantine.append(
            {
                "centre_id": centre,
                "file": file,
                "row": row,
                "field": field_name,
                "raw_value": raw,
                "reason": reason,
                "action": "rejected" if reject else "value_nulled",
                "sheet": sheet,
            }
        )
        if reject:
            self.rejected.setdefault((centre, file, sheet), set()).add(row)

    def is_rejected(self, centre: str, file: str, sheet: str | None, row: int) -> bool:
        """Whether a record was already rejected."""
        return row in self.rejected.get((centre, file, sheet), set())


def add_days(date: dt.date, days: float) -> dt.date:
    """A date plus a number of days, rounded to the whole day."""
    return date + dt.timedelta(days=round(days))
