"""Readers keep every cell as written: encodings, delimiters, quoting, workbooks, REDCap."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from oncorwe.errors import InputError, SourceError
from oncorwe.sources import (
    decode_text,
    detect_kind,
    load_study_config,
    read_delimited,
    read_redcap,
    read_redcap_dictionary,
    read_workbook,
)


def _read(path: Path, **kwargs: object):
    return read_delimited(path, centre_id="xx", file=path.name, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("latin-1", "cp1252"), ("utf-16", "utf-16")],
)
def test_encodings_are_detected(tmp_path: Path, encoding: str, expected: str) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("Pat-Nr;Primärtumor\nK1;akral\nK2;Müller-Zellen\n".encode(encoding))
    table = _read(path)
    assert table.columns == ("Pat-Nr", "Primärtumor")
    assert table.column("Primärtumor") == ["akral", "Müller-Zellen"]
    assert f"encoding {expected}" in table.notes


def test_windows_1252_bytes_decode(tmp_path: Path) -> None:
    text, used = decode_text("Patient;LDH µkat/L\n".encode("cp1252"))
    assert used == "cp1252" and "µkat" in text


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_and_quoted_cells_with_delimiters_and_newlines(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "t.csv"
    d = delimiter
    path.write_text(f'id{d}drug{d}note\n1{d}"Carbo{d}Pacli"{d}"two\nlines"\n2{d}DTIC{d}\n', encoding="utf-8")
    table = _read(path)
    assert table.rows == (("1", f"Carbo{d}Pacli", "two\nlines"), ("2", "DTIC", None))
    assert table.row_numbers == (1, 2)


def test_rows_that_do_not_fit_the_header_are_kept_as_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,date,response\n1,2015-01-01,PR\n\n2,,2015-02-01,SD\n3,2015-03-01,PD,,\n", encoding="utf-8")
    table = _read(path)
    assert table.row_numbers == (1, 3)  # trailing empty cells are padding, the blank line no record
    assert [(b.row, b.reason) for b in table.bad_rows] == [(2, "4 fields where the header has 3")]
    assert table.records_read == 3


def test_binary_junk_and_empty_files_are_source_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)))
    with pytest.raises(SourceError, match="not a text file"):
        _read(junk)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\n\n")
    with pytest.raises(SourceError, match="empty"):
        _read(empty)


def test_cbioportal_metadata_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "data_clinical_patient.txt"
    path.write_text("#Patient Identifier\tSex\n#id\tsex\n#STRING\tSTRING\n#1\t1\nPATIENT_ID\tSEX\nP1\tMale\n", encoding="utf-8")
    table = _read(path)
    assert table.columns == ("PATIENT_ID", "SEX") and table.rows == (("P1", "Male"),)


def test_workbook_with_notes_row_merged_header_and_date_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "treatments"
    sheet.append(["Export of 2019-03-01, do not edit"])
    sheet.append(["patient_id", "drug", "start", "cycles"])
    sheet.append(["7", "DTIC", dt.datetime(2015, 3, 1), 4])
    sheet.append(["8", "TMZ", dt.datetime(2016, 1, 2), 2.5])
    other = book.create_sheet("patients")
    other.append(["Identification", "Data", None])
    other.merge_cells("B1:C1")
    other.append(["patient_id", "sex", "ecog"])
    other.append([7, "m", 1])
    book.create_sheet("empty")
    path = tmp_path / "crf.xlsx"
    book.save(path)
    assert detect_kind(path) == "xlsx"
    treatments, patients = read_workbook(path, centre_id="xx", file="crf.xlsx")
    assert treatments.sheet == "treatments" and treatments.columns == ("patient_id", "drug", "start", "cycles")
    assert treatments.rows == (("7", "DTIC", "2015-03-01", "4"), ("8", "TMZ", "2016-01-02", "2.5"))
    assert patients.columns == ("patient_id", "sex", "ecog") and patients.rows == (("7", "m", "1"),)
    assert patients.label == "crf.xlsx#patients"


def test_truncated_workbook_is_a_source_error(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["id"])
    path = tmp_path / "whole.xlsx"
    book.save(path)
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SourceError, match="XLSX"):
        read_workbook(cut, centre_id="xx", file="cut.xlsx")


def _small_workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    book.active.append(["patient_id", "sex"])
    book.active.append(["P1", "m"])
    book.save(path)
    return path


def test_a_workbook_named_csv_is_read_as_a_workbook(tmp_path: Path) -> None:
    # a centre saves its XLSX as "patients.csv": the bytes decide, not the name
    path = tmp_path / "patients.csv"
    path.write_bytes(_small_workbook(tmp_path / "book.xlsx").read_bytes())
    assert detect_kind(path) == "xlsx"
    (table,) = read_workbook(path, centre_id="xx", file="patients.csv")
    assert table.columns == ("patient_id", "sex") and table.column("sex") == ["m"]


def _rewritten(source: Path, target: Path, part: str, cut: bool) -> Path:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == part:
                data = data[: len(data) // 2] if cut else b"<worksheet><sheetData><row><c>"
            zout.writestr(info, data)
    return target


@pytest.mark.parametrize("cut", [True, False])
def test_a_sheet_of_broken_xml_is_a_source_error(tmp_path: Path, cut: bool) -> None:
    whole = _small_workbook(tmp_path / "whole.xlsx")
    broken = _rewritten(whole, tmp_path / "broken.xlsx", "xl/worksheets/sheet1.xml", cut)
    # found when the sheet is read, or already when the workbook is opened (its dimension)
    with pytest.raises(SourceError, match=r"(sheet 'Sheet' cannot be read|not a readable XLSX workbook) \(ParseError"):
        read_workbook(broken, centre_id="xx", file="broken.xlsx")


def test_a_broken_workbook_part_is_a_source_error(tmp_path: Path) -> None:
    whole = _small_workbook(tmp_path / "whole.xlsx")
    broken = _rewritten(whole, tmp_path / "broken.xlsx", "xl/workbook.xml", True)
    with pytest.raises(SourceError, match="not a readable XLSX workbook"):
        read_workbook(broken, centre_id="xx", file="broken.xlsx")


def test_a_damaged_deflate_stream_is_a_source_error(tmp_path: Path) -> None:
    whole = _small_workbook(tmp_path / "whole.xlsx")
    data = bytearray(whole.read_bytes())
    with zipfile.ZipFile(whole) as book:
        info = book.getinfo("xl/worksheets/sheet1.xml")
    # the member's compressed bytes start after its local header (30 bytes, name, extra)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 40)):
        data[i] ^= 0xFF
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"not a readable XLSX workbook \(error: Error -3 while decompressing"):
        read_workbook(damaged, centre_id="xx", file="damaged.xlsx")


def test_redcap_export_splits_by_instrument_and_decodes_choices(tmp_path: Path) -> None:
    dictionary = tmp_path / "dict.csv"
    dictionary.write_text(
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label","Choices, Calculations, OR Slider Labels"\n'
        'record_id,baseline,,text,ID,\nsex,baseline,,radio,Sex,"1, Male | 2, Female"\n'
        'trt_drug,treatment,,dropdown,Drug,"1, dacarbazine | 2, temozolomide"\ntrt_start,treatment,,text,Start,\n',
        encoding="utf-8",
    )
    export = tmp_path / "export.csv"
    export.write_text(
        "record_id,redcap_repeat_instrument,redcap_repeat_instance,sex,trt_drug,trt_start\n"
        "5,,,2,,\n5,treatment,1,,1,2015-01-01\n5,treatment,2,,2,2015-06-01\n",
        encoding="utf-8",
    )
    tables = read_redcap(_read(export), read_redcap_dictionary(_read(dictionary)))
    base, treatment = tables
    assert base.columns == ("record_id", "sex") and base.rows == (("5", "Female"),)
    assert treatment.columns == ("record_id", "redcap_repeat_instance", "trt_drug", "trt_start")
    assert treatment.rows == (("5", "1", "dacarbazine", "2015-01-01"), ("5", "2", "temozolomide", "2015-06-01"))
    assert treatment.row_numbers == (2, 3)  # rows of the flat file


def test_centres_toml_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "centres.toml").write_text(
        '[centres.ch-x]\nfiles = ["a.csv"]\n[centres.ch-x.overrides]\ndate_order = "DDMM"\ncolour = "red"\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_study_config(tmp_path)
    message = str(caught.value)
    assert "centre ch-x" in message and "overrides.date_order" in message and "overrides.colour" in message
    with pytest.raises(InputError, match=r"no centres\.toml"):
        load_study_config(tmp_path / "nowhere")


def test_redcap_checkboxes_become_one_column_of_ticked_labels(tmp_path: Path) -> None:
    dictionary = tmp_path / "dict.csv"
    dictionary.write_text(
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label","Choices, Calculations, OR Slider Labels"\n'
        'record_id,baseline,,text,ID,\nmets,baseline,,checkbox,Metastases,"1, brain | 2, liver | 3, lung"\n',
        encoding="utf-8",
    )
    export = tmp_path / "export.csv"
    export.write_text("record_id,mets___1,mets___2,mets___3\n1,1,0,1\n2,0,0,0\n", encoding="utf-8")
    [base] = read_redcap(_read(export), read_redcap_dictionary(_read(dictionary)))
    assert base.columns == ("record_id", "mets")
    assert base.rows == (("1", "brain; lung"), ("2", None))
    assert base.labels == ("ID", "Metastases")


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("inside", ["\r", "\r\n", "\n", "\r\r"])
def test_a_line_end_inside_a_quoted_cell_stays_in_the_cell(tmp_path: Path, line_end: str, inside: str) -> None:
    # a bare CR (a classic-Mac line end, or a cell typed in an old spreadsheet) is a record end only
    # outside quotes: inside a quoted cell it is the cell's text, as written, and the record is whole
    path = tmp_path / "cr.csv"
    lines = ["id,comment,stage", f'1,"first{inside}second",IV', "2,plain,III", f'3,"{inside}",II']
    path.write_bytes((line_end.join(lines) + line_end).encode("utf-8"))
    table = _read(path)
    assert table.rows == (("1", f"first{inside}second", "IV"), ("2", "plain", "III"), ("3", None, "II"))
    assert table.row_numbers == (1, 2, 3) and table.bad_rows == () and table.records_read == 3


def test_skipped_and_hash_lines_above_the_header_end_at_any_line_end(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(b'Export of 2016\r#generated\r\nid;note\r1;"a\rb"\n2;c\r\n')
    table = _read(path, skip_rows=1)
    assert table.columns == ("id", "note")
    assert table.rows == (("1", "a\rb"), ("2", "c"))


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-be", "utf-16-be"])
def test_utf32_and_utf16_with_a_byte_order_mark_count_each_record_once(tmp_path: Path, encoding: str) -> None:
    # FF FE 00 00 (UTF-32 LE) begins with FF FE (UTF-16 LE): read as UTF-16 it made NUL-padded
    # names and a bad row per line, counting records that are not there
    path = tmp_path / "p.csv"
    text = "Pat-Nr;Primärtumor\nK1;akral\nK2;Müller-Zellen\n"
    bom = {"utf-32": b"", "utf-32-be": b"\x00\x00\xfe\xff", "utf-16-be": b"\xfe\xff"}[encoding]
    path.write_bytes(bom + text.encode(encoding))
    table = _read(path)
    assert table.columns == ("Pat-Nr", "Primärtumor")
    assert table.rows == (("K1", "akral"), ("K2", "Müller-Zellen")) and table.records_read == 2
    assert table.notes[0] == f"encoding {encoding.split('-b')[0]}"


def test_utf32_without_a_byte_order_mark_is_refused_or_read_as_declared(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("id,sex\n1,m\n".encode("utf-32-le"))
    with pytest.raises(SourceError, match=r'binary content.*declare it, encoding = "utf-16-le" or "utf-32-le"'):
        _read(path)
    assert _read(path, encoding="utf-32-le").rows == (("1", "m"),)


def test_a_byte_order_mark_followed_by_a_byte_of_another_encoding_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name\n1,M\xfcller\n")
    with pytest.raises(SourceError, match="starts with a UTF-8 byte-order mark, but byte 14 is not UTF-8"):
        _read(path)


def test_a_file_listed_twice_is_a_config_error_naming_both_entries(tmp_path: Path) -> None:
    # under two names in one centre, and under two centres: its records would be counted twice
    (tmp_path / "xx-one").mkdir()
    (tmp_path / "xx-one" / "p.csv").write_text("patient_id\n1\n", encoding="utf-8")
    (tmp_path / "xx-two").mkdir()
    (tmp_path / "centres.toml").write_text(
        '[centres.xx-one]\nfiles = ["p.csv", "t.csv", "./p.csv"]\n'
        '[centres.xx-two]\nfiles = ["../xx-one/p.csv"]\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_study_config(tmp_path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "the same file is listed twice, as centre xx-one files[0] ('p.csv') and centre xx-one files[2] "
        "('./p.csv'); list each file once (its records would be counted twice)",
        "the same file is listed twice, as centre xx-one files[0] ('p.csv') and centre xx-two files[0] "
        "('../xx-one/p.csv'); list each file once (its records would be counted twice)",
    ]


@pytest.mark.parametrize(("body", "where", "lines"), [
    # the quote is never closed: the two rows after it would be one cell
    ('patient_id,drug,start\n1,"DTIC,2014-01-01\n2,DTIC,2014-02-01\n3,TMZ,2014-03-01\n', "row 1, column 'drug'", 2),
    # a later quote seems to close it, before text that is not a delimiter
    ('patient_id,drug,start\n1,DTIC,2014-01-01\n2,"TMZ,2014-02-01\n3,"TMZ",2014-03-01\n', "row 2, column 'drug'", 1),
])
def test_an_unbalanced_quote_that_swallows_rows_is_refused_naming_row_and_column(
    tmp_path: Path, body: str, where: str, lines: int
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        _read(path)
    assert str(caught.value).startswith(f'{where}: a quote (") opened on line ')
    assert f"the {lines} line(s) after it would be read into one cell" in str(caught.value)


def test_stray_quotes_within_one_line_are_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,note,x\n1,5 "big" lesions,a\n2,"closed" ,b\n3,"two\nlines",c\n', encoding="utf-8")
    table = _read(path)
    assert table.rows == (("1", '5 "big" lesions', "a"), ("2", "closed ", "b"), ("3", "two\nlines", "c"))


def test_a_header_repeated_inside_the_data_is_a_bad_row_not_a_record(tmp_path: Path) -> None:
    """A paste error: the header row again (case and blanks aside, padded) under some rows."""
    path = tmp_path / "p.csv"
    path.write_text("patient_id,sex,birth_year\nP1,m,1950\n Patient_ID ,SEX,birth_year,\nP2,f,1962\n",
                    encoding="utf-8")
    table = _read(path)
    assert table.column("patient_id") == ["P1", "P2"] and table.row_numbers == (1, 3)
    assert [(b.row, b.raw, b.reason) for b in table.bad_rows] == [
        (2, " Patient_ID ,SEX,birth_year,", "the row repeats the header row (a header pasted inside the data?)")]
    assert table.records_read == 3


def test_a_header_repeated_inside_a_sheet_is_a_bad_row_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["patient_id", "sex", None, "birth_year"], ["P1", "m", None, 1950],
                ["patient_id", "sex", None, "birth_year"], ["P2", "f", None, 1962]):
        sheet.append(row)
    book.save(path)
    (table,) = read_workbook(path, centre_id="xx", file=path.name)
    assert table.column("patient_id") == ["P1", "P2"] and table.row_numbers == (1, 3)
    assert [(b.row, b.reason) for b in table.bad_rows] == [
        (2, "the row repeats the header row (a header pasted inside the data?)")]
