"""The same protocol on the same synthetic study gives identical per-patient endpoints on DuckDB,
PostgreSQL and Spark (cohort, lines of therapy and endpoints all run inside each engine)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.model.engine import SCRATCH_PREFIX, drop_scratch
from oncorwe.model.schema import CanonicalModel
from oncorwe.model.store import connect, generic_tables, write_model
from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()


@pytest.fixture(scope="module")
def model(synthetic_study: Path) -> CanonicalModel:
    return harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE)


def _run(con: Any, model: CanonicalModel) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    prefix = f"{SCRATCH_PREFIX}s{uuid.uuid4().hex[:8]}_"
    before = set(con.list_tables())
    goldinger = protocol.load("goldinger2022")
    write_model(con, model, prefix=prefix)
    try:
        selected = cohort.run(con, goldinger, prefix=prefix, merges=model.merges)
        derived = endpoints.run(con, selected, goldinger, prefix=prefix)
    finally:
        drop_scratch(con, [t for t in con.list_tables() if t not in before])
    return derived.analysis_table.sort("patient_id"), selected.attrition, selected.lines


ANALYSIS_SCHEMA = protocol.load("goldinger2022").analysis_schema()


@pytest.fixture(scope="module")
def on_duckdb(model: CanonicalModel) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return _run(connect(None), model)


def test_duckdb_gives_a_full_analysis_table(on_duckdb: tuple[pl.DataFrame, ...], model: CanonicalModel) -> None:
    analysis, attrition, _ = on_duckdb
    assert analysis.schema == pl.Schema(ANALYSIS_SCHEMA)
    overall = attrition.filter(pl.col("centre_id").is_null())
    assert analysis.height == int(overall["n_after"].to_list()[-1]) > 100
    assert analysis["patient_id"].is_unique().all()
    # both kinds of outcome occur, so equality below compares events and censoring alike
    assert set(analysis["os_event"].unique().to_list()) == {0, 1}
    assert set(analysis["pfs_event"].unique().to_list()) == {0, 1}
    assert analysis["best_response"].n_unique() >= 3
    # some patients started a subsequent therapy (its time after the index), some did not, so the
    # equality below compares the time to subsequent therapy and its nulls alike
    started = analysis.filter(pl.col("subsequent_therapy"))
    assert 0 < started.height < analysis.height
    assert started["subsequent_therapy_months"].null_count() == 0 and (started["subsequent_therapy_months"] > 0).all()
    assert analysis.filter(~pl.col("subsequent_therapy"))["subsequent_therapy_months"].is_null().all()
    # toxicity (issue 16): patients with and without a severe event, and of centres not reporting
    assert set(analysis["severe_adverse_event"].unique().to_list()) == {True, False, None}
    assert analysis["severe_adverse_event_terms"].drop_nulls().len() > 10
    assert generic_tables(model)["person"].height > analysis.height


def _assert_same(got: tuple[pl.DataFrame, ...], want: tuple[pl.DataFrame, ...], engine: str) -> None:
    analysis, attrition, lines = got
    assert analysis.schema == want[0].schema, engine
    for column in ANALYSIS_SCHEMA:  # column by column, so a failure names the column
        assert analysis[column].equals(want[0][column], check_names=True), (engine, column)
    assert attrition.equals(want[1]), engine
    assert lines.equals(want[2]), engine


def test_postgresql_gives_identical_per_patient_endpoints(
    pg_con: Any, model: CanonicalModel, on_duckdb: tuple[pl.DataFrame, ...]
) -> None:
    _assert_same(_run(pg_con, model), on_duckdb, "postgres")


def test_spark_gives_identical_per_patient_endpoints(
    spark_con: Any, model: CanonicalModel, on_duckdb: tuple[pl.DataFrame, ...]
) -> None:
    _assert_same(_run(spark_con, model), on_duckdb, "spark")
    # the run left no scratch tables behind
    assert not [t for t in spark_con.list_tables() if t.startswith(SCRATCH_PREFIX)]


def test_the_canonical_tables_the_engines_read_are_the_model(model: CanonicalModel) -> None:
    # guards the comparison above: it is over real canonical tables, not empty ones
    # (the CRF-only study has no concept hierarchy: concept_ancestor is empty by design)
    for name, frame in generic_tables(model).items():
        assert frame.height > 0 or name == "concept_ancestor", name
