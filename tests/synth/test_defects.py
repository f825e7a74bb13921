"""Every injected defect is recorded where it is, and the cohort survives it."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import polars as pl
from synth_raw import decode

KINDS = {"unparseable_date", "end_before_start", "progression_before_chemo", "unknown_drug", "unknown_response", "shifted_row", "duplicated_row"}


def defects(folder: Path) -> list[dict[str, str]]:
    with (folder / "_truth" / "defects.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def data_rows(path: Path, sheet: str) -> tuple[list[str], list[list[str]], str]:
    if path.suffix == ".xlsx":
        ws = openpyxl.load_workbook(path)[sheet]
        rows = [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]
        start = next(k for k, row in enumerate(rows) if row[0] == "patient_id")
        return rows[start], rows[start + 1 :], ","
    text = decode(path.read_bytes())
    header = text.splitlines()[0]
    delimiter = ";" if ";" in header else "\t" if "\t" in header else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    return rows[0], rows[1:], delimiter


def test_every_kind_is_present_with_a_known_consequence(synthetic_study: Path) -> None:
    found = defects(synthetic_study)
    assert {d["kind"] for d in found} == KINDS
    assert {d["consequence"] for d in found} <= {"quarantine_record", "null_value", "drop_duplicate"}
    assert len(found) < 100


def test_each_defect_sits_where_the_truth_says(synthetic_study: Path) -> None:
    for d in defects(synthetic_study):
        path = synthetic_study / d["centre_id"] / d["file"]
        header, rows, delimiter = data_rows(path, d["sheet"])
        row = rows[int(d["row"]) - 1]
        if d["kind"] == "duplicated_row":
            assert row == rows[int(d["row"]) - 2], d
        elif d["kind"] == "shifted_row":
            assert len([v for v in row if v != ""]) >= 3 and row[1] == "" and delimiter.join(
                [row[0], *row[2:]]
            ).rstrip(delimiter) == d["raw_value"].rstrip(delimiter), d
        else:
            value = row[header.index(d["field"])]
            if path.suffix == ".xlsx" and d["kind"] in ("end_before_start", "progression_before_chemo"):
                assert value[:10] != "" and d["raw_value"], d  # a real date cell
            else:
                assert value == d["raw_value"], d


def test_defects_never_touch_the_analysis_set(synthetic_study: Path) -> None:
    truth = pl.read_csv(synthetic_study / "_truth" / "patients.csv", infer_schema_length=None)
    assert truth.filter(pl.col("eligible")).height == 463
    for d in defects(synthetic_study):
        assert d["consequence"] != "quarantine_record" or d["kind"] != "duplicated_row"
