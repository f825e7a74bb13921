"""Reading OMOP CDM tables for the mapping: which tables a database has, the columns the mapping
reads (in fixed types, so that centres whose CDMs type a column differently stack), and each
centre's constant columns; one centre's tables as Ibis tables, several centres' stacked.

:mod:`oncorwe.sources.omop` re-exports everything public here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.model.engine import out_of_memory

__all__ = [
    "ABSENCE_TABLES",
    "CDM_COLUMNS",
    "OMOP_TABLES",
    "OPTIONAL_COLUMNS",
    "PERSON_KEY",
    "cdm_constants",
    "cdm_table_names",
    "cdm_tables",
    "check_cdm_types",
    "record_counts",
    "stack",
    "union_cdm",
]

OMOP_TABLES = (
    "person", "observation_period", "condition_occurrence", "drug_exposure", "measurement", "observation",
    "death", "episode", "episode_event",
)
#: The CDM columns the mapping reads, with the type each is read as (CDMs differ: int32 or int64
#: ids, decimal or float values); ``person`` is required, every other table optional.
CDM_COLUMNS: dict[str, dict[str, str]] = {
    "person": {"person_id": "int64", "gender_concept_id": "int64", "year_of_birth": "int64",
               "person_source_value": "string"},
    "condition_occurrence": {"condition_occurrence_id": "int64", "person_id": "int64",
                             "condition_concept_id": "int64", "condition_start_date": "date",
                             "condition_source_value": "string", "condition_source_concept_id": "int64"},
    "drug_exposure": {"drug_exposure_id": "int64", "person_id": "int64", "drug_concept_id": "int64",
                      "drug_exposure_start_date": "date", "drug_exposure_end_date": "date",
                      "stop_reason": "string", "drug_source_value": "string"},
    "measurement": {"measurement_id": "int64", "person_id": "int64", "measurement_concept_id": "int64",
                    "measurement_date": "date", "value_as_number": "float64", "range_high": "float64",
                    "unit_source_value": "string", "measurement_source_value": "string",
                    "value_source_value": "string", "value_as_concept_id": "int64"},
    "observation": {"observation_id": "int64", "person_id": "int64", "observation_concept_id": "int64",
                    "observation_date": "date", "value_as_number": "float64", "value_as_string": "string",
                    "value_as_concept_id": "int64", "unit_source_value": "string",
                    "observation_source_value": "string"},
    "death": {"person_id": "int64", "death_date": "date"},
    "episode": {"episode_id": "int64", "person_id": "int64", "episode_concept_id": "int64",
                "episode_start_date": "date"},
    "observation_period": {"observation_period_id": "int64", "person_id": "int64",
                           "observation_period_end_date": "date"},
    "concept": {"concept_id": "int64", "concept_name": "string"},
    "concept_ancestor": {"ancestor_concept_id": "int64", "descendant_concept_id": "int64"},
    "concept_relationship": {"concept_id_1": "int64", "concept_id_2": "int64", "relationship_id": "string"},
}
#: Columns a CDM may lack (older ETLs leave them out): read as nulls when absent.
OPTIONAL_COLUMNS: frozenset[tuple[str, str]] = frozenset({
    ("condition_occurrence", "condition_source_concept_id"), ("measurement", "value_as_concept_id"),
    ("observation", "value_as_string"), ("observation", "value_as_concept_id"),
    ("observation", "unit_source_value"),
})
#: The tables whose records' absence can mean "absent" (``_has_<table>`` on ``person``).
ABSENCE_TABLES = ("measurement", "observation", "condition_occurrence")
#: the keys every join between CDM tables uses: person ids are unique only within their centre
PERSON_KEY = ["_centre", "person_id"]


#: how the CDM v5.4 specification names the kind of each type the mapping reads a column as
_CDM_TYPE_WORDS = {"int64": "an integer", "float64": "a number", "date": "a date", "string": "text"}


def _readable_as(found: Any, target: str) -> bool:
    """Whether a column of Ibis type ``found`` casts to ``target`` whatever its values (text does
    not: a text column where the CDM has a date fails at its first value that is not one)."""
    if found.is_null() or target == "string":
        return True
    if target == "int64":
        return bool(found.is_integer() or found.is_decimal() or found.is_boolean())
    if target == "float64":
        return bool(found.is_integer() or found.is_floating() or found.is_decimal())
    if target == "date":
        return bool(found.is_date() or found.is_timestamp())
    return True


def cdm_table_names(con: Any, database: str | None = None) -> list[str]:
    """The tables of ``database`` (a schema, an attached catalog's schema, a Spark database)."""
    if not database:
        return list(con.list_tables())
    try:
        return list(con.list_tables(database=database))
    except Exception as exc:  # a backend that cannot list another schema: the default one is searched
        if out_of_memory(exc):  # not "cannot list": the engine is out of memory (the run says so)
            raise
        return list(con.list_tables())


def _table(con: Any, name: str, database: str | None, names: list[str] | None = None) -> ir.Table | None:
    if name not in (names if names is not None else cdm_table_names(con, database)):
        return None
    return con.table(name, database=database) if database else con.table(name)


def cdm_constants(
    table: str, *, centre_no: int, centre_id: str, file: str, tables: Sequence[str]
) -> dict[str, tuple[Any, str]]:
    """The constant columns :func:`cdm_tables` adds to CDM table ``table`` of one centre, as
    ``{column: (value, ibis type)}``: ``_centre`` (``centre_no``), ``centre_id``, ``_src`` (the
    provenance prefix ``"<centre>/<file>#<table>:"``), and on ``person`` ``_has_<table>`` for the
    tables a record may be absent from (whether the centre's CDM, of tables ``tables``, has it:
    without the table, an uncoded fact is unknown rather than absent)."""
    constants: dict[str, tuple[Any, str]] = {
        "_centre": (centre_no, "int32"), "centre_id": (centre_id, "string"),
        "_src": (f"{centre_id}/{file}#{table}:", "string"),
    }
    if table == "person":
        for domain in ABSENCE_TABLES:
            constants[f"_has_{domain}"] = (domain in tables, "boolean")
    return constants


def cdm_tables(
    con: Any, *, centre_id: str, file: str, centre_no: int = 0, database: str | None = None
) -> dict[str, ir.Table]:
    """The CDM tables of one database that the mapping reads, ready to stack with other centres'.

    Each table present keeps only the columns of :data:`CDM_COLUMNS`, cast to their types, after
    the constant columns of :func:`cdm_constants`. Tables the database lacks are left out.

    Raises
    ------
    ValueError
        The database has no ``person`` table, or a table lacks a column the mapping reads.
    """
    names = cdm_table_names(con, database)
    if "person" not in names:
        raise ValueError("the database has no person table: not an OMOP CDM")
    out: dict[str, ir.Table] = {}
    for name, columns in CDM_COLUMNS.items():
        table = _table(con, name, database, names)
        if table is None:
            continue
        missing = [c for c in columns if c not in table.columns and (name, c) not in OPTIONAL_COLUMNS]
        if missing:
            raise ValueError(f"table {name} has no column {', '.join(missing)}: not an OMOP CDM v5.4 table")
        constants = cdm_constants(name, centre_no=centre_no, centre_id=centre_id, file=file, tables=names)
        out[name] = table.select(
            **{c: ibis.literal(value, t) for c, (value, t) in constants.items()},
            **{c: table[c].cast(t) if c in table.columns else ibis.null(t) for c, t in columns.items()},
        )
    return out


def check_cdm_types(con: Any, *, database: str | None = None) -> None:
    """Raise ``ValueError`` naming the first column the mapping reads whose type is not the CDM's
    kind (text where the CDM v5.4 has a date or a number).

    Asked when a query over the CDM has failed (the casts of :func:`cdm_tables` fail only at the
    first bad value, deep inside the mapping, in the engine's own words), so that the error names
    the table and column; a text column whose every value casts is read, on every path.
    """
    names = cdm_table_names(con, database)
    for name, columns in CDM_COLUMNS.items():
        table = _table(con, name, database, names)
        if table is None:
            continue
        schema = table.schema()
        for column, target in columns.items():
            if column in schema and not _readable_as(schema[column], target):
                raise ValueError(
                    f"table {name}, column {column}: type {str(schema[column]).lstrip('!')}, where the OMOP CDM v5.4 has "
                    f"{_CDM_TYPE_WORDS[target]}; correct the ETL (or cast the column) and export again"
                )


def union_cdm(parts: Sequence[dict[str, ir.Table]]) -> dict[str, ir.Table]:
    """Several centres' :func:`cdm_tables` stacked table by table (``UNION ALL``: no row may vanish).

    The parts must have been read with different ``centre_no`` (the joins tell centres apart by it);
    a table is in the result when at least one centre has it.
    """
    out: dict[str, ir.Table] = {}
    for name in CDM_COLUMNS:
        present = [part[name] for part in parts if name in part]
        if present:
            out[name] = stack(present)
    return out


def stack(parts: Sequence[ir.Table]) -> ir.Table:
    """The tables one after the other (``UNION ALL``: no row may vanish)."""
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)  # UNION ALL (Ibis' default distinct=False)
    return out


def record_counts(con: Any, *, database: str | None = None) -> dict[str, int]:
    """Rows per OMOP table present (for the reconciliation)."""
    counts: dict[str, int] = {}
    names = cdm_table_names(con, database)
    for name in OMOP_TABLES:
        table = _table(con, name, database, names)
        if table is not None:
            counts[name] = int(table.count().to_pyarrow().as_py())
    return counts
