"""Centre files (CSV/TSV, XLSX, REDCap, cBioPortal) -> canonical rows *inside the engine*.

The readers' job ends at raw rows in the engine: each table of every centre, after column mapping
(:mod:`oncorwe.harmonise._columns`), is stacked into one engine table of raw string cells keyed by
table and row (``c0 ... cN``, every cell as written, and one column per mapped field). Cell parsing
(words, dates in the column's order, units, codes, drugs: :mod:`._cells`, :mod:`._dates`,
:mod:`._vocab`) runs in Python once per *distinct* raw value of a column, giving a small mapping
table (raw text -> value, or the reason it does not read) that the engine joins: the cost in Python
grows with the distinct values, not with the rows. The row rules are Ibis queries over the joined
rows (DuckDB, PostgreSQL, Spark):

- a row without a patient id is rejected; so is an exact copy of an earlier row of the same table
  (``duplicate of row N``), and a row in which two or more cells do not fit their columns (a row
  shifted by a column: nothing in it can be trusted);
- a treatment row needs a known drug and a start date, and an end date not before the start (else
  rejected: which date is wrong cannot be told); an unreadable end date is nulled, and so is a
  progression date before the course started;
- an assessment row needs a date and a known response word (else rejected);
- an adverse event row needs a known CTCAE term (``vocab/ctcae_terms.csv``), a grade 1-5 and an
  onset date (else rejected: a grade 0 or 7 is impossible, not missing); an onset before the
  patient's first recorded treatment started cannot be a toxicity of it and is rejected too
  (``onset before the patient's first treatment``); an onset after the data cut is implausible;
- a patient attribute that does not read (sex word, ECOG 7, LDH unit) is nulled, the record kept;
  a second, different value for the same attribute of the same patient is nulled too (the first
  one, in table and row order, stands);
- treatment, assessment and follow-up rows of a patient the centre's patient table does not list are
  rejected (``patient id not in the centre's patient table``), one entry per record the row gave;
- a date before 1900 or after the data cut (else the day of the run) is quarantined as implausible
  (:func:`oncorwe.harmonise._dates.implausible_date`); it does not count towards a shifted row.

Analysis-ready sources (one row per patient with best response and PFS/OS durations, such as
published supplementary tables and cBioPortal clinical files) have no dates: the durations are laid
out from a nominal index date (``overrides.index_date``, default 2000-01-01) as a therapy start, a
``best_overall`` assessment at the time to best response, a progression event at PFS when progressed,
a death event at OS when dead, and a last contact at OS. Such a table's undated flag of prior
therapy (``vocab/prior_flags.csv``: Liu's ``priorCTLA4``, cBioPortal's ``PRIOR_CTLA4``) becomes an
exposure of the ingredient the file names, at its nominal date the file's days before the index date
(more than the protocols' regimen window and gap, so that ``cohort`` makes it a line of its own
before the index line); its ``source_text`` says the date is nominal. (A dated source records
prior therapy as dated treatment rows, and its flag adds nothing.)

Only the audit rows that need Python's wording come back before the canonical tables: the few
conflicting second attribute values (their reason quotes the first value as Python writes it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import polars as pl
import pyarrow as pa

from oncorwe.harmonise._cells import (
    CellError,
    ldh_factor,
    parse_bool,
    parse_code,
    parse_drug,
    parse_ecog,
    parse_event,
    parse_grade,
    parse_int,
    parse_number,
    parse_response,
    parse_year,
)
from oncorwe.harmonise._columns import FIELDS, ColumnMap, map_columns
from oncorwe.harmonise._dates import implausible_date, infer_date_order, parse_date
from oncorwe.harmonise._durations import column_days_factor
from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._vocab import Vocabulary, normalise_column, normalise_word
from oncorwe.model import engine
from oncorwe.model.schema import (
    ADVERSE_EVENTS_SCHEMA,
    ASSESSMENTS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    PATIENTS_SCHEMA,
    QUARANTINE_SCHEMA,
)
from oncorwe.model.store import to_polars
from oncorwe.sources import CentreConfig, RawTable

__all__ = ["files_into_engine"]

PATIENT_FIELDS = (
    "sex", "birth_year", "age", "diagnosis_date", "primary_site", "stage", "m_stage",
    "brain_metastases", "braf_v600", "ecog", "ldh_value", "ldh_unit", "ldh_uln", "ldh_elevated",
)
_ANALYSIS_READY = ("best_response", "pfs_time", "os_time")
_DEFAULT_INDEX = dt.date(2000, 1, 1)
_DATE_SHAPES = {"YMD": "year-month-day", "DMY": "day-month-year", "MDY": "month-day-year",
                "SERIAL": "Excel day numbers"}
_OTHER_WORDS = {"other", "andere", "sonstige", "autre", "altro", "anders", "overig"}
#: above this an LDH value can only be in U/L (µkat/L values of living patients stay far below)
_LDH_UL_ONLY_ABOVE = 50.0
#: a cell of these fields that does not read rejects its row (the record is unusable without it)
_REJECTING = ("drug", "start_date", "assessment_date", "response", "best_response", "ae_term", "ae_grade",
              "ae_onset_date")
#: more rows than any table holds: (table, row order) as one sortable number
_ROWS_PER_TABLE = 1_000_000_000
_CODED = ("code", "bool", "ecog", "event", "response", "int", "year", "grade")
#: the typed column of the cell map a field's value is in, by kind
_VALUE_COLUMN = {
    "id": "v_text", "code": "v_text", "unit": "v_text", "response": "v_text", "drug": "v_text", "text": "v_text",
    "number": "v_num", "year": "v_int", "ecog": "v_int", "grade": "v_int", "int": "v_int", "duration": "v_int",
    "date": "v_date", "bool": "v_bool", "event": "v_bool",
}
#: patient attribute -> the field it is read from (the order of the patients table)
_ATTRIBUTES = {
    "sex": "sex", "birth_year": "birth_year", "reported_age_years": "age", "diagnosis_date": "diagnosis_date",
    "primary_site": "primary_site", "stage": "stage", "m_stage": "m_stage",
    "brain_metastases": "brain_metastases", "braf_v600": "braf_v600", "ecog": "ecog",
    "ldh_value": "ldh_value", "ldh_uln": "ldh_uln", "ldh_elevated": "ldh_elevated",
}
_CELL_MAP_SCHEMA = pa.schema([
    ("t", pa.int64()), ("field", pa.string()), ("text", pa.string()), ("rank", pa.int64()),
    ("missing", pa.bool_()), ("v_text", pa.string()), ("v_num", pa.float64()), ("v_int", pa.int64()),
    ("v_date", pa.date32()), ("v_bool", pa.bool_()), ("m_from_stage", pa.string()),
    ("error", pa.string()), ("implausible", pa.bool_()),
])


@dataclass(frozen=True)
class _Table:
    """One source table as the engine path sees it: its number, centre, columns and mapping."""

    no: int
    centre: CentreConfig
    table: RawTable
    cmap: ColumnMap
    skip: str | None = None  # why none of its rows is read (no patient id column, nothing recognised)

    @property
    def mapped(self) -> set[str]:
        return set(self.cmap.fields.values())

    @property
    def analysis_ready(self) -> bool:
        return bool(self.mapped & set(_ANALYSIS_READY)) and "start_date" not in self.mapped

    @property
    def is_patient_table(self) -> bool:
        return bool(self.mapped & set(PATIENT_FIELDS)) or bool(self.mapped & set(_ANALYSIS_READY))


@dataclass
class _Context:
    """What reading one column's distinct values needs (dates' order, durations' unit, codes)."""

    vocab: Vocabulary
    latest: dt.date
    latest_is_data_cut: bool
    missing: dict[str, frozenset[str]] = field(default_factory=dict)  # centre -> its missing words
    orders: dict[tuple[int, str], str | None] = field(default_factory=dict)  # (table, date field) -> order
    day_factor: dict[tuple[int, str], float | None] = field(default_factory=dict)


def files_into_engine(
    con: Any, centres: Sequence[tuple[CentreConfig, Sequence[RawTable]]], vocab: Vocabulary, acc: Accumulator,
    *, latest: dt.date, latest_is_data_cut: bool,
) -> None:
    """Harmonise every centre's record tables inside ``con`` (see the module rules).

    The canonical rows, quarantine entries and row owners are added to ``acc`` as frames; the
    column map, read counts, problem lines and fatal problems as the other stages expect them.
    ``latest`` is the last plausible record date (the study's data cut, else the day of the run).
    """
    tables = _prepare(centres, vocab, acc)
    if not tables:
        return
    ctx = _Context(vocab, latest, latest_is_data_cut)
    scratch: list[str] = []
    try:
        raw = _upload(con, "files_raw", _raw_rows(tables), scratch)
        distinct = to_polars(_distinct_cells(raw, tables)) if _all_fields(tables) else pl.DataFrame(
            schema={"t": pl.Int64(), "field": pl.String(), "text": pl.String(), "n": pl.Int64()})
        _column_reading(tables, distinct, ctx, acc)
        cell_map = _upload(con, "files_cells", _cell_map(tables, distinct, ctx), scratch)
        drug_map = _upload(con, "files_drugs", _drug_map(tables, distinct, ctx), scratch)
        meta = _upload(con, "files_tables", _meta(tables, vocab), scratch)
        _rules(con, raw, cell_map, drug_map, meta, tables, vocab, acc, scratch)
    finally:
        engine.drop_scratch(con, scratch)


def _upload(con: Any, label: str, data: pa.Table, scratch: list[str]) -> ir.Table:
    scratch.append(engine.scratch_name(label))
    return engine.upload(con, scratch[-1], data, temp=True)


def _store(con: Any, label: str, expr: ir.Table, scratch: list[str]) -> ir.Table:
    scratch.append(engine.scratch_name(label))
    return engine.materialise(con, expr, scratch[-1], temp=True)


# -- Python, per table and per distinct value ----------------------------------------------------

def _prepare(centres: Sequence[tuple[CentreConfig, Sequence[RawTable]]], vocab: Vocabulary,
             acc: Accumulator) -> list[_Table]:
    """Map every table's columns; record the column map, read counts, reader quarantine, and the
    tables none of whose rows can be read (with the problem line saying how to declare them)."""
    out: list[_Table] = []
    for centre, raw_tables in centres:
        overrides = centre.overrides
        for table in raw_tables:
            cmap = map_columns(table.columns, vocab, declared=overrides.columns, ignore=overrides.ignore_columns,
                               labels=table.labels)
            _record_columns(table, cmap, acc)
            _warn_repeated_names(table, centre, acc)
            key = (centre.id, table.file, table.sheet)
            acc.read[key] = acc.read.get(key, 0) + table.records_read
            for bad in table.bad_rows:
                acc.quarantine_value(centre.id, table.file, table.sheet, bad.row, "(row)", bad.raw[:500],
                                     f"row does not fit the header: {bad.reason}", reject=True)
            skip = None
            if cmap.index("patient_id") is None:
                skip = "the table has no patient id column; declare it in overrides.columns"
                acc.warnings.append(
                    f"centre {centre.id}, file {table.label}: no patient id column among "
                    f"{', '.join(table.columns)}; declare it in overrides.columns")
            elif set(cmap.fields.values()) <= {"patient_id", "drug_other"}:
                # rows that carry nothing but a patient id (a REDCap instrument the dictionary does
                # not know, a table of unrecognised columns): counted as quarantined, never accepted
                skip = ("no column of the table besides the patient id is recognised "
                        "(see column_map.csv); declare them in overrides.columns")
                acc.warnings.append(
                    f"centre {centre.id}, file {table.label}: no column besides the patient id is recognised "
                    f"({', '.join(c[:40] for c in table.columns[:8])}{', ...' if len(table.columns) > 8 else ''}); "
                    "declare them in overrides.columns")
            out.append(_Table(len(out), centre, table, cmap, skip))
    return out


def _record_columns(table: RawTable, cmap: ColumnMap, acc: Accumulator) -> None:
    for position, name in enumerate(table.columns):
        acc.columns.append({
            "centre_id": table.centre_id, "file": table.file, "sheet": table.sheet, "column": name,
            "field": cmap.fields.get(position),
            "how": cmap.how.get(position) or ("ignored" if name in cmap.ignored else "unknown"),
        })


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


def _all_fields(tables: Sequence[_Table]) -> list[str]:
    """Every field some table maps, in the order of :data:`FIELDS`."""
    mapped = set().union(*(t.mapped for t in tables))
    return [f for f in FIELDS if f in mapped]


def _width(tables: Sequence[_Table]) -> int:
    return max((len(t.table.columns) for t in tables), default=0)


def _raw_rows(tables: Sequence[_Table]) -> pa.Table:
    """Every row of every table: (t, row, ord), each cell as written (c0...), and one column per
    mapped field (the cell of the column that holds it)."""
    width, fields = _width(tables), _all_fields(tables)
    columns: dict[str, list[Any]] = {"t": [], "row": [], "ord": [], **{f"c{i}": [] for i in range(width)},
                                     **{f"f_{f}": [] for f in fields}}
    for t in tables:
        n = len(t.table.rows)
        columns["t"].extend([t.no] * n)
        columns["row"].extend(t.table.row_numbers)
        columns["ord"].extend(range(n))
        by_position = list(zip(*t.table.rows, strict=True)) if n else [() for _ in t.table.columns]
        for i in range(width):
            columns[f"c{i}"].extend(by_position[i] if i < len(by_position) else [None] * n)
        for f in fields:
            position = t.cmap.index(f)
            columns[f"f_{f}"].extend(by_position[position] if position is not None else [None] * n)
    types = {"t": pa.int64(), "row": pa.int64(), "ord": pa.int64()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})


def _distinct_cells(raw: ir.Table, tables: Sequence[_Table]) -> ir.Table:
    """Each field's distinct raw texts per table, with how many cells hold each."""
    parts = [raw.select("t", field=ibis.literal(f), text=raw[f"f_{f}"]) for f in _all_fields(tables)]
    cells = ibis.union(*parts) if len(parts) > 1 else parts[0]
    cells = cells.filter(cells.text.notnull())
    return cells.group_by(["t", "field", "text"]).aggregate(n=cells.count())


def _column_reading(tables: Sequence[_Table], distinct: pl.DataFrame, ctx: _Context, acc: Accumulator) -> None:
    """Per centre its missing-value codes, per date column its order (the centre's settled orders
    decide an ambiguous one, else a fatal problem), per duration column its days per unit."""
    vocab = ctx.vocab
    texts: dict[tuple[int, str], dict[str, int]] = {}
    for t_no, name, text, n in distinct.iter_rows():
        texts.setdefault((t_no, name), {})[text] = n
    for t in tables:  # a code such as 99 in a coded column means missing in every column of the centre
        found = {normalise_word(x) for (t_no, name), values in texts.items()
                 if tables[t_no].centre.id == t.centre.id and FIELDS.get(name) in ("code", "bool", "ecog", "response")
                 for x in values if normalise_word(x) in vocab.missing_coded}
        ctx.missing[t.centre.id] = frozenset(found) | {normalise_word(m) for m in t.centre.overrides.missing}
    first: dict[tuple[int, str], tuple[str | None, bool]] = {}
    settled: dict[str, list[str]] = {}
    for t in tables:
        default_order, column_orders = t.centre.overrides.orders()
        declared_cols = {normalise_column(k): v for k, v in column_orders.items()}
        for position, name in t.cmap.fields.items():
            if FIELDS.get(name) != "date" or t.cmap.index(name) != position:
                continue
            declared = declared_cols.get(normalise_column(t.table.columns[position]), default_order)
            order, _, ambiguous = infer_date_order(texts.get((t.no, name), {}), vocab, declared=declared)
            first[(t.no, name)] = (order, ambiguous)
            if order and not ambiguous:
                settled.setdefault(t.centre.id, []).append(order)
    for t in tables:
        for position, name in t.cmap.fields.items():
            if (t.no, name) not in first or t.cmap.index(name) != position:
                continue
            order, ambiguous = first[(t.no, name)]
            if ambiguous:
                order, _, ambiguous = infer_date_order(texts.get((t.no, name), {}), vocab,
                                                       centre_orders=sorted(set(settled.get(t.centre.id, []))))
                if ambiguous:
                    acc.fatal.append(
                        f"centre {t.centre.id}, file {t.table.label}, column {t.table.columns[position]!r}: "
                        "dates read both day-first and month-first (no day above 12); declare the order "
                        f"in centres.toml: [centres.{t.centre.id}.overrides] date_order = \"DMY\" (or \"MDY\"), "
                        f"or date_orders = {{\"{t.table.columns[position]}\" = \"DMY\"}}")
            ctx.orders[(t.no, name)] = order
    for t in tables:
        if t.skip is not None:
            continue
        overrides = t.centre.overrides
        for position, name in t.cmap.fields.items():
            if FIELDS.get(name) != "duration" or t.cmap.index(name) != position:
                continue
            factor = column_days_factor(list(texts.get((t.no, name), {})), t.cmap.units.get(position),
                                        overrides.month_days, overrides.time_units.get(t.table.columns[position]))
            ctx.day_factor[(t.no, name)] = factor
            if factor is None:
                acc.fatal.append(
                    f"centre {t.centre.id}, file {t.table.label}, column {t.table.columns[position]!r}: the time unit "
                    f"is not given; declare it in centres.toml: [centres.{t.centre.id}.overrides] "
                    f"time_units = {{\"{t.table.columns[position]}\" = \"days\"}} (or weeks, months, years)")


class _Implausible(CellError):
    """A date that reads in its column's order but lies outside the plausible window."""


def _texts_by_column(tables: Sequence[_Table], distinct: pl.DataFrame) -> dict[tuple[int, str], list[str]]:
    """The distinct texts of each (table, field); a drug column's include the "other" column's,
    which stand in for the drug when it says "other (specify)"."""
    out: dict[tuple[int, str], list[str]] = {}
    for t_no, name, text, _ in distinct.sort(["t", "field", "text"]).iter_rows():
        out.setdefault((t_no, name), []).append(text)
    for (t_no, name), values in list(out.items()):
        if name == "drug_other":
            out[(t_no, "drug")] = sorted({*out.get((t_no, "drug"), []), *values})
    return out


def _cell_map(tables: Sequence[_Table], distinct: pl.DataFrame, ctx: _Context) -> pa.Table:
    """Each distinct text of each (table, field) read once: its value, or why it does not read."""
    rows: list[dict[str, Any]] = []
    for (t_no, name), values in _texts_by_column(tables, distinct).items():
        t = tables[t_no]
        if t.skip is not None or name == "drug_other":
            continue
        position = t.cmap.index(name)
        rank = list(t.cmap.fields).index(position) if position is not None else 0
        for text in values:
            rows.append({"t": t_no, "field": name, "text": text, "rank": rank, **_read_cell(t, ctx, name, text)})
    return pa.Table.from_pylist(rows, schema=_CELL_MAP_SCHEMA)


def _read_cell(t: _Table, ctx: _Context, name: str, text: str) -> dict[str, Any]:
    """One distinct text of a field: missing, its typed value, or the error (what was expected)."""
    kind = FIELDS[name]
    empty: dict[str, Any] = {"missing": False, "v_text": None, "v_num": None, "v_int": None, "v_date": None,
                             "v_bool": None, "m_from_stage": None, "error": None, "implausible": False}
    vocab = ctx.vocab
    if vocab.is_missing(text, coded=kind in _CODED) or normalise_word(text) in ctx.missing[t.centre.id]:
        return {**empty, "missing": True}
    if kind == "id":
        return {**empty, "v_text": text.strip()}
    try:
        value = _value(t, ctx, name, text)
    except _Implausible as exc:
        return {**empty, "error": str(exc), "implausible": True}
    except CellError as exc:
        return {**empty, "error": str(exc)}
    out = dict(empty)
    if value is None:
        return out
    column = _VALUE_COLUMN[kind]
    if name == "braf_v600":
        column, value = "v_bool", (value == "true" if isinstance(value, str) else bool(value))
    if kind == "drug":
        value = text
    out[column] = value
    if kind == "number":
        out["v_text"] = str(value)  # as the LDH quarantine quotes it
    if kind == "unit":
        out["v_num"] = ldh_factor(text, vocab)
    if name == "stage":
        with contextlib.suppress(CellError):  # "IV M1c" in a stage column also gives the M category
            out["m_from_stage"] = parse_code(text, "m_stage", vocab, codes={}, legend=None)
    return out


def _value(t: _Table, ctx: _Context, name: str, text: str) -> Any:
    kind = FIELDS[name]
    vocab, overrides = ctx.vocab, t.centre.overrides
    codes = {normalise_word(k): v for k, v in overrides.codes.get(name, {}).items()}
    position = t.cmap.index(name)
    legend = t.cmap.legends.get(position) if position is not None else None
    if kind == "date":
        order = ctx.orders.get((t.no, name))
        day = parse_date(text, order, vocab) if order else None
        if day is None:
            shape = _DATE_SHAPES.get(order or "", "a date")
            raise CellError(f"expected a valid date written like the rest of the column ({shape})")
        implausible = implausible_date(day, ctx.latest, ctx.latest_is_data_cut)
        if implausible:
            raise _Implausible(implausible)
        return day
    if kind == "code":
        try:
            return parse_code(text, name, vocab, codes=codes, legend=legend)
        except CellError:
            if name != "braf_v600":
                raise
            return "true" if parse_bool(text, vocab, codes=codes, legend=legend) else "false"
    if kind == "bool":
        return parse_bool(text, vocab, codes=codes, legend=legend)
    if kind == "year":
        return parse_year(text)
    if kind == "ecog":
        return parse_ecog(legend.get(text.strip(), text) if legend else text)
    if kind == "grade":
        return parse_grade(text, vocab, codes=codes)
    if kind == "int":
        return parse_int(text, low=0, high=50, what="a line number")
    if kind == "number":
        number = parse_number(text, decimal=overrides.decimal)
        if number < 0 or (name == "age" and number > 120):
            raise CellError(f"expected a plausible {name.replace('_', ' ')}")
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
        number = parse_number(text, decimal=overrides.decimal)
        if number < 0:
            raise CellError("expected a duration of zero or more")
        factor = ctx.day_factor.get((t.no, name))
        # whole days as Python rounds them (half to even), the same as every other date offset
        return None if factor is None else round(number * factor)
    return None  # "unused": a known column the model does not hold


def _drug_map(tables: Sequence[_Table], distinct: pl.DataFrame, ctx: _Context) -> pa.Table:
    """Each readable drug text of each table -> its ingredients (one row each); ``is_other`` marks
    the drug column's texts that say "other (specify)"."""
    rows: list[dict[str, Any]] = []
    for (t_no, name), values in _texts_by_column(tables, distinct).items():
        t = tables[t_no]
        if name != "drug" or t.skip is not None:
            continue
        codes = {normalise_word(k): v for k, v in t.centre.overrides.codes.get("drug", {}).items()}
        for text in values:
            other = normalise_word(text).split(" (")[0] in _OTHER_WORDS
            rows.append({"t": t_no, "text": text, "is_other": other, "ingredient": None,
                         "ingredient_concept_id": None, "drug_class": None})
            try:
                found = parse_drug(text, ctx.vocab, codes=codes)
            except CellError:
                continue
            rows.extend({"t": t_no, "text": text, "is_other": None, "ingredient": i.name,
                         "ingredient_concept_id": i.concept_id, "drug_class": i.drug_class} for i in found)
    schema = pa.schema([("t", pa.int64()), ("text", pa.string()), ("is_other", pa.bool_()),
                        ("ingredient", pa.string()), ("ingredient_concept_id", pa.int64()),
                        ("drug_class", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def _meta(tables: Sequence[_Table], vocab: Vocabulary) -> pa.Table:
    """One row per table: where it came from and the table- and centre-level facts the row rules read."""
    with_patients = {t.centre.id for t in tables if t.is_patient_table}
    rows = []
    for t in tables:
        overrides = t.centre.overrides
        ldh_column = t.cmap.index("ldh_value")
        header_unit = t.cmap.units.get(ldh_column) if ldh_column is not None else None
        index = dt.date.fromisoformat(overrides.index_date) if overrides.index_date else _DEFAULT_INDEX
        flags = {f"flag_{name}": (t.table.columns[p] if (p := t.cmap.index(name)) is not None else None)
                 for name in vocab.prior_flags}
        rows.append({
            "t": t.no, "centre_id": t.centre.id, "file": t.table.file, "sheet": t.table.sheet,
            "where": f"{t.centre.id}/{t.table.label}:", "centre_key": t.centre.id.strip(),
            "ncols": len(t.table.columns), "skip": t.skip, "is_patient_table": t.is_patient_table,
            "analysis_ready": t.analysis_ready, "has_drug": "drug" in t.mapped,
            "has_response": "response" in t.mapped, "has_ae": "ae_term" in t.mapped, "death_date_mapped": "death_date" in t.mapped,
            "centre_has_patients": t.centre.id in with_patients,
            "ldh_header_unit": header_unit, "ldh_override_unit": overrides.ldh_unit,
            "ldh_header_factor": _factor(header_unit, vocab), "ldh_override_factor": _factor(overrides.ldh_unit, vocab),
            "ldh_uln_override": None if overrides.ldh_uln is None else float(overrides.ldh_uln),
            "index_date": index, **flags,
        })
    types = {"t": pa.int64(), "ncols": pa.int64(), "index_date": pa.date32(), "ldh_header_factor": pa.float64(),
             "ldh_override_factor": pa.float64(), "ldh_uln_override": pa.float64(),
             **{k: pa.bool_() for k in ("is_patient_table", "analysis_ready", "has_drug", "has_response", "has_ae",
                                        "death_date_mapped", "centre_has_patients")}}
    names = list(rows[0]) if rows else ["t"]
    schema = pa.schema([(k, types.get(k, pa.string())) for k in names])
    return pa.Table.from_pylist(rows, schema=schema)


def _factor(unit: str | None, vocab: Vocabulary) -> float | None:
    if unit is None:
        return None
    try:
        return ldh_factor(unit, vocab)
    except CellError:
        return None


# -- the engine: row rules as queries ----------------------------------------------------------

def _q(rows: ir.Table, field_name: ir.Value | str, raw: ir.Value | None, reason: ir.Value | str,
       action: ir.Value | str) -> ir.Table:
    """Quarantine rows (t, row, field, raw_value, reason, action) of ``rows``."""
    return rows.select(
        "t", "row",
        field=ibis.literal(field_name) if isinstance(field_name, str) else field_name,
        raw_value=ibis.null("string") if raw is None else raw.cast("string"),
        reason=ibis.literal(reason) if isinstance(reason, str) else reason,
        action=ibis.literal(action) if isinstance(action, str) else action,
    )


def _rules(con: Any, raw: ir.Table, cell_map: ir.Table, drug_map: ir.Table, meta: ir.Table,
           tables: Sequence[_Table], vocab: Vocabulary, acc: Accumulator, scratch: list[str]) -> None:
    if all(t.skip is not None for t in tables):  # no table is read: its rows are all quarantined
        skipped = raw.join(meta.select("t", "skip"), "t")
        acc.quarantine_frames.append(_named(_q(skipped, "(row)", None, skipped.skip, "rejected"), meta))
        return
    fields = _all_fields(tables)
    width = _width(tables)
    cells_cols = [f"c{i}" for i in range(width)]
    rows = raw.join(meta.select("t", "ncols", "skip"), "t")
    # a row is a copy when every cell equals an earlier row's of the same table
    first_row = rows.row.min().over(ibis.window(group_by=[rows.t, *[rows[c] for c in cells_cols]]))
    parts = [ibis.ifelse(rows.ncols > i, (ibis.literal("|") if i else ibis.literal("")) + rows[c].fill_null(""), "")
             for i, c in enumerate(cells_cols)]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + part
    rows = rows.mutate(first_row=first_row, joined=joined.substr(0, 500))
    if "drug" in fields:
        others = drug_map.filter(drug_map.is_other.fill_null(False)).select("t", other_text="text").distinct()
        rows = rows.left_join(others, [rows.t == others.t, rows.f_drug == others.other_text]).pipe(_unsuffixed)
        use_other = rows.other_text.notnull() & rows.f_drug_other.notnull() if "drug_other" in fields else ibis.literal(False)
        other = _c(rows, "f_drug_other", "string")
        rows = rows.mutate(drug_text=ibis.ifelse(use_other, other, rows.f_drug)).drop("other_text")
    rows = _store(con, "files_rows", rows, scratch)

    # the cells of every row read through the cell map (long), then one row per source row again
    long_parts = []
    for f in fields:
        if f == "drug_other":
            continue
        text = rows.drug_text if f == "drug" else rows[f"f_{f}"]
        long_parts.append(rows.filter(text.notnull()).select("t", "row", field=ibis.literal(f),
                                                               raw=rows[f"f_{f}"], text=text))
    long = ibis.union(*long_parts) if len(long_parts) > 1 else long_parts[0]
    cells = long.join(cell_map, ["t", "field", "text"]).pipe(_unsuffixed)
    cells = _store(con, "files_cell_values", cells.filter(~cells.missing), scratch)
    misfit = cells.error.notnull() & ~cells.implausible
    aggregates: dict[str, Any] = {}
    for f in fields:
        if f == "drug_other":
            continue
        column = "v_bool" if f == "braf_v600" else _VALUE_COLUMN[FIELDS[f]]
        value = cells[column]
        if column == "v_bool":  # as 1/0: PostgreSQL has no max of booleans
            value = ibis.ifelse(value, 1, 0)
        aggregates[f"v_{f}"] = value.max(where=cells.field == f)
        aggregates[f"r_{f}"] = cells.raw.max(where=cells.field == f)
    if "ldh_value" in fields:
        aggregates["s_ldh_value"] = cells.v_text.max(where=cells.field == "ldh_value")
    if "ldh_unit" in fields:
        aggregates["k_ldh_unit"] = cells.v_num.max(where=cells.field == "ldh_unit")
    if "stage" in fields:
        aggregates["m_from_stage"] = cells.m_from_stage.max(where=cells.field == "stage")
    aggregates["n_misfit"] = ibis.ifelse(misfit, 1, 0).sum()
    # the misfit fields in the table's column order, one aggregate per place (an ordered string
    # aggregate is not portable: Spark has none)
    places = max((len(t.cmap.fields) for t in tables), default=0)
    for place in range(places):
        aggregates[f"misfit_{place}"] = cells.field.max(where=misfit & (cells["rank"] == place))
    aggregates["cell_rejects"] = ibis.ifelse(cells.error.notnull() & cells.field.isin(_REJECTING), 1, 0).sum()
    values = cells.group_by(["t", "row"]).aggregate(**aggregates)
    flags = [f for f in fields if f != "drug_other"
             and ("v_bool" if f == "braf_v600" else _VALUE_COLUMN[FIELDS[f]]) == "v_bool"]
    if flags:
        values = values.mutate(**{f"v_{f}": values[f"v_{f}"] == 1 for f in flags})
    wide = rows.select("t", "row", "ord", "first_row", "joined", "skip", *(["drug_text"] if "drug" in fields else []))
    wide = wide.left_join(values, ["t", "row"]).pipe(_unsuffixed)
    wide = wide.join(meta.drop("ncols", "skip"), "t")
    wide = _store(con, "files_wide", wide, scratch)

    quarantine: list[ir.Table] = []
    skipped = wide.filter(wide.skip.notnull())
    quarantine.append(_q(skipped, "(row)", None, skipped.skip, "rejected"))
    active = wide.filter(wide.skip.isnull())
    copies = active.filter(active.first_row != active.row)
    quarantine.append(_q(copies, "(row)", copies.joined,
                         ibis.literal("duplicate of row ") + copies.first_row.cast("string"), "rejected"))
    unique = active.filter(active.first_row == active.row)
    no_id = unique.filter(_c(unique, "v_patient_id", "string").isnull())
    quarantine.append(_q(no_id, "patient_id", _c(no_id, "r_patient_id", "string"), "no patient id", "rejected"))
    with_id = unique.filter(_c(unique, "v_patient_id", "string").notnull())
    shifted = with_id.filter(with_id.n_misfit.fill_null(0) >= 2)
    quarantine.append(_q(shifted, "(row)", shifted.joined,
                         ibis.literal("cells do not fit their columns (") + _listed(shifted, places)
                         + "): shifted or misaligned row", "rejected"))
    owned = with_id.filter(with_id.n_misfit.fill_null(0) < 2)
    owned = owned.mutate(patient_id=owned.centre_key + ":" + owned.v_patient_id,
                         source=owned["where"] + owned.row.cast("string"))
    owned = _store(con, "files_owned", owned, scratch)
    bad_cells = cells.join(owned.select("t", "row"), ["t", "row"])
    bad_cells = bad_cells.filter(bad_cells.error.notnull())
    quarantine.append(_q(bad_cells, bad_cells.field, bad_cells.raw, bad_cells.error,
                         ibis.ifelse(bad_cells.field.isin(_REJECTING), "rejected", "value_nulled")))
    kept = owned.filter(owned.cell_rejects.fill_null(0) == 0)

    # the row rules of treatments and assessments
    v_drug, v_start = _c(kept, "v_drug", "string"), _c(kept, "v_start_date", "date")
    v_end, v_prog = _c(kept, "v_end_date", "date"), _c(kept, "v_progression_date", "date")
    course = kept.has_drug & ~kept.analysis_ready
    needs_drug = course & (v_drug.isnull() | v_start.isnull())
    backwards = course & v_drug.notnull() & v_start.notnull() & (v_end.notnull() & (v_end < v_start)).fill_null(False)
    usable = course & v_drug.notnull() & v_start.notnull() & ~backwards
    kept = kept.mutate(_needs_drug=needs_drug, _backwards=backwards, _course=usable,
                       _early_progression=usable & v_prog.notnull() & (v_prog < v_start).fill_null(False))
    needs = kept.filter(kept._needs_drug)
    missing_drug = _c(needs, "v_drug", "string").isnull()
    quarantine.append(_q(needs, ibis.ifelse(missing_drug, "drug", "start_date"), None,
                         ibis.ifelse(missing_drug, "a treatment needs a drug", "a treatment needs a start date"),
                         "rejected"))
    back = kept.filter(kept._backwards)
    quarantine.append(_q(back, "end_date", _c(back, "r_end_date", "string"),
                         ibis.literal("end date before the start date ") + _c(back, "v_start_date", "date").cast("string"),
                         "rejected"))
    early = kept.filter(kept._early_progression)
    quarantine.append(_q(early, "progression_date", _c(early, "r_progression_date", "string"),
                         ibis.literal("progression dated before the course started (")
                         + _c(early, "v_start_date", "date").cast("string") + ")", "value_nulled"))
    unassessable = kept.filter(kept.has_response & (_c(kept, "v_response", "string").isnull()
                                                    | _c(kept, "v_assessment_date", "date").isnull()))
    no_response = _c(unassessable, "v_response", "string").isnull()
    quarantine.append(_q(unassessable, ibis.ifelse(no_response, "response", "assessment_date"), None,
                         ibis.ifelse(no_response, "an assessment needs a response",
                                     "an assessment needs a assessment date"), "rejected"))
    ae_term, ae_grade = _c(kept, "v_ae_term", "string"), _c(kept, "v_ae_grade", "int64")
    incomplete = kept.filter(kept.has_ae & (ae_term.isnull() | ae_grade.isnull()
                                            | _c(kept, "v_ae_onset_date", "date").isnull()))
    lacking = ibis.cases((_c(incomplete, "v_ae_term", "string").isnull(), "ae_term"),
                         (_c(incomplete, "v_ae_grade", "int64").isnull(), "ae_grade"), else_="ae_onset_date")
    quarantine.append(_q(incomplete, lacking, None, ibis.cases(
        (lacking == "ae_term", "an adverse event needs a CTCAE term"),
        (lacking == "ae_grade", "an adverse event needs a grade"), else_="an adverse event needs an onset date"),
        "rejected"))
    kept = _store(con, "files_kept", kept, scratch)

    pending = _pending(kept, drug_map, vocab, fields)
    keys = ibis.union(*[p.select("t", "row", "patient_id", "v_patient_id") for p in pending.values()])
    patient_rows = _with_ldh(kept.filter(kept.is_patient_table), quarantine)
    listed = patient_rows.select("patient_id").distinct()
    strangers = keys.join(meta.select("t", "centre_has_patients"), "t")
    strangers = strangers.filter(strangers.centre_has_patients).anti_join(listed, "patient_id")
    quarantine.append(_q(strangers, "patient_id", strangers.v_patient_id,
                         "patient id not in the centre's patient table", "rejected"))
    stored_quarantine = _store(con, "files_quarantine", ibis.union(*quarantine), scratch)
    rejected = stored_quarantine.filter(stored_quarantine.action == "rejected").select("t", "row").distinct()

    patients, conflicts = _patients(con, patient_rows, scratch)
    acc.quarantine_frames.append(_named(stored_quarantine, meta))
    acc.quarantine_frames.append(conflicts)
    accepted = {kind: rows_.anti_join(rejected, ["t", "row"]) for kind, rows_ in pending.items()}
    accepted["adverse_events"] = _onset_after_treatment(con, accepted, meta, acc, scratch)
    unlisted = ibis.union(*[a.select("patient_id", "t", "ord", "source") for a in accepted.values()])
    unlisted = unlisted.anti_join(patients, "patient_id")
    first_seen = unlisted.mutate(_n=ibis.row_number().over(ibis.window(group_by="patient_id",
                                                                      order_by=[unlisted.t, unlisted.ord])))
    empty = first_seen.filter(first_seen._n == 0).join(meta.select("t", "centre_id"), "t")
    acc.frames["patients"].append(_full(to_polars(patients), PATIENTS_SCHEMA))
    acc.frames["patients"].append(_full(to_polars(empty.select("patient_id", "centre_id", "source")), PATIENTS_SCHEMA))
    for kind, schema, name in (("exposures", DRUG_EXPOSURES_SCHEMA, "drug_exposures"),
                               ("assessments", ASSESSMENTS_SCHEMA, "assessments"), ("events", EVENTS_SCHEMA, "events"),
                               ("adverse_events", ADVERSE_EVENTS_SCHEMA, "adverse_events")):
        acc.frames[name].append(to_polars(accepted[kind].select(*schema)))
    owners = owned.join(meta.select("t", "centre_id", "file", "sheet"), "t")
    acc.row_frames.append(to_polars(owners.select("centre_id", "file", "sheet", "row", "patient_id")))


def _onset_after_treatment(con: Any, accepted: dict[str, ir.Table], meta: ir.Table, acc: Accumulator,
                           scratch: list[str]) -> ir.Table:
    """The accepted adverse events whose onset is not before the patient's first treatment start;
    the others are quarantined (rejected), quoting that start. A patient without any treatment
    record keeps its events: which line they belong to is for ``endpoints`` to say."""
    events = accepted["adverse_events"]
    exposures = accepted["exposures"]
    first = exposures.group_by("patient_id").aggregate(_first_start=exposures.start_date.min())
    dated = events.left_join(first, "patient_id").pipe(_unsuffixed)
    dated = _store(con, "files_ae_dated", dated, scratch)
    early = dated.filter((dated.onset_date < dated._first_start).fill_null(False))
    acc.quarantine_frames.append(_named(_q(
        early, "ae_onset_date", early.onset_date.cast("string"),
        ibis.literal("onset before the patient's first treatment (") + early._first_start.cast("string") + ")",
        "rejected"), meta))
    return dated.filter(~(dated.onset_date < dated._first_start).fill_null(False)).drop("_first_start")


def _listed(rows: ir.Table, places: int) -> ir.Value:
    """The misfit fields of a row (``misfit_0``, ``misfit_1``, ...) joined by ", " in column order."""
    parts = [ibis.ifelse(rows[f"misfit_{place}"].isnull(), "", ", " + rows[f"misfit_{place}"]) for place in range(places)]
    text = parts[0]
    for part in parts[1:]:
        text = text + part
    return text.substr(2)


def _unsuffixed(table: ir.Table) -> ir.Table:
    """``table`` without the right-hand copies of a join's key columns."""
    return table.drop(*[c for c in table.columns if c.endswith("_right")]) if any(
        c.endswith("_right") for c in table.columns) else table


def _c(table: ir.Table, name: str, dtype: str) -> ir.Value:
    """Column ``name`` of ``table``, or a typed null when no table maps its field."""
    return table[name] if name in table.columns else ibis.null(dtype)


def _full(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with exactly the columns of ``schema`` (absent ones null), in its types."""
    return frame.select([pl.col(c).cast(d) if c in frame.columns else pl.lit(None, d).alias(c)
                         for c, d in schema.items()])


def _named(quarantine: ir.Table, meta: ir.Table) -> pl.DataFrame:
    named = quarantine.join(meta.select("t", "centre_id", "file", "sheet"), "t")
    return to_polars(named.select(*QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]


def _add_days(day: ir.Value, days: ir.Value) -> ir.Value:
    return day + days.cast("int64").as_interval("D")


def _pending(kept: ir.Table, drug_map: ir.Table, vocab: Vocabulary, fields: Sequence[str]) -> dict[str, ir.Table]:
    """The records the kept rows give (before the patient-table check): exposures, assessments,
    events, adverse events, each with (t, row, ord, patient_id, v_patient_id, source)."""
    base = ["t", "row", "ord", "patient_id", "v_patient_id", "source"]
    exposures: list[ir.Table] = []
    ingredients = drug_map.filter(drug_map.ingredient.notnull()).select(
        "ingredient", "ingredient_concept_id", "drug_class", _t="t", _text="text")
    if "drug" in fields:
        courses = kept.filter(kept._course)
        joined = courses.join(ingredients, [courses.t == ingredients._t, courses.drug_text == ingredients._text])
        exposures.append(joined.select(
            *base, "ingredient", "ingredient_concept_id", "drug_class", start_date=_c(joined, "v_start_date", "date"),
            end_date=_c(joined, "v_end_date", "date"), reason_stopped=_c(joined, "v_reason_stopped", "string"),
            source_line=_c(joined, "v_line", "int64").cast("int32"), source_text=joined.drug_text))
    ready = kept.filter(_c(kept, "v_best_response", "string").notnull() | _c(kept, "v_pfs_time", "int64").notnull()
                        | _c(kept, "v_os_time", "int64").notnull())
    if "drug" in fields:
        dosed = ready.filter(_c(ready, "v_drug", "string").notnull())
        joined = dosed.join(ingredients, [dosed.t == ingredients._t, dosed.drug_text == ingredients._text])
        exposures.append(joined.select(
            *base, "ingredient", "ingredient_concept_id", "drug_class", start_date=joined.index_date,
            end_date=ibis.null("date"), reason_stopped=ibis.null("string"), source_line=ibis.null("int32"),
            source_text=_c(joined, "r_drug", "string")))
    for name, (ingredient_name, days) in vocab.prior_flags.items():
        if name not in fields:
            continue
        drug = vocab.ingredients[ingredient_name]
        flagged = ready.filter(_c(ready, f"v_{name}", "boolean").fill_null(False))
        exposures.append(flagged.select(
            *base, ingredient=ibis.literal(drug.name), ingredient_concept_id=ibis.literal(drug.concept_id, "int64"),
            drug_class=ibis.literal(drug.drug_class),
            start_date=_add_days(flagged.index_date, ibis.literal(-days)), end_date=ibis.null("date"),
            reason_stopped=ibis.null("string"), source_line=ibis.null("int32"),
            source_text=flagged[f"flag_{name}"] + f" = yes (undated; nominal date {days} days before the index)"))
    timed = kept.filter(kept.has_response & _c(kept, "v_response", "string").notnull()
                        & _c(kept, "v_assessment_date", "date").notnull())
    assessments = [timed.select(*base, assessment_date=_c(timed, "v_assessment_date", "date"),
                                response=_c(timed, "v_response", "string"), kind=ibis.literal("timepoint"))]
    best = ready.filter(_c(ready, "v_best_response", "string").notnull())
    when = _c(best, "v_best_response_time", "int64")
    assessments.append(best.select(
        *base, assessment_date=ibis.ifelse(when.isnull(), ibis.null("date"), _add_days(best.index_date, when)),
        response=_c(best, "v_best_response", "string"), kind=ibis.literal("best_overall")))
    noted = kept.filter(kept.has_ae & _c(kept, "v_ae_term", "string").notnull()
                        & _c(kept, "v_ae_grade", "int64").notnull() & _c(kept, "v_ae_onset_date", "date").notnull())
    adverse_events = noted.select(*base, ctcae_term=_c(noted, "v_ae_term", "string"),
                                  grade=_c(noted, "v_ae_grade", "int64").cast("int8"),
                                  onset_date=_c(noted, "v_ae_onset_date", "date"))
    v_death, v_contact = _c(kept, "v_death_date", "date"), _c(kept, "v_last_contact_date", "date")
    dead = (kept.v_vital_status == "dead").fill_null(False) if "v_vital_status" in kept.columns else ibis.literal(False)
    death = ibis.ifelse(v_death.isnull() & dead & ~kept.death_date_mapped, v_contact, v_death)
    progression = ibis.ifelse(kept._early_progression, ibis.null("date"), _c(kept, "v_progression_date", "date"))
    dated = kept.mutate(_death=death, _contact=v_contact, _progression=progression)
    events: list[ir.Table] = []
    for kind in ("death", "contact", "progression"):
        some = dated.filter(dated[f"_{kind}"].notnull())
        events.append(some.select(*base, event_type=ibis.literal("last_contact" if kind == "contact" else kind),
                                  event_date=some[f"_{kind}"]))
    progressed = ready.filter(_c(ready, "v_pfs_event", "boolean").fill_null(False)
                              & _c(ready, "v_pfs_time", "int64").notnull())
    events.append(progressed.select(*base, event_type=ibis.literal("progression"),
                                    event_date=_add_days(progressed.index_date, _c(progressed, "v_pfs_time", "int64"))))
    followed = ready.filter(_c(ready, "v_os_time", "int64").notnull())
    died = followed.filter(_c(followed, "v_os_event", "boolean").fill_null(False))
    events.append(died.select(*base, event_type=ibis.literal("death"),
                              event_date=_add_days(died.index_date, _c(died, "v_os_time", "int64"))))
    events.append(followed.select(*base, event_type=ibis.literal("last_contact"),
                                  event_date=_add_days(followed.index_date, _c(followed, "v_os_time", "int64"))))
    return {"exposures": ibis.union(*exposures) if exposures else _no_exposures(kept, base),
            "assessments": ibis.union(*assessments), "events": ibis.union(*events),
            "adverse_events": adverse_events}


def _no_exposures(kept: ir.Table, base: list[str]) -> ir.Table:
    return kept.filter(ibis.literal(False)).select(
        *base, ingredient=ibis.null("string"), ingredient_concept_id=ibis.null("int64"),
        drug_class=ibis.null("string"), start_date=ibis.null("date"), end_date=ibis.null("date"),
        reason_stopped=ibis.null("string"), source_line=ibis.null("int32"), source_text=ibis.null("string"))


def _with_ldh(rows: ir.Table, quarantine: list[ir.Table]) -> ir.Table:
    """The patient rows with their attributes as the patients table holds them: stage IV for any
    distant metastasis, M category from the stage column, LDH in U/L (the unit from the cell, the
    header, the centre's override, else U/L when every value is above what µkat/L can be; a value
    that settles nothing is nulled and quarantined)."""
    m_stage = _c(rows, "v_m_stage", "string")
    if "m_from_stage" in rows.columns:
        m_stage = m_stage.fill_null(rows.m_from_stage)
    stage = _c(rows, "v_stage", "string")
    stage = ibis.ifelse(stage.isnull() & m_stage.startswith("M1").fill_null(False), "IV", stage)
    value, uln = _c(rows, "v_ldh_value", "float64"), _c(rows, "v_ldh_uln", "float64").fill_null(rows.ldh_uln_override)
    unit_known = _c(rows, "v_ldh_unit", "string").notnull() | rows.ldh_header_unit.notnull() | rows.ldh_override_unit.notnull()
    factor = _c(rows, "k_ldh_unit", "float64").fill_null(rows.ldh_header_factor).fill_null(rows.ldh_override_factor)
    unsettled = (value.notnull() | uln.notnull()) & ~unit_known
    only_ul = (value.isnull() | (value > _LDH_UL_ONLY_ABOVE)) & (uln.isnull() | (uln > _LDH_UL_ONLY_ABOVE))
    rows = rows.mutate(_ldh_unsettled=unsettled & ~only_ul, _ldh_factor=ibis.ifelse(unit_known, factor, 1.0),
                       _stage=stage, _m_stage=m_stage, _value=value, _uln=uln)
    unsure = rows.filter(rows._ldh_unsettled)
    quarantine.append(_q(unsure, "ldh_value", _c(rows, "s_ldh_value", "string"),
                         "LDH unit not given and the value does not settle it; declare overrides.ldh_unit",
                         "value_nulled"))
    return rows.mutate(
        a_sex=_c(rows, "v_sex", "string"), a_birth_year=_c(rows, "v_birth_year", "int64"),
        a_reported_age_years=_c(rows, "v_age", "float64"), a_diagnosis_date=_c(rows, "v_diagnosis_date", "date"),
        a_primary_site=_c(rows, "v_primary_site", "string"), a_stage=rows._stage, a_m_stage=rows._m_stage,
        a_brain_metastases=_c(rows, "v_brain_metastases", "boolean"), a_braf_v600=_c(rows, "v_braf_v600", "boolean"),
        a_ecog=_c(rows, "v_ecog", "int64"), a_ldh_elevated=_c(rows, "v_ldh_elevated", "boolean"),
        a_ldh_value=ibis.ifelse(rows._ldh_unsettled, ibis.null("float64"), rows._value * rows._ldh_factor),
        a_ldh_uln=ibis.ifelse(rows._ldh_unsettled, ibis.null("float64"), rows._uln * rows._ldh_factor),
    )


def _patients(con: Any, rows: ir.Table, scratch: list[str]) -> tuple[ir.Table, pl.DataFrame]:
    """One record per patient of the patient tables: each attribute's first value in table and row
    order; a later, different value is quarantined (value nulled) quoting the first one.

    Two window passes over the patient rows for all attributes at once: the first row giving each
    attribute, then that row's value on every row of the patient."""
    patient = ibis.window(group_by="patient_id")
    order_key = rows.t * _ROWS_PER_TABLE + rows.ord
    keyed = rows.mutate(_key=order_key, _first_key=order_key.min().over(patient), **{
        f"_k_{name}": ibis.ifelse(rows[f"a_{name}"].notnull(), order_key, ibis.null("int64")).min().over(patient)
        for name in _ATTRIBUTES})
    keyed = _store(con, "files_patient_rows", keyed, scratch)

    def first(name: str) -> ir.Value:
        value = keyed[f"a_{name}"]
        if value.type().is_boolean():  # as 1/0: PostgreSQL has no max of booleans
            return ibis.ifelse(keyed._key == keyed[f"_k_{name}"], ibis.ifelse(value, 1, 0),
                               ibis.null("int64")).max().over(patient) == 1
        return ibis.ifelse(keyed._key == keyed[f"_k_{name}"], value, ibis.null(value.type())).max().over(patient)

    firsts = keyed.mutate(_first_source=ibis.ifelse(keyed._key == keyed._first_key, keyed.source,
                                                                           ibis.null("string")).max().over(patient),
                          **{f"first_{name}": first(name) for name in _ATTRIBUTES})
    firsts = _store(con, "files_patient_firsts", firsts, scratch)
    records = firsts.filter(firsts._key == firsts._first_key).select(
        "patient_id", "centre_id", "source", **{name: firsts[f"first_{name}"] for name in _ATTRIBUTES})
    differs = [firsts[f"a_{name}"].notnull() & (firsts[f"a_{name}"] != firsts[f"first_{name}"]) for name in _ATTRIBUTES]
    anywhere = differs[0]
    for other in differs[1:]:
        anywhere = anywhere | other
    found = firsts.filter(anywhere.fill_null(False)).select(
        "centre_id", "file", "sheet", "row", "_first_source",
        *[c for name in _ATTRIBUTES for c in (f"a_{name}", f"first_{name}")]).to_pyarrow().to_pylist()
    conflicts = [_conflict_rows([{"centre_id": r["centre_id"], "file": r["file"], "sheet": r["sheet"], "row": r["row"],
                                  "value": r[f"a_{name}"], "first": r[f"first_{name}"],
                                  "first_source": r["_first_source"]}
                                 for r in found if r[f"a_{name}"] is not None and r[f"a_{name}"] != r[f"first_{name}"]],
                                name) for name in _ATTRIBUTES]
    return _store(con, "files_patients", records, scratch), pl.concat(conflicts)


def _conflict_rows(found: list[dict[str, Any]], name: str) -> pl.DataFrame:
    """The quarantine rows of a second, different attribute value, worded as Python writes values."""
    rows = [{"centre_id": r["centre_id"], "file": r["file"], "row": r["row"], "field": name,
             "raw_value": str(_python(r["value"], name)),
             "reason": f"differs from {_python(r['first'], name)!r} given earlier for this patient "
                       f"({r['first_source']})",
             "action": "value_nulled", "sheet": r["sheet"]} for r in found]
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def _python(value: Any, name: str) -> Any:
    """An attribute's value as the patients table types it (a whole-number float stays a float)."""
    if value is None:
        return None
    if PATIENTS_SCHEMA[name] == pl.Float64():
        return float(value)
    return value
