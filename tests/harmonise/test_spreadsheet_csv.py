"""The one CSV writer for spreadsheets: formula-leading text cells get a single quote (OWASP), numbers
and other cells are written as they are."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from oncorwe.model.spreadsheet_csv import (
    neutralise_cell,
    neutralise_formulas,
    write_spreadsheet_csv,
)


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-inf", "'-inf"),  # not a number a spreadsheet reads: a name after a minus
    ("-", "'-"),
    ("-3", "-3"),
    ("+1.5", "+1.5"),
    ("-2.5e-3", "-2.5e-3"),
    ("-.5", "-.5"),
    ("a=b", "a=b"),
    (" =1", " =1"),
    ("", ""),
    ("'=1", "'=1"),
])
def test_a_cell_is_quoted_only_when_a_spreadsheet_would_evaluate_it(cell: str, written: str) -> None:
    assert neutralise_cell(cell) == written


def test_the_frame_and_the_cell_rule_agree() -> None:
    cells = ["=1+1", "-2+3", "-3", "+1.5", "a", None, "\t@x", "-2.5e-3", "1e5", "--1"]
    column = neutralise_formulas(pl.DataFrame({"text": cells}))["text"].to_list()
    assert column == [None if c is None else neutralise_cell(c) for c in cells]


def test_numbers_dates_and_categoricals(tmp_path: Path) -> None:
    frame = pl.DataFrame({
        "n": [-1, 2],
        "x": [-1.5, None],
        "flag": [True, False],
        "day": pl.Series(["2012-01-02", "2013-04-05"]).str.to_date(),
        "centre": pl.Series(["=evil", "ok"], dtype=pl.Categorical),
        "=header": ["a", "b"],
    })
    path = write_spreadsheet_csv(frame, tmp_path / "t.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["n", "x", "flag", "day", "centre", "'=header"],
        ["-1", "-1.5", "true", "2012-01-02", "'=evil", "a"],
        ["2", "", "false", "2013-04-05", "ok", "b"],
    ]
    assert write_spreadsheet_csv(frame, tmp_path / "u.csv").read_bytes() == path.read_bytes()


def test_no_other_csv_writer_in_the_package() -> None:
    # every CSV the tool writes for people goes through the one writer; synth writes inputs
    src = Path(__file__).resolve().parents[2] / "src" / "oncorwe"
    offenders = [
        str(p.relative_to(src)) for p in sorted(src.rglob("*.py"))
        if p.parts[-2] != "synth" and p.name != "spreadsheet_csv.py"
        and (".write_csv(" in p.read_text(encoding="utf-8") or "csv.writer(" in p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
