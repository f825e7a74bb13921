"""oncorwe.endpoints: RECIST 1.1 best overall response, PFS, OS, duration of response, time on
treatment and subsequent therapy, per patient of the analysis set.

``run(con, cohort_result, protocol)`` derives everything as Ibis expressions over the canonical
tables in ``con`` (and the cohort's lines and index, which the cohort stage left there), and pulls
only the per-patient analysis table (and its trace, unless ``keep_in_engine``) into Python.
"""

from __future__ import annotations

import uuid
from typing import Any

import polars as pl

from oncorwe.cohort import CohortResult
from oncorwe.endpoints._derive import TRACE_COLUMNS, analysis_expressions
from oncorwe.endpoints._response import RESPONSE_COLUMNS, best_overall_response
from oncorwe.endpoints._result import TRACE_SCHEMA, EndpointsResult
from oncorwe.errors import DataError, InputError
from oncorwe.model import engine
from oncorwe.model.store import read_tables
from oncorwe.protocol import Protocol

__all__ = [
    "RESPONSE_COLUMNS",
    "TRACE_COLUMNS",
    "TRACE_SCHEMA",
    "EndpointsResult",
    "best_overall_response",
    "run",
]


def _to_polars(expr: Any, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.select(list(schema)).cast(schema).sort("patient_id")  # type: ignore[arg-type]


def run(
    con: Any, cohort_result: CohortResult, protocol: Protocol, *, prefix: str = "", keep_in_engine: bool = False
) -> EndpointsResult:
    """Derive the per-patient endpoints of the analysis set.

    Parameters
    ----------
    con
        The Ibis backend holding the canonical tables the cohort was selected from.
    cohort_result
        The result of :func:`oncorwe.cohort.run` (lines of therapy and index).
    protocol
        The study protocol (response rules, endpoint conventions).
    prefix
        Table-name prefix of the canonical tables.
    keep_in_engine
        Leave the trace (the records behind each patient's values) in the engine as
        ``<prefix>endpoints_trace`` (``result.trace`` is None): for millions of patients.

    Returns
    -------
    EndpointsResult
        ``analysis_table`` with exactly ``protocol.analysis_schema()``, one row per
        patient of ``cohort_result.index``, and the ``trace`` of the records behind each value.
    """
    if not isinstance(cohort_result, CohortResult):
        raise InputError(f"cohort_result: expected a CohortResult, got {type(cohort_result).__name__}")
    if not isinstance(protocol, Protocol):
        raise InputError(f"protocol: expected an oncorwe.protocol.Protocol, got {type(protocol).__name__}")
    tables = read_tables(con, prefix=prefix)
    index, lines = _cohort_in_engine(con, cohort_result)
    analysis_expr, trace_expr = analysis_expressions(con, tables, index, lines, protocol)
    analysis = _to_polars(analysis_expr, protocol.analysis_schema())
    if analysis.height != cohort_result.index.height:
        lost = sorted(set(cohort_result.index["patient_id"]) - set(analysis["patient_id"]))
        raise DataError([f"endpoints: patient {pid} of the analysis set has no index line" for pid in lost[:20]])
    if keep_in_engine:
        trace_name = f"{prefix}endpoints_trace"
        engine.materialise(con, trace_expr, trace_name)
        return EndpointsResult(protocol_name=protocol.name, analysis_table=analysis, trace=None,
                               engine_tables={"trace": trace_name})
    return EndpointsResult(protocol_name=protocol.name, analysis_table=analysis,
                           trace=_to_polars(trace_expr, TRACE_SCHEMA))


def _cohort_in_engine(con: Any, cohort_result: CohortResult) -> tuple[Any, Any]:
    """The cohort's index and lines as tables of ``con``: those the cohort stage stored there when
    they are still there (same row counts), else the result's frames sent to the engine."""
    stored = dict(cohort_result.engine_tables)
    present = set(con.list_tables())
    index_name, lines_name = stored.get("index"), stored.get("lines")
    if index_name in present and lines_name in present:
        index, lines = con.table(index_name), con.table(lines_name)
        if (int(index.count().to_pyarrow().as_py()) == cohort_result.index.height
                and int(lines.count().to_pyarrow().as_py()) == cohort_result.n_lines):
            return index, lines
    if cohort_result.lines is None:
        raise InputError(
            f"cohort_result: its lines of therapy were left in the engine as {lines_name!r}, which this "
            "connection does not hold (unchanged); run the cohort stage on this connection, or without "
            "keep_in_engine"
        )
    # engine.upload: Spark has no temporary tables (a temporary view there)
    index = engine.upload(con, f"oncorwe_tmp_index_{uuid.uuid4().hex[:12]}", cohort_result.index, temp=True)
    lines = engine.upload(con, f"oncorwe_tmp_lines_{uuid.uuid4().hex[:12]}", cohort_result.lines, temp=True)
    return index, lines

