"""Readers for the synthetic centre files, written from what a data manager would know of each
format (not from the generator's code): encodings, delimiters, date formats, response words."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import openpyxl

DATE_FORMATS = ("%d.%m.%Y", "%m/%d/%Y", "%Y-%m-%d", "%d-%b-%Y")
PD_WORDS = {"PD", "progressive disease", "Progress", "MP", "progression", "progressione", "progressieve ziekte"}
EVALUABLE_WORDS = {
    "CR", "complete response", "komplette Remission", "RC", "réponse complète", "risposta completa", "complete respons",
    "PR", "partial response", "partielle Remission", "RP", "réponse partielle", "risposta parziale", "partiële respons",
    "SD", "stable disease", "stabile Erkrankung", "MS", "maladie stable", "malattia stabile", "stabiele ziekte",
}
REDCAP_RESPONSE = {"1": "CR", "2": "PR", "3": "SD", "4": "PD", "5": "NE"}
OMOP_RESPONSE_SOURCE = {"CR", "PR", "SD", "PD"}


def parse_date(text: object) -> dt.date | None:
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    if not isinstance(text, str) or not text.strip():
        return None
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_delimited(path: Path) -> list[dict[str, str]]:
    """A CRF sheet as dicts (rows with extra fields keep them under the key None)."""
    text = decode(path.read_bytes())
    header = text.splitlines()[0]
    delimiter = ";" if ";" in header else "\t" if "\t" in header else ","
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def read_xlsx(path: Path) -> dict[str, list[dict[str, object]]]:
    """Each sheet as dicts; the header row is the one starting with ``patient_id``."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    out = {}
    for ws in wb.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        start = next(k for k, row in enumerate(rows) if row and row[0] == "patient_id")
        header = [str(h) for h in rows[start] if h is not None]
        out[ws.title] = [
            {h: ("" if v is None else v) for h, v in zip(header, row, strict=False)} for row in rows[start + 1 :]
        ]
    return out


@dataclass
class RawPatient:
    """What the raw files say about one patient's follow-up."""

    death: dt.date | None = None
    last_contact: dt.date | None = None
    assessments: list[tuple[dt.date, str]] = field(default_factory=list)  # (date, "PD" | "EVAL")
    progression_dates: list[dt.date] = field(default_factory=list)
    treatment_starts: set[dt.date] = field(default_factory=set)

    def add_treatment(self, start: dt.date | None, progression: dt.date | None) -> None:
        """A treatment row: its start and the progression it records (either may be unreadable)."""
        if start:
            self.treatment_starts.add(start)
        if progression:
            self.progression_dates.append(progression)


def _crf_patients(centre: str, patients: list, treatments: list, assessments: list, raw: dict[str, RawPatient]) -> None:
    for row in patients:
        rp = raw.setdefault(f"{centre}:{row['patient_id']}", RawPatient())
        rp.death = parse_date(row["death_date"])
        rp.last_contact = parse_date(row["last_contact_date"])
    for row in treatments:
        rp = raw.setdefault(f"{centre}:{row['patient_id']}", RawPatient())
        rp.add_treatment(parse_date(row["start_date"]), parse_date(row["progression_date"]))
    for row in assessments:
        if row.get(None):  # a shifted row: its fields are not where the header says
            continue
        when = parse_date(row["assessment_date"])
        word = str(row["response"])
        if when is None or (word not in PD_WORDS and word not in EVALUABLE_WORDS):
            continue
        raw.setdefault(f"{centre}:{row['patient_id']}", RawPatient()).assessments.append(
            (when, "PD" if word in PD_WORDS else "EVAL")
        )


def read_study(folder: Path) -> dict[str, RawPatient]:
    """Every patient of every centre, keyed by ``centre_id:local id``."""
    manifest = tomllib.loads((folder / "centres.toml").read_text(encoding="utf-8"))
    raw: dict[str, RawPatient] = {}
    for centre in manifest["centre"]:
        cid = centre["id"]
        files = [folder / cid / name for name in centre["files"]]
        names = {p.stem.split(".")[0]: p for p in files}
        if any(p.suffix in (".csv", ".tsv") for p in files) and "patients" in names:
            _crf_patients(cid, read_delimited(names["patients"]), read_delimited(names["treatments"]),
                          read_delimited(names["assessments"]), raw)
        elif any(p.suffix == ".xlsx" for p in files):
            book = read_xlsx(files[0])
            _crf_patients(cid, book["patients"], book["treatments"], book["assessments"], raw)
        elif any(p.name.endswith("_DATA.csv") for p in files):
            data = next(p for p in files if p.name.endswith("_DATA.csv"))
            _redcap(cid, list(csv.DictReader(io.StringIO(data.read_text(encoding="utf-8")))), raw)
        else:
            _omop(cid, folder / cid / "omop.duckdb", raw)
    return raw


def _redcap(centre: str, rows: list[dict[str, str]], raw: dict[str, RawPatient]) -> None:
    for row in rows:
        rp = raw.setdefault(f"{centre}:{row['record_id']}", RawPatient())
        instrument = row["redcap_repeat_instrument"]
        if instrument == "":
            rp.death = parse_date(row["death_date"])
            rp.last_contact = parse_date(row["last_contact_date"])
        elif instrument == "treatment":
            rp.add_treatment(parse_date(row["trt_start"]), parse_date(row["trt_prog_date"]))
        elif instrument == "assessment":
            response = REDCAP_RESPONSE[row["ass_response"]]
            when = parse_date(row["ass_date"])
            if when and response != "NE":
                rp.assessments.append((when, "PD" if response == "PD" else "EVAL"))


def _omop(centre: str, path: Path, raw: dict[str, RawPatient]) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        for pid, end in con.execute("SELECT person_id, observation_period_end_date FROM observation_period").fetchall():
            raw.setdefault(f"{centre}:{pid}", RawPatient()).last_contact = end
        for pid, day in con.execute("SELECT person_id, death_date FROM death").fetchall():
            raw.setdefault(f"{centre}:{pid}", RawPatient()).death = day
        for pid, day, value in con.execute(
            "SELECT person_id, measurement_date, value_source_value FROM measurement "
            "JOIN concept ON concept_id = measurement_concept_id WHERE concept_name = 'Tumour response RECIST 1.1'"
        ).fetchall():
            raw.setdefault(f"{centre}:{pid}", RawPatient()).assessments.append((day, "PD" if value == "PD" else "EVAL"))
        for pid, day in con.execute("SELECT person_id, episode_start_date FROM episode WHERE episode_concept_id = 32677").fetchall():
            raw.setdefault(f"{centre}:{pid}", RawPatient()).progression_dates.append(day)
        for pid, day in con.execute("SELECT DISTINCT person_id, drug_exposure_start_date FROM drug_exposure").fetchall():
            raw.setdefault(f"{centre}:{pid}", RawPatient()).treatment_starts.add(day)
    finally:
        con.close()


