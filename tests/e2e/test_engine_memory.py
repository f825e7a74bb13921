"""``oncorwe run --engine-memory``: the DuckDB engine's memory limit (a CDM of millions of persons
in a few GiB); a size that is not one, or a limit for an engine that manages its own memory, is
exit 2 in one line, and so is the engine running out of memory (errors.EngineMemoryError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli_runner import oncorwe

from oncorwe.model import engine, store
from oncorwe.pipeline import _limit_memory, engine_out_of_memory
from oncorwe.sources import detect_kind


def _cdm_args(study: Path) -> list[str]:
    found = [f"{p.parent.name}={p}" for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]
    return [a for spec in found for a in ("--omop", spec)]


def test_the_limit_is_the_engines_and_it_spills_to_a_folder_of_its_own() -> None:
    con = store.connect(None)
    _limit_memory(con, "300MB")
    limit, folder = con.raw_sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB") and "oncorwe-spill-" in folder
    _limit_memory(con, None)  # no limit asked: DuckDB's own stays


def test_cli_run_with_a_memory_limit_writes_the_report(
        synthetic_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    assert oncorwe(monkeypatch, "run", *_cdm_args(synthetic_study), "--engine-memory", "512MB",
                   "--out", str(out), "--quiet") == 0
    assert (out / "report.html").is_file()


@pytest.mark.parametrize(("value", "database", "named"), [
    ("lots", None, "'lots' is not a size"),
    ("1GB", "postgres", "only for a DuckDB engine"),
])
def test_a_limit_that_cannot_be_set_is_exit_2_in_one_line(
        value: str, database: str | None, named: str, synthetic_study: Path, postgres_uri: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--database", postgres_uri] if database else []
    code = oncorwe(monkeypatch, "run", *_cdm_args(synthetic_study), "--engine-memory", value, *extra,
                   "--out", str(tmp_path / "r"))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and named in lines[0], captured.err
    assert "Traceback" not in captured.err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("source", ["files", "cdms"])
def test_the_engine_out_of_memory_is_exit_2_in_one_line_naming_the_limit(
        source: str, synthetic_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A limit far below what the study needs: DuckDB's OutOfMemoryException, not a traceback."""
    inputs = ["--data", str(synthetic_study)] if source == "files" else _cdm_args(synthetic_study)
    code = oncorwe(monkeypatch, "run", *inputs, "--engine-memory", "1MB", "--out", str(tmp_path / "r"))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, captured.err
    assert lines[0].startswith("error: [harmonise] the DuckDB engine ran out of memory in the harmonise stage")
    assert "--engine-memory 1MB" in lines[0] and "raise --engine-memory" in lines[0]
    assert "spills to the temporary folder" in lines[0]
    assert "Traceback" not in captured.err and "OutOfMemoryException" not in captured.err
    assert not (tmp_path / "r").exists()


class _PostgresOutOfMemory(Exception):
    sqlstate = "53200"  # as psycopg's errors carry it


def test_out_of_memory_is_found_through_a_wrapper_and_nothing_else_is() -> None:
    import duckdb

    con = store.connect(None)
    with pytest.raises(duckdb.CatalogException) as other:  # any other engine error: not memory
        con.raw_sql("SELECT * FROM no_such_table")
    assert engine.out_of_memory(other.value) is None and engine_out_of_memory(other.value, con, "cohort", None) is None
    try:
        try:
            raise duckdb.OutOfMemoryException("failed to pin block")
        except duckdb.Error as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as wrapped:
        error = engine_out_of_memory(wrapped, con, "cohort", None)
    assert error is not None and error.exit_code == 2
    assert "in the cohort stage" in str(error) and "DuckDB's default, 80% of the RAM" in str(error)
    postgres = engine_out_of_memory(_PostgresOutOfMemory("out of memory"), con, "endpoints", None)
    assert postgres is not None and "SQLSTATE 53200" in str(postgres) and "endpoints" in str(postgres)


def test_derive_without_a_stage_runner_of_its_own_names_the_stage_too(synthetic_study: Path) -> None:
    """``oncorwe explain`` and the API call :func:`derive` with no stage runner: the engine out of
    memory is still an EngineMemoryError naming the stage and the limit in force."""
    from oncorwe import protocol
    from oncorwe.errors import EngineMemoryError
    from oncorwe.pipeline import derive

    con = store.connect(None)
    _limit_memory(con, "1MB")
    cdms = [a for a in _cdm_args(synthetic_study) if a != "--omop"]
    with pytest.raises(EngineMemoryError) as raised:
        derive(protocol.load("goldinger2022"), con, omop=cdms)
    assert str(raised.value).startswith("the DuckDB engine ran out of memory in the harmonise stage")
    assert "the connection's memory_limit" in str(raised.value) and "--engine-memory" not in str(raised.value)
    assert raised.value.exit_code == 2
