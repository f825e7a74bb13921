"""The cohort stage's result: attrition, exclusions, lines of therapy and the index, frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from oncorwe.errors import InputError
from oncorwe.model.results import read_stage_result, write_stage_result
from oncorwe.model.schema import ATTRITION_SCHEMA

__all__ = ["EXCLUSIONS_SCHEMA", "INDEX_SCHEMA", "LINES_SCHEMA", "CohortResult"]

EXCLUSIONS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "centre_id": pl.String(),
    "reason": pl.String(),
}

INDEX_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "centre_id": pl.String(),
    "index_date": pl.Date(),
    "index_line": pl.Int64(),
    "prior_line": pl.Int64(),
    "prior_failure_date": pl.Date(),
    "prior_failure_sources": pl.String(),
}

LINES_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "line_number": pl.Int64(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "ingredients": pl.String(),
    "index_class_ingredients": pl.String(),
    "drug_classes": pl.String(),
    "regimen_class": pl.String(),
    "has_index_class": pl.Boolean(),
    "has_prior_class": pl.Boolean(),
    "has_other_than_index_class": pl.Boolean(),
    "end_reason": pl.String(),
    "sources": pl.String(),
}

_FRAMES = {
    "attrition": ATTRITION_SCHEMA,
    "exclusions": EXCLUSIONS_SCHEMA,
    "lines": LINES_SCHEMA,
    "index": INDEX_SCHEMA,
}


@dataclass(frozen=True, eq=False)
class CohortResult:
    """Who is in the analysis set, why the others are not, and everyone's lines of therapy.

    Attributes
    ----------
    protocol_name : the protocol that defined the cohort.
    attrition : :data:`oncorwe.model.schema.ATTRITION_SCHEMA`; step 0 ``source_records``, then one
        step per criterion in protocol order; overall rows (``centre_id`` null) then per centre.
    exclusions : one row per excluded patient record (patient_id, centre_id, reason).
    lines : lines of therapy of every patient (:data:`LINES_SCHEMA`), or None when they were left
        in the engine (``cohort.run(..., keep_in_engine=True)``, for CDMs of millions of patients).
    index : one row per patient of the analysis set (:data:`INDEX_SCHEMA`).
    engine_tables : the tables the stage left in the engine that ran it (``"lines"``,
        ``"index"``: table names), with ``n_lines`` rows of lines; :func:`oncorwe.endpoints.run`
        reads them there instead of sending the frames back.
    n_lines : the number of lines of therapy (rows of ``lines``, wherever they are).
    """

    protocol_name: str
    attrition: pl.DataFrame
    exclusions: pl.DataFrame
    lines: pl.DataFrame | None
    index: pl.DataFrame
    engine_tables: Mapping[str, str] = field(default_factory=dict)
    n_lines: int | None = None

    @property
    def n_eligible(self) -> int:
        """Number of patients in the analysis set."""
        return self.index.height

    def write(self, folder: str | Path) -> Path:
        """Write the frames as parquet plus ``cohort.json``; returns the folder."""
        meta = {"protocol": self.protocol_name, "n_eligible": self.n_eligible,
                "n_excluded": self.exclusions.height, "n_lines": self.n_lines,
                "engine_tables": dict(sorted(self.engine_tables.items()))}
        frames = {name: getattr(self, name) for name in _FRAMES if getattr(self, name) is not None}
        return write_stage_result(folder, "cohort", meta, frames)

    @classmethod
    def read(cls, folder: str | Path) -> CohortResult:
        """Read a result written by :meth:`write` (``lines`` stays None when they were left in the
        engine; ``engine_tables`` then names where)."""
        meta, frames = read_stage_result(folder, "cohort", _FRAMES, optional=("lines",))
        return cls(protocol_name=str(meta["protocol"]), lines=frames.pop("lines", None), **frames,
                   engine_tables=dict(meta.get("engine_tables") or {}), n_lines=meta.get("n_lines"))

    def explain(self, patient_id: str) -> str:
        """Why the patient is in or out, their index and lines of therapy, with record sources."""
        out: list[str] = [f"patient {patient_id}"]
        excluded = self.exclusions.filter(pl.col("patient_id") == patient_id)
        index = self.index.filter(pl.col("patient_id") == patient_id)
        if excluded.is_empty() and index.is_empty():
            raise InputError(f"patient_id {patient_id!r}: not found in the cohort of {self.protocol_name}")
        if not excluded.is_empty():
            out.append(f"  excluded: {excluded['reason'][0]} (first criterion failed, protocol order)")
        else:
            row = index.row(0, named=True)
            failure = (f", after prior line {row['prior_line']} failed on {row['prior_failure_date']} "
                       f"(from {row['prior_failure_sources']})" if row["prior_line"] is not None else "")
            out.append(f"  eligible: index date {row['index_date']} = start of line {row['index_line']}{failure}")
        if self.lines is None:
            where = self.engine_tables.get("lines", "the engine")
            out.append(f"  lines of therapy: left in the engine ({where}); rerun the cohort stage without "
                       "keep_in_engine to see them here")
            return "\n".join(out)
        lines = self.lines.filter(pl.col("patient_id") == patient_id).sort("line_number")
        out.append(f"  lines of therapy ({lines.height}):")
        for line in lines.iter_rows(named=True):
            regimen = f", regimen {line['regimen_class']}" if line["regimen_class"] else ""
            out.append(
                f"    {line['line_number']}. {line['start_date']} to {line['end_date']}: {line['ingredients']} "
                f"[{line['drug_classes']}]{regimen}; ended: {line['end_reason']}; records: {line['sources']}"
            )
        return "\n".join(out)
