"""What harmonising a study accumulates: canonical frames, quarantine entries and problems.

Kept as plain mutable collectors inside one call of :func:`oncorwe.harmonise.run`; the public
result is the frozen :class:`oncorwe.model.CanonicalModel`. The rows themselves are made in the
engine (centre files: :mod:`oncorwe.harmonise._files_in_engine`; OMOP CDMs:
:mod:`oncorwe.harmonise._omop`) and arrive here as whole frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

__all__ = ["Accumulator", "TableKey"]

#: (file, sheet) of a source table
TableKey = tuple[str, str | None]


@dataclass
class Accumulator:
    """Frames for the canonical tables of one study, and everything set aside."""

    #: quarantine entries made in Python (unreadable files, rows a reader could not lay out)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: (centre, file, sheet) -> records read
    read: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    columns: list[dict[str, Any]] = field(default_factory=list)
    #: canonical table name -> frames (each source's rows, executed in bulk)
    frames: dict[str, list[pl.DataFrame]] = field(
        default_factory=lambda: {name: [] for name in ("patients", "person", "conditions", "observations",
                                                       "concept_ancestor", "drug_exposures", "assessments",
                                                       "events", "adverse_events")}
    )
    #: quarantine entries as frames (QUARANTINE_SCHEMA)
    quarantine_frames: list[pl.DataFrame] = field(default_factory=list)
    #: (centre_id, file, sheet, row, patient_id) frames: which patient each row read belongs to
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
