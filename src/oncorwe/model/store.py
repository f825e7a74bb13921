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

__all__ = ["MODEL_TABLES", "STAGE_TABLES", "connect", "read_tables", "to_polars", "write_model"]


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


#: The tables the stages from cohort on read (the generic canonical model of issue 12).
STAGE_TABLES = ("person", "conditions", "observations", "drug_exposures", "assessments", "events")
#: Every table :func:`write_model` leaves in the backend: harmonisation's and the stages' (one list
#: for cleaning up scratch prefixes).
MODEL_TABLES = tuple(dict.fromkeys([*CANONICAL_TABLES, *STAGE_TABLES]))


def write_model(con: Any, model: CanonicalModel, *, prefix: str = "") -> None:
    """Write the canonical tables into the backend (replacing tables of the same names)."""
    for name, frame in model.tables().items():
        upload(con, f"{prefix}{name}", frame.to_arrow())
    _generic_from_patients(con, prefix, replace=True)


def read_tables(con: Any, *, prefix: str = "") -> dict[str, Any]:
    """The canonical tables as Ibis table expressions: the ones the stages read (:data:`STAGE_TABLES`,
    all required) and harmonisation's wide ``patients`` table where it is present."""
    _generic_from_patients(con, prefix)
    present = set(con.list_tables())
    missing = [n for n in STAGE_TABLES if f"{prefix}{n}" not in present]
    if missing:
        raise SourceError(f"canonical tables missing from the database: {', '.join(missing)}")
    return {n: con.table(f"{prefix}{n}") for n in MODEL_TABLES if f"{prefix}{n}" in present}


# --- TEMPORARY TRANSITION ADAPTER (issue 12; h12a deletes it when harmonise writes person,
# conditions and observations natively). It melts the old wide ``patients`` table into the generic
# tables, column by column and without knowing any study: each column that is not a person column
# becomes an observation ``variable`` of that name (text -> value_text; boolean -> value_number 1/0
# and value_text "true"/"false"; number -> value_number); a ``<x>_value`` column with a ``<x>_uln``
# sibling becomes variable ``<x>`` with ``reference_high``; ``diagnosis_date`` a condition record
# (concept and text unknown: the centre's files are of the study's disease). ---------------------
def _generic_from_patients(con: Any, prefix: str, *, replace: bool = False) -> None:
    import ibis

    from oncorwe.model.engine import materialise

    present = set(con.list_tables())
    if f"{prefix}patients" not in present or (f"{prefix}observations" in present and not replace):
        return
    patients = con.table(f"{prefix}patients")
    columns = list(patients.columns)
    person_cols = [c for c in PERSON_SCHEMA if c in columns]
    person = patients.select(*person_cols)
    materialise(con, person, f"{prefix}person")
    conditions = patients.select(
        patient_id=patients.patient_id,
        condition_concept_id=ibis.null("int64"),
        condition_text=ibis.null("string"),
        start_date=patients.diagnosis_date if "diagnosis_date" in columns else ibis.null("date"),
        source=patients.source,
    )
    materialise(con, conditions, f"{prefix}conditions")
    null_text, null_number = ibis.null("string"), ibis.null("float64")
    parts = []
    skip = {*PERSON_SCHEMA, "diagnosis_date"}
    for column in columns:
        if column in skip or column.endswith("_uln"):
            continue
        value = patients[column]
        variable, reference = column, null_number
        if column.endswith("_value") and f"{column.removesuffix('_value')}_uln" in columns:
            variable = column.removesuffix("_value")
            reference = patients[f"{variable}_uln"].cast("float64")
        dtype = value.type()
        if dtype.is_boolean():
            text, number = ibis.ifelse(value, "true", "false"), ibis.ifelse(value, 1.0, 0.0)
        elif dtype.is_numeric():
            text, number = null_text, value.cast("float64")
        else:
            text, number = value.cast("string"), null_number
        rows = patients.filter(value.notnull())
        parts.append(rows.select(
            patient_id=rows.patient_id, variable=ibis.literal(variable), concept_id=ibis.null("int64"),
            value_text=text, value_concept_id=ibis.null("int64"), value_number=number,
            unit=ibis.null("string"), reference_high=reference, observation_date=ibis.null("date"),
            source=rows.source,
        ))
    observations = ibis.union(*parts) if parts else None
    if observations is None:
        from oncorwe.model.engine import upload

        upload(con, f"{prefix}observations", pl.DataFrame(schema=OBSERVATIONS_SCHEMA).to_arrow())
    else:
        materialise(con, observations, f"{prefix}observations")
    assert set(CONDITIONS_SCHEMA) == set(conditions.columns)


def to_polars(expr: Any) -> pl.DataFrame:
    """Execute an Ibis expression and return a polars frame."""
    return pl.from_arrow(expr.to_pyarrow())  # type: ignore[return-value]
