"""Column mapping: which canonical field each of a centre's columns holds.

In order: the centre's declared mapping (``overrides.columns``, the column as written -> a field, or
``"ignore"``), ``overrides.ignore_columns``, then the names in ``vocab/columns.csv`` after
normalisation. A legend in the header is read as codes (``gender (Male=1, Female=0)``,
``Mstage (IIIC=0, M1a=1)``), a unit in the header as the column's unit (``LDH (µkat/L)``,
``PFS (days)``, ``OS_MONTHS``). A generic ``date`` column is the assessment date in a table with a
response column, the onset date in a table with an adverse event term. A column whose name is not known is looked up by the label the export's own
dictionary gives it (REDCap field labels, cBioPortal display names). Anything else is reported as an
unknown column: never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oncorwe.harmonise._vocab import Vocabulary, normalise_column, normalise_word

__all__ = ["FIELDS", "ColumnMap", "map_columns"]

#: canonical fields a column can hold, and the kind of value
FIELDS: dict[str, str] = {
    "patient_id": "id",
    "sex": "code",
    "birth_year": "year",
    "age": "number",
    "diagnosis_date": "date",
    "primary_site": "code",
    "stage": "code",
    "m_stage": "code",
    "brain_metastases": "bool",
    "braf_v600": "code",
    "ecog": "ecog",
    "ldh_value": "number",
    "ldh_unit": "unit",
    "ldh_uln": "number",
    "ldh_elevated": "bool",
    "prior_ctla4": "bool",
    "vital_status": "code",
    "death_date": "date",
    "last_contact_date": "date",
    "progression_date": "date",
    "drug": "drug",
    "drug_other": "text",
    "start_date": "date",
    "end_date": "date",
    "reason_stopped": "code",
    "line": "int",
    "assessment_date": "date",
    "response": "response",
    "best_response": "response",
    "best_response_time": "duration",
    "pfs_time": "duration",
    "pfs_event": "event",
    "os_time": "duration",
    "os_event": "event",
    # adverse events (CTCAE v5.0): the term through ``vocab/ctcae_terms.csv``, the grade 1-5
    "ae_term": "code",
    "ae_grade": "grade",
    "ae_onset_date": "date",
}

_GENERIC_DATE = {"date", "datum", "data", "date_examen", "dat"}
_TIME_SUFFIX = re.compile(r"_(days|day|weeks|week|months|month|years|year|d|mo|m)$")
_UNIT_WORDS = {
    "days": "days", "day": "days", "d": "days", "tage": "days", "jours": "days", "giorni": "days",
    "dagen": "days", "weeks": "weeks", "week": "weeks", "months": "months", "month": "months",
    "mo": "months", "monate": "months", "mois": "months", "mesi": "months", "maanden": "months",
    "years": "years", "year": "years",
}
_LEGEND = re.compile(r"^(?P<name>.*?)\s*\((?P<inner>[^()]*)\)\s*$")


@dataclass(frozen=True)
class ColumnMap:
    """Field by column position, with the per-column codes and units read from headers."""

    fields: dict[int, str]
    legends: dict[int, dict[str, str]] = field(default_factory=dict)
    units: dict[int, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    how: dict[int, str] = field(default_factory=dict)

    def index(self, name: str) -> int | None:
        """The position of the column holding a field, if any."""
        for position, mapped in self.fields.items():
            if mapped == name:
                return position
        return None


def _legend(inner: str) -> dict[str, str] | None:
    pairs = [p.strip() for p in re.split(r"[;,]", inner) if p.strip()]
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            return None
        left, right = (s.strip() for s in pair.split("=", 1))
        if left.isdigit() and not right.isdigit():
            out[left] = right
        elif right.isdigit():
            out[right] = left
        else:
            return None
    return out or None


def _split_header(name: str, vocab: Vocabulary) -> tuple[str, dict[str, str] | None, str | None]:
    """(base name, legend codes, unit) of a header cell."""
    match = _LEGEND.match(name)
    if not match:
        return name, None, None
    inner = match["inner"].strip()
    legend = _legend(inner)
    if legend:
        return match["name"], legend, None
    word = normalise_word(inner)
    if word in vocab.ldh_units or word in _UNIT_WORDS:
        return match["name"], None, _UNIT_WORDS.get(word, inner)
    return match["name"], None, None


def map_columns(
    columns: tuple[str, ...],
    vocab: Vocabulary,
    *,
    declared: dict[str, str],
    ignore: list[str],
    labels: tuple[str | None, ...] = (),
) -> ColumnMap:
    """Map a table's columns to canonical fields (see the module docstring for the order)."""
    fields: dict[int, str] = {}
    legends: dict[int, dict[str, str]] = {}
    units: dict[int, str] = {}
    how: dict[int, str] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    declared_norm = {normalise_column(k): v for k, v in declared.items()}
    ignore_norm = {normalise_column(c) for c in ignore}
    pending_dates: list[int] = []
    for position, name in enumerate(columns):
        key = normalise_column(name)
        if key in declared_norm:
            declared_field = declared_norm[key]
            if declared_field == "ignore":
                ignored.append(name)
                continue
            fields[position], how[position] = declared_field, "declared"
            base, legend, unit = _split_header(name, vocab)
            if legend:
                legends[position] = legend
            if unit:
                units[position] = unit
            continue
        if key in ignore_norm or key.startswith("redcap_") or key.endswith("_complete"):
            ignored.append(name)
            continue
        base, legend, unit = _split_header(name, vocab)
        base_key = normalise_column(base)
        target = vocab.columns.get(base_key)
        label = labels[position] if position < len(labels) else None
        if target is None and label:
            # the export's own dictionary names the column ("trt_start" labelled "Start date")
            label_base, label_legend, label_unit = _split_header(label, vocab)
            target = vocab.columns.get(normalise_column(label_base))
            if target is not None:
                base_key = normalise_column(label_base)
                legend, unit = legend or label_legend, unit or label_unit
        if target is None:
            suffix = _TIME_SUFFIX.search(base_key)
            if suffix and vocab.columns.get(base_key[: suffix.start()]) in ("pfs_time", "os_time", "best_response_time"):
                target = vocab.columns[base_key[: suffix.start()]]
                unit = _UNIT_WORDS[suffix[1]]
            elif base_key.startswith("ldh_") and normalise_word(base_key[4:].replace("_", "/")) in vocab.ldh_units:
                target, unit = "ldh_value", base_key[4:].replace("_", "/")
        if target is None and base_key in _GENERIC_DATE:
            pending_dates.append(position)
            continue
        if target is None:
            unknown.append(name)
            continue
        if target in fields.values():
            ignored.append(name)  # a second column for a field already mapped: reported, not used
            continue
        suffix = _TIME_SUFFIX.search(base_key)
        if unit is None and suffix and target in ("pfs_time", "os_time", "best_response_time"):
            unit = _UNIT_WORDS[suffix[1]]
        fields[position], how[position] = target, "name"
        if legend:
            legends[position] = legend
        if unit:
            units[position] = unit
    for position in pending_dates:
        if "response" in fields.values() and "assessment_date" not in fields.values():
            fields[position], how[position] = "assessment_date", "generic date beside a response"
        elif "ae_term" in fields.values() and "ae_onset_date" not in fields.values():
            fields[position], how[position] = "ae_onset_date", "generic date beside an adverse event"
        else:
            unknown.append(columns[position])
    return ColumnMap(fields, legends, units, tuple(unknown), tuple(ignored), how)
