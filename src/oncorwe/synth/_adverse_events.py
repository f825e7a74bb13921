"""Adverse events of the index chemotherapy line: drawn per patient, written as each CSV centre's
own adverse event table (``adverse_event_table`` gives the same table to the workbook centres'
sheet; the REDCap centres write them as a repeating instrument, ``synth/_redcap.py``).

Rates per regimen class, the words for each CTCAE v5.0 term, the column headers and the ways of
writing a grade are data (``synth/data/adverse_events.toml``, sources in docs/synthetic-data.md).
Every draw comes from a random stream of its own per centre (``stream(seed, "adverse_events:<centre>")``):
no other generated value moves when adverse events are added, changed or left out, so every other
file of a study stays byte-identical and the calibrated published figures stay where they were.

The generator keeps its own words (the parser's vocabulary is not used, see ARCHITECTURE.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from oncorwe.model.schema import make_patient_id
from oncorwe.synth._baseline import stream
from oncorwe.synth._config import _read_toml
from oncorwe.synth._records import Course, PatientRecord
from oncorwe.synth._render import Renderer, pick

__all__ = [
    "ADVERSE_EVENT_TRUTH_COLUMNS", "AdverseEvent", "AdverseEventTable", "adverse_event_table", "adverse_event_truth",
    "ctcae_terms", "draw_adverse_events", "write_adverse_events",
]

#: the truth file's columns (``_truth/adverse_events.csv``)
ADVERSE_EVENT_TRUTH_COLUMNS = ("patient_id", "rate_class", "ctcae_term", "grade", "onset_day", "file", "row")


@dataclass(frozen=True)
class AdverseEvent:
    """One drawn adverse event of a patient's index course (canonical term, day number)."""

    local_id: str
    rate_class: str
    ctcae_term: str
    grade: int
    onset_day: int


@dataclass(frozen=True)
class _RateClass:
    name: str
    all_of: tuple[frozenset[str], ...]
    severe: tuple[tuple[str, float], ...]
    mild: tuple[tuple[str, float], ...]

    def matches(self, ingredients: Sequence[str]) -> bool:
        held = set(ingredients)
        return all(group & held for group in self.all_of)


@dataclass(frozen=True)
class _Settings:
    classes: tuple[_RateClass, ...]
    fallback: str
    grade4_share: float
    open_course_days: int
    columns: Mapping[str, Mapping[str, str]]
    grades: Mapping[str, Sequence[str]]
    terms: Mapping[str, Mapping[str, Sequence[str]]]


@cache
def _settings() -> _Settings:
    raw: dict[str, Any] = _read_toml("adverse_events.toml")
    classes = tuple(
        _RateClass(
            name=c["name"],
            all_of=tuple(frozenset(group) for group in c["all_of"]),
            severe=tuple((term, float(p)) for term, p in c["severe"].items()),
            mild=tuple((term, float(p)) for term, p in c["mild"].items()),
        )
        for c in raw["class"]
    )
    names = {c.name for c in classes}
    if raw["fallback"] not in names:
        raise RuntimeError(f"synth/data/adverse_events.toml: fallback {raw['fallback']!r} is not a class")
    terms = raw["terms"]
    for c in classes:
        unknown = sorted({t for t, _ in (*c.severe, *c.mild)} - set(terms))
        if unknown:
            raise RuntimeError(f"synth/data/adverse_events.toml: class {c.name!r} names terms without words: {unknown}")
    return _Settings(classes, raw["fallback"], float(raw["grade4_share"]), int(raw["open_course_days"]),
                     raw["columns"], raw["grades"], terms)


def _rate_class(course: Course, settings: _Settings) -> _RateClass:
    for c in settings.classes:
        if c.matches(course.ingredients):
            return c
    return next(c for c in settings.classes if c.name == settings.fallback)


def _index_course(rec: PatientRecord) -> Course | None:
    return next((c for c in rec.courses if c.role == "index"), None)


def draw_adverse_events(records: Sequence[PatientRecord], seed: int, centre_id: str) -> list[AdverseEvent]:
    """The adverse events of the index course of each record (in record order, then by onset).

    Per record and term of the record's rate class: a grade >= 3 event with the class's
    ``severe`` probability (grade 4 with ``grade4_share``), else a grade 1-2 event with its
    ``mild`` probability; the onset is a uniform day of the course (start to end, or to
    ``open_course_days`` after the start). Records without an index course have none. The draws
    use the stream ``adverse_events:<centre_id>`` only.
    """
    settings = _settings()
    rng = stream(seed, f"adverse_events:{centre_id}")
    out: list[AdverseEvent] = []
    for rec in records:
        course = _index_course(rec)
        if course is None:
            continue
        rate = _rate_class(course, settings)
        last = course.end if course.end is not None else course.start + settings.open_course_days
        mild = dict(rate.mild)
        drawn: list[AdverseEvent] = []
        for term in sorted({t for t, _ in rate.severe} | set(mild)):
            p_severe = dict(rate.severe).get(term, 0.0)
            u_event, u_grade, u_day = rng.random(3)
            if u_event < p_severe:
                grade = 4 if u_grade < settings.grade4_share else 3
            elif u_event < p_severe + (1.0 - p_severe) * mild.get(term, 0.0):
                grade = 1 if u_grade < 0.5 else 2
            else:
                continue
            onset = course.start + int(np.floor(u_day * (max(last - course.start, 0) + 1)))
            drawn.append(AdverseEvent(rec.local_id, rate.name, term, grade, onset))
        out.extend(sorted(drawn, key=lambda e: (e.onset_day, e.ctcae_term)))
    return out


def _grade_text(grade: int, r: Renderer, settings: _Settings) -> str:
    style = pick(["arabic", "roman", "prefixed", "words"], r.style.centre_id, "ae_grade")
    if style == "arabic":
        return str(grade)
    words = settings.grades[r.style.lang if style == "words" else style]
    return words[grade - 1]


@dataclass(frozen=True)
class AdverseEventTable:
    """A centre's adverse event table as text: its header, one row per event (patient id, term in
    the centre's words, grade in the centre's style, onset in its date format), and which column
    holds the onset date."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    onset_column: int


def ctcae_terms() -> tuple[str, ...]:
    """The CTCAE v5.0 terms the generator can draw, sorted (the data file's ``[terms]``)."""
    return tuple(sorted(_settings().terms))


def adverse_event_table(events: Sequence[AdverseEvent], r: Renderer) -> AdverseEventTable:
    """The events as the centre writes them, in its language, grade style and date format."""
    settings = _settings()
    lang = r.style.lang
    header = settings.columns[lang]
    rows = tuple(
        (event.local_id, pick(list(settings.terms[event.ctcae_term][lang]), r.style.centre_id, event.local_id,
                              event.ctcae_term),
         _grade_text(event.grade, r, settings), r.date(event.onset_day))
        for event in events
    )
    return AdverseEventTable((header["patient_id"], header["term"], header["grade"], header["onset"]), rows, 3)


def adverse_event_truth(events: Sequence[AdverseEvent], centre_id: str, file: str, rows: Sequence[int]) -> list[list[Any]]:
    """The truth rows of ``events`` written to ``file`` at data rows ``rows`` (one per event)."""
    if len(rows) != len(events):
        raise RuntimeError(f"synth bug: {len(events)} adverse events but {len(rows)} rows in {file}")
    return [[make_patient_id(centre_id, e.local_id), e.rate_class, e.ctcae_term, e.grade, e.onset_day, file, row]
            for e, row in zip(events, rows, strict=True)]


def write_adverse_events(events: Sequence[AdverseEvent], r: Renderer, folder: Path) -> tuple[str, list[list[Any]]]:
    """Write ``adverse_events.csv`` (``.tsv``) in the centre's delimiter, encoding, date format,
    language and grade style; returns the file name and the truth rows (one per event)."""
    table = adverse_event_table(events, r)
    ext = "tsv" if r.style.delimiter == "\t" else "csv"
    name = f"adverse_events.{ext}"
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=r.style.delimiter, lineterminator="\r\n" if r.style.encoding == "latin-1" else "\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    (folder / name).write_bytes(buf.getvalue().encode(r.style.encoding))
    return name, adverse_event_truth(events, r.style.centre_id, name, range(1, len(events) + 1))
