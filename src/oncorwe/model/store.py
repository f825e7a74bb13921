"""Where the canonical tables live: an Ibis backend (DuckDB embedded by default, PostgreSQL, Spark).

Cohort selection and endpoint derivation are Ibis expressions over these tables, so the same code
runs on every engine; only the per-patient analysis table is pulled into Python.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.errors import InputError, SourceError
from oncorwe.model.engine import connect_spark, upload
from oncorwe.model.schema import (
    CANONICAL_TABLES,
    CONDITIONS_SCHEMA,
    OBSERVATIONS_SCHEMA,
    PERSON_SCHEMA,
    CanonicalModel,
)

__all__ = ["MODEL_TABLES", "STAGE_TABLES", "connect", "generic_from_patients", "generic_tables", "read_tables", "to_polars", "write_model"]


def connect(uri: str | Path | None = None) -> Any:
    """Open an Ibis backend.

    ``None`` or ``"duckdb://"`` gives an in-memory DuckDB; a path or ``"duckdb:///path/file.duckdb"``
    a DuckDB file; ``"postgres://user:pw@host:port/db"`` PostgreSQL; ``"spark"`` or
    ``"pyspark://local[2]"`` a local Spark session (``pyspark://<master>`` for another master, e.g.
    ``pyspark://spark://host:7077``; see :func:`oncorwe.model.engine.connect_spark`). An existing
    Ibis backend is returned as it is.
    """
    import ibis

    if uri is None:
        return ibis.duckdb.connect()
    if not isinstance(uri, str | Path):
        return uri  # already a backend
    text = str(uri)
    if text in ("spark", "pyspark") or text.startswith("pyspark://"):
        return connect_spark(text.removeprefix("pyspark://") if text.startswith("pyspark://") and text != "pyspark://"
                             else "local[2]")
    if text.startswith(("postgres://", "postgresql://")) and importlib.util.find_spec("psycopg") is None:
        raise SourceError("PostgreSQL needs its driver: pip install 'oncorwe[postgres]'")
    try:
        if text.startswith(("postgres://", "postgresql://")):
            return ibis.connect(text.replace("postgresql://", "postgres://", 1))
        if text.startswith("duckdb://"):
            path = text.removeprefix("duckdb://").lstrip("/") if text != "duckdb://" else ""
            if text.startswith("duckdb:///"):
                path = "/" + text.removeprefix("duckdb:///")
            return ibis.duckdb.connect(path) if path else ibis.duckdb.connect()
        if text.endswith((".duckdb", ".db", ".ddb")):
            return ibis.duckdb.connect(text)
    except Exception as exc:  # driver errors: name the target, keep the cause
        raise SourceError(f"cannot connect to {_redact(text)}: {exc}") from exc
    raise InputError(
        f"unsupported database URI {_redact(text)!r}: use a .duckdb path, duckdb:///path, postgres://... "
        "or pyspark://local[2]"
    )


def _redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return uri


#: The tables the stages from cohort on read (the generic canonical model).
STAGE_TABLES = ("person", "conditions", "observations", "concept_ancestor", "drug_exposures", "assessments", "events")
#: Every table :func:`write_model` leaves in the backend (one list for cleaning up scratch prefixes).
MODEL_TABLES = tuple(dict.fromkeys([*CANONICAL_TABLES, *STAGE_TABLES]))


def write_model(con: Any, model: CanonicalModel, *, prefix: str = "") -> None:
    """Write the canonical tables into the backend (replacing tables of the same names): the CRF
    patients melted into the generic tables (:func:`generic_from_patients`) beside the CDM persons."""
    for name, frame in generic_tables(model).items():
        upload(con, f"{prefix}{name}", frame.to_arrow())


def generic_tables(model: CanonicalModel) -> dict[str, pl.DataFrame]:
    """The canonical tables with every patient, CRF and CDM alike, in the generic ``person``,
    ``conditions`` and ``observations`` tables (the CRF ``patients`` table is kept beside them)."""
    crf = generic_from_patients(model.patients)
    tables = model.tables()
    for name in ("person", "conditions", "observations"):
        tables[name] = pl.concat([crf[name], tables[name]])
    return tables


def read_tables(con: Any, *, prefix: str = "") -> dict[str, Any]:
    """The canonical tables as Ibis table expressions: the ones the stages read (:data:`STAGE_TABLES`,
    all required, each with every column of its schema in ``model.schema.CANONICAL_TABLES``) and the
    CRF ``patients`` table where it is present.

    Raises
    ------
    SourceError : a stage table is missing, or lacks a column, naming it.
    """
    present = set(con.list_tables())
    missing = [n for n in STAGE_TABLES if f"{prefix}{n}" not in present]
    if missing:
        raise SourceError(f"canonical tables missing from the database: {', '.join(missing)}")
    tables = {n: con.table(f"{prefix}{n}") for n in MODEL_TABLES if f"{prefix}{n}" in present}
    # the contract at the boundary: every column the stages read, by name (types are cast where read)
    for name in STAGE_TABLES:
        absent = [c for c in CANONICAL_TABLES[name] if c not in tables[name].columns]
        if absent:
            raise SourceError(f"canonical table {prefix}{name} lacks the columns {', '.join(absent)}")
    return tables


def generic_from_patients(patients: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The CRF patients (the wide ``patients`` table) as the generic person, conditions and
    observations tables, column by column and without knowing any study.

    Each column that is not a person column becomes an observation ``variable`` of that name
    (text -> value_text; boolean -> value_number 1/0 and value_text "true"/"false"; number ->
    value_number); a ``<x>_value`` column with a ``<x>_uln`` sibling becomes variable ``<x>`` with
    ``reference_high``; ``diagnosis_date`` a condition record (concept and text unknown: a
    centre's files are of the study's disease, ``condition.files_have_condition``).
    """
    columns = patients.columns
    person = patients.select(list(PERSON_SCHEMA)).cast(PERSON_SCHEMA)  # type: ignore[arg-type]
    conditions = patients.select(
        "patient_id", condition_concept_id=pl.lit(None, pl.Int64()), condition_text=pl.lit(None, pl.String()),
        start_date=pl.col("diagnosis_date"), source="source",
    ).cast(CONDITIONS_SCHEMA)  # type: ignore[arg-type]
    parts = []
    skip = {*PERSON_SCHEMA, "diagnosis_date"}
    for column in columns:
        if column in skip or column.endswith("_uln"):
            continue
        variable, reference = column, pl.lit(None, pl.Float64())
        if column.endswith("_value") and f"{column.removesuffix('_value')}_uln" in columns:
            variable = column.removesuffix("_value")
            reference = pl.col(f"{variable}_uln").cast(pl.Float64())
        dtype = patients.schema[column]
        value = pl.col(column)
        if dtype == pl.Boolean():
            text = pl.when(value).then(pl.lit("true")).otherwise(pl.lit("false"))
            number = pl.when(value).then(1.0).otherwise(0.0)
        elif dtype.is_numeric():
            text, number = pl.lit(None, pl.String()), value.cast(pl.Float64())
        else:
            text, number = value.cast(pl.String()), pl.lit(None, pl.Float64())
        rows = patients.filter(value.is_not_null())
        parts.append(rows.select(
            "patient_id", variable=pl.lit(variable), concept_id=pl.lit(None, pl.Int64()), value_text=text,
            value_concept_id=pl.lit(None, pl.Int64()), value_number=number, unit=pl.lit(None, pl.String()),
            reference_high=reference, observation_date=pl.lit(None, pl.Date()), source="source",
        ).cast(OBSERVATIONS_SCHEMA))  # type: ignore[arg-type]
    observations = pl.concat(parts) if parts else pl.DataFrame(schema=OBSERVATIONS_SCHEMA)
    return {"person": person, "conditions": conditions, "observations": observations}


def to_polars(expr: Any) -> pl.DataFrame:
    """Execute an Ibis expression and return a polars frame."""
    return pl.from_arrow(expr.to_pyarrow())  # type: ignore[return-value]
