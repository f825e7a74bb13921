"""Temporary views inside the engine: one CDM table of a network of centres stacked into one.

A view costs nothing to create and keeps the queries over it short: Ibis compiles the mapping over
one view per CDM table instead of a ``UNION ALL`` of every centre's tables, and the engine reads the
centres' own tables when a query runs. The view's SQL is written directly (sqlglot, in the engine's
dialect) from the table and column names, so making it asks the engine nothing (no schema look-up
per centre and table, which costs a round trip each, and seconds on Spark). DuckDB and PostgreSQL
make it with ``CREATE TEMPORARY VIEW`` (gone when the connection closes), Spark as a session-scoped
temporary view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import sqlglot as sg
import sqlglot.expressions as sge

from oncorwe.model import engine

__all__ = ["drop_temp_view", "stacked_view"]


def _literal(value: Any, dtype: str, con: Any) -> sge.Expression:
    if isinstance(value, bool):
        return sge.Boolean(this=value)
    if isinstance(value, int):
        to = con.compiler.type_mapper.from_ibis(ibis.dtype(dtype))
        return sge.Cast(this=sge.Literal.number(value), to=to)
    return sge.Literal.string(str(value))


def _source_table(table: str, database: str | None) -> sge.Table:
    if not database:
        return sg.table(table, quoted=True)
    *catalog, db = database.split(".")
    return sg.table(table, db=db, catalog=".".join(catalog) or None, quoted=True)


def stacked_view(
    con: Any,
    name: str,
    *,
    table: str,
    columns: Mapping[str, str],
    parts: Sequence[tuple[str | None, Mapping[str, tuple[Any, str]]]],
    absent: Sequence[frozenset[str]] = (),
) -> ir.Table:
    """Create (or replace) the temporary view ``name``: ``table`` of every part, stacked.

    Parameters
    ----------
    con
        The Ibis backend (DuckDB, PostgreSQL, Spark).
    name
        The view's name (letters, digits, underscores).
    table
        The table each part reads.
    columns
        The columns read, each cast to its Ibis type (``"int64"``, ``"date"``, ...).
    parts
        Per part, the database / schema holding ``table`` (None: the connection's default) and
        the constant columns it adds, as ``{column: (value, ibis type)}`` (same columns in every
        part); they come first in the view, then ``columns``.
    absent
        Per part, the columns of ``columns`` its table lacks (read as typed nulls), or nothing.
    """
    if not name.isidentifier():
        raise ValueError(f"view name {name!r}: use letters, digits and underscores only")
    dialect = con.compiler.dialect
    selects = []
    for number, (database, constants) in enumerate(parts):
        lacking = absent[number] if number < len(absent) else frozenset()
        items = [_literal(value, dtype, con).as_(column, quoted=True) for column, (value, dtype) in constants.items()]
        items += [sge.Cast(this=sge.Null() if column in lacking else sg.column(column, quoted=True),
                           to=con.compiler.type_mapper.from_ibis(ibis.dtype(dtype)))
                  .as_(column, quoted=True) for column, dtype in columns.items()]
        selects.append(sg.select(*items).from_(_source_table(table, database)))
    query: sge.Expression = selects[0]
    for select in selects[1:]:
        query = sge.union(query, select, distinct=False)  # UNION ALL: no row may vanish
    view = sg.to_identifier(name, quoted=True).sql(dialect)
    cursor = con.raw_sql(f"CREATE OR REPLACE TEMPORARY VIEW {view} AS {query.sql(dialect)}")
    if engine.backend_name(con) == "postgres":
        cursor.close()  # PostgreSQL's raw_sql hands back an open cursor; DuckDB's is the connection
    return con.table(name)


def drop_temp_view(con: Any, name: str) -> None:
    """Drop the temporary view ``name`` if it exists."""
    if engine.backend_name(con) == "pyspark":
        con._session.catalog.dropTempView(name)
        return
    con.drop_view(name, force=True)
