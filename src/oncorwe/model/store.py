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
from oncorwe.model.schema import CANONICAL_TABLES, CanonicalModel

__all__ = ["connect", "read_tables", "to_polars", "write_model"]


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


def write_model(con: Any, model: CanonicalModel, *, prefix: str = "") -> None:
    """Write the four canonical tables into the backend (replacing tables of the same names)."""
    for name, frame in model.tables().items():
        upload(con, f"{prefix}{name}", frame.to_arrow())


def read_tables(con: Any, *, prefix: str = "") -> dict[str, Any]:
    """The canonical tables of a backend as Ibis table expressions, by name."""
    missing = [n for n in CANONICAL_TABLES if f"{prefix}{n}" not in con.list_tables()]
    if missing:
        raise SourceError(f"canonical tables missing from the database: {', '.join(missing)}")
    return {n: con.table(f"{prefix}{n}") for n in CANONICAL_TABLES}


def to_polars(expr: Any) -> pl.DataFrame:
    """Execute an Ibis expression and return a polars frame."""
    return pl.from_arrow(expr.to_pyarrow())  # type: ignore[return-value]
