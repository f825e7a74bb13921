"""The in-engine OMOP mapping gives the same canonical tables, quarantine and merges on PostgreSQL
(one schema per centre) and on Spark (one database per centre) as on DuckDB (the centre files
attached), for the synthetic study's OMOP centres, with every record rule fired."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from oncorwe.harmonise.in_engine import EngineModel, OmopInEngine, attach_duckdb, omop_into_engine
from oncorwe.model.engine import SCRATCH_PREFIX, backend_name
from oncorwe.model.schema import CANONICAL_TABLES, QUARANTINE_SCHEMA
from oncorwe.model.store import MODEL_TABLES, STAGE_TABLES, connect, to_polars
from oncorwe.protocol import load as _load_protocol
from oncorwe.sources import detect_kind

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()

Tables = dict[str, pl.DataFrame]


def _omop_files(study: Path) -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]


@pytest.fixture(scope="module")
def centres(synthetic_study: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """The OMOP centres, the first with a defect for each record rule (copied, never changed in place)."""
    files = _omop_files(synthetic_study)
    assert len(files) >= 2
    out = tmp_path_factory.mktemp("omop-backends")
    centre, path = files[0]
    copy = out / path.name
    copy.write_bytes(path.read_bytes())
    db = duckdb.connect(str(copy))
    ids = [r[0] for r in db.execute("SELECT drug_exposure_id FROM drug_exposure ORDER BY 1 LIMIT 3").fetchall()]
    db.execute("UPDATE drug_exposure SET drug_concept_id = 0, drug_source_value = 'zzz' WHERE drug_exposure_id = ?",
               [ids[0]])
    db.execute("UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - 9 "
               "WHERE drug_exposure_id = ?", [ids[1]])
    db.execute("UPDATE drug_exposure SET stop_reason = 'weather' WHERE drug_exposure_id = ?", [ids[2]])
    db.execute("UPDATE measurement SET value_source_value = 'maybe' WHERE measurement_id = (SELECT min(measurement_id) "
               "FROM measurement WHERE lower(measurement_source_value) LIKE '%recist%')")
    db.close()
    return [(centre, copy), *files[1:]]


def _tables(con: Any, prefix: str, result: EngineModel) -> Tables:
    # PostgreSQL has no 1-byte integer: ecog comes back as int16, the model's int8 after the cast
    out = {name: to_polars(con.table(f"{prefix}{name}")).select(list(schema)).cast(schema)  # type: ignore[arg-type]
           .sort(pl.all(), nulls_last=True) for name, schema in CANONICAL_TABLES.items() if name in STAGE_TABLES}
    quarantine = to_polars(con.table(f"{prefix}quarantine")).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
    out["quarantine"] = quarantine.sort(pl.all(), nulls_last=True)
    out["merges"] = result.merges
    for name in STAGE_TABLES:
        # the flagship's protocol names no concept hierarchy (no condition categories)
        assert result.row_counts[name] == out[name].height, name
        assert out[name].height > 0 or name == "concept_ancestor", name
    return out


@pytest.fixture(scope="module")
def on_duckdb(centres: list[tuple[str, Path]]) -> Tables:
    con = connect(None)
    sources = [OmopInEngine(c, p.name, attach_duckdb(con, str(p), f"cdm_{i}")) for i, (c, p) in enumerate(centres)]
    tables = _tables(con, "d_", omop_into_engine(con, sources, scope=FLAGSHIP_SCOPE, prefix="d_"))
    assert tables["quarantine"].height == 4, tables["quarantine"]
    return tables


def _load(con: Any, centres: list[tuple[str, Path]], tag: str) -> list[OmopInEngine]:
    """Each centre's CDM copied into the engine: a PostgreSQL schema, a Spark database."""
    sources = []
    for i, (centre, path) in enumerate(centres):
        schema = f"{tag}_cdm_{i}"
        spark = backend_name(con) == "pyspark"
        if spark:
            con._session.sql(f"CREATE DATABASE {schema}")
        else:
            con.raw_sql(f"CREATE SCHEMA {schema}").close()
        src = duckdb.connect(str(path), read_only=True)
        for (name,) in src.execute("SELECT table_name FROM information_schema.tables").fetchall():
            arrow = src.execute(f'SELECT * FROM "{name}"').fetch_arrow_table()
            if spark:  # straight from Arrow, which keeps the types
                con._session.createDataFrame(arrow).write.saveAsTable(f"{schema}.{name}")
            else:
                con.create_table(name, arrow, database=schema)
        src.close()
        sources.append(OmopInEngine(centre, path.name, schema))
    return sources


def _drop(con: Any, sources: list[OmopInEngine]) -> None:
    for source in sources:
        if backend_name(con) == "pyspark":
            con._session.sql(f"DROP DATABASE IF EXISTS {source.database} CASCADE")
        else:
            con.raw_sql(f"DROP SCHEMA IF EXISTS {source.database} CASCADE").close()


def _in(con: Any, centres: list[tuple[str, Path]]) -> Iterator[Tables]:
    tag = f"t{uuid.uuid4().hex[:8]}"
    prefix = f"{SCRATCH_PREFIX}{tag}_"
    sources = _load(con, centres, tag)
    try:
        tables = _tables(con, prefix, omop_into_engine(con, sources, scope=FLAGSHIP_SCOPE, prefix=prefix))
        # only the canonical tables and the quarantine stay behind: the views and scratch tables went
        assert sorted(t for t in con.list_tables() if t.startswith(SCRATCH_PREFIX)) == sorted(
            f"{prefix}{n}" for n in [*STAGE_TABLES, "quarantine"])
        yield tables
    finally:
        for name in [*MODEL_TABLES, "quarantine"]:
            con.drop_table(f"{prefix}{name}", force=True)
        _drop(con, sources)


def _assert_same(got: Tables, want: Tables, engine: str) -> None:
    for name, frame in want.items():
        assert got[name].schema == frame.schema, (engine, name)
        for column in frame.columns:  # column by column, so that a failure names the column
            differ = got[name].with_row_index().join(frame.with_row_index(), on="index").filter(
                pl.col(column).ne_missing(pl.col(f"{column}_right")))
            assert differ.height == 0, (engine, name, column, differ.head(3).to_dicts())
        assert got[name].equals(frame), (engine, name)


def test_postgresql_maps_the_cdms_as_duckdb_does(pg_con: Any, centres: list[tuple[str, Path]],
                                                 on_duckdb: Tables) -> None:
    for tables in _in(pg_con, centres):
        _assert_same(tables, on_duckdb, "postgres")


def test_spark_maps_the_cdms_as_duckdb_does(spark_con: Any, centres: list[tuple[str, Path]],
                                            on_duckdb: Tables) -> None:
    for tables in _in(spark_con, centres):
        _assert_same(tables, on_duckdb, "spark")
