"""``oncorwe validate DIR``: the reconciliation and quarantine summary, printed and written as CSV."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study
from typer.testing import CliRunner

from oncorwe.cli.app import app, main


def test_validate_prints_and_writes_the_reconciliation_and_quarantine(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["validate", str(study), "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Reconciliation" in result.output and "therapien.csv" in result.output
    assert "duplicate of row 2" in result.output
    assert "K001" not in result.output  # no patient identifiers on screen
    rec = pl.read_csv(out / "reconciliation.csv")
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    quarantine = pl.read_csv(out / "quarantine.csv")
    assert quarantine.height == 12
    assert {"centre_id", "file", "row", "field", "raw_value", "reason", "action"} <= set(quarantine.columns)
    assert (out / "column_map.csv").is_file()


def test_an_ambiguous_date_column_exits_2_with_one_line_naming_centre_file_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    (study / "xx-one").mkdir(parents=True)
    (study / "centres.toml").write_text('[centres.xx-one]\nfiles = ["patients.csv"]\n', encoding="utf-8")
    (study / "xx-one" / "patients.csv").write_text(
        "patient_id,sex,diagnosis_date\n1,m,03/04/2012\n2,f,05/06/2013\n", encoding="utf-8"
    )
    monkeypatch.setattr(sys, "argv", ["oncorwe", "validate", str(study), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert "xx-one" in lines[0] and "patients.csv" in lines[0] and "'diagnosis_date'" in lines[0]
    assert 'date_order = "DMY"' in lines[0]
    assert "Traceback" not in stderr


def test_validate_writes_byte_identical_files_for_the_same_input(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    for out in ("a", "b"):
        result = CliRunner().invoke(app, ["validate", str(study), "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    for name in ("reconciliation.csv", "quarantine.csv", "column_map.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
