"""OMOP CDM -> the canonical tables *inside the engine*, for CDMs too large to pass through Python.

:func:`oncorwe.harmonise.run` executes the OMOP mapping and checks the rows in polars, which is right
for a centre's database of a few thousand patients. For a national registry, a claims database or a
network of CDMs the same mapping (:func:`oncorwe.sources.omop.map_cdm`, portable Ibis) is instead
materialised as tables in the engine that holds the CDMs (``CREATE TABLE ... AS SELECT``), with the
same record rules applied as queries:

- a drug exposure of an unknown drug, without a start date, or ending before it starts is rejected;
- a drug exposure starting, or an assessment dated, before 1900 or after the last plausible day (the
  study's data cut, else the day of the run) is rejected; such an end date is nulled
  (:func:`oncorwe.harmonise._dates.implausible_date`'s rule, the reasons worded alike);
- a stop reason that is not a known word is nulled (the few distinct raw words are read, put in the
  form :func:`oncorwe.harmonise.normalise_word` gives, looked up, and sent back as a small table);
- a record of the study's condition (``condition_occurrence``), a death or the end of an
  ``observation_period`` dated before 1900 or after the last plausible day is rejected, and so is a
  condition record or an observation period ending more than 60 days after the person's death
  (the earliest plausible death date; OHDSI's ``plausibleBeforeDeath`` allowance for records
  written after a death);
- a response value that is not a RECIST word is rejected;
- cross-centre duplicate referrals are merged by the rule of :mod:`oncorwe.harmonise._duplicates`,
  applied to the few records the engine finds sharing sex, birth year, diagnosis date and a drug
  started the same day with a record of another centre.

The centres are mapped together, not one by one: each CDM table of every centre is stacked into one
temporary view (``UNION ALL``, the centre as columns), and the mapping is compiled once over those
views, so the cost of building and compiling queries does not grow with the number of centres and
the engine runs each join once over the whole network. Only the mapped drug exposures, patients
and assessments are stored before the record rules (each is read several times); the small
vocabularies are uploaded once.

Every rejected or nulled value is written to a quarantine table in the engine (same columns as
:data:`oncorwe.model.schema.QUARANTINE_SCHEMA`); only counts, the distinct stop-reason words and the
duplicate candidates come into Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import polars as pl
import pyarrow as pa

from oncorwe.errors import InputError, OncorweError, SourceError
from oncorwe.harmonise._dates import EARLIEST_DATE
from oncorwe.harmonise._duplicates import KEYS, merges_of_pairs
from oncorwe.harmonise._engine_views import drop_temp_view, stacked_view
from oncorwe.harmonise._omop import vocabulary_tables
from oncorwe.harmonise._vocab import Vocabulary, load_vocabulary, normalise_word
from oncorwe.model import engine
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    CANONICAL_TABLES,
    DRUG_EXPOSURES_SCHEMA,
    RECONCILIATION_SCHEMA,
)
from oncorwe.model.scope import StudyScope
from oncorwe.model.store import to_polars
from oncorwe.sources import omop as omop_source

__all__ = ["EngineModel", "OmopInEngine", "attach_duckdb", "copy_scoped_cdm", "drop_copied_cdm", "omop_into_engine", "scoped_cdm"]


@dataclass(frozen=True)
class OmopInEngine:
    """One centre's CDM as the engine sees it: ``database`` is the catalog/schema holding its tables
    (``"c01.main"`` for an attached DuckDB file, a PostgreSQL schema, a Spark database), or None."""

    centre_id: str
    file: str
    database: str | None = None


@dataclass(frozen=True)
class EngineModel:
    """The canonical tables written into the engine under ``prefix`` (plus ``<prefix>quarantine``).

    ``row_counts`` holds the rows of each canonical table and of the quarantine; ``merges`` the
    cross-centre duplicates (kept_patient_id, merged_patient_id, rule) removed from the tables;
    ``quarantine_summary`` the quarantined values per centre, table, reason and action;
    ``reconciliation`` per centre and CDM table the records read (in scope), accepted, quarantined
    and merged.
    """

    prefix: str
    row_counts: dict[str, int]
    merges: pl.DataFrame
    quarantine_summary: pl.DataFrame
    reconciliation: pl.DataFrame


def attach_duckdb(con: Any, path: str, alias: str) -> str:
    """Attach a DuckDB file read-only to the DuckDB connection ``con``; return its database name.

    Raises SourceError naming the file when it is absent or not a DuckDB database."""
    if engine.backend_name(con) != "duckdb":
        raise InputError(f"attach_duckdb: {alias} needs a DuckDB connection, got {engine.backend_name(con)}")
    if not alias.isidentifier():
        raise InputError(f"attach_duckdb: alias {alias!r} must be an identifier")
    if not Path(path).is_file():
        raise SourceError(f"no such DuckDB file: {Path(path).name}")
    escaped = str(path).replace("'", "''")
    try:
        con.raw_sql(f"ATTACH '{escaped}' AS {alias} (READ_ONLY)")
    except Exception as exc:  # not a database, or a truncated one: DuckDB's own error types vary
        raise SourceError(f"cannot open {Path(path).name} as a DuckDB database: {exc}") from exc
    return f"{alias}.main"


#: the CDM tables keyed by person: copied for the persons in scope only
_PERSON_TABLES = tuple(t for t, columns in omop_source.CDM_COLUMNS.items() if "person_id" in columns)


def scoped_cdm(src: Any, database: str | None, scope: StudyScope, *, centre_id: str, file: str,
               vocab: Vocabulary | None = None) -> dict[str, ir.Table]:
    """One centre's CDM tables in ``src`` restricted to what the mapping of study ``scope`` reads,
    as expressions over ``src`` (each table's own columns of
    :data:`oncorwe.sources.omop.CDM_COLUMNS`, in its own types), for a CDM that lives on another
    server than the engine and is copied into it (:func:`copy_scoped_cdm`).

    The restriction changes nothing :func:`omop_into_engine` gives (it keeps every row a result
    row depends on):

    - the person-keyed tables: the persons in scope only (a condition record of the study's
      disease, :func:`oncorwe.sources.omop.scoped_persons`, stored once as a temporary table of
      ``src``'s session: ``src`` is a connection of its own, closed after the copy);
    - ``drug_exposure``: besides, only the records of a study ingredient or of no concept at all
      (those the mapping keeps, to map or to quarantine; :func:`oncorwe.sources.omop.word_lookups`);
    - ``concept_relationship``: the ``'Maps to'`` rows from the concepts of those records;
    - ``concept_ancestor``: the rows below the study's condition and categorising concepts, and
      the rows above the kept drug records' concepts;
    - ``concept``: the concepts those records, their standard concepts, their value concepts and
      their drugs' ancestors name.

    Raises SourceError naming the centre when the database has no ``person`` table or lacks a
    column the mapping reads.
    """
    try:
        cdm = omop_source.cdm_tables(src, centre_id=centre_id, file=file, database=database)
    except ValueError as exc:
        where = f" ({database})" if database else ""
        raise SourceError(f"centre {centre_id}{where}: {exc}") from exc
    names = set(cdm)
    lookups = {name: ibis.memtable(table)
               for name, table in omop_source.scope_lookups(scope, vocabulary_tables(vocab or load_vocabulary())).items()}
    # computed once, kept where the CDM is (a temporary table of the source's session)
    persons = engine.materialise(src, omop_source.scoped_persons(cdm, lookups).select(_scoped_id="person_id"),
                                 engine.scratch_name("scoped_persons"), temp=True)

    def raw(table: str) -> ir.Table:
        rows = src.table(table, database=database) if database else src.table(table)
        return rows.select(*[c for c in omop_source.CDM_COLUMNS[table] if c in rows.columns])

    out: dict[str, ir.Table] = {}
    for table in _PERSON_TABLES:
        if table in names:
            rows = raw(table)
            # IN, not a semi-join: Ibis writes PostgreSQL's semi-joins inside a subquery as
            # LEFT SEMI JOIN, which PostgreSQL has not
            out[table] = rows.filter(rows.person_id.isin(persons._scoped_id))
    if "drug_exposure" in out:
        typed = cdm["drug_exposure"]
        ingredients = omop_source.word_lookups(cdm, lookups)["drug"]
        centre, concept_id, source_value = omop_source.drug_key(typed)
        named = typed.join(ingredients, (centre == ingredients._dcentre) & (concept_id == ingredients._dcid)
                           & (source_value == ingredients._dsv))
        kept = named.filter(named._in_scope).select(_kept_id=named.drug_exposure_id)
        drugs = out["drug_exposure"]
        out["drug_exposure"] = drugs.filter(drugs.drug_exposure_id.isin(kept._kept_id))
    out.update(_scoped_vocabulary(src, raw, out, names, lookups))
    return out


def _scoped_vocabulary(src: Any, raw: Any, records: dict[str, ir.Table], names: set[str],
                       lookups: dict[str, ir.Table]) -> dict[str, ir.Table]:
    """The vocabulary rows the mapping of ``records`` reads (see :func:`scoped_cdm`)."""

    def column(table: str, name: str) -> list[ir.Table]:
        if table not in records or name not in records[table].columns:
            return []
        return [records[table].select(_id=records[table][name].cast("int64"))]

    def stacked(parts: list[ir.Table]) -> ir.Table | None:
        return ibis.union(*parts) if parts else None

    coded = stacked([*column("condition_occurrence", "condition_concept_id"),
                     *column("condition_occurrence", "condition_source_concept_id"),
                     *column("measurement", "measurement_concept_id"),
                     *column("observation", "observation_concept_id")])
    drugs = stacked(column("drug_exposure", "drug_concept_id"))
    out: dict[str, ir.Table] = {}
    named = [p for p in (coded, drugs) if p is not None]
    named += column("measurement", "value_as_concept_id") + column("observation", "value_as_concept_id")
    if "concept_relationship" in names:
        cr = raw("concept_relationship")
        maps = cr.filter(cr.relationship_id == "Maps to")
        out["concept_relationship"] = (maps.filter(maps.concept_id_1.cast("int64").isin(coded._id))
                                       if coded is not None else maps.filter(ibis.literal(False)))
        named.append(out["concept_relationship"].select(_id=out["concept_relationship"].concept_id_2.cast("int64")))
    if "concept_ancestor" in names:
        ca = raw("concept_ancestor")
        ancestor, descendant = ca.ancestor_concept_id.cast("int64"), ca.descendant_concept_id.cast("int64")
        below = ancestor.isin(lookups["condition_concepts"].concept_id) | ancestor.isin(
            lookups["category_concepts"].concept_id)
        above = descendant.isin(drugs._id) if drugs is not None else ibis.literal(False)
        out["concept_ancestor"] = ca.filter(below | above)
        if drugs is not None:
            up = ca.filter(above)
            named.append(up.select(_id=up.ancestor_concept_id.cast("int64")))
    if "concept" in names:
        concept = raw("concept")
        every = stacked(named)
        out["concept"] = (concept.filter(concept.concept_id.cast("int64").isin(every._id)) if every is not None
                          else concept.filter(ibis.literal(False)))
    return out


def copy_scoped_cdm(tables: dict[str, ir.Table], con: Any, database: str) -> None:
    """Stream ``tables`` (:func:`scoped_cdm`, expressions over another backend) into the schema
    (Spark: database) ``database`` of ``con``, created here, one table each, in Arrow record
    batches: no row passes through Python objects."""
    spark = engine.backend_name(con) == "pyspark"
    if spark:
        con._session.sql(f"CREATE DATABASE {database}")
    else:
        cursor = con.raw_sql(f"CREATE SCHEMA {database}")
        if engine.backend_name(con) == "postgres":
            cursor.close()
    for name, expr in tables.items():
        reader = expr.to_pyarrow_batches()
        created = False
        for batch in reader:
            chunk = pa.Table.from_batches([batch])
            if spark:
                con._session.createDataFrame(chunk).write.saveAsTable(f"{database}.{name}", mode="append")
            elif not created:
                con.create_table(name, chunk, database=database)
            else:
                con.insert(name, chunk, database=database)
            created = True
        if not created:  # no row in scope: the table is there, empty (its presence means something)
            empty = pa.Table.from_batches([], schema=reader.schema)
            if spark:
                con._session.createDataFrame(empty).write.saveAsTable(f"{database}.{name}", mode="append")
            else:
                con.create_table(name, empty, database=database)


def drop_copied_cdm(con: Any, database: str) -> None:
    """Drop the schema :func:`copy_scoped_cdm` made, with its tables."""
    if engine.backend_name(con) == "pyspark":
        con._session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")
        return
    cursor = con.raw_sql(f"DROP SCHEMA IF EXISTS {database} CASCADE")
    if engine.backend_name(con) == "postgres":
        cursor.close()


_IBIS = {"String": "string", "Date": "date", "Int64": "int64", "Int32": "int32", "Int8": "int8",
         "Float64": "float64", "Boolean": "boolean"}


def _typed(expr: ir.Table, name: str) -> ir.Table:
    """``expr`` with exactly the columns of canonical table ``name``, in the model's types."""
    return expr.select([expr[col].cast(_IBIS[str(dtype)]).name(col) for col, dtype in CANONICAL_TABLES[name].items()])


class _Scratch:
    """The scratch objects one call creates (views, tables), all dropped when it ends."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.views: list[str] = []
        self.tables: list[str] = []

    def view(self, label: str, **spec: Any) -> ir.Table:
        self.views.append(engine.scratch_name(label))
        return stacked_view(self.con, self.views[-1], **spec)

    def upload(self, label: str, data: pa.Table | pl.DataFrame) -> ir.Table:
        self.tables.append(engine.scratch_name(label))
        return engine.upload(self.con, self.tables[-1], data, temp=True)

    def store(self, label: str, expr: ir.Table) -> ir.Table:
        self.tables.append(engine.scratch_name(label))
        return engine.materialise(self.con, expr, self.tables[-1], temp=True)

    def drop(self) -> None:
        # views first: on PostgreSQL a view holds on to the tables it reads
        for name in reversed(self.views):
            drop_temp_view(self.con, name)
        engine.drop_scratch(self.con, self.tables)


def _stacked_cdm(con: Any, sources: Sequence[OmopInEngine], scratch: _Scratch) -> dict[str, ir.Table]:
    """Every centre's CDM tables stacked, one temporary view per CDM table, the centre as columns
    (what :func:`oncorwe.sources.omop.union_cdm` gives, without asking the engine each table's
    schema)."""
    present = [set(omop_source.cdm_table_names(con, s.database)) for s in sources]
    for source, names in zip(sources, present, strict=True):
        if "person" not in names:
            _not_a_cdm(con, source, 0)
    views: dict[str, ir.Table] = {}
    optional = {table for table, _ in omop_source.OPTIONAL_COLUMNS}
    for table, columns in omop_source.CDM_COLUMNS.items():
        parts, absent = [], []
        for number, (source, names) in enumerate(zip(sources, present, strict=True)):
            if table not in names:
                continue
            constants = omop_source.cdm_constants(table, centre_no=number, centre_id=source.centre_id,
                                                  file=source.file, tables=sorted(names))
            parts.append((source.database, constants))
            lacking: frozenset[str] = frozenset()
            if table in optional:  # an older ETL may leave optional columns out: read as nulls
                have = set(con.table(table, database=source.database).columns if source.database
                           else con.table(table).columns)
                lacking = frozenset(c for c in columns if c not in have and (table, c) in omop_source.OPTIONAL_COLUMNS)
            absent.append(lacking)
        if not parts:
            continue
        try:
            views[table] = scratch.view(f"cdm_{table}", table=table, columns=columns, parts=parts, absent=absent)
        except Exception:
            # a table without a column the mapping reads: name the centre (the engine's own
            # message names neither), then let anything else through as it is
            for number, source in enumerate(sources):
                _not_a_cdm(con, source, number)
            raise
    return views


def _not_a_cdm(con: Any, source: OmopInEngine, number: int) -> None:
    """Raise :class:`SourceError` naming the centre when its database is not an OMOP CDM."""
    try:
        omop_source.cdm_tables(con, centre_id=source.centre_id, file=source.file, centre_no=number,
                               database=source.database)
        omop_source.check_cdm_types(con, database=source.database)
    except ValueError as exc:
        where = f" ({source.database})" if source.database else ""
        raise SourceError(f"OMOP in engine: centre {source.centre_id}{where}: {exc}") from exc


def _reason_words(exposures: ir.Table | None, vocab: Vocabulary) -> pl.DataFrame:
    """The distinct raw stop reasons of the CDM (``drug_exposure``, read as it is: a few dozen
    words) with the canonical reason each one means (or null)."""
    words: list[str] = []
    if exposures is not None:
        raw = exposures.select(raw_reason=exposures.stop_reason).filter(lambda t: t.raw_reason.notnull()).distinct()
        words = sorted(raw.to_pyarrow().column("raw_reason").to_pylist())
    known = vocab.values.get("reason_stopped", {})
    return pl.DataFrame(
        {"raw_reason": words, "reason_value": [known.get(normalise_word(w)) for w in words]},
        schema={"raw_reason": pl.String(), "reason_value": pl.String()},
    )


def _quarantine(rows: ir.Table, table: str, field: str, raw: ir.Value, reason: ir.Value | str,
                action: str) -> ir.Table:
    return rows.select(
        "_centre", row=rows.source_key.cast("int64"), field=ibis.literal(field), raw_value=raw.cast("string"),
        reason=ibis.literal(reason) if isinstance(reason, str) else reason, action=ibis.literal(action),
        sheet=ibis.literal(table),
    )


@dataclass(frozen=True)
class _Window:
    """The plausible record dates: from 1900-01-01 to ``latest`` (the data cut, else the run's day)."""

    latest: dt.date
    is_data_cut: bool

    def holds(self, day: ir.Value) -> ir.BooleanValue:
        """True for a date inside the window (null for a null date)."""
        return (day >= ibis.literal(EARLIEST_DATE)) & (day <= ibis.literal(self.latest))

    def outside(self, day: ir.Value) -> ir.BooleanValue:
        """True for a date outside the window (False for a null date)."""
        return day.notnull() & ~self.holds(day).fill_null(True)

    def reason(self, day: ir.Value) -> ir.Value:
        """:func:`oncorwe.harmonise._dates.implausible_date`'s reason, per row."""
        after = (f"the data cut {self.latest.isoformat()}" if self.is_data_cut
                 else f"the day of the run {self.latest.isoformat()} (no data_cut in centres.toml)")
        bound = ibis.ifelse(day < ibis.literal(EARLIEST_DATE), f": before {EARLIEST_DATE.isoformat()}",
                            f": after {after}")
        return ibis.literal("implausible date ") + day.cast("string") + bound


#: days after a person's death within which a record may still be dated (administrative records
#: written after the death): OHDSI Data Quality Dashboard, ``plausibleBeforeDeath``
AFTER_DEATH_DAYS = 60

#: the CDM table and date field behind each dated canonical record the date checks look at
_DATED = {"conditions": ("condition_occurrence", "condition_start_date"),
          "death": ("death", "death_date"), "last_contact": ("observation_period", "observation_period_end_date")}


def _deaths(events: ir.Table, window: _Window) -> ir.Table:
    """(patient_id, _death): each person's earliest plausible death date."""
    dead = events.filter((events.event_type == "death") & window.holds(events.event_date).fill_null(False))
    return dead.group_by("patient_id").aggregate(_death=dead.event_date.min())


def _date_checked(rows: ir.Table, day: str, deaths: ir.Table, window: _Window, *, after_death: bool) -> ir.Table:
    """``rows`` with ``_why``: why its date ``day`` is implausible (outside the window or, with
    ``after_death``, more than :data:`AFTER_DEATH_DAYS` after the person's death), else null;
    ``source_key`` is the CDM record's primary key, as the mapping gives it."""
    deaths = deaths.rename(_dead="patient_id")
    joined = rows.left_join(deaths, rows.patient_id == deaths._dead).drop("_dead")
    date = joined[day]
    why = ibis.ifelse(window.outside(date), window.reason(date), ibis.null("string"))
    if after_death:
        late = (date > joined._death + ibis.interval(days=AFTER_DEATH_DAYS)).fill_null(False)
        why = ibis.ifelse(why.isnull() & late,
                          ibis.literal("implausible date ") + date.cast("string")
                          + f": more than {AFTER_DEATH_DAYS} days after the death on "
                          + joined._death.cast("string"), why)
    return joined.mutate(_why=why).drop("_death")


def _dated_records(stored: dict[str, ir.Table], window: _Window) -> tuple[ir.Table, ir.Table]:
    """The conditions and events with their date checks (``_why``, ``source_key``): a condition
    record and an observation period's end by the window and the death; a death by the window."""
    events = stored["events"]
    deaths = _deaths(events, window)
    conditions = _date_checked(stored["conditions"], "start_date", deaths, window, after_death=True)
    checked = _date_checked(events, "event_date", deaths, window, after_death=True)
    # a death is checked by the window only; a progression episode is not one of the checked records
    in_window = ibis.ifelse(window.outside(checked.event_date), window.reason(checked.event_date),
                            ibis.null("string"))
    why = ibis.cases((checked.event_type == "death", in_window), (checked.event_type == "last_contact", checked._why),
                     else_=ibis.null("string"))
    return conditions, checked.mutate(_why=why)


def _date_quarantine(conditions: ir.Table, events: ir.Table) -> list[ir.Table]:
    """The quarantine rows of the conditions' and events' date checks (rejected)."""
    out = []
    for name, (table, field) in _DATED.items():
        rows = conditions if name == "conditions" else events.filter(events.event_type == name)
        bad = rows.filter(rows._why.notnull())
        day = bad.start_date if name == "conditions" else bad.event_date
        out.append(_quarantine(bad, table, field, day.cast("string"), bad._why, "rejected"))
    return out


def _accepted_drugs(drugs: ir.Table, window: _Window) -> ir.Table:
    """The drug exposures the model keeps: a known drug, a plausible start date, no (plausible) end
    before the start; an implausible end date is nulled."""
    kept = drugs.filter(drugs.ingredient.notnull() & drugs.start_date.notnull()
                        & window.holds(drugs.start_date).fill_null(False)
                        & ~(window.holds(drugs.end_date) & (drugs.end_date < drugs.start_date)).fill_null(False))
    return kept.mutate(end_date=ibis.ifelse(window.outside(kept.end_date), ibis.null("date"), kept.end_date))


def _with_reasons(good: ir.Table, reason_table: ir.Table | None) -> ir.Table:
    """``good`` with ``reason_stopped`` in canonical words (null when not one) and ``raw_reason``."""
    if reason_table is None:  # no stop reason anywhere: nothing to translate
        return good.mutate(raw_reason=good.reason_stopped)
    joined = good.left_join(reason_table, good.reason_stopped == reason_table.raw_reason)
    return joined.select(*[joined[col] for col in good.columns if col != "reason_stopped"],
                         raw_reason=joined.reason_stopped, reason_stopped=joined.reason_value)


def _with_copies(rows: ir.Table, same: Sequence[str]) -> ir.Table:
    """``rows`` with ``_first_key``: the lowest primary key of the rows equal in every canonical
    column (``same``); a row whose own key is higher is a copy of that record."""
    window = ibis.window(group_by=[rows._centre, *[rows[c] for c in same]])
    return rows.mutate(_first_key=rows.source_key.min().over(window))


def _copies(rows: ir.Table, table: str) -> ir.Table:
    copies = rows.filter(rows.source_key != rows._first_key)
    return _quarantine(copies, table, "(row)", ibis.null("string"),
                       ibis.literal(f"duplicate of {table} row ") + copies._first_key.cast("string"), "rejected")


_DRUG_SAME = [c for c in DRUG_EXPOSURES_SCHEMA if c != "source"]
_ASSESSMENT_SAME = [c for c in ASSESSMENTS_SCHEMA if c != "source"]


def _merges(person: ir.Table, conditions: ir.Table, drugs: ir.Table, window: _Window,
            scratch: _Scratch) -> pl.DataFrame:
    """Cross-centre duplicates: the rule of :func:`find_duplicates` (same sex, birth year and
    diagnosis date, the earliest record of the study's condition, and a drug started the same day,
    in two centres), the pairs found in the engine; only the pairs and their records' centre and
    diagnosis date come into Python, to be grouped (:func:`merges_of_pairs`)."""
    keys = list(KEYS)
    first = conditions.group_by("patient_id").aggregate(diagnosis_date=conditions.start_date.min())
    referrals = person.join(first, "patient_id").select(person._centre, person.patient_id, person.centre_id,
                                                        person.sex, person.birth_year, first.diagnosis_date)
    known = referrals.filter(referrals.sex.notnull() & referrals.birth_year.notnull()
                             & referrals.diagnosis_date.notnull())
    # "more than one centre" as min != max: far cheaper than counting distinct centres
    groups = known.group_by(keys).aggregate(first=known._centre.min(), last=known._centre.max())
    shared = groups.filter(groups.first != groups.last).select(*keys)
    candidates = known.join(shared, keys).select("patient_id", "centre_id", *keys)
    starts = _accepted_drugs(drugs, window).select("patient_id", "ingredient", "start_date").distinct()
    keyed = starts.join(candidates, "patient_id")
    on = [*keys, "ingredient", "start_date"]
    other = keyed.select(*on, patient_id_b=keyed.patient_id, centre_id_b=keyed.centre_id)
    joined = keyed.join(other, on)
    pairs = scratch.store("duplicate_pairs", joined.filter(
        (joined.centre_id != joined.centre_id_b) & (joined.patient_id < joined.patient_id_b)
    ).select("patient_id", "patient_id_b").distinct())
    ids = ibis.union(pairs.select(patient_id=pairs.patient_id), pairs.select(patient_id=pairs.patient_id_b))
    info = candidates.semi_join(ids, "patient_id").select("patient_id", "centre_id", "diagnosis_date")
    return merges_of_pairs(to_polars(pairs).cast({"patient_id": pl.String(), "patient_id_b": pl.String()}),
                           to_polars(info).cast(_REFERRAL_SCHEMA))  # type: ignore[arg-type]


_REFERRAL_SCHEMA = {"patient_id": pl.String(), "centre_id": pl.String(), "diagnosis_date": pl.Date()}


def omop_into_engine(
    con: Any,
    sources: Sequence[OmopInEngine],
    *,
    scope: StudyScope,
    prefix: str = "",
    vocab: Vocabulary | None = None,
    temporary: bool = False,
    latest: dt.date | None = None,
    latest_is_data_cut: bool = False,
    records: bool = False,
) -> EngineModel:
    """Map the OMOP CDMs in ``con`` to the generic canonical tables ``<prefix>person`` ... inside
    ``con``, for the study ``scope``.

    Parameters
    ----------
    con
        The Ibis backend holding every centre's CDM tables (DuckDB with the centre files attached,
        PostgreSQL with one schema per centre, Spark with one database per centre).
    sources
        Each centre's id, provenance label and database.
    scope
        What the study is about (``Protocol.scope()``): persons without its condition and drugs
        that are none of its ingredients are out of scope.
    prefix
        Prefix of the tables written (``<prefix>person``, ``<prefix>conditions``,
        ``<prefix>observations``, ``<prefix>concept_ancestor``, ``<prefix>drug_exposures``,
        ``<prefix>assessments``, ``<prefix>events``, ``<prefix>quarantine``); existing tables of
        those names are replaced. Scratch tables and views (``oncorwe_tmp_*``) are dropped before
        returning.
    vocab
        The vocabularies (default: the ones shipped with oncorwe).
    temporary
        Write the tables as temporary tables (of the connection's session): for a caller that reads
        them back at once and may not write into the database holding the CDMs.
    latest, latest_is_data_cut
        The last plausible record date (the study's data cut; default: the day of the run) and
        whether it is a data cut (for the quarantine reason).
    records
        Also write ``<prefix>records``: every CDM record the mapping read (``centre_id``, ``file``,
        ``sheet`` = CDM table, ``row`` = primary key, ``patient_id``), for a caller that reconciles
        the records itself after merging duplicates across other sources.

    Returns
    -------
    EngineModel
        Row counts, merges, the quarantine summary and the reconciliation; the tables themselves
        stay in ``con``, for :func:`oncorwe.cohort.run` (pass ``merges``) and
        :func:`oncorwe.endpoints.run`.
    """
    if not sources:
        raise InputError("sources: give at least one OMOP CDM")
    ids = [s.centre_id for s in sources]
    if len(set(ids)) != len(ids):
        raise InputError(f"sources: centre ids must be unique, got {sorted(ids)}")
    vocab = vocab or load_vocabulary()
    scratch = _Scratch(con)
    try:
        window = _Window(latest or dt.date.today(), latest_is_data_cut and latest is not None)
        return _into_engine(con, sources, prefix, vocab, scope, scratch, temporary, window, records)
    except OncorweError:
        raise
    except Exception:
        # the engine's own error (a conversion deep inside a query) names no centre: a CDM whose
        # tables or column types are not the CDM's is named; anything else goes through as it is
        for number, source in enumerate(sources):
            _not_a_cdm(con, source, number)
        raise
    finally:
        scratch.drop()


def _in_scope(cdm: dict[str, ir.Table], persons: ir.Table, scratch: _Scratch) -> dict[str, ir.Table]:
    """The stacked CDM with each person-keyed table but ``person`` restricted to the persons in
    scope (``persons``), stored; the vocabulary tables as they are."""
    keys = persons.select(*omop_source.PERSON_KEY)
    return {name: scratch.store(f"scoped_{name}", table.semi_join(keys, omop_source.PERSON_KEY))
            if name in _PERSON_TABLES and name != "person" else table for name, table in cdm.items()}


def _into_engine(con: Any, sources: Sequence[OmopInEngine], prefix: str, vocab: Vocabulary, scope: StudyScope,
                 scratch: _Scratch, temporary: bool, window: _Window, records: bool = False) -> EngineModel:
    cdm = _stacked_cdm(con, sources, scratch)
    # uploaded once: in-memory tables would be sent again with every query (PostgreSQL, Spark)
    lookups = {name: scratch.upload(f"lookup_{name}", table)
               for name, table in omop_source.scope_lookups(scope, vocabulary_tables(vocab)).items()}
    centres = scratch.upload("centres", pl.DataFrame(
        {"_centre": list(range(len(sources))), "centre_id": [s.centre_id for s in sources],
         "file": [s.file for s in sources]},
        schema={"_centre": pl.Int32(), "centre_id": pl.String(), "file": pl.String()}))
    # the words of the free-text values and the persons in scope, stored: small tables the engine
    # then joins as such, and what every other table joins with (computed once, not once per table)
    persons = scratch.store("persons", omop_source.scoped_persons(cdm, lookups))
    # every other step reads the records of the persons in scope only (a hospital's CDM holds many
    # times the study's persons): each result row is one of theirs, so the tables it gives are the same
    cdm = _in_scope(cdm, persons, scratch)
    words = {name: scratch.store(f"words_{name}", expr) for name, expr in omop_source.word_lookups(cdm, lookups).items()}
    mapped = omop_source.map_cdm(cdm, lookups, persons=persons, word_tables=words)
    # read several times below (rules, copies, merges, reconciliation): stored once
    stored = {name: scratch.store(f"mapped_{name}", mapped[name])
              for name in ("person", "conditions", "drug_exposures", "assessments", "observations", "events")}
    drugs, assessments = stored["drug_exposures"], stored["assessments"]
    reasons = _reason_words(cdm.get("drug_exposure"), vocab)
    reason_table = scratch.upload("reasons", reasons) if reasons.height else None
    # read three times below (merges, the tables, the quarantine): checked once, stored
    conditions, events = (scratch.store(f"dated_{name}", expr)
                          for name, expr in zip(("conditions", "events"), _dated_records(stored, window), strict=True))
    plausible_conditions = conditions.filter(conditions._why.isnull())
    merges = _merges(stored["person"], plausible_conditions, drugs, window, scratch)
    merged = scratch.upload("merged_ids", merges.select(patient_id=pl.col("merged_patient_id")))
    good_drugs = _with_copies(_with_reasons(_accepted_drugs(drugs, window), reason_table), _DRUG_SAME)
    readable = _with_copies(assessments.filter(assessments.response.notnull()
                                               & ~window.outside(assessments.assessment_date)), _ASSESSMENT_SAME)
    tables = {
        "person": stored["person"],
        "conditions": plausible_conditions,
        "observations": stored["observations"],
        "drug_exposures": good_drugs.filter(good_drugs.source_key == good_drugs._first_key),
        "assessments": readable.filter(readable.source_key == readable._first_key),
        "events": events.filter(events._why.isnull()),
    }
    counts: dict[str, int] = {}
    for name, expr in tables.items():
        written = engine.materialise(con, _typed(expr.anti_join(merged, "patient_id"), name), f"{prefix}{name}",
                                     temp=temporary)
        counts[name] = int(written.count().to_pyarrow().as_py())
    ancestors = engine.materialise(con, _typed(mapped["concept_ancestor"], "concept_ancestor"),
                                   f"{prefix}concept_ancestor", temp=temporary)
    counts["concept_ancestor"] = int(ancestors.count().to_pyarrow().as_py())
    rows = _quarantined(drugs, assessments, good_drugs, readable, centres, window, _date_quarantine(conditions, events))
    quarantine = engine.materialise(con, rows, f"{prefix}quarantine", temp=temporary)
    counts["quarantine"] = int(quarantine.count().to_pyarrow().as_py())
    if records:
        owners = _owners(stored).join(centres, "_centre")
        engine.materialise(con, owners.select("centre_id", "file", "sheet", "row", "patient_id"), f"{prefix}records",
                           temp=temporary)
    summary = quarantine.group_by(["centre_id", "sheet", "reason", "action"]).aggregate(n=quarantine.count())
    return EngineModel(
        prefix=prefix,
        row_counts=counts,
        merges=merges,
        quarantine_summary=to_polars(summary).sort(["centre_id", "sheet", "reason", "action"]),
        reconciliation=_reconciliation(stored, quarantine, merged, centres),
    )


def _quarantined(drugs: ir.Table, assessments: ir.Table, good_drugs: ir.Table, readable: ir.Table,
                 centres: ir.Table, window: _Window, dated: Sequence[ir.Table] = ()) -> ir.Table:
    """The quarantine rows of every record rule (``dated``: those of the conditions' and events'
    date checks), all centres together."""
    unknown = drugs.filter(drugs.ingredient.isnull())
    undated = drugs.filter(drugs.ingredient.notnull() & drugs.start_date.isnull())
    known = drugs.filter(drugs.ingredient.notnull())
    early_late = known.filter(window.outside(known.start_date))
    ends = known.filter(window.outside(known.end_date) & ~window.outside(known.start_date))
    backwards = drugs.filter(drugs.ingredient.notnull() & window.holds(drugs.end_date)
                             & window.holds(drugs.start_date) & (drugs.end_date < drugs.start_date))
    kept = good_drugs.filter(good_drugs.source_key == good_drugs._first_key)
    odd = kept.filter(kept.raw_reason.notnull() & kept.reason_stopped.isnull())
    unreadable = assessments.filter(assessments.response.isnull())
    undatable = assessments.filter(assessments.response.notnull() & window.outside(assessments.assessment_date))
    stacked = ibis.union(*[  # UNION ALL (Ibis' default): no row may vanish
        _quarantine(early_late, "drug_exposure", "drug_exposure_start_date", early_late.start_date.cast("string"),
                    window.reason(early_late.start_date), "rejected"),
        _quarantine(ends, "drug_exposure", "drug_exposure_end_date", ends.end_date.cast("string"),
                    window.reason(ends.end_date), "value_nulled"),
        _quarantine(undatable, "measurement", "measurement_date", undatable.assessment_date.cast("string"),
                    window.reason(undatable.assessment_date), "rejected"),
        _quarantine(unknown, "drug_exposure", "drug_source_value", unknown.source_text,
                    "unknown drug (no concept id, and the source value is not in the vocabulary)", "rejected"),
        _quarantine(undated, "drug_exposure", "drug_exposure_start_date", ibis.null("string"),
                    "a drug exposure needs a start date", "rejected"),
        _quarantine(backwards, "drug_exposure", "drug_exposure_end_date", backwards.end_date.cast("string"),
                    "end date before the start date", "rejected"),
        _copies(good_drugs, "drug_exposure"),
        _quarantine(odd, "drug_exposure", "stop_reason", odd.raw_reason, "unknown reason for stopping",
                    "value_nulled"),
        _quarantine(unreadable, "measurement", "value_source_value", unreadable.raw_response,
                    "unknown response word (expected a RECIST 1.1 category)", "rejected"),
        _copies(readable, "measurement"),
        *dated,
    ])
    # the few quarantined rows learn their centre and file from the small centres table
    named = stacked.join(centres, "_centre")
    return named.select("centre_id", "file", "row", "field", "raw_value", "reason", "action", "sheet")




def _owners(stored: dict[str, ir.Table]) -> ir.Table:
    """Every CDM record the mapping read: (``_centre``, ``sheet`` = CDM table, ``row`` = primary
    key, ``patient_id``), each once (a record that is an observation twice counts once)."""
    parts = []
    for name in ("person", "conditions", "drug_exposures", "assessments", "observations", "events"):
        rows = stored[name]
        rows = rows.filter(rows.source_key.notnull())  # not an absent record a rule made an observation of
        parts.append(rows.select("_centre", "patient_id", sheet=rows.source_table, row=rows.source_key))
    return ibis.union(*parts).distinct()


def _reconciliation(stored: dict[str, ir.Table], quarantine: ir.Table, merged: ir.Table,
                    centres: ir.Table) -> pl.DataFrame:
    """Per centre and CDM table: records read (in scope) = accepted + quarantined + merged."""
    owners = _owners(stored).join(centres, "_centre")
    rejected = quarantine.filter(quarantine.action == "rejected").select("centre_id", "sheet", "row").distinct()
    merged_rows = owners.semi_join(merged, "patient_id").anti_join(rejected, ["centre_id", "sheet", "row"])
    read = owners.group_by(["centre_id", "file", "sheet"]).aggregate(records_read=owners.count())
    lost = rejected.group_by(["centre_id", "sheet"]).aggregate(quarantined=rejected.count())
    gone = merged_rows.group_by(["centre_id", "sheet"]).aggregate(merged=merged_rows.count())
    frame = to_polars(read).join(to_polars(lost), on=["centre_id", "sheet"], how="left").join(
        to_polars(gone), on=["centre_id", "sheet"], how="left")
    frame = frame.with_columns(pl.col("quarantined").fill_null(0).cast(pl.Int64),
                               pl.col("merged").fill_null(0).cast(pl.Int64),
                               pl.col("records_read").cast(pl.Int64))
    frame = frame.with_columns(accepted=pl.col("records_read") - pl.col("quarantined") - pl.col("merged"))
    return frame.select(list(RECONCILIATION_SCHEMA)).sort(["centre_id", "file", "sheet"])
