"""Every centre file is readable by standard tools given the right options; OMOP passes the DDL."""

from __future__ import annotations

import datetime as dt
import io
import re
import tomllib
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import polars as pl
from synth_raw import decode, parse_date, read_delimited

HERE = Path(__file__).resolve().parent


def centres(folder: Path) -> list[dict]:
    return tomllib.loads((folder / "centres.toml").read_text(encoding="utf-8"))["centre"]


def crf_csvs(folder: Path) -> list[Path]:
    return [folder / c["id"] / f for c in centres(folder) for f in c["files"] if f.split(".")[0] in ("patients", "treatments", "assessments")]


def test_csv_conventions_differ_across_centres(synthetic_study: Path) -> None:
    encodings, delimiters, formats, tokens = set(), set(), set(), set()
    for path in crf_csvs(synthetic_study):
        data = path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            encodings.add("utf-8-sig")
        else:
            try:
                data.decode("utf-8")
                encodings.add("utf-8")
            except UnicodeDecodeError:
                encodings.add("latin-1")
        header = decode(data).splitlines()[0]
        delimiters.add(";" if ";" in header else "\t" if "\t" in header else ",")
        if path.stem == "patients":
            rows = read_delimited(path)
            formats |= {_date_shape(r["last_contact_date"]) for r in rows}
            tokens |= {r["ecog"] for r in rows if not r["ecog"].isdigit()} | {r["death_date"] for r in rows if _date_shape(r["death_date"]) == r["death_date"]}
    assert encodings == {"utf-8", "utf-8-sig", "latin-1"}
    assert delimiters == {",", ";", "\t"}
    assert {"31.12.2015", "12/31/2015", "2015-12-31", "31-Dec-2015"} <= formats
    assert {"", "NA", "unk", "-", "nicht bekannt"} <= tokens


def _date_shape(text: str) -> str:
    if re.fullmatch(r"\d\d\.\d\d\.\d{4}", text):
        return "31.12.2015"
    if re.fullmatch(r"\d\d/\d\d/\d{4}", text):
        return "12/31/2015"
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return "2015-12-31"
    if re.fullmatch(r"\d\d-[A-Z][a-z]{2}-\d{4}", text):
        return "31-Dec-2015"
    return text


def test_pandas_and_polars_read_every_csv(synthetic_study: Path) -> None:
    for path in crf_csvs(synthetic_study):
        data = path.read_bytes()
        encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "latin-1"
        header = data.decode(encoding).splitlines()[0]
        sep = ";" if ";" in header else "\t" if "\t" in header else ","
        lines = [line for line in data.decode(encoding).splitlines() if line]
        # a shifted row (a recorded defect) has one field too many: pandas warns and keeps it, truncated
        frame = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False, index_col=False, on_bad_lines="skip")
        # with on_bad_lines="skip" pandas drops a long row, except the first, which it truncates
        long_rows = [k for k, line in enumerate(lines[1:]) if line.count(sep) > header.count(sep)]
        assert len(frame) == len(lines) - 1 - len([k for k in long_rows if k > 0]), path
        assert list(frame.columns) == header.split(sep), path
        polars_frame = pl.read_csv(io.StringIO(data.decode(encoding)), separator=sep, infer_schema=False, truncate_ragged_lines=True)
        assert polars_frame.height == len(lines) - 1, path
        if path.stem == "patients":
            decimal = "," if any("," in v for v in frame["ldh_uln"]) else "."
            numeric = pd.read_csv(path, sep=sep, encoding=encoding, decimal=decimal, na_values=["NA", "unk", "-", "nicht bekannt", "99"])
            assert numeric["ldh_uln"].dtype.kind == "f" or numeric["ldh_uln"].dtype.kind == "i"


def test_openpyxl_reads_every_workbook(synthetic_study: Path) -> None:
    layouts = set()
    for c in centres(synthetic_study):
        for name in c["files"]:
            if not name.endswith(".xlsx"):
                continue
            wb = openpyxl.load_workbook(synthetic_study / c["id"] / name)
            assert wb.sheetnames == ["patients", "treatments", "assessments", "adverse_events"]
            ws = wb["patients"]
            first = [cell.value for cell in ws[1]]
            header_row = 1 if first[0] == "patient_id" else 2
            layouts.add("merged" if ws.merged_cells.ranges else "notes" if header_row == 2 else "plain")
            header = [cell.value for cell in ws[header_row]]
            assert header[0] == "patient_id"
            column = header.index("last_contact_date") + 1
            values = [ws.cell(row=r, column=column).value for r in range(header_row + 1, ws.max_row + 1)]
            assert all(parse_date(v) is not None for v in values)
            events = wb["adverse_events"]
            assert events.cell(row=header_row, column=1).value == "patient_id"
            onsets = [events.cell(row=r, column=4).value for r in range(header_row + 1, events.max_row + 1)]
            assert onsets and all(isinstance(v, dt.datetime) for v in onsets)  # real dates, as the other sheets'
    assert layouts == {"merged", "notes", "plain"}


def test_redcap_export_matches_its_dictionary(synthetic_study: Path) -> None:
    found = 0
    for c in centres(synthetic_study):
        data = [f for f in c["files"] if f.endswith("_DATA.csv")]
        if not data:
            continue
        found += 1
        export = pd.read_csv(synthetic_study / c["id"] / data[0], dtype=str, keep_default_na=False)
        dictionary = pd.read_csv(synthetic_study / c["id"] / data[0].replace("_DATA", "_DataDictionary"), dtype=str, keep_default_na=False)
        fields = set(dictionary["Variable / Field Name"])
        for column in export.columns:
            assert column in fields or column.startswith("redcap_") or column.endswith("_complete"), column
        assert set(export["redcap_repeat_instrument"]) == {"", "treatment", "assessment", "adverse_event"}
        choices = dictionary.set_index("Variable / Field Name")["Choices, Calculations, OR Slider Labels"]
        codes = {part.split(",")[0].strip() for part in choices["ass_response"].split("|")}
        assert set(export.loc[export["redcap_repeat_instrument"] == "assessment", "ass_response"]) <= codes
        events = export.loc[export["redcap_repeat_instrument"] == "adverse_event"]
        for field in ("ae_term", "ae_grade"):
            codes = {part.split(",")[0].strip() for part in choices[field].split("|")}
            assert len(events) and set(events[field]) <= codes, field
    assert found == 3


def parse_ddl(text: str) -> dict[str, list[tuple[str, str, bool]]]:
    """CREATE TABLE statements -> table: [(column, type, nullable)]."""
    tables = {}
    for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\);", text, flags=re.S):
        cols = []
        for line in body.strip().splitlines():
            parts = line.strip().rstrip(",").split()
            cols.append((parts[0], parts[1], "NOT" not in parts))
        tables[name] = cols
    return tables


DUCKDB_TYPE = {"integer": "INTEGER", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP", "text": "VARCHAR", "numeric": "DECIMAL(18,3)"}


def test_omop_tables_pass_the_cdm_v54_schema_check(synthetic_study: Path, omop_vocab_dir: Path) -> None:
    expected = parse_ddl((HERE / "omop_cdm54_ddl.sql").read_text(encoding="utf-8"))
    vocabulary = pd.read_csv(omop_vocab_dir / "omop_concepts.csv")
    # the vocabulary's own README names the other AJCC M categories of the same source
    readme = (omop_vocab_dir / "SOURCE.md").read_text(encoding="utf-8")
    standard = set(vocabulary["concept_id"]) | {int(x) for x in re.findall(r"M1[a-d]? (\d+)", readme)}
    omop = [c for c in centres(synthetic_study) if c["files"] == ["omop.duckdb"]]
    assert len(omop) == 2
    for c in omop:
        con = duckdb.connect(str(synthetic_study / c["id"] / "omop.duckdb"), read_only=True)
        for table, columns in expected.items():
            described = con.execute(f"DESCRIBE {table}").fetchall()
            got = [(row[0], row[1], row[2] == "YES") for row in described]
            want = [(name, DUCKDB_TYPE.get(typ.lower(), "VARCHAR" if typ.lower().startswith("varchar") else typ.upper()), nullable)
                    for name, typ, nullable in columns]
            assert got == want, (c["id"], table)
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, (c["id"], table)
        for column, table in (("drug_concept_id", "drug_exposure"), ("measurement_concept_id", "measurement"),
                              ("condition_concept_id", "condition_occurrence"), ("episode_concept_id", "episode")):
            ids = {row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}
            invented = {i for i in ids if i not in standard and i <= 2_000_000_000}
            assert not invented, (c["id"], column, invented)
        # unconfirmed concepts carry their words in the source value
        local = con.execute("SELECT DISTINCT drug_source_value FROM drug_exposure WHERE drug_concept_id > 2000000000").fetchall()
        assert all(row[0] for row in local)
        con.close()
