"""Engine-side helpers: a local Spark session, uploads that keep types, tables materialised inside the
engine, and scratch tables that are cleaned up.

The stages build Ibis expressions; at scale nothing but the per-patient analysis table may come back
into Python, so intermediate results are written as tables *inside* the engine
(``CREATE TABLE ... AS SELECT``) by :func:`materialise`, under a scratch prefix that
:func:`drop_scratch` removes afterwards. The three engines this is exercised on differ in small ways
that this module hides:

- DuckDB and PostgreSQL have temporary tables; Ibis' PySpark backend has none, so a temporary upload
  there is a session-scoped temporary view (gone when the session ends).
- Ibis uploads to PySpark through pandas, which turns a nullable ``int8`` column into nulls; uploads
  to Spark go through ``SparkSession.createDataFrame(pyarrow.Table)`` instead, which keeps types.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import pyarrow as pa

from oncorwe.errors import InputError, SourceError

__all__ = [
    "SCRATCH_PREFIX",
    "backend_name",
    "connect_spark",
    "drop_scratch",
    "materialise",
    "out_of_memory",
    "scratch",
    "scratch_name",
    "scratch_tables",
    "upload",
]

#: Every scratch table oncorwe creates starts with this, so cleanup never touches anything else.
SCRATCH_PREFIX = "oncorwe_tmp_"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def connect_spark(
    master: str = "local[2]",
    *,
    warehouse: str | None = None,
    config: dict[str, str] | None = None,
) -> Any:
    """An Ibis PySpark backend on a (new or the running) ``SparkSession``.

    Parameters
    ----------
    master
        Spark master URL: ``local[N]`` (N worker threads on this machine), ``spark://host:7077``,
        ``yarn``, ``k8s://...``. A session already running in this process is reused as it is
        (Spark allows one per JVM), whatever ``master`` says.
    warehouse
        Where managed tables (materialised intermediate results) are written. Default:
        ``$ONCORWE_SPARK_WAREHOUSE``, else a new folder under the system temporary folder, deleted
        when the process exits, so a run never leaves a ``spark-warehouse/`` behind.
    config
        Further Spark settings (``spark.driver.memory``, ``spark.sql.shuffle.partitions``, ...);
        they override the defaults below.

    Notes
    -----
    Defaults: no web UI, driver bound to 127.0.0.1 (nothing listens on the network), the session
    time zone UTC (dates must not move with the machine's zone), few shuffle partitions (the default
    200 is tuned for clusters and makes small local jobs slow), no console progress bars.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SourceError("Spark needs PySpark: pip install 'oncorwe[spark]'") from exc
    import ibis

    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.warehouse.dir": warehouse or os.environ.get("ONCORWE_SPARK_WAREHOUSE") or "",
    }
    if not settings["spark.sql.warehouse.dir"]:
        made = tempfile.mkdtemp(prefix="oncorwe-spark-warehouse-")
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        settings["spark.sql.warehouse.dir"] = made
    settings.update(config or {})
    builder = SparkSession.builder.master(master).appName("oncorwe")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # JVM start-up failures: say what was tried
        raise SourceError(f"cannot start Spark (master {master!r}): {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


#: PostgreSQL's SQLSTATE for ``out_of_memory`` (class 53, insufficient resources)
PG_OUT_OF_MEMORY = "53200"


def out_of_memory(exc: BaseException) -> str | None:
    """Which engine ran out of memory, when ``exc`` says one did: ``"duckdb"`` (its
    ``OutOfMemoryException``), ``"postgres"`` (SQLSTATE 53200, psycopg's ``sqlstate`` or psycopg2's
    ``pgcode``), also when it is the cause or context of ``exc`` (a wrapper re-raising it); else None."""
    import duckdb

    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, duckdb.OutOfMemoryException):
            return "duckdb"
        if PG_OUT_OF_MEMORY in (getattr(error, "sqlstate", None), getattr(error, "pgcode", None)):
            return "postgres"
        error = error.__cause__ or error.__context__
    return None


def backend_name(con: Any) -> str:
    """The Ibis backend's name: ``duckdb``, ``postgres``, ``pyspark``, ..."""
    return str(getattr(con, "name", type(con).__name__))


def _checked(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise InputError(f"table name {name!r}: use letters, digits and underscores only")
    return name


def scratch_name(label: str) -> str:
    """A fresh scratch table name: ``oncorwe_tmp_<label>_<12 hex digits>``."""
    return _checked(f"{SCRATCH_PREFIX}{label}_{uuid.uuid4().hex[:12]}")


def upload(con: Any, name: str, data: Any, *, temp: bool = False) -> Any:
    """Send a Python table (polars, pyarrow) into the engine as table ``name``; return it as Ibis.

    ``temp=True`` makes a table that lives as long as the connection (a temporary view on Spark).
    Types are kept on every engine (see the module notes for Spark).
    """
    _checked(name)
    arrow = data if isinstance(data, pa.Table) else data.to_arrow()
    if backend_name(con) == "pyspark":
        frame = con._session.createDataFrame(arrow)
        if temp:
            frame.createOrReplaceTempView(name)
        else:
            frame.write.saveAsTable(name, mode="overwrite")
        return con.table(name)
    staged = ibis.memtable(arrow)
    table = con.create_table(name, staged, temp=temp, overwrite=True)
    _release(con, staged.op().name)
    return table


def _release(con: Any, memtable: str) -> None:
    """Drop the in-memory table Ibis registered to upload from (DuckDB keeps the Arrow data alive
    in a view of it, PostgreSQL a temporary table of it, for the rest of the session: one per
    upload, which a long session of many runs would pile up)."""
    if backend_name(con) == "duckdb":
        con.con.unregister(memtable)
    else:
        con.drop_table(memtable, force=True)


def materialise(con: Any, expr: Any, name: str, *, temp: bool = False) -> Any:
    """Run the Ibis expression ``expr`` inside ``con`` and store its rows as table ``name``.

    This is ``CREATE TABLE name AS SELECT ...`` in the engine: no row passes through Python. Later
    expressions over the returned table read the stored rows instead of recomputing the query.
    ``temp=True`` makes a table of the session (dropped when the connection closes). Spark has no
    temporary tables: there the rows are written as a managed table of the session's warehouse
    folder (Parquet), which :func:`drop_scratch` removes and which :func:`connect_spark` deletes at
    exit when it made the folder. (Keeping them in the session instead fails: ``cache`` keeps each
    step's whole query plan, which grows with every step until the driver runs out of memory, and
    Spark 4.0's optimiser fails on queries joining a ``localCheckpoint`` relation with itself:
    ``key not found: patient_id#40``.)
    """
    _checked(name)
    if temp and backend_name(con) == "pyspark":
        temp = False
    return con.create_table(name, expr, temp=temp, overwrite=True)


def scratch_tables(con: Any) -> list[str]:
    """The scratch tables (and Spark temporary views) oncorwe left in ``con``."""
    return sorted(t for t in con.list_tables() if t.startswith(SCRATCH_PREFIX))


def drop_scratch(con: Any, names: list[str] | None = None) -> list[str]:
    """Drop the given scratch tables, or all of them (``oncorwe_tmp_*``); return what was dropped."""
    targets = scratch_tables(con) if names is None else [n for n in names if n.startswith(SCRATCH_PREFIX)]
    dropped: list[str] = []
    for name in targets:
        _checked(name)
        if backend_name(con) == "pyspark" and con._session.catalog.dropTempView(name):
            dropped.append(name)
            continue
        con.drop_table(name, force=True)
        dropped.append(name)
    return dropped


@contextmanager
def scratch(con: Any) -> Iterator[list[str]]:
    """A list to which callers append the scratch tables they create; all are dropped on exit."""
    created: list[str] = []
    try:
        yield created
    finally:
        drop_scratch(con, created)
