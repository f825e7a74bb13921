"""The readers' declared limits: beyond each, a SourceError naming file, row and column, and the
command line's exit 2 with one line per file, never the csv module's own error or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import oncorwe
from oncorwe.errors import SourceError
from oncorwe.sources import _limits, read_delimited, read_workbook
from oncorwe.sources._limits import MAX_CELL_CHARS, MAX_COLUMNS

WIDE_COLUMNS = 100_000
BIG_CELL = 10 * 1024 * 1024


def _read(path: Path, **kwargs: object):
    return read_delimited(path, centre_id="xx", file=path.name, **kwargs)  # type: ignore[arg-type]


def _wide_header(path: Path) -> Path:
    names = ["patient_id", "sex", *(f"c{i}" for i in range(WIDE_COLUMNS - 2))]
    path.write_text(",".join(names) + "\n" + ",".join(["1", "m", *([""] * (WIDE_COLUMNS - 2))]) + "\n",
                    encoding="utf-8")
    return path


def _big_cell(path: Path) -> Path:
    path.write_text("patient_id,sex,comment\n1,m,short\n\n2,f," + "x" * BIG_CELL + "\n", encoding="utf-8")
    return path


def test_a_header_of_100000_columns_is_refused_with_the_limit(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        _read(_wide_header(tmp_path / "wide.csv"))
    assert str(caught.value) == (f"header: {WIDE_COLUMNS:,} columns; the widest accepted is {MAX_COLUMNS:,} "
                                 "(MAX_COLUMNS) (delimiter detected: ',')")


def test_a_header_as_wide_as_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.csv"
    path.write_text(",".join(f"c{i}" for i in range(MAX_COLUMNS)) + "\n" + ",".join(["1"] * MAX_COLUMNS) + "\n",
                    encoding="utf-8")
    assert len(_read(path).columns) == MAX_COLUMNS


def test_a_10_mb_cell_is_refused_naming_its_row_and_column(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        _read(_big_cell(tmp_path / "big.csv"))
    message = str(caught.value)
    # row 2 as the quarantine counts: the blank line is no record
    assert message.startswith(f"row 2, column 'comment': a cell of {BIG_CELL:,} characters; "
                              f"the largest accepted is {MAX_CELL_CHARS:,} (MAX_CELL_CHARS)")


def test_a_cell_as_long_as_the_limit_is_read_and_the_csv_limit_is_restored(tmp_path: Path) -> None:
    import csv

    before = csv.field_size_limit()
    path = tmp_path / "edge.csv"
    path.write_text("id;note\n1;" + "y" * MAX_CELL_CHARS + "\n", encoding="utf-8")
    assert len(_read(path).rows[0][1] or "") == MAX_CELL_CHARS
    assert csv.field_size_limit() == before


def test_an_unbalanced_quote_that_swallows_the_file_is_refused_at_the_cell_limit(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    rows = "".join(f"{i},f,plain note\n" for i in range(2, 20_000))
    path.write_text('patient_id,sex,comment\n1,m,"opened and never closed\n' + rows, encoding="utf-8")
    with pytest.raises(SourceError, match=r"row 1, column 'comment': .*unbalanced quote"):
        _read(path)


def test_a_file_beyond_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real limit is 1 GiB; the check is the same at any value
    monkeypatch.setattr(_limits, "MAX_FILE_BYTES", 64)
    path = tmp_path / "p.csv"
    path.write_text("patient_id,sex\n" + "1,m\n" * 40, encoding="utf-8")
    with pytest.raises(SourceError, match=r"the file has 175 bytes; the largest accepted is 64 \(MAX_FILE_BYTES\)"):
        _read(path)
    with pytest.raises(SourceError, match="MAX_FILE_BYTES"):
        read_workbook(path, centre_id="xx", file=path.name)


def _study(root: Path, writer: object) -> Path:
    (root / "xx-one").mkdir(parents=True)
    (root / "centres.toml").write_text('[centres.xx-one]\nfiles = ["patients.csv", "more.csv"]\n',
                                       encoding="utf-8")
    (root / "xx-one" / "more.csv").write_text("patient_id,sex\n7,f\n", encoding="utf-8")
    writer(root / "xx-one" / "patients.csv")  # type: ignore[operator]
    return root


@pytest.mark.parametrize(("writer", "expected"), [
    (_wide_header, f"header: {WIDE_COLUMNS:,} columns"),
    (_big_cell, f"row 2, column 'comment': a cell of {BIG_CELL:,} characters"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_command_line_exits_2_with_one_line_naming_centre_file_row_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    writer: object, expected: str, command: str,
) -> None:
    study = _study(tmp_path / "study", writer)
    out = tmp_path / "out"
    args = ["validate", str(study)] if command == "validate" else ["run", "--data", str(study)]
    assert oncorwe(monkeypatch, *args, "--out", str(out)) == 2
    printed = capsys.readouterr()
    errors = [line for line in printed.err.splitlines() if line.startswith("error")]  # run: progress too
    assert len(errors) == 1 and "Traceback" not in printed.err
    assert "centre xx-one, file patients.csv: " + expected in errors[0]
    if command == "validate":  # the other file is read and reconciled, the CSVs written
        assert "more.csv" in printed.out and (out / "quarantine.csv").is_file()
    else:
        assert not out.exists()  # no report of a study with a file left out
