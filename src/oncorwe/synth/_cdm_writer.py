"""Writing OMOP CDM v5.4 tables into a DuckDB file from columns (NumPy arrays or lists).

Shared by the study writers and the background population: a column set is turned into one
typed frame per table (dates travel as day numbers since 1970-01-01 and become dates in one
cast; columns not given are null, in DDL order) and appended. The connection is single-threaded
with uncompressed blocks from DuckDB's own allocator, so the file's bytes repeat run after run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._vocabulary import ancestor_rows, cdm_concepts, relationship_rows

__all__ = ["connect_cdm", "insert_columns", "table_schema", "write_vocabulary"]

_TYPES = {"INTEGER": pl.Int32(), "BIGINT": pl.Int64(), "DATE": pl.Date(), "TIMESTAMP": pl.Datetime("us"), "VARCHAR": pl.String()}
_VALID = (0, (dt.date(2099, 12, 31) - EPOCH).days)


def connect_cdm(path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh CDM database at ``path`` with every table of the synth DDL created (empty)."""
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path), config={"threads": 1, "memory_limit": "256MB"})
    con.execute("SET force_compression = 'uncompressed'")
    con.execute("SET block_allocator_memory = '256MB'")
    con.execute(resources.files("oncorwe.synth.data").joinpath("omop_cdm54_ddl.sql").read_text(encoding="utf-8"))
    return con


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, pl.DataType]:
    """The table's columns and their polars types, in DDL order."""
    return {name: _TYPES.get(str(typ).split("(")[0], pl.Float64()) for name, typ, *_ in con.execute(f"DESCRIBE {table}").fetchall()}


def insert_columns(con: duckdb.DuckDBPyConnection, table: str, columns: Mapping[str, Any],
                   schema: dict[str, pl.DataType] | None = None) -> int:
    """Append rows given as ``{column: values}`` (dates as day numbers); returns the row count."""
    schema = table_schema(con, table) if schema is None else schema
    unknown = set(columns) - set(schema)
    if unknown:
        raise RuntimeError(f"synth bug: {table} has no columns {sorted(unknown)}")
    raw = {name: pl.Int32() if dtype == pl.Date() else dtype for name, dtype in schema.items()}
    present = [pl.Series(name, np.asarray(v) if isinstance(v, np.ndarray) else v, dtype=raw[name], strict=False)
               for name, v in columns.items()]
    if not present or present[0].len() == 0:
        return 0
    frame = pl.DataFrame(present)
    frame = frame.with_columns([pl.lit(None, dtype=raw[n]).alias(n) for n in schema if n not in columns]).select(list(schema))
    frame = frame.with_columns([pl.col(n).cast(pl.Date()) for n, d in schema.items() if d == pl.Date()])
    con.register("chunk", frame.to_arrow())
    con.execute(f"INSERT INTO {table} SELECT * FROM chunk")
    con.unregister("chunk")
    return frame.height


def write_vocabulary(con: duckdb.DuckDBPyConnection, extra_concepts: Sequence[tuple[Any, ...]] = ()) -> None:
    """The vocabulary subset: ``concept`` (the synth vocabulary plus ``extra_concepts`` rows of
    (id, name, domain, vocabulary, class, standard, code) not already there), ``concept_ancestor``
    and ``concept_relationship``."""
    rows = [(c.concept_id, c.name[:255], c.domain[:20], c.vocabulary[:20], c.concept_class[:20], c.standard, c.code[:50])
            for c in cdm_concepts()]
    seen = {r[0] for r in rows}
    rows += [r for r in extra_concepts if r[0] not in seen]
    rows.sort(key=lambda r: r[0])
    names = ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept", "concept_code")
    columns: dict[str, Any] = {n: [r[k] for r in rows] for k, n in enumerate(names)}
    columns.update(valid_start_date=[_VALID[0]] * len(rows), valid_end_date=[_VALID[1]] * len(rows))
    insert_columns(con, "concept", columns)
    anc = ancestor_rows()
    insert_columns(con, "concept_ancestor", {
        "ancestor_concept_id": [r[0] for r in anc], "descendant_concept_id": [r[1] for r in anc],
        "min_levels_of_separation": [r[2] for r in anc], "max_levels_of_separation": [r[3] for r in anc]})
    rel = relationship_rows()
    insert_columns(con, "concept_relationship", {
        "concept_id_1": [r[0] for r in rel], "concept_id_2": [r[1] for r in rel], "relationship_id": [r[2] for r in rel],
        "valid_start_date": [_VALID[0]] * len(rel), "valid_end_date": [_VALID[1]] * len(rel)})
