"""The endpoints stage's result: the per-patient analysis table and its trace, frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from oncorwe.errors import InputError
from oncorwe.model.results import read_stage_result, write_stage_result
from oncorwe.model.schema import ENDPOINT_SCHEMA

__all__ = ["TRACE_SCHEMA", "EndpointsResult"]

TRACE_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "index_line": pl.Int64(),
    "index_sources": pl.String(),
    "prior_failure_sources": pl.String(),
    "response_sources": pl.String(),
    "pfs_date": pl.Date(),
    "pfs_sources": pl.String(),
    "os_date": pl.Date(),
    "os_sources": pl.String(),
    "subsequent_line": pl.Int64(),
    "subsequent_sources": pl.String(),
}


@dataclass(frozen=True, eq=False)
class EndpointsResult:
    """The per-patient analysis table (the fixed :data:`oncorwe.model.schema.ENDPOINT_SCHEMA`
    columns, then the protocol's covariates: ``Protocol.analysis_schema()``; one row per patient of
    the analysis set) and, per patient, the records each derived value came from.

    The trace holds patient identifiers and record sources: it is for ``oncorwe explain`` and
    auditing at the centre, never for reports or aggregate exports. It is None when it was left in
    the engine (``endpoints.run(..., keep_in_engine=True)``); ``engine_tables["trace"]`` names it.
    """

    protocol_name: str
    analysis_table: pl.DataFrame
    trace: pl.DataFrame | None
    engine_tables: Mapping[str, str] = field(default_factory=dict)

    def write(self, folder: str | Path) -> Path:
        """Write ``analysis.parquet``, ``trace.parquet`` and ``endpoints.json``; returns the folder."""
        meta = {"protocol": self.protocol_name, "n_patients": self.analysis_table.height,
                "engine_tables": dict(sorted(self.engine_tables.items()))}
        frames = {"analysis": self.analysis_table}
        if self.trace is not None:
            frames["trace"] = self.trace
        return write_stage_result(folder, "endpoints", meta, frames)

    @classmethod
    def read(cls, folder: str | Path) -> EndpointsResult:
        """Read a result written by :meth:`write`."""
        meta, frames = read_stage_result(
            folder, "endpoints", {"analysis": {}, "trace": TRACE_SCHEMA}, optional=("trace",)
        )
        missing = [c for c in ENDPOINT_SCHEMA if c not in frames["analysis"].columns]
        if missing:
            raise InputError(f"{folder}: analysis.parquet lacks the endpoint column(s) {', '.join(missing)}")
        return cls(protocol_name=str(meta["protocol"]), analysis_table=frames["analysis"],
                   trace=frames.get("trace"), engine_tables=dict(meta.get("engine_tables") or {}))

    def explain(self, patient_id: str) -> str:
        """How the patient's index date, regimen, best response, PFS and OS were derived."""
        rows = self.analysis_table.filter(pl.col("patient_id") == patient_id)
        traces = self.trace.filter(pl.col("patient_id") == patient_id) if self.trace is not None else None
        if rows.is_empty():
            raise InputError(
                f"patient_id {patient_id!r}: not in the analysis set of {self.protocol_name} "
                "(see the cohort's exclusions)"
            )
        a = rows.row(0, named=True)
        if traces is None:
            where = self.engine_tables.get("trace", "the engine")
            tr: dict[str, object] = {**dict.fromkeys(TRACE_SCHEMA), **{
                k: f"(left in the engine: {where})" for k in TRACE_SCHEMA if k.endswith("_sources")}}
        else:
            tr = traces.row(0, named=True) if not traces.is_empty() else dict.fromkeys(TRACE_SCHEMA)
        lines = [
            f"patient {patient_id} (centre {a['centre_id']})",
            f"  index date {a['index_date']}: start of line {tr['index_line']} "
            f"(records: {tr['index_sources']}); prior failure from: {tr['prior_failure_sources'] or 'none required'}",
            f"  regimen {a['regimen_class']} ({a['regimen_ingredients']}), "
            f"combined with another drug class: {a['combined_with_targeted_or_immuno']}, "
            f"duration {a['chemo_duration_weeks']:.1f} weeks",
            f"  age at index {_num(a['age_years'])} years; covariates: "
            + ("; ".join(f"{k} {a[k]}" for k in a if k not in ENDPOINT_SCHEMA) or "none"),
            f"  best response {a['best_response']} ({a['best_response_source']}; "
            f"records: {tr['response_sources'] or 'none in the window'})",
            f"  PFS {_num(a['pfs_months'])} months, {'event' if a['pfs_event'] else 'censored'} "
            f"on {tr['pfs_date']} (records: {tr['pfs_sources']})",
            f"  OS {_num(a['os_months'])} months, {'death' if a['os_event'] else 'censored'} "
            f"on {tr['os_date']} (records: {tr['os_sources']})",
        ]
        if a["duration_of_response_months"] is not None:
            lines.append(
                f"  duration of response {_num(a['duration_of_response_months'])} months "
                f"({'event' if a['duration_of_response_event'] else 'censored'})"
            )
        if a["subsequent_therapy"]:
            lines.append(
                f"  subsequent therapy {a['subsequent_therapy_class']} (line {tr['subsequent_line']}, "
                f"records: {tr['subsequent_sources']}), best response {a['subsequent_best_response']}"
            )
        else:
            lines.append("  no subsequent therapy recorded")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"
