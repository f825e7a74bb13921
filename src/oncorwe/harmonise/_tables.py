"""One centre's record tables -> canonical rows, with every rejected record or value quarantined.

Row rules (the quarantine reason names what was expected):

- a row without a patient id is rejected; so is an exact copy of an earlier row of the same table
  (``duplicate of row N``), and a row in which two or more cells do not fit their columns (a row
  shifted by a column: nothing in it can be trusted);
- a treatment row needs a known drug and a start date, and an end date not before the start (else
  rejected: which date is wrong cannot be told); an unreadable end date is nulled, and so is a
  progression date before the course started;
- an assessment row needs a date and a known response word (else rejected);
- a patient attribute that does not read (sex word, ECOG 7, LDH unit) is nulled, the record kept;
  a second, different value for the same attribute of the same patient is nulled too;
- treatment, assessment and follow-up rows of a patient the centre's patient table does not list are
  rejected (``patient id not in the patient table``).

Analysis-ready sources (one row per patient with best response and PFS/OS durations, such as
published supplementary tables and cBioPortal clinical files) have no dates: the durations are laid
out from a nominal index date (``overrides.index_date``, default 2000-01-01) as a therapy start, a
``best_overall`` assessment at the time to best response, a progression event at PFS when progressed,
a death event at OS when dead, and a last contact at OS. Such a table's undated flag of prior
anti-CTLA-4 therapy (Liu's ``priorCTLA4``, cBioPortal's ``PRIOR_CTLA4``) becomes an exposure of
the ingredient ``vocab/prior_flags.csv`` names, at its nominal date (180) days before the index date: more than the
protocols' regimen window (28 days) and gap (120 days) before it, so that ``cohort`` makes it a line
of its own before the index line; its ``source_text`` says the date is nominal. (A dated source
records prior therapy as dated treatment rows, and its flag adds nothing.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

from oncorwe.harmonise._cells import (
    CellError,
    ldh_factor,
    parse_bool,
    parse_code,
    parse_drug,
    parse_ecog,
    parse_event,
    parse_int,
    parse_number,
    parse_response,
    parse_year,
)
from oncorwe.harmonise._columns import FIELDS, ColumnMap, map_columns
from oncorwe.harmonise._dates import ColumnDates, implausible_date
from oncorwe.harmonise._durations import column_days_factor
from oncorwe.harmonise._prepare import centre_missing_tokens, infer_dates, record_columns
from oncorwe.harmonise._rows import Accumulator, add_days
from oncorwe.harmonise._vocab import Vocabulary, normalise_word
from oncorwe.model.schema import make_patient_id
from oncorwe.sources import CentreConfig, RawTable

__all__ = ["harmonise_tables"]

PATIENT_FIELDS = (
    "sex", "birth_year", "age", "diagnosis_date", "primary_site", "stage", "m_stage",
    "brain_metastases", "braf_v600", "ecog", "ldh_value", "ldh_unit", "ldh_uln", "ldh_elevated",
)
_ANALYSIS_READY = ("best_response", "pfs_time", "os_time")
_DEFAULT_INDEX = dt.date(2000, 1, 1)
#: days before the nominal index date at which an undated prior anti-CTLA-4 flag is laid out
_DATE_SHAPES = {"YMD": "year-month-day", "DMY": "day-month-year", "MDY": "month-day-year",
                "SERIAL": "Excel day numbers"}
_OTHER_WORDS = {"other", "andere", "sonstige", "autre", "altro", "anders", "overig"}
#: above this an LDH value can only be in U/L (µkat/L values of living patients stay far below)
_LDH_UL_ONLY_ABOVE = 50.0


def harmonise_tables(
    tables: Sequence[RawTable], centre: CentreConfig, vocab: Vocabulary, acc: Accumulator,
    *, latest: dt.date | None = None, latest_is_data_cut: bool = False,
) -> None:
    """Turn a centre's record tables into canonical rows in ``acc`` (see the module rules).

    ``latest`` is the last plausible record date (the study's data cut, else the day of the run,
    which is the default); a date after it or before 1900 is quarantined as implausible.
    """
    window = (latest or dt.date.today(), latest_is_data_cut if latest else False)
    overrides = centre.overrides
    maps = [
        map_columns(t.columns, vocab, declared=overrides.columns, ignore=overrides.ignore_columns,
                    labels=t.labels)
        for t in tables
    ]
    for table, cmap in zip(tables, maps, strict=True):
        record_columns(table, cmap, acc)
        _warn_repeated_names(table, centre, acc)
    dates = infer_dates(tables, maps, centre, vocab, acc)
    centre_missing = centre_missing_tokens(tables, maps, vocab)
    has_patient_table = any(
        any(f in PATIENT_FIELDS or f in _ANALYSIS_READY for f in m.fields.values()) for m in maps
    )
    pending: list[tuple[str, dict[str, Any], str, str | None, int]] = []
    for table, cmap, table_dates in zip(tables, maps, dates, strict=True):
        key = (centre.id, table.file, table.sheet)
        acc.read[key] = acc.read.get(key, 0) + table.records_read
        for bad in table.bad_rows:
            acc.quarantine_value(centre.id, table.file, table.sheet, bad.row, "(row)", bad.raw[:500],
                                 f"row does not fit the header: {bad.reason}", reject=True)
        if cmap.index("patient_id") is None:
            for row in table.row_numbers:
                acc.quarantine_value(centre.id, table.file, table.sheet, row, "(row)", None,
                                     "the table has no patient id column; declare it in overrides.columns",
                                     reject=True)
            acc.warnings.append(
                f"centre {centre.id}, file {table.label}: no patient id column among "
                f"{', '.join(table.columns)}; declare it in overrides.columns"
            )
            continue
        if set(cmap.fields.values()) <= {"patient_id", "drug_other"}:
            # rows that carry nothing but a patient id (a REDCap instrument the dictionary does not
            # know, a table of unrecognised columns): counted as quarantined, never as accepted
            for row in table.row_numbers:
                acc.quarantine_value(centre.id, table.file, table.sheet, row, "(row)", None,
                                     "no column of the table besides the patient id is recognised "
                                     "(see column_map.csv); declare them in overrides.columns",
                                     reject=True)
            acc.warnings.append(
                f"centre {centre.id}, file {table.label}: no column besides the patient id is recognised "
                f"({', '.join(c[:40] for c in table.columns[:8])}{', ...' if len(table.columns) > 8 else ''}); "
                "declare them in overrides.columns"
            )
            continue
        _TableRows(table, cmap, table_dates, centre, vocab, acc, pending, centre_missing, window).run()
    for kind, record, file, sheet, row in pending:
        if has_patient_table and record["patient_id"] not in acc.patients:
            acc.quarantine_value(centre.id, file, sheet, row, "patient_id", record["_local_id"],
                                 "patient id not in the centre's patient table", reject=True)
            continue
        if acc.is_rejected(centre.id, file, sheet, row):
            continue
        record.pop("_local_id", None)
        if record["patient_id"] not in acc.patients:
            acc.patients[record["patient_id"]] = _empty_patient(record["patient_id"], centre.id, record["source"])
        getattr(acc, kind).append(record)


def _warn_repeated_names(table: RawTable, centre: CentreConfig, acc: Accumulator) -> None:
    """A problem line per header name the table repeats (``sex`` twice): only the first such column
    is read, and the data manager must know that the other's values are not."""
    first: dict[str, int] = {}
    for position, name in enumerate(table.columns):
        key = normalise_word(name)
        if key in first:
            acc.warnings.append(
                f"centre {centre.id}, file {table.label}: columns {first[key] + 1} and {position + 1} are "
                f"both named {name[:80]!r}; only column {first[key] + 1} is read (rename or remove the other)"
            )
        else:
            first[key] = position


def _empty_patient(patient_id: str, centre_id: str, source: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id, "centre_id": centre_id, "sex": None, "birth_year": None,
        "reported_age_years": None, "diagnosis_date": None, "primary_site": None, "stage": None,
        "m_stage": None, "brain_metastases": None, "braf_v600": None, "ecog": None,
        "ldh_value": None, "ldh_uln": None, "ldh_elevated": None, "source": source,
    }


class _ImplausibleDate(CellError):
    """A date that reads in its column's order but lies outside the plausible window."""


class _TableRows:
    """The row loop of one table (a class only to share its many read-only inputs)."""

    def __init__(
        self, table: RawTable, cmap: ColumnMap, dates: dict[int, ColumnDates], centre: CentreConfig,
        vocab: Vocabulary, acc: Accumulator,
        pending: list[tuple[str, dict[str, Any], str, str | None, int]],
        centre_missing: frozenset[str] = frozenset(),
        window: tuple[dt.date, bool] = (dt.date.max, True),
    ) -> None:
        self.table, self.cmap, self.dates, self.centre = table, cmap, dates, centre
        self.latest, self.latest_is_data_cut = window
        self.vocab, self.acc, self.pending = vocab, acc, pending
        self.overrides = centre.overrides
        self.codes = {f: {normalise_word(k): v for k, v in m.items()} for f, m in self.overrides.codes.items()}
        self.missing = {normalise_word(t) for t in self.overrides.missing} | centre_missing
        mapped = set(cmap.fields.values())
        self.analysis_ready = bool(mapped & set(_ANALYSIS_READY)) and "start_date" not in mapped
        self.is_patient_table = bool(mapped & set(PATIENT_FIELDS)) or bool(mapped & set(_ANALYSIS_READY))
        self.day_factor = {
            p: column_days_factor([r[p] for r in table.rows], cmap.units.get(p), self.overrides.month_days,
                                  self.overrides.time_units.get(table.columns[p]))
            for p, f in cmap.fields.items() if FIELDS.get(f) == "duration"
        }
        for p, factor in self.day_factor.items():
            if factor is None:
                acc.fatal.append(
                    f"centre {centre.id}, file {table.label}, column {table.columns[p]!r}: the time unit "
                    f"is not given; declare it in centres.toml: [centres.{centre.id}.overrides] "
                    f"time_units = {{\"{table.columns[p]}\" = \"days\"}} (or weeks, months, years)"
                )
        self._i = 0
        self.index_date = (
            dt.date.fromisoformat(self.overrides.index_date) if self.overrides.index_date else _DEFAULT_INDEX
        )

    # -- helpers -------------------------------------------------------------------------------
    def _cell(self, cells: tuple[str | None, ...], field: str) -> tuple[int | None, str | None]:
        position = self.cmap.index(field)
        if position is None:
            return None, None
        text = cells[position]
        if field == "drug" and text is not None and normalise_word(text).split(" (")[0] in _OTHER_WORDS:
            other = self.cmap.index("drug_other")
            if other is not None and cells[other] is not None:
                text = cells[other]  # "other (specify)" with the drug written beside it
        coded = FIELDS.get(field) in ("code", "bool", "ecog", "event", "response", "int", "year")
        if text is None or self.vocab.is_missing(text, coded=coded) or normalise_word(text) in self.missing:
            return position, None
        return position, text

    def _where(self, row: int) -> str:
        return f"{self.centre.id}/{self.table.label}:{row}"

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        seen: dict[tuple[str | None, ...], int] = {}
        for i, (cells, row) in enumerate(zip(self.table.rows, self.table.row_numbers, strict=True)):
            self._i = i
            if cells in seen:
                self.acc.quarantine_value(self.centre.id, self.table.file, self.table.sheet, row, "(row)",
                                          _joined(cells), f"duplicate of row {seen[cells]}", reject=True)
                continue
            seen[cells] = row
            self._row(cells, row)

    def _row(self, cells: tuple[str | None, ...], row: int) -> None:
        table, acc, centre = self.table, self.acc, self.centre
        _, local = self._cell(cells, "patient_id")
        if local is None:
            acc.quarantine_value(centre.id, table.file, table.sheet, row, "patient_id",
                                 cells[self.cmap.index("patient_id") or 0], "no patient id", reject=True)
            return
        local = local.strip()
        values: dict[str, Any] = {}
        errors: list[tuple[str, str | None, str]] = []
        # a date that reads but is implausible is the centre's value in the right column, not a
        # sign of a shifted row: it does not count towards "cells do not fit their columns"
        implausible: list[tuple[str, str | None, str]] = []
        for position, field in self.cmap.fields.items():
            if field in ("patient_id", "drug_other"):
                continue
            _, text = self._cell(cells, field)
            if text is None and FIELDS.get(field) != "date":
                continue
            try:
                value = self._value(field, position, text, row)
            except _ImplausibleDate as exc:
                implausible.append((field, cells[position], str(exc)))
                continue
            except CellError as exc:
                errors.append((field, cells[position], str(exc)))
                continue
            if value is not None:
                values[field] = value
        if "m_stage" not in values and "stage" in values:
            _, stage_text = self._cell(cells, "stage")
            with contextlib.suppress(CellError):  # "IV M1c" in a stage column also gives the M category
                values["m_stage"] = parse_code(stage_text or "", "m_stage", self.vocab, codes={}, legend=None)
        if len(errors) >= 2:
            fields = ", ".join(f for f, _, _ in errors)
            acc.quarantine_value(centre.id, table.file, table.sheet, row, "(row)", _joined(cells),
                                 f"cells do not fit their columns ({fields}): shifted or misaligned row",
                                 reject=True)
            return
        patient_id = make_patient_id(centre.id, local)
        acc.row_patient[(centre.id, table.file, table.sheet, row)] = patient_id
        source = self._where(row)
        errors.extend(implausible)
        error_fields = {f for f, _, _ in errors}
        for field, raw, reason in errors:
            reject = field in ("drug", "start_date", "assessment_date", "response") or (
                field == "best_response" and "best_response" in self.cmap.fields.values()
            )
            acc.quarantine_value(centre.id, table.file, table.sheet, row, field, raw, reason, reject=reject)
        if acc.is_rejected(centre.id, table.file, table.sheet, row):
            return
        if self.is_patient_table:
            self._patient(patient_id, values, source, row)
        if "drug" in self.cmap.fields.values() and not self.analysis_ready:
            self._exposure(patient_id, local, values, source, row, error_fields)
        if "response" in self.cmap.fields.values():
            self._assessment(patient_id, local, values, source, row)
        self._events(patient_id, local, values, source, row)
        if any(f in values for f in _ANALYSIS_READY):
            self._analysis_ready(patient_id, local, values, source, row)

    def _value(self, field: str, position: int, text: str | None, row: int) -> Any:
        kind = FIELDS[field]
        vocab, codes = self.vocab, self.codes.get(field, {})
        legend = self.cmap.legends.get(position)
        if kind == "date":
            result = self.dates[position]
            if text is None:
                return None
            if position in self.dates and result.dates[self._i] is None:
                shape = _DATE_SHAPES.get(result.order or "", "a date")
                raise CellError(f"expected a valid date written like the rest of the column ({shape})")
            day = result.dates[self._i]
            if day is not None:
                implausible = implausible_date(day, self.latest, self.latest_is_data_cut)
                if implausible:
                    raise _ImplausibleDate(implausible)
            return day
        if text is None:
            return None
        if kind == "code":
            try:
                return parse_code(text, field, vocab, codes=codes, legend=legend)
            except CellError:
                if field not in ("braf_v600",):
                    raise
                return "true" if parse_bool(text, vocab, codes=codes, legend=legend) else "false"
        if kind == "bool":
            return parse_bool(text, vocab, codes=codes, legend=legend)
        if kind == "year":
            return parse_year(text)
        if kind == "ecog":
            return parse_ecog(legend.get(text.strip(), text) if legend else text)
        if kind == "int":
            return parse_int(text, low=0, high=50, what="a line number")
        if kind == "number":
            number = parse_number(text, decimal=self.overrides.decimal)
            if number < 0 or (field == "age" and number > 120):
                raise CellError(f"expected a plausible {field.replace('_', ' ')}")
            return number
        if kind == "unit":
            ldh_factor(text, vocab)
            return text
        if kind == "drug":
            return parse_drug(text, vocab, codes=codes)
        if kind == "response":
            return parse_response(text, vocab, codes=codes)
        if kind == "event":
            return parse_event(text, vocab, codes=codes)
        if kind == "duration":
            number = parse_number(text, decimal=self.overrides.decimal)
            if number < 0:
                raise CellError("expected a duration of zero or more")
            factor = self.day_factor[position]
            if factor is None:
                return None
            return number * factor
        return None  # "unused": a known column the model does not hold

    # -- records -------------------------------------------------------------------------------
    def _patient(self, patient_id: str, values: dict[str, Any], source: str, row: int) -> None:
        acc, centre, table = self.acc, self.centre, self.table
        attrs = self._attributes(values, row)
        record = acc.patients.get(patient_id)
        if record is None:
            record = _empty_patient(patient_id, centre.id, source)
            acc.patients[patient_id] = record
        for name, value in attrs.items():
            if value is None:
                continue
            if record[name] is None:
                record[name] = value
            elif record[name] != value:
                acc.quarantine_value(centre.id, table.file, table.sheet, row, name, str(value),
                                     f"differs from {record[name]!r} given earlier for this patient "
                                     f"({record['source']})", reject=False)

    def _attributes(self, values: dict[str, Any], row: int) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "sex": values.get("sex"), "birth_year": values.get("birth_year"),
            "reported_age_years": values.get("age"), "diagnosis_date": values.get("diagnosis_date"),
            "primary_site": values.get("primary_site"), "stage": values.get("stage"),
            "m_stage": values.get("m_stage"), "brain_metastases": values.get("brain_metastases"),
            "braf_v600": _braf(values.get("braf_v600")), "ecog": values.get("ecog"),
            "ldh_elevated": values.get("ldh_elevated"),
        }
        if attrs["stage"] is None and attrs["m_stage"] and attrs["m_stage"].startswith("M1"):
            attrs["stage"] = "IV"  # any distant metastasis is AJCC stage IV
        value, uln = values.get("ldh_value"), values.get("ldh_uln")
        if uln is None and self.overrides.ldh_uln is not None:
            uln = self.overrides.ldh_uln
        if value is not None or uln is not None:
            column = self.cmap.index("ldh_value")
            header_unit = self.cmap.units.get(column) if column is not None else None
            unit = values.get("ldh_unit") or header_unit or self.overrides.ldh_unit
            if unit is None:
                if all(v is None or v > _LDH_UL_ONLY_ABOVE for v in (value, uln)):
                    unit = "U/L"
                else:
                    self.acc.quarantine_value(
                        self.centre.id, self.table.file, self.table.sheet, row, "ldh_value",
                        None if value is None else str(value),
                        "LDH unit not given and the value does not settle it; declare overrides.ldh_unit",
                        reject=False)
                    value = uln = None
            if unit is not None:
                factor = ldh_factor(unit, self.vocab)
                value = None if value is None else value * factor
                uln = None if uln is None else uln * factor
        attrs["ldh_value"], attrs["ldh_uln"] = value, uln
        return attrs

    def _exposure(
        self, patient_id: str, local: str, values: dict[str, Any], source: str, row: int,
        error_fields: set[str],
    ) -> None:
        acc, centre, table = self.acc, self.centre, self.table
        if "drug" not in values or "start_date" not in values:
            missing = "drug" if "drug" not in values else "start_date"
            if missing not in error_fields:
                acc.quarantine_value(centre.id, table.file, table.sheet, row, missing, None,
                                     f"a treatment needs a {missing.replace('_', ' ')}", reject=True)
            return
        start, end = values["start_date"], values.get("end_date")
        if end is not None and end < start:
            # which of the two dates is wrong cannot be told: the course is not usable
            position = self.cmap.index("end_date")
            acc.quarantine_value(centre.id, table.file, table.sheet, row, "end_date",
                                 table.rows[self._i][position or 0],
                                 f"end date before the start date {start.isoformat()}", reject=True)
            return
        progression = values.get("progression_date")
        if progression is not None and progression < start:
            # progression on a course cannot precede the course; the course itself stands
            position = self.cmap.index("progression_date")
            acc.quarantine_value(centre.id, table.file, table.sheet, row, "progression_date",
                                 table.rows[self._i][position or 0],
                                 f"progression dated before the course started ({start.isoformat()})",
                                 reject=False)
            values.pop("progression_date")
        _, text = self._cell(table.rows[self._i], "drug")  # as written (the "other" column if used)
        for ingredient in values["drug"]:
            self.pending.append(("exposures", {
                "patient_id": patient_id, "_local_id": local, "ingredient": ingredient.name,
                "ingredient_concept_id": ingredient.concept_id, "drug_class": ingredient.drug_class,
                "start_date": start, "end_date": end, "reason_stopped": values.get("reason_stopped"),
                "source_line": values.get("line"), "source_text": text, "source": source,
            }, table.file, table.sheet, row))

    def _assessment(self, patient_id: str, local: str, values: dict[str, Any], source: str, row: int) -> None:
        acc, centre, table = self.acc, self.centre, self.table
        if "response" not in values or "assessment_date" not in values:
            missing = "response" if "response" not in values else "assessment_date"
            acc.quarantine_value(centre.id, table.file, table.sheet, row, missing, None,
                                 f"an assessment needs a {missing.replace('_', ' ')}", reject=True)
            return
        self.pending.append(("assessments", {
            "patient_id": patient_id, "_local_id": local, "assessment_date": values["assessment_date"],
            "response": values["response"], "kind": "timepoint", "source": source,
        }, table.file, table.sheet, row))

    def _events(self, patient_id: str, local: str, values: dict[str, Any], source: str, row: int) -> None:
        dead = values.get("vital_status") == "dead"
        death = values.get("death_date")
        contact = values.get("last_contact_date")
        if death is None and dead and contact is not None and "death_date" not in self.cmap.fields.values():
            death = contact  # one status date: the date of death for the dead, of last contact else
        for kind, date in (("death", death), ("last_contact", contact),
                           ("progression", values.get("progression_date"))):
            if date is not None:
                self.pending.append(("events", {
                    "patient_id": patient_id, "_local_id": local, "event_type": kind,
                    "event_date": date, "source": source,
                }, self.table.file, self.table.sheet, row))

    def _analysis_ready(self, patient_id: str, local: str, values: dict[str, Any], source: str, row: int) -> None:
        index = self.index_date
        file, sheet = self.table.file, self.table.sheet

        def add(kind: str, record: dict[str, Any]) -> None:
            self.pending.append((kind, {"patient_id": patient_id, "_local_id": local, **record,
                                        "source": source}, file, sheet, row))

        if "drug" in values:
            position = self.cmap.index("drug")
            text = self.table.rows[self._i][position or 0]
            for ingredient in values["drug"]:
                add("exposures", {"ingredient": ingredient.name, "ingredient_concept_id": ingredient.concept_id,
                                  "drug_class": ingredient.drug_class, "start_date": index, "end_date": None,
                                  "reason_stopped": None, "source_line": None, "source_text": text})
        for field_name, (name, days) in self.vocab.prior_flags.items():
            if not values.get(field_name):
                continue
            position = self.cmap.index(field_name)
            flag = self.table.columns[position or 0]
            drug = self.vocab.ingredients[name]
            add("exposures", {"ingredient": drug.name, "ingredient_concept_id": drug.concept_id,
                              "drug_class": drug.drug_class,
                              "start_date": index - dt.timedelta(days=days), "end_date": None,
                              "reason_stopped": None, "source_line": None,
                              "source_text": f"{flag} = yes (undated; nominal date {days} days before the index)"})
        if "best_response" in values:
            when = values.get("best_response_time")
            add("assessments", {"assessment_date": None if when is None else add_days(index, when),
                                "response": values["best_response"], "kind": "best_overall"})
        if values.get("pfs_event") and "pfs_time" in values:
            add("events", {"event_type": "progression", "event_date": add_days(index, values["pfs_time"])})
        if "os_time" in values:
            if values.get("os_event"):
                add("events", {"event_type": "death", "event_date": add_days(index, values["os_time"])})
            add("events", {"event_type": "last_contact", "event_date": add_days(index, values["os_time"])})


def _braf(value: Any) -> bool | None:
    if value is None:
        return None
    return value == "true" if isinstance(value, str) else bool(value)


def _joined(cells: tuple[str | None, ...]) -> str:
    return "|".join("" if c is None else c for c in cells)[:500]
