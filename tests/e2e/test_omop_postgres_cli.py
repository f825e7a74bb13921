"""``oncorwe run --omop CENTRE=postgres://...#schema``: a PostgreSQL CDM goes through the one
in-engine mapping, read in place when the engine is the same database (``--database`` on it) and
copied in first, only the study's rows, into the default DuckDB engine; either way the analysis
table, attrition, quarantine and merges equal those of the same CDMs given as DuckDB files, and the
report's tables are the same files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from tests.cli_runner import oncorwe

from oncorwe import protocol
from oncorwe.harmonise.in_engine import scoped_cdm
from oncorwe.model import store
from oncorwe.pipeline import Derived, derive
from oncorwe.sources import detect_kind

FLAGSHIP = protocol.load("goldinger2022")


def _cdm_files(study: Path) -> list[tuple[str, Path]]:
    found = [(p.parent.name, p) for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]
    assert len(found) == 2, found
    return found


def _with_defects(files: list[tuple[str, Path]], out: Path) -> list[tuple[str, Path]]:
    """Copies of the CDM files, the first with a record for each quarantine rule (an unknown drug
    without a concept, an end before the start, an unknown stop reason, a response that is no
    RECIST word)."""
    copies = []
    for centre, path in files:
        copy = out / centre / path.name
        copy.parent.mkdir(parents=True)
        copy.write_bytes(path.read_bytes())
        copies.append((centre, copy))
    db = duckdb.connect(str(copies[0][1]))
    ids = [r[0] for r in db.execute("SELECT drug_exposure_id FROM drug_exposure ORDER BY 1 LIMIT 3").fetchall()]
    db.execute("UPDATE drug_exposure SET drug_concept_id = 0, drug_source_value = 'zzz' WHERE drug_exposure_id = ?",
               [ids[0]])
    db.execute("UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - 9 "
               "WHERE drug_exposure_id = ?", [ids[1]])
    db.execute("UPDATE drug_exposure SET stop_reason = 'weather' WHERE drug_exposure_id = ?", [ids[2]])
    db.execute("UPDATE measurement SET value_source_value = 'maybe' WHERE measurement_id = (SELECT min(measurement_id) "
               "FROM measurement WHERE lower(measurement_source_value) LIKE '%recist%')")
    db.close()
    return copies


@pytest.fixture(scope="module")
def study_with_background(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic study, its OMOP centres holding the hospital's other patients too
    (three per study record: persons without the condition, some on a study drug)."""
    from oncorwe.synth import generate_study

    return generate_study("goldinger2022", tmp_path_factory.mktemp("background") / "goldinger2022", background=3)


@pytest.fixture(scope="module")
def pg_cdms(study_with_background: Path, postgres_uri: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, Path, str]]]:
    """The study's OMOP centres (with defects) as DuckDB files and loaded into PostgreSQL, one schema
    each: (centre, file, schema)."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    files = _with_defects(_cdm_files(study_with_background), tmp_path_factory.mktemp("cdms"))
    con = store.connect(postgres_uri)
    loaded = []
    try:
        for number, (centre, path) in enumerate(files):
            schema = f"{tag}_cdm_{number}"
            con.raw_sql(f"CREATE SCHEMA {schema}").close()
            loaded.append((centre, path, schema))
            src = duckdb.connect(str(path), read_only=True)
            for (name,) in src.execute("SELECT table_name FROM information_schema.tables").fetchall():
                con.create_table(name, src.execute(f'SELECT * FROM "{name}"').fetch_arrow_table(), database=schema)
            src.close()
        yield loaded
    finally:
        for _, _, schema in loaded:
            con.raw_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE").close()
        con.disconnect()


@pytest.fixture(scope="module")
def engine_schema(postgres_uri: str) -> Iterator[str]:
    """A schema of its own for the canonical tables of a run on PostgreSQL (``--database .../db/schema``)."""
    schema = f"t{uuid.uuid4().hex[:8]}_engine"
    con = store.connect(postgres_uri)
    con.raw_sql(f"CREATE SCHEMA {schema}").close()
    try:
        yield schema
    finally:
        con.raw_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE").close()
        con.disconnect()


def _file_specs(cdms: list[tuple[str, Path, str]]) -> list[str]:
    return [f"{centre}={path}" for centre, path, _ in cdms]


def _pg_specs(cdms: list[tuple[str, Path, str]], uri: str) -> list[str]:
    return [f"{centre}={uri}#{schema}" for centre, _, schema in cdms]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.all(), nulls_last=True)


@pytest.fixture(scope="module")
def from_files(pg_cdms: list[tuple[str, Path, str]]) -> Derived:
    return derive(FLAGSHIP, store.connect(None), omop=_file_specs(pg_cdms))


def _labels(cdms: list[tuple[str, Path, str]], uri: str) -> dict[str, str]:
    """Centre -> what its records name as their file: ``<database>.<schema>`` (not ``omop.duckdb``)."""
    return {centre: f"{uri.rsplit('/', 1)[-1]}.{schema}" for centre, _, schema in cdms}


def _refiled(frame: pl.DataFrame, labels: dict[str, str]) -> pl.DataFrame:
    return _sorted(frame.with_columns(file=pl.col("centre_id").replace_strict(labels, return_dtype=pl.String)))


def _assert_same_as_files(got: Derived, want: Derived, labels: dict[str, str]) -> None:
    assert got.in_engine and want.in_engine
    assert want.endpoints.analysis_table.height > 50
    assert got.endpoints.analysis_table.equals(want.endpoints.analysis_table)
    assert got.cohort.attrition.equals(want.cohort.attrition)
    assert got.merges.equals(want.merges)
    assert want.quarantine.height > 0
    assert _sorted(got.quarantine).equals(_refiled(want.quarantine, labels))
    assert _sorted(got.reconciliation).equals(_refiled(want.reconciliation, labels))


def test_a_postgresql_cdm_beside_the_default_engine_is_copied_in_scoped_and_mapped_alike(
        pg_cdms: list[tuple[str, Path, str]], postgres_uri: str, from_files: Derived) -> None:
    con = store.connect(None)
    got = derive(FLAGSHIP, con, omop=_pg_specs(pg_cdms, postgres_uri))
    _assert_same_as_files(got, from_files, _labels(pg_cdms, postgres_uri))
    # the copies are gone once mapped: no scratch schema is left in the engine
    assert not [d for d in con.list_databases() if d.startswith("oncorwe_tmp_")]


def test_the_copy_holds_only_the_study_persons_and_drugs(
        pg_cdms: list[tuple[str, Path, str]], postgres_uri: str) -> None:
    centre, path, schema = pg_cdms[0]
    src = store.connect(postgres_uri)
    try:
        tables = scoped_cdm(src, schema, FLAGSHIP.scope(), centre_id=centre, file=path.name)
        persons = tables["person"].count().to_pyarrow().as_py()
        everyone = src.table("person", database=schema).count().to_pyarrow().as_py()
        drugs = tables["drug_exposure"].count().to_pyarrow().as_py()
        all_drugs = src.table("drug_exposure", database=schema).count().to_pyarrow().as_py()
    finally:
        src.disconnect()
    assert 0 < persons < everyone / 3 and 0 < drugs < all_drugs


def test_a_postgresql_cdm_in_the_engines_own_database_is_mapped_in_place(
        pg_cdms: list[tuple[str, Path, str]], postgres_uri: str, engine_schema: str, from_files: Derived) -> None:
    con = store.connect(f"{postgres_uri}/{engine_schema}")
    try:
        before = set(con.list_databases())
        got = derive(FLAGSHIP, con, omop=_pg_specs(pg_cdms, postgres_uri))
        assert set(con.list_databases()) == before  # nothing copied: no schema made
        assert "person" in con.list_tables(database=engine_schema)
        _assert_same_as_files(got, from_files, _labels(pg_cdms, postgres_uri))
    finally:
        con.disconnect()


def _report_tables(out: Path) -> dict[str, pl.DataFrame]:
    return {p.name: pl.read_csv(p, infer_schema=False) for p in sorted((out / "tables").glob("*.csv"))}


def _assert_same_report(got: Path, want: Path, labels: dict[str, str]) -> None:
    mine, theirs = _report_tables(got), _report_tables(want)
    assert sorted(mine) == sorted(theirs) and "attrition.csv" in mine
    for name, frame in theirs.items():
        if name == "reconciliation.csv":  # the one table naming the file
            frame = frame.with_columns(file=pl.col("centre_id").replace_strict(labels, return_dtype=pl.String))
        else:
            assert (got / "tables" / name).read_bytes() == (want / "tables" / name).read_bytes(), name
        assert mine[name].equals(frame), name


@pytest.fixture(scope="module")
def files_report(pg_cdms: list[tuple[str, Path, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("files") / "report"
    with pytest.MonkeyPatch.context() as monkeypatch:
        args = [a for spec in _file_specs(pg_cdms) for a in ("--omop", spec)]
        assert oncorwe(monkeypatch, "run", *args, "--out", str(out), "--quiet") == 0
    return out


def test_cli_run_with_a_postgresql_cdm_and_the_default_engine_writes_the_files_report(
        pg_cdms: list[tuple[str, Path, str]], postgres_uri: str, files_report: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    args = [a for spec in _pg_specs(pg_cdms, postgres_uri) for a in ("--omop", spec)]
    assert oncorwe(monkeypatch, "run", *args, "--out", str(out), "--quiet") == 0
    _assert_same_report(out, files_report, _labels(pg_cdms, postgres_uri))
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert ":oncorwe@" not in manifest and ":***@" in manifest  # the password is not in the report


def test_cli_run_with_a_postgresql_cdm_and_its_own_database_as_engine_writes_the_files_report(
        pg_cdms: list[tuple[str, Path, str]], postgres_uri: str, engine_schema: str, files_report: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    args = [a for spec in _pg_specs(pg_cdms, postgres_uri) for a in ("--omop", spec)]
    assert oncorwe(monkeypatch, "run", *args, "--database", f"{postgres_uri}/{engine_schema}",
                   "--out", str(out), "--quiet") == 0
    _assert_same_report(out, files_report, _labels(pg_cdms, postgres_uri))


def _with_port(uri: str, port: int) -> str:
    head, _, tail = uri.rpartition("@")
    host_port, _, database = tail.partition("/")
    return f"{head}@{host_port.split(':')[0]}:{port}/{database}"


@pytest.mark.parametrize("case", ["unreachable server", "missing schema"])
def test_a_cdm_that_cannot_be_read_is_exit_2_in_one_line_naming_the_centre(
        case: str, pg_cdms: list[tuple[str, Path, str]], postgres_uri: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    uri = _with_port(postgres_uri, 1) if case == "unreachable server" else postgres_uri
    schema = pg_cdms[0][2] if case == "unreachable server" else "no_such_schema_here"
    code = oncorwe(monkeypatch, "run", "--omop", f"xx-centre={uri}#{schema}", "--out", str(tmp_path / "r"))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, captured.err
    assert len(lines) == 1 and "xx-centre" in lines[0], captured.err
    assert "Traceback" not in captured.err
    password = postgres_uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert f":{password}@" not in captured.err + captured.out
    if case == "missing schema":
        assert "no_such_schema_here" in lines[0]
    assert not (tmp_path / "r").exists()
