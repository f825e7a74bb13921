"""OMOP CDM through one portable query layer: the synthetic study's OMOP centres read from their
DuckDB files and, loaded into PostgreSQL, through the same Ibis expressions, give the same rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import ibis.expr.types as ir
import polars as pl
import pytest

from oncorwe import harmonise
from oncorwe.model.schema import CANONICAL_TABLES
from oncorwe.model.store import connect
from oncorwe.protocol import load as _load_protocol
from oncorwe.sources import detect_kind, omop

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()


def _omop_files(study: Path) -> list[tuple[str, Path]]:
    found = [(p.parent.name, p) for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]
    assert len(found) == 2, found
    return found


def _without_file(frame: pl.DataFrame) -> pl.DataFrame:
    # provenance names the database ("omop.duckdb" vs "<db>.<schema>"); the table and key must agree
    if "source" not in frame.columns:
        return frame
    return frame.with_columns(pl.col("source").str.replace(r"^[^#]*#", ""))


def test_the_mapping_is_lazy_ibis_with_the_model_columns(synthetic_study: Path) -> None:
    centre, path = _omop_files(synthetic_study)[0]
    con = connect(str(path))
    lookups = omop.scope_lookups(FLAGSHIP_SCOPE, harmonise.vocabulary_tables(harmonise.load_vocabulary()))
    tables = omop.canonical_tables(con, centre_id=centre, file=path.name, lookups=lookups)
    # a CDM maps to the generic tables; only CRF files have the wide ``patients`` table, and adverse
    # events are read from CRF files only so far (no CTCAE/MedDRA concept ids with a source: issue 16)
    not_from_a_cdm = {"patients", "adverse_events"}
    assert set(tables) == set(CANONICAL_TABLES) - not_from_a_cdm
    for name, schema in CANONICAL_TABLES.items():
        if name in not_from_a_cdm:
            continue
        assert isinstance(tables[name], ir.Table)
        assert set(schema) <= set(tables[name].columns), name


@pytest.fixture()
def pg_schema(postgres_uri: str):
    con = connect(postgres_uri)
    schema = f"omop_{uuid.uuid4().hex[:10]}"
    con.raw_sql(f"CREATE SCHEMA {schema}")
    try:
        yield con, schema
    finally:
        con.raw_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.disconnect()


def test_postgresql_gives_the_same_canonical_rows_as_duckdb(
    synthetic_study: Path, postgres_uri: str, pg_schema: tuple
) -> None:
    pg, schema = pg_schema
    for centre, path in _omop_files(synthetic_study):
        duck = connect(str(path))
        centre_schema = f"{schema}_{centre.replace('-', '_')}"
        pg.raw_sql(f"CREATE SCHEMA {centre_schema}")
        try:
            for name in duck.list_tables():
                pg.create_table(name, duck.table(name).to_pyarrow(), database=centre_schema)
            duck.disconnect()  # DuckDB refuses a second open of a file this process holds
            from_pg = harmonise.run(None, omop=[f"{centre}={postgres_uri}#{centre_schema}"], scope=FLAGSHIP_SCOPE)
            from_duck = harmonise.run(None, omop=[f"{centre}={path}"], scope=FLAGSHIP_SCOPE)
        finally:
            pg.raw_sql(f"DROP SCHEMA IF EXISTS {centre_schema} CASCADE")
        assert from_pg.problems == () and from_duck.problems == ()
        assert from_duck.person.height > 20
        for name in CANONICAL_TABLES:
            assert _without_file(from_pg.tables()[name]).equals(_without_file(from_duck.tables()[name])), (centre, name)
        assert from_pg.reconciliation.drop("file").equals(from_duck.reconciliation.drop("file"))


def test_an_unreachable_database_is_reported_not_raised() -> None:
    model = harmonise.run(None, omop=["xx-nowhere=postgres://nobody:secret@127.0.0.1:1/none"], scope=FLAGSHIP_SCOPE)
    assert model.patients.height == 0 and model.person.height == 0
    [line] = model.problems
    assert "xx-nowhere" in line and "secret" not in line
