"""The workbook and REDCap centres write the same adverse event draws as the CSV centres (a sheet
of their own; a repeating instrument with coded term and grade), and every one of them is read
back as generated: per file the accepted events equal the generator's truth. A bad grade on the
workbook's adverse event sheet is quarantined with its file, sheet, row and field."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import tomli_w

from oncorwe import harmonise, protocol
from oncorwe.synth import generate_study
from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._study import ADVERSE_EVENT_SHEET


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_study("goldinger2022", tmp_path_factory.mktemp("ae") / "study", patients=300)


def _kind(file: str) -> str:
    return "xlsx" if file.endswith(".xlsx") else "redcap" if file.endswith("_DATA.csv") else "csv"


def test_workbook_and_redcap_events_survive_ingestion(study: Path) -> None:
    truth = pl.read_csv(study / "_truth" / "adverse_events.csv").with_columns(
        kind=pl.col("file").map_elements(_kind, return_dtype=pl.String))
    assert set(truth["kind"]) == {"csv", "xlsx", "redcap"}
    model = harmonise.run(study, scope=protocol.load("goldinger2022").scope())
    # a source is "<centre>/<file>[#<sheet>]:<row>"
    events = model.adverse_events.with_columns(file=pl.col("source").str.extract(r"^[^/]+/([^#:]+)"),
                                               row=pl.col("source").str.extract(r":(\d+)$").cast(pl.Int64))
    # a duplicate referral's events are merged into the patient it duplicates (as in the CSV centres)
    duplicates = pl.read_csv(study / "_truth" / "patients.csv", infer_schema=False).filter(
        pl.col("duplicate_of").is_not_null())["patient_id"]
    for (file,), drawn in truth.filter(pl.col("kind") != "csv").group_by("file"):
        want = drawn.filter(~pl.col("patient_id").is_in(duplicates.implode()))
        expected = sorted((p, t, g, EPOCH + dt.timedelta(days=d), r) for p, t, g, d, r in
                          want.select("patient_id", "ctcae_term", "grade", "onset_day", "row").rows())
        got = sorted(events.filter(pl.col("file") == file).select("patient_id", "ctcae_term", "grade", "onset_date", "row").rows())
        assert got == expected, file
        rec = model.reconciliation.filter((pl.col("file") == file) & pl.col("records_read").is_not_null())
        if _kind(str(file)) == "xlsx":
            rec = rec.filter(pl.col("sheet") == ADVERSE_EVENT_SHEET)
            assert rec.height == 1, file
            assert rec.select("records_read", "accepted", "quarantined", "merged").row(0) == (
                drawn.height, want.height, 0, drawn.height - want.height)
    severe = truth.filter((pl.col("kind") != "csv") & (pl.col("grade") >= 3))
    assert severe.height > 10  # the workbook and REDCap centres add grade >= 3 events to the table


def test_a_bad_grade_on_the_adverse_event_sheet_is_quarantined(study: Path, tmp_path: Path) -> None:
    manifest = tomllib.loads((study / "centres.toml").read_text(encoding="utf-8"))
    centre = next(c for c in manifest["centre"] if c["files"][0].endswith(".xlsx"))
    root = tmp_path / "one"
    shutil.copytree(study / centre["id"], root / centre["id"])
    (root / "centres.toml").write_text(tomli_w.dumps({"study": manifest["study"], "centre": [centre]}), encoding="utf-8")
    workbook = root / centre["id"] / centre["files"][0]
    book = openpyxl.load_workbook(workbook)
    sheet = book[ADVERSE_EVENT_SHEET]
    header_row = next(r for r in range(1, 4) if sheet.cell(r, 1).value == "patient_id")
    grade_column = 3
    sheet.cell(header_row + 2, grade_column).value = "7"  # the sheet's second data row
    book.save(workbook)
    before = harmonise.run(study, scope=protocol.load("goldinger2022").scope())
    n_before = before.adverse_events.filter(pl.col("source").str.contains(centre["files"][0])).height
    model = harmonise.run(root)
    q = model.quarantine.filter(pl.col("sheet") == ADVERSE_EVENT_SHEET)
    assert q.select("centre_id", "file", "sheet", "row", "field", "raw_value").rows() == [
        (centre["id"], centre["files"][0], ADVERSE_EVENT_SHEET, 2, "ae_grade", "7")]
    assert "CTCAE v5.0 grade" in q["reason"][0]
    assert model.adverse_events.height == n_before - 1
