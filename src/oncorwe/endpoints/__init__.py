"""oncorwe.endpoints: RECIST 1.1 best overall response, PFS, OS, duration of response, time on
treatment and subsequent therapy, per patient of the analysis set.

``run(con, cohort_result, protocol)`` derives everything as Ibis expressions over the canonical
tables in ``con`` (the cohort's lines and index are sent to the backend), and pulls only the
per-patient analysis table (and its trace) into Python.
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
from oncorwe.model.schema import ANALYSIS_SCHEMA
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


def run(con: Any, cohort_result: CohortResult, protocol: Protocol, *, prefix: str = "") -> EndpointsResult:
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

    Returns
    -------
    EndpointsResult
        ``analysis_table`` with exactly :data:`oncorwe.model.schema.ANALYSIS_SCHEMA`, one row per
        patient of ``cohort_result.index``, and the ``trace`` of the records behind each value.
    """
    if not isinstance(cohort_result, CohortResult):
        raise InputError(f"cohort_result: expected a CohortResult, got {type(cohort_result).__name__}")
    if not isinstance(protocol, Protocol):
        raise InputError(f"protocol: expected an oncorwe.protocol.Protocol, got {type(protocol).__name__}")
    tables = read_tables(con, prefix=prefix)
    # engine.upload: Spark has no temporary tables (a temporary view there)
    index = engine.upload(con, f"oncorwe_tmp_index_{uuid.uuid4().hex[:12]}", cohort_result.index, temp=True)
    lines = engine.upload(con, f"oncorwe_tmp_lines_{uuid.uuid4().hex[:12]}", cohort_result.lines, temp=True)
    analysis_expr, trace_expr = analysis_expressions(con, tables, index, lines, protocol)
    analysis = _to_polars(analysis_expr, ANALYSIS_SCHEMA)
    trace = _to_polars(trace_expr, TRACE_SCHEMA)
    if analysis.height != cohort_result.index.height:
        lost = sorted(set(cohort_result.index["patient_id"]) - set(analysis["patient_id"]))
        raise DataError([f"endpoints: patient {pid} of the analysis set has no index line" for pid in lost[:20]])
    return EndpointsResult(protocol_name=protocol.name, analysis_table=analysis, trace=trace)

