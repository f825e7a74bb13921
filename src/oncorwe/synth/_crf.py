"""Case-report-form exports: CSV files and XLSX workbooks with patients, treatments, assessments.

Every centre uses the same CRF template (the coordinating centre sent it), filled in its own way:
delimiter, encoding, decimal comma, date format, language, brands, missing-value token, LDH unit.
Workbooks carry the same three sheets, some with a notes row or a merged group-header row on top.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook

from oncorwe.synth._records import PatientRecord
from oncorwe.synth._render import Renderer

__all__ = ["CrfTables", "ExtraSheet", "crf_tables", "write_csv_tables", "write_xlsx"]

PATIENT_COLUMNS = (
    "patient_id", "sex", "birth_year", "diagnosis_date", "primary_site", "stage", "m_stage",
    "brain_metastases", "braf_status", "ecog", "ldh", "ldh_unit", "ldh_uln", "vital_status",
    "last_contact_date", "death_date",
)
TREATMENT_COLUMNS = ("patient_id", "line", "drug", "start_date", "end_date", "reason_stopped", "progression_date")
ASSESSMENT_COLUMNS = ("patient_id", "assessment_date", "response")
SHEETS = ("patients", "treatments", "assessments")


@dataclass
class CrfTables:
    """The three tables of one centre as strings (XLSX dates also kept as day numbers)."""

    columns: dict[str, tuple[str, ...]]
    rows: dict[str, list[list[str]]] = field(default_factory=dict)
    #: (sheet, data row index, column) -> day number, for cells that are dates
    date_cells: dict[tuple[str, int, str], int] = field(default_factory=dict)
    #: (sheet, data row index) -> cohort key of the patient the row belongs to
    owners: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (sheet, data row index) -> what the row holds, for defect placement
    roles: dict[tuple[str, int], str] = field(default_factory=dict)


def crf_tables(records: list[PatientRecord], r: Renderer) -> CrfTables:
    cols = dict(zip(SHEETS, (PATIENT_COLUMNS, TREATMENT_COLUMNS, ASSESSMENT_COLUMNS), strict=True))
    if r.style.sends_age:
        cols["patients"] = tuple("age" if c == "birth_year" else c for c in PATIENT_COLUMNS)
    t = CrfTables(columns=cols, rows={s: [] for s in SHEETS})

    def add(sheet: str, values: dict[str, str], key: int, role: str, dates: dict[str, int | None]) -> None:
        idx = len(t.rows[sheet])
        t.rows[sheet].append([values[c] for c in cols[sheet]])
        t.owners[(sheet, idx)] = key
        t.roles[(sheet, idx)] = role
        for col, day in dates.items():
            if day is not None:
                t.date_cells[(sheet, idx, col)] = day

    for rec in records:
        v = r.vocab
        dead = rec.death_day is not None
        ldh_decimals = 0 if r.style.ldh_unit == "U/L" else 2
        add(
            "patients",
            {
                "patient_id": rec.local_id,
                "sex": v["male"] if rec.male else v["female"],
                "birth_year": str(rec.birth_year),
                "age": str(rec.age_reported) if rec.age_reported is not None else r.missing(),
                "diagnosis_date": r.date(rec.diagnosis_day),
                "primary_site": v[rec.primary_site],
                "stage": {"IV": v["stage_iv"], "III_unresectable": v["stage_iii_unresectable"], "III": v["stage_iii"]}[rec.stage],
                "m_stage": rec.m_stage,
                "brain_metastases": v["yes"] if rec.brain else v["no"],
                "braf_status": {"V600E": "V600E", "V600K": "V600K", "wild_type": v["wild_type"]}.get(rec.braf, r.missing("braf")),
                "ecog": str(rec.ecog) if rec.ecog is not None else r.missing("ecog"),
                "ldh": r.number(rec.ldh_value, ldh_decimals, "ldh"),
                "ldh_unit": r.style.ldh_unit,
                "ldh_uln": r.number(rec.ldh_uln, ldh_decimals),
                "vital_status": v["dead"] if dead else v["alive"],
                "last_contact_date": r.date(rec.last_contact_day),
                "death_date": r.date(rec.death_day),
            },
            rec.key,
            "patient",
            {"diagnosis_date": rec.diagnosis_day, "last_contact_date": rec.last_contact_day, "death_date": rec.death_day},
        )
        for line_no, course in enumerate(sorted(rec.courses, key=lambda x: x.start), start=1):
            for word, _ in r.course_rows(course, rec.local_id, line_no):
                add(
                    "treatments",
                    {
                        "patient_id": rec.local_id,
                        "line": str(line_no),
                        "drug": word,
                        "start_date": r.date(course.start),
                        "end_date": r.date(course.end),
                        "reason_stopped": r.word(course.reason) if course.reason else r.missing(),
                        "progression_date": r.date(course.progression),
                    },
                    rec.key,
                    f"course:{course.role}",
                    {"start_date": course.start, "end_date": course.end, "progression_date": course.progression},
                )
        for k, scan in enumerate(rec.scans):
            add(
                "assessments",
                {"patient_id": rec.local_id, "assessment_date": r.date(scan.day), "response": r.response(scan.response, rec.local_id, k)},
                rec.key,
                f"scan:{scan.role}:{scan.response}",
                {"assessment_date": scan.day},
            )
    return t


def write_csv_tables(t: CrfTables, r: Renderer, folder: Path) -> dict[str, str]:
    """One CSV per sheet; returns sheet -> file name."""
    ext = "tsv" if r.style.delimiter == "\t" else "csv"
    names = {}
    for sheet in SHEETS:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=r.style.delimiter, lineterminator="\r\n" if r.style.encoding == "latin-1" else "\n")
        writer.writerow(t.columns[sheet])
        writer.writerows(t.rows[sheet])
        name = f"{sheet}.{ext}"
        (folder / name).write_bytes(buf.getvalue().encode(r.style.encoding))
        names[sheet] = name
    return names


_FIXED_TIME = dt.datetime(2020, 1, 1, 0, 0, 0)


def _parse(text: str, pattern: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, pattern).date()
    except ValueError:
        return None


def _excel_format(pattern: str) -> str:
    return pattern.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY").replace("%b", "MMM")


@dataclass(frozen=True)
class ExtraSheet:
    """A sheet a workbook carries beside the CRF tables: its name, header, text rows, and which
    columns hold dates (written as real dates) or whole numbers (written as numbers)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    date_columns: frozenset[int]
    number_columns: frozenset[int] = frozenset()


def write_xlsx(t: CrfTables, r: Renderer, path: Path, header_rows: int, title: str, extra: tuple[ExtraSheet, ...] = ()) -> None:
    """A workbook with one sheet per table (then one per ``extra`` sheet); date cells are real
    dates in the centre's format.

    ``header_rows`` is 1 (plain) or 2 (a notes row or a merged group-header row above the header);
    ``title`` is the study's form title, in the notes row.
    """
    wb = Workbook()
    wb.remove(wb.active)
    sheets = [
        ExtraSheet(sheet, tuple(t.columns[sheet]), tuple(tuple(row) for row in t.rows[sheet]),
                   frozenset(j for j, col in enumerate(t.columns[sheet]) if col.endswith("_date")),
                   frozenset(j for j, col in enumerate(t.columns[sheet]) if col in ("ecog", "birth_year", "age", "line")))
        for sheet in SHEETS
    ]
    for sheet in (*sheets, *extra):
        _write_sheet(wb, sheet, r, title)
    wb.properties.creator = "oncorwe.synth"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_normalised_zip(buf.getvalue()))


def _write_sheet(wb: Workbook, sheet: ExtraSheet, r: Renderer, title: str) -> None:
    date_format = _excel_format(r.style.date_format)
    ws = wb.create_sheet(sheet.name)
    cols = sheet.columns
    if r.style.layout == "notes_row":
        ws.append([f"Export {r.style.centre_id} - {sheet.name} - {title}"])
    elif r.style.layout == "merged_header":
        ws.append(["Identification"] + ["Data"] * (len(cols) - 1))
        ws.merge_cells(start_row=1, start_column=2, end_row=1, end_column=len(cols))
    ws.append(list(cols))
    for row in sheet.rows:
        cells: list[object] = []
        for j, text in enumerate(row):
            parsed = _parse(text, r.style.date_format) if j in sheet.date_columns else None
            if parsed is not None:
                cells.append(parsed)
            elif j in sheet.number_columns and text.isdigit():
                cells.append(int(text))
            else:
                cells.append(text)
        ws.append(cells)
        excel_row = ws.max_row
        for c_idx, value in enumerate(cells, start=1):
            if isinstance(value, dt.date):
                ws.cell(row=excel_row, column=c_idx).number_format = date_format


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed member timestamps (and core properties time) so bytes repeat."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                import re

                content = re.sub(rb"<dcterms:modified([^>]*)>[^<]*<", rb"<dcterms:modified\1>2020-01-01T00:00:00Z<", content)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, content)
    return out.getvalue()
