"""The centre files (CSV, XLSX, REDCap) harmonised *inside* PostgreSQL and Spark (``oncorwe run
--database``: the study's engine does the file rules too) give the same canonical model, the same
quarantine and the same reconciliation as inside DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from oncorwe import harmonise
from oncorwe.model.schema import CanonicalModel
from oncorwe.model.store import connect
from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()
TABLES = ("patients", "drug_exposures", "assessments", "events", "person", "conditions", "observations",
          "adverse_events", "quarantine", "reconciliation", "merges")


@pytest.fixture(scope="module")
def on_duckdb(synthetic_study: Path) -> CanonicalModel:
    return harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE, con=connect(None))


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _assert_same(model: CanonicalModel, reference: CanonicalModel, backend: str) -> None:
    for name in TABLES:
        got, expected = getattr(model, name), getattr(reference, name)
        assert got.schema == expected.schema, (backend, name)
        assert got.height == expected.height, (backend, name, got.height, expected.height)
        assert _sorted(got).equals(_sorted(expected)), (backend, name)
    assert reference.merges.height > 0 and reference.quarantine.height > 0  # the comparison is not of empties


def _tables(con: Any) -> set[str]:
    return set(con.list_tables())


def test_postgresql_harmonises_the_files_as_duckdb_does(pg_con: Any, synthetic_study: Path,
                                                         on_duckdb: CanonicalModel) -> None:
    before = _tables(pg_con)
    _assert_same(harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE, con=pg_con), on_duckdb, "postgres")
    assert _tables(pg_con) == before  # no scratch table is left behind


def test_spark_harmonises_the_files_as_duckdb_does(spark_con: Any, synthetic_study: Path,
                                                    on_duckdb: CanonicalModel) -> None:
    before = _tables(spark_con)
    _assert_same(harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE, con=spark_con), on_duckdb, "spark")
    assert _tables(spark_con) == before


def test_duckdb_keeps_no_upload_behind(synthetic_study: Path) -> None:
    """The uploads' in-memory tables are released (DuckDB would keep their Arrow data alive)."""
    con = connect(None)
    before = _tables(con)
    harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE, con=con)
    assert _tables(con) == before
