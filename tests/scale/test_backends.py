"""The canonical tables go into DuckDB, PostgreSQL and Spark and come back the same; intermediate
results are materialised inside each engine and their scratch tables are cleaned up."""

from __future__ import annotations

import uuid
from typing import Any

import ibis
import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.model.engine import (
    SCRATCH_PREFIX,
    backend_name,
    drop_scratch,
    materialise,
    scratch,
    scratch_name,
)
from oncorwe.model.schema import CANONICAL_TABLES, CanonicalModel
from oncorwe.model.store import (
    MODEL_TABLES,
    connect,
    generic_tables,
    read_tables,
    to_polars,
    write_model,
)

BACKENDS = ("duckdb", "postgres", "spark")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    if request.param == "duckdb":
        return connect(None)
    if request.param == "postgres":
        return request.getfixturevalue("pg_con")
    return request.getfixturevalue("spark_con")


def _read_back(con: Any, prefix: str) -> dict[str, pl.DataFrame]:
    tables = read_tables(con, prefix=prefix)
    out = {}
    for name, schema in CANONICAL_TABLES.items():
        frame = to_polars(tables[name]).select(list(schema))
        out[name] = frame.cast(schema).sort(frame.columns)  # type: ignore[arg-type]
    return out


def test_the_canonical_tables_come_back_identical(backend: Any, tiny_model: CanonicalModel) -> None:
    prefix = f"{SCRATCH_PREFIX}m{uuid.uuid4().hex[:8]}_"
    write_model(backend, tiny_model, prefix=prefix)
    try:
        back = _read_back(backend, prefix)
    finally:
        drop_scratch(backend, [f"{prefix}{n}" for n in MODEL_TABLES])
    for name, frame in generic_tables(tiny_model).items():
        assert back[name].equals(frame.sort(frame.columns)), (backend_name(backend), name, back[name], frame)
    assert not [t for t in backend.list_tables() if t.startswith(prefix)]


def test_an_int8_beside_nulls_keeps_its_values(backend: Any, tiny_model: CanonicalModel) -> None:
    # Ibis' own PySpark upload goes through pandas and turned [1, None, 0] into nulls
    prefix = f"{SCRATCH_PREFIX}e{uuid.uuid4().hex[:8]}_"
    with scratch(backend) as created:
        write_model(backend, tiny_model, prefix=prefix)
        created += [f"{prefix}{n}" for n in MODEL_TABLES]
        ecog = to_polars(backend.table(f"{prefix}patients").select("source", "ecog")).sort("source")
    assert ecog["ecog"].to_list() == [1, None, 0]


def test_an_expression_is_materialised_inside_the_engine(backend: Any, tiny_model: CanonicalModel) -> None:
    prefix = f"{SCRATCH_PREFIX}x{uuid.uuid4().hex[:8]}_"
    with scratch(backend) as created:
        write_model(backend, tiny_model, prefix=prefix)
        created += [f"{prefix}{n}" for n in MODEL_TABLES]
        drugs = backend.table(f"{prefix}drug_exposures")
        per_patient = drugs.group_by("patient_id").aggregate(
            n_courses=drugs.count(), first_start=drugs.start_date.min(),
            chemo=(drugs.drug_class == "chemotherapy").sum())
        name = scratch_name("courses")
        created.append(name)
        stored = materialise(backend, per_patient, name)
        assert name in backend.list_tables()
        # the stored table is read by a later query in the engine
        got = to_polars(stored.filter(stored.n_courses > 1).select("patient_id", "chemo"))
        assert got.rows() == [("c1:001", 1)]
        assert to_polars(stored.count().name("n").as_table())["n"].item() == 2
    assert name not in backend.list_tables()
    assert not [t for t in backend.list_tables() if t.startswith(prefix)]


def test_drop_scratch_touches_only_oncorwe_scratch_tables() -> None:
    con = connect(None)
    con.create_table("patients_of_someone_else", ibis.memtable({"a": [1]}).to_pyarrow())
    materialise(con, ibis.memtable({"a": [1, 2]}), scratch_name("one"))
    materialise(con, ibis.memtable({"a": [3]}), scratch_name("two"))
    dropped = drop_scratch(con)
    assert len(dropped) == 2 and all(n.startswith(SCRATCH_PREFIX) for n in dropped)
    assert _own_tables(con) == ["patients_of_someone_else"]
    assert drop_scratch(con, ["patients_of_someone_else"]) == []
    assert _own_tables(con) == ["patients_of_someone_else"]


def _own_tables(con: Any) -> list[str]:
    return [t for t in con.list_tables() if not t.startswith("ibis_")]  # Ibis' memtable views


def test_bad_names_and_uris_are_input_errors() -> None:
    con = connect(None)
    with pytest.raises(InputError, match="table name 'x; DROP TABLE y'"):
        materialise(con, ibis.memtable({"a": [1]}), "x; DROP TABLE y")
    with pytest.raises(InputError, match="unsupported database URI 'mysql://u:\\*\\*\\*@h/db'"):
        connect("mysql://u:secret@h/db")


def test_spark_uris_reach_the_running_session(spark_con: Any) -> None:
    for uri in ("spark", "pyspark://local[2]"):
        con = connect(uri)
        assert backend_name(con) == "pyspark"
        assert con._session is spark_con._session
