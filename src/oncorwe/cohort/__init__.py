"""oncorwe.cohort: protocol criteria in order, attrition, lines of therapy and the index date.

``run(con, protocol)`` evaluates everything as Ibis expressions over the canonical tables of the
backend ``con`` (DuckDB, PostgreSQL, Spark); the exclusions, the lines and the index of the analysis
set come back as polars frames in a frozen :class:`CohortResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from oncorwe.cohort._baseline import baseline_values
from oncorwe.cohort._eligibility import ELIGIBILITY_COLUMNS, evaluate
from oncorwe.cohort._lines import (
    LINE_COLUMNS,
    build_lines,
    holds_class,
    line_sources,
    materialise,
    with_next_start,
)
from oncorwe.cohort._result import EXCLUSIONS_SCHEMA, INDEX_SCHEMA, LINES_SCHEMA, CohortResult
from oncorwe.errors import DataError, InputError
from oncorwe.model import engine
from oncorwe.model.schema import ATTRITION_SCHEMA
from oncorwe.model.store import read_tables
from oncorwe.protocol import Protocol

__all__ = [
    "ELIGIBILITY_COLUMNS",
    "EXCLUSIONS_SCHEMA",
    "INDEX_SCHEMA",
    "LINES_SCHEMA",
    "LINE_COLUMNS",
    "CohortResult",
    "attrition_table",
    "baseline_values",
    "holds_class",
    "line_sources",
    "materialise",
    "run",
    "with_next_start",
]

_MERGES_SCHEMA: dict[str, pl.DataType] = {
    "kept_patient_id": pl.String(),
    "merged_patient_id": pl.String(),
    "rule": pl.String(),
}


def _frame(expr: Any, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.select(list(schema)).cast(schema)  # type: ignore[arg-type]


def _merges(con: Any, prefix: str, merges: pl.DataFrame | None) -> pl.DataFrame:
    """The cross-centre duplicates: given, or the backend's ``merges`` table, or none."""
    if merges is None:
        name = f"{prefix}merges"
        if name not in con.list_tables():
            return pl.DataFrame(schema=_MERGES_SCHEMA)
        merges = _frame(con.table(name), _MERGES_SCHEMA)
    missing = [c for c in _MERGES_SCHEMA if c not in merges.columns]
    if missing:
        raise InputError(f"merges: missing column(s) {', '.join(missing)}")
    return merges.select(list(_MERGES_SCHEMA)).cast(_MERGES_SCHEMA)  # type: ignore[arg-type]


def run(
    con: Any,
    protocol: Protocol,
    *,
    prefix: str = "",
    merges: pl.DataFrame | None = None,
    keep_in_engine: bool = False,
) -> CohortResult:
    """Select the analysis set of ``protocol`` from the canonical tables in ``con``.

    Parameters
    ----------
    con
        An Ibis backend holding the canonical tables (:func:`oncorwe.model.store.write_model`).
    protocol
        The study protocol (criteria order, line rules, exposure sequence, calendar window).
    prefix
        Table-name prefix of the canonical tables.
    merges
        Cross-centre duplicates (``CanonicalModel.merges``: kept_patient_id, merged_patient_id,
        rule). Each merged record is excluded by the protocol's criterion of kind
        ``duplicate_referral`` (an error when merges exist and the protocol has none). When not given, a table
        ``<prefix>merges`` in ``con`` is used if there is one.
    keep_in_engine
        Leave the lines of therapy in the engine only (``result.lines`` is None): for CDMs of
        millions of patients, whose lines (with the records behind each) do not belong in Python.

    Returns
    -------
    CohortResult
        Attrition (overall and per centre), exclusions with reasons, lines of therapy, index. The
        lines and the index are also stored in ``con`` as ``<prefix>cohort_lines`` and
        ``<prefix>cohort_index`` (replaced on each run), where :func:`oncorwe.endpoints.run`
        reads them.
    """
    if not isinstance(protocol, Protocol):
        raise InputError(f"protocol: expected an oncorwe.protocol.Protocol, got {type(protocol).__name__}")
    tables = read_tables(con, prefix=prefix)
    lines = engine.materialise(con, build_lines(con, tables["drug_exposures"], protocol), f"{prefix}cohort_lines")
    status_table = materialise(con, evaluate(tables, lines, protocol))
    unindexed = status_table.filter(status_table.reason.isnull() & status_table.index_date.isnull())
    if int(unindexed.count().to_pyarrow().as_py()):
        raise DataError([
            f"patient {pid} passes every criterion of {protocol.name} but has no "
            f"{protocol.index.drug_class} line to index on (add a 'has_line' criterion of that class)"
            for pid in sorted(unindexed.select("patient_id").limit(20).to_pyarrow().column(0).to_pylist())
        ])
    # only the excluded patients' reasons and the analysis set's index come into Python
    excluded = _frame(status_table.filter(status_table.reason.notnull()), EXCLUSIONS_SCHEMA)
    index_table = engine.materialise(
        con, status_table.filter(status_table.reason.isnull()).select(*INDEX_SCHEMA), f"{prefix}cohort_index"
    )
    index = _frame(index_table, INDEX_SCHEMA).sort("patient_id")
    merged = _merges(con, prefix, merges)
    overlap = merged.filter(
        pl.col("merged_patient_id").is_in(pl.concat([excluded["patient_id"], index["patient_id"]]).implode())
    )
    if overlap.height:
        raise DataError([
            f"merges: merged record {pid} is still in the patients table (harmonise must remove it)"
            for pid in overlap["merged_patient_id"].to_list()[:20]
        ])
    duplicate_ids = [c.id for c in protocol.criteria if c.kind == "duplicate_referral"]
    if merged.height and not duplicate_ids:
        raise DataError([f"merges: {merged.height} cross-centre duplicate record(s) but the protocol "
                         f"{protocol.name} has no criterion of kind 'duplicate_referral' to exclude them"])
    duplicates = merged.select(
        patient_id=pl.col("merged_patient_id"),
        centre_id=pl.col("merged_patient_id").str.split(":").list.first(),
        reason=pl.lit(duplicate_ids[0] if duplicate_ids else "duplicate_referral"),
    )
    exclusions = pl.concat([duplicates, excluded]).cast(EXCLUSIONS_SCHEMA).sort("patient_id")  # type: ignore[arg-type]
    n_lines = int(lines.count().to_pyarrow().as_py())
    return CohortResult(
        protocol_name=protocol.name,
        attrition=attrition_table(exclusions, protocol.criterion_ids,
                                  analysis_set=index.select("centre_id")),
        exclusions=exclusions,
        lines=None if keep_in_engine else _lines_with_sources(lines, tables["drug_exposures"], protocol),
        index=index,
        engine_tables={"lines": f"{prefix}cohort_lines", "index": f"{prefix}cohort_index"},
        n_lines=n_lines,
    )


def _lines_with_sources(lines: Any, exposures: Any, protocol: Protocol) -> pl.DataFrame:
    """Every line of therapy with the records behind it, as a polars frame (:data:`LINES_SCHEMA`)."""
    sources = line_sources(exposures, with_next_start(lines), protocol)
    joined = lines.join(sources, ["patient_id", "line_number"])
    return _frame(joined.order_by(["patient_id", "line_number"]), LINES_SCHEMA)


def attrition_table(
    exclusions: pl.DataFrame, criteria: Sequence[str], *, analysis_set: pl.DataFrame
) -> pl.DataFrame:
    """The CONSORT-style flow: step 0 all records (the excluded ones and the ``analysis_set``, one
    ``centre_id`` per patient), then per criterion the patients before, excluded and after; overall
    rows (centre_id null) first, then each centre in alphabetical order."""
    unknown = sorted(set(exclusions["reason"].unique().to_list()) - set(criteria))
    if unknown:
        raise DataError([f"exclusion reason {r!r} is not a criterion of the protocol" for r in unknown])
    everyone = pl.concat([exclusions.select("centre_id"), analysis_set.select("centre_id")])
    records = dict(everyone.group_by("centre_id").len().iter_rows())
    per_centre = {key: dict(group.group_by("reason").len().iter_rows())
                  for (key,), group in exclusions.group_by("centre_id")}
    rows: list[dict[str, Any]] = []
    centres: list[str | None] = [None, *sorted(c for c in records if c is not None)]
    for centre in centres:
        counts = dict(exclusions.group_by("reason").len().iter_rows()) if centre is None else per_centre.get(centre, {})
        n = everyone.height if centre is None else records[centre]
        rows.append(dict(step=0, criterion="source_records", centre_id=centre, n_before=n, n_excluded=0, n_after=n))
        for step, criterion in enumerate(criteria, start=1):
            excluded = int(counts.get(criterion, 0))
            rows.append(dict(step=step, criterion=criterion, centre_id=centre, n_before=n,
                             n_excluded=excluded, n_after=n - excluded))
            n -= excluded
    return pl.DataFrame(rows, schema=ATTRITION_SCHEMA)
