"""``oncorwe run --engine-memory``: the DuckDB engine's memory limit (a CDM of millions of persons
in a few GiB); a size that is not one, or a limit for an engine that manages its own memory, is
exit 2 in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli_runner import oncorwe

from oncorwe.model import store
from oncorwe.pipeline import _limit_memory
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
