"""A REDCap-style export: one flat CSV with repeating instruments, coded choices, and its dictionary.

Non-repeating fields sit on the record's first row (``redcap_repeat_instrument`` empty); each drug
(one row per ingredient) and each tumour assessment is a repeating instance. Dates are ISO
(REDCap's export format), choices are codes explained by the data dictionary. Each adverse event
of the index line (``synth/_adverse_events.py``) is an instance of the ``adverse_event`` instrument:
its CTCAE term and grade are coded choices, its onset an ISO date.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from oncorwe.synth._adverse_events import AdverseEvent, ctcae_terms
from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._design import Design
from oncorwe.synth._records import PatientRecord

__all__ = ["ADVERSE_EVENT_INSTRUMENT", "dictionary_rows", "drug_codes", "redcap_rows", "write_redcap"]

SEX = {"male": 1, "female": 2}
SITE = {"cutaneous": 1, "acral": 2, "mucosal": 3, "uveal": 4, "unknown_primary": 5}
STAGE = {"IV": 1, "III_unresectable": 2, "III": 3}
M_STAGE = {"M0": 0, "M1a": 1, "M1b": 2, "M1c": 3, "M1d": 4}
BRAF = {"V600E": 1, "V600K": 2, "wild_type": 3, "unknown": 9}
REASON = {"progression": 1, "toxicity": 2, "completed": 3, "death": 4, "other": 5}
RESPONSE = {"CR": 1, "PR": 2, "SD": 3, "PD": 4, "NE": 5}
OTHER_DRUG = 99
#: CTCAE v5.0 grades 1-5, coded by their number
GRADE = {f"Grade {g}": g for g in range(1, 6)}
ADVERSE_EVENT_INSTRUMENT = "adverse_event"

COLUMNS = (
    "record_id", "redcap_repeat_instrument", "redcap_repeat_instance",
    "sex", "birth_year", "diagnosis_date", "primary_site", "stage", "m_stage", "brain_mets", "braf",
    "ecog", "ldh", "ldh_uln", "vital_status", "last_contact_date", "death_date", "baseline_complete",
    "trt_line", "trt_drug", "trt_drug_other", "trt_start", "trt_end", "trt_reason", "trt_prog_date",
    "treatment_complete",
    "ass_date", "ass_response", "assessment_complete",
    "ae_term", "ae_grade", "ae_onset_date", "adverse_event_complete",
)


def _iso(day: int | None) -> str:
    import datetime as dt

    return "" if day is None else (EPOCH + dt.timedelta(days=day)).isoformat()


def drug_codes(design: Design) -> dict[str, int]:
    """The drug field's choices: the study's ingredients in alphabetical order, coded from 1."""
    return {name: code for code, name in enumerate(sorted(design.drug_class), start=1)}


def term_codes() -> dict[str, int]:
    """The adverse event term field's choices: the CTCAE terms in alphabetical order, coded from 1."""
    return {term: code for code, term in enumerate(ctcae_terms(), start=1)}


def redcap_rows(
    records: list[PatientRecord], design: Design, events: Sequence[AdverseEvent] = ()
) -> tuple[list[dict[str, str]], list[tuple[int, str]]]:
    """Rows of the flat export, and per row (cohort key, role) for defect placement; a record's
    adverse events (``events``, by local id) follow its assessments, role ``adverse_event:<n>``
    with ``n`` the event's position in ``events``."""
    drugs = drug_codes(design)
    terms = term_codes()
    by_record: dict[str, list[int]] = {}
    for n, event in enumerate(events):
        by_record.setdefault(event.local_id, []).append(n)
    rows: list[dict[str, str]] = []
    meta: list[tuple[int, str]] = []
    for rec in records:
        base = dict.fromkeys(COLUMNS, "")
        base.update(
            record_id=rec.local_id,
            sex=str(SEX["male" if rec.male else "female"]),
            birth_year=str(rec.birth_year),
            diagnosis_date=_iso(rec.diagnosis_day),
            primary_site=str(SITE[rec.primary_site]),
            stage=str(STAGE[rec.stage]),
            m_stage=str(M_STAGE[rec.m_stage]),
            brain_mets="1" if rec.brain else "0",
            braf=str(BRAF[rec.braf]),
            ecog="" if rec.ecog is None else str(rec.ecog),
            ldh="" if rec.ldh_value is None else f"{rec.ldh_value:.0f}",
            ldh_uln=f"{rec.ldh_uln:.0f}",
            vital_status="2" if rec.death_day is not None else "1",
            last_contact_date=_iso(rec.last_contact_day),
            death_date=_iso(rec.death_day),
            baseline_complete="2",
        )
        rows.append(base)
        meta.append((rec.key, "patient"))
        instance = 0
        for line_no, course in enumerate(sorted(rec.courses, key=lambda x: x.start), start=1):
            for ingredient in course.ingredients:
                instance += 1
                row = dict.fromkeys(COLUMNS, "")
                row.update(
                    record_id=rec.local_id,
                    redcap_repeat_instrument="treatment",
                    redcap_repeat_instance=str(instance),
                    trt_line=str(line_no),
                    trt_drug=str(drugs[ingredient]),
                    trt_start=_iso(course.start),
                    trt_end=_iso(course.end),
                    trt_reason="" if course.reason is None else str(REASON[course.reason]),
                    trt_prog_date=_iso(course.progression),
                    treatment_complete="2",
                )
                rows.append(row)
                meta.append((rec.key, f"course:{course.role}"))
        for k, scan in enumerate(rec.scans, start=1):
            row = dict.fromkeys(COLUMNS, "")
            row.update(
                record_id=rec.local_id,
                redcap_repeat_instrument="assessment",
                redcap_repeat_instance=str(k),
                ass_date=_iso(scan.day),
                ass_response=str(RESPONSE[scan.response]),
                assessment_complete="2",
            )
            rows.append(row)
            meta.append((rec.key, f"scan:{scan.role}:{scan.response}"))
        for k, n in enumerate(by_record.pop(rec.local_id, []), start=1):
            event = events[n]
            row = dict.fromkeys(COLUMNS, "")
            row.update(
                record_id=rec.local_id,
                redcap_repeat_instrument=ADVERSE_EVENT_INSTRUMENT,
                redcap_repeat_instance=str(k),
                ae_term=str(terms[event.ctcae_term]),
                ae_grade=str(event.grade),
                ae_onset_date=_iso(event.onset_day),
                adverse_event_complete="2",
            )
            rows.append(row)
            meta.append((rec.key, f"adverse_event:{n}"))
    if by_record:
        raise RuntimeError(f"synth bug: adverse events of {len(by_record)} local ids that are no record of the centre")
    return rows, meta


def _choices(mapping: dict[str, int]) -> str:
    return " | ".join(f"{code}, {label}" for label, code in sorted(mapping.items(), key=lambda x: x[1]))


def dictionary_rows(design: Design) -> list[list[str]]:
    """The REDCap data dictionary (standard column layout)."""
    def field(name: str, form: str, ftype: str, label: str, choices: str = "", validation: str = "") -> list[str]:
        return [name, form, "", ftype, label, choices, "", validation, "", "", "", "", "", "", "", "", "", ""]

    drugs = drug_codes(design)
    drugs["other (specify)"] = OTHER_DRUG
    return [
        field("record_id", "baseline", "text", "Record ID"),
        field("sex", "baseline", "radio", "Sex", _choices(SEX)),
        field("birth_year", "baseline", "text", "Year of birth", validation="integer"),
        field("diagnosis_date", "baseline", "text", design.diagnosis_label, validation="date_ymd"),
        field("primary_site", "baseline", "dropdown", "Primary site", _choices(SITE)),
        field("stage", "baseline", "dropdown", "Stage at chemotherapy start", _choices({"IV": 1, "III unresectable": 2, "III": 3})),
        field("m_stage", "baseline", "dropdown", "M category (AJCC)", _choices(M_STAGE)),
        field("brain_mets", "baseline", "yesno", "Brain metastases"),
        field("braf", "baseline", "dropdown", "BRAF status", _choices({"V600E": 1, "V600K": 2, "wild type": 3, "unknown": 9})),
        field("ecog", "baseline", "dropdown", "ECOG performance status", "0, 0 | 1, 1 | 2, 2 | 3, 3 | 4, 4"),
        field("ldh", "baseline", "text", "LDH at chemotherapy start (U/L)", validation="number"),
        field("ldh_uln", "baseline", "text", "LDH upper limit of normal (U/L)", validation="number"),
        field("vital_status", "baseline", "radio", "Vital status", "1, alive | 2, dead"),
        field("last_contact_date", "baseline", "text", "Date of last contact", validation="date_ymd"),
        field("death_date", "baseline", "text", "Date of death", validation="date_ymd"),
        field("trt_line", "treatment", "text", "Line of therapy", validation="integer"),
        field("trt_drug", "treatment", "dropdown", "Drug", _choices(drugs)),
        field("trt_drug_other", "treatment", "text", "Other drug, specify"),
        field("trt_start", "treatment", "text", "Start date", validation="date_ymd"),
        field("trt_end", "treatment", "text", "End date", validation="date_ymd"),
        field("trt_reason", "treatment", "dropdown", "Reason stopped", _choices(REASON)),
        field("trt_prog_date", "treatment", "text", "Date of progression on this line", validation="date_ymd"),
        field("ass_date", "assessment", "text", "Date of tumour assessment", validation="date_ymd"),
        field("ass_response", "assessment", "dropdown", "Overall response (RECIST 1.1)", _choices(RESPONSE)),
        field("ae_term", ADVERSE_EVENT_INSTRUMENT, "dropdown", "Adverse event (CTCAE v5.0 term)", _choices(term_codes())),
        field("ae_grade", ADVERSE_EVENT_INSTRUMENT, "dropdown", "CTCAE grade", _choices(GRADE)),
        field("ae_onset_date", ADVERSE_EVENT_INSTRUMENT, "text", "Onset date", validation="date_ymd"),
    ]


DICTIONARY_HEADER = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)


def write_redcap(rows: list[dict[str, str]], folder: Path, stem: str, design: Design) -> tuple[str, str]:
    """Write the export and its dictionary; returns the two file names."""
    data_name = f"{stem}_DATA.csv"
    dict_name = f"{stem}_DataDictionary.csv"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([[row[c] for c in COLUMNS] for row in rows])
    (folder / data_name).write_text(buf.getvalue(), encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DICTIONARY_HEADER)
    writer.writerows(dictionary_rows(design))
    (folder / dict_name).write_text(buf.getvalue(), encoding="utf-8")
    return data_name, dict_name
