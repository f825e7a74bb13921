"""A damaged OMOP CDM DuckDB file (truncated, or a column of the wrong type) is exit 2 with one
line naming the centre and the file (and the table and column), on every command, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from cli_runner import oncorwe
from oncorwe.sources import detect_kind


def _cdm(synthetic_study: Path) -> Path:
    return next(p for p in sorted(synthetic_study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb")


def _study(root: Path, cdm: Path) -> Path:
    (root / "au-x").mkdir(parents=True)
    (root / "centres.toml").write_text('[centres.au-x]\nfiles = ["omop.duckdb"]\n', encoding="utf-8")
    shutil.copy(cdm, root / "au-x" / "omop.duckdb")
    return root


def _truncated(study: Path) -> None:
    path = study / "au-x" / "omop.duckdb"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text_dates(study: Path) -> None:
    con = duckdb.connect(str(study / "au-x" / "omop.duckdb"))
    con.execute("alter table drug_exposure alter drug_exposure_start_date type varchar")
    con.execute("update drug_exposure set drug_exposure_start_date = 'not a date' "
                "where drug_exposure_id = (select min(drug_exposure_id) from drug_exposure)")
    con.close()


def _text_birth_years(study: Path) -> None:
    con = duckdb.connect(str(study / "au-x" / "omop.duckdb"))
    con.execute("alter table person alter year_of_birth type varchar")
    con.execute("update person set year_of_birth = 'about 1950' where person_id = (select min(person_id) from person)")
    con.close()


COMMANDS = {
    "validate": lambda study, out: ["validate", str(study), "--out", str(out)],
    "run --data": lambda study, out: ["run", "--data", str(study), "--out", str(out)],
    "run --omop": lambda study, out: ["run", "--omop", f"au-x={study / 'au-x' / 'omop.duckdb'}", "--out", str(out)],
}


@pytest.mark.parametrize(("damage", "expected"), [
    (_truncated, "cannot open omop.duckdb as a DuckDB database"),
    (_text_dates, "table drug_exposure, column drug_exposure_start_date: type string, where the OMOP CDM v5.4 has a date"),
    (_text_birth_years, "table person, column year_of_birth: type string, where the OMOP CDM v5.4 has an integer"),
])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_cdm_is_exit_2_with_one_line_naming_centre_and_file(
    synthetic_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    damage: object, expected: str, command: str,
) -> None:
    study = _study(tmp_path / "study", _cdm(synthetic_study))
    damage(study)  # type: ignore[operator]
    out = tmp_path / "out"
    assert oncorwe(monkeypatch, *COMMANDS[command](study, out)) == 2
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out
    errors = [line for line in printed.err.splitlines() if line.startswith("error")]
    assert len(errors) == 1, printed.err
    assert "centre au-x" in errors[0] and expected in errors[0]
    if command != "validate":
        assert not out.exists()


def test_a_text_column_whose_every_value_is_a_date_is_read(
    synthetic_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the type check names a column only when a value fails: an ETL that wrote dates as ISO text
    # loses nothing, on both paths
    study = _study(tmp_path / "study", _cdm(synthetic_study))
    con = duckdb.connect(str(study / "au-x" / "omop.duckdb"))
    con.execute("alter table drug_exposure alter drug_exposure_start_date type varchar")
    con.close()
    assert oncorwe(monkeypatch, "validate", str(study), "--out", str(tmp_path / "out")) == 0
