"""Fixtures of the scale tests: one local Spark session per test session (starting the JVM is the
slow part), a PostgreSQL connection, and a hand-built canonical model with every awkward value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from oncorwe.model.engine import drop_scratch
from oncorwe.model.schema import CANONICAL_TABLES, CanonicalModel
from oncorwe.model.store import connect


@pytest.fixture(scope="session")
def spark_con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from oncorwe.model.engine import connect_spark

    con = connect_spark("local[2]", warehouse=str(tmp_path_factory.mktemp("spark-warehouse")))
    yield con
    drop_scratch(con)


@pytest.fixture(scope="session")
def pg_con(postgres_uri: str) -> Iterator[Any]:
    con = connect(postgres_uri)
    yield con
    drop_scratch(con)
    con.disconnect()


def _frame(rows: list[tuple[Any, ...]], name: str) -> pl.DataFrame:
    schema = CANONICAL_TABLES[name]
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.fixture(scope="session")
def tiny_model() -> CanonicalModel:
    """Three patients with nulls in every nullable column, an int8 beside nulls, dates at the edges of
    the calendar, a non-ASCII source string and a patient without any record but the person row."""
    d = dt.date
    patients = _frame([
        ("c1:001", "c1", "female", 1950, None, d(2015, 3, 1), "cutaneous", "IV", "M1c", True, False, 1,
         250.0, 225.0, True, "c1/p.csv:1"),
        ("c1:002", "c1", None, None, 71.5, None, None, None, None, None, None, None, None, None, None, "c1/p.csv:2"),
        ("c2:Zürich-7", "c2", "male", 1999, None, d(1970, 1, 1), "acral", "III_unresectable", "M0", False, True,
         0, 3.5 * 60, 4.0 * 60, False, "c2/omop.duckdb#person:7"),
    ], "patients")
    exposures = _frame([
        ("c1:001", "ipilimumab", 1594586, "anti_ctla4", d(2016, 1, 4), d(2016, 3, 1), "progression", 1, "Yervoy", "c1/t.csv:1"),
        ("c1:001", "carboplatin", 1344905, "chemotherapy", d(2016, 4, 1), None, None, None, "carbo", "c1/t.csv:2"),
        ("c2:Zürich-7", "dacarbazine", 1311409, "chemotherapy", d(2000, 2, 29), d(2000, 2, 29), "other", 2, "DTIC",
         "c2/omop.duckdb#drug_exposure:99"),
    ], "drug_exposures")
    assessments = _frame([
        ("c1:001", d(2016, 6, 1), "PR", "timepoint", "c1/a.csv:1"),
        ("c1:001", None, "SD", "best_overall", "c1/a.csv:2"),
    ], "assessments")
    events = _frame([
        ("c1:001", "death", d(2017, 12, 31), "c1/e.csv:1"),
        ("c2:Zürich-7", "last_contact", d(2001, 1, 1), "c2/omop.duckdb#observation_period:7"),
    ], "events")
    adverse_events = _frame([
        ("c1:001", "Neutrophil count decreased", 3, d(2016, 4, 20), "c1/ae.csv:1"),
        ("c2:Zürich-7", "Übelkeit", 1, d(2000, 3, 1), "c2/ae.csv:1"),
    ], "adverse_events")
    return CanonicalModel(patients=patients, drug_exposures=exposures, assessments=assessments, events=events,
                          adverse_events=adverse_events)
