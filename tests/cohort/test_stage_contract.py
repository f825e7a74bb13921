"""The canonical model's contract at the stage boundary: the stages refuse a database that lacks a
table or a column they read, naming it, before any query runs."""

from __future__ import annotations

from typing import Any

import pytest

from oncorwe.errors import SourceError
from oncorwe.model.schema import PATIENTS_SCHEMA, CanonicalModel, empty_frame
from oncorwe.model.store import STAGE_TABLES, connect, read_tables, write_model


def _empty_model() -> CanonicalModel:
    from oncorwe.model.schema import ASSESSMENTS_SCHEMA, DRUG_EXPOSURES_SCHEMA, EVENTS_SCHEMA

    return CanonicalModel(patients=empty_frame(PATIENTS_SCHEMA), drug_exposures=empty_frame(DRUG_EXPOSURES_SCHEMA),
                          assessments=empty_frame(ASSESSMENTS_SCHEMA), events=empty_frame(EVENTS_SCHEMA))


@pytest.fixture()
def con() -> Any:
    con = connect(None)
    write_model(con, _empty_model())
    return con


def test_a_complete_model_passes_the_contract(con: Any) -> None:
    assert set(STAGE_TABLES) <= set(read_tables(con))


def test_a_missing_table_is_named(con: Any) -> None:
    con.drop_table("events")
    with pytest.raises(SourceError, match="events"):
        read_tables(con)


def test_a_missing_column_is_named(con: Any) -> None:
    con.raw_sql("ALTER TABLE observations DROP COLUMN reference_high")
    with pytest.raises(SourceError, match="observations lacks the columns reference_high"):
        read_tables(con)
