"""OMOP CDM -> the canonical tables *inside the engine*, for CDMs too large to pass through Python.

:func:`oncorwe.harmonise.run` executes the OMOP mapping and checks the rows in polars, which is right
for a centre's database of a few thousand patients. For a national registry or a claims database
the same mapping (:func:`oncorwe.sources.omop.canonical_tables`, portable Ibis) is instead
materialised as tables in the engine that holds the CDM (``CREATE TABLE ... AS SELECT``), with the
same record rules applied as queries:

- a drug exposure of an unknown drug, without a start date, or ending before it starts is rejected;
- a stop reason that is not a known word is nulled (the few distinct raw words are read, put in the
  form :func:`oncorwe.harmonise.normalise_word` gives, looked up, and sent back as a small table);
- a response value that is not a RECIST word is rejected;
- cross-centre duplicate referrals are merged by the rule of :mod:`oncorwe.harmonise._duplicates`,
  applied to the few candidate records the engine finds (same sex, birth year, diagnosis date and a
  drug started the same day, in different centres).

Every rejected or nulled value is written to a quarantine table in the engine (same columns as
:data:`oncorwe.model.schema.QUARANTINE_SCHEMA`); only counts, the distinct stop-reason words and the
duplicate candidates come into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import polars as pl

from oncorwe.errors import InputError, SourceError
from oncorwe.harmonise._duplicates import find_duplicates
from oncorwe.harmonise._omop import vocabulary_tables
from oncorwe.harmonise._vocab import Vocabulary, load_vocabulary, normalise_word
from oncorwe.model import engine
from oncorwe.model.schema import CANONICAL_TABLES
from oncorwe.sources import omop as omop_source

__all__ = ["EngineModel", "OmopInEngine", "attach_duckdb", "omop_into_engine"]


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
    ``quarantine_summary`` the quarantined values per centre, table, reason and action.
    """

    prefix: str
    row_counts: dict[str, int]
    merges: pl.DataFrame
    quarantine_summary: pl.DataFrame


def attach_duckdb(con: Any, path: str, alias: str) -> str:
    """Attach a DuckDB file read-only to the DuckDB connection ``con``; return its database name."""
    if engine.backend_name(con) != "duckdb":
        raise InputError(f"attach_duckdb: {alias} needs a DuckDB connection, got {engine.backend_name(con)}")
    if not alias.isidentifier():
        raise InputError(f"attach_duckdb: alias {alias!r} must be an identifier")
    escaped = str(path).replace("'", "''")
    con.raw_sql(f"ATTACH '{escaped}' AS {alias} (READ_ONLY)")
    return f"{alias}.main"


def _quarantine(rows: ir.Table, centre_id: str, file: str, table: str, field: str, raw: ir.Value,
                reason: str, action: str) -> ir.Table:
    return rows.select(
        centre_id=ibis.literal(centre_id), file=ibis.literal(file), row=rows.source_key.cast("int64"),
        field=ibis.literal(field), raw_value=raw.cast("string"), reason=ibis.literal(reason),
        action=ibis.literal(action), sheet=ibis.literal(table),
    )


def _reason_words(exposures: ir.Table, vocab: Vocabulary) -> pl.DataFrame:
    """The distinct raw stop reasons of the CDM with the canonical reason each one means (or null)."""
    raw = exposures.select(raw_reason=exposures.reason_stopped).filter(lambda t: t.raw_reason.notnull()).distinct()
    words = raw.to_pyarrow().column("raw_reason").to_pylist()
    known = vocab.values.get("reason_stopped", {})
    return pl.DataFrame(
        {"raw_reason": words, "reason_value": [known.get(normalise_word(w)) for w in words]},
        schema={"raw_reason": pl.String(), "reason_value": pl.String()},
    )


def _centre(mapped: dict[str, ir.Table], source: OmopInEngine,
            reason_table: ir.Table | None) -> tuple[dict[str, ir.Table], ir.Table]:
    c, f = source.centre_id, source.file
    drugs = mapped["drug_exposures"]
    unknown = drugs.filter(drugs.ingredient.isnull())
    undated = drugs.filter(drugs.ingredient.notnull() & drugs.start_date.isnull())
    backwards = drugs.filter(drugs.ingredient.notnull() & (drugs.end_date < drugs.start_date))
    good = drugs.filter(drugs.ingredient.notnull() & drugs.start_date.notnull()
                        & ~(drugs.end_date < drugs.start_date).fill_null(False))
    quarantine = [
        _quarantine(unknown, c, f, "drug_exposure", "drug_source_value", unknown.source_text,
                    "unknown drug (neither the concept id nor the source value is in the vocabulary)", "rejected"),
        _quarantine(undated, c, f, "drug_exposure", "drug_exposure_start_date", ibis.null("string"),
                    "a drug exposure needs a start date", "rejected"),
        _quarantine(backwards, c, f, "drug_exposure", "drug_exposure_end_date", backwards.end_date.cast("string"),
                    "end date before the start date", "rejected"),
    ]
    if reason_table is not None:
        joined = good.left_join(reason_table, good.reason_stopped == reason_table.raw_reason)
        good = joined.select(*[joined[col] for col in good.columns if col != "reason_stopped"],
                             raw_reason=joined.reason_stopped, reason_stopped=joined.reason_value)
        odd = good.filter(good.raw_reason.notnull() & good.reason_stopped.isnull())
        quarantine.append(_quarantine(odd, c, f, "drug_exposure", "stop_reason", odd.raw_reason,
                                      "unknown reason for stopping", "value_nulled"))
    assessments = mapped["assessments"]
    unreadable = assessments.filter(assessments.response.isnull())
    quarantine.append(_quarantine(unreadable, c, f, "measurement", "value_source_value", unreadable.raw_response,
                                  "unknown response word (expected a RECIST 1.1 category)", "rejected"))
    tables = {
        "patients": mapped["patients"],
        "drug_exposures": good,
        "assessments": assessments.filter(assessments.response.notnull()),
        "events": mapped["events"],
    }
    typed = {name: tables[name].select([tables[name][col].cast(_IBIS[str(dtype)]).name(col)
                                        for col, dtype in CANONICAL_TABLES[name].items()])
             for name in CANONICAL_TABLES}
    return typed, _union(quarantine)


_IBIS = {"String": "string", "Date": "date", "Int64": "int64", "Int32": "int32", "Int8": "int8",
         "Float64": "float64", "Boolean": "boolean"}


def _union(parts: Sequence[ir.Table]) -> ir.Table:
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)  # UNION ALL (Ibis' default distinct=False): no row may vanish
    return out


def _merges(patients: ir.Table, exposures: ir.Table) -> pl.DataFrame:
    """Cross-centre duplicates: candidates found in the engine, the rule applied in Python to them."""
    keys = ["sex", "birth_year", "diagnosis_date"]
    known = patients.filter(patients.sex.notnull() & patients.birth_year.notnull()
                            & patients.diagnosis_date.notnull())
    groups = known.group_by(keys).aggregate(n_centres=known.centre_id.nunique())
    shared = groups.filter(groups.n_centres > 1).select(*keys)
    candidates = known.semi_join(shared, keys)
    candidate_patients = pl.from_arrow(candidates.to_pyarrow())
    assert isinstance(candidate_patients, pl.DataFrame)
    ids = candidates.select("patient_id")
    candidate_drugs = pl.from_arrow(exposures.semi_join(ids, "patient_id").to_pyarrow())
    assert isinstance(candidate_drugs, pl.DataFrame)
    return find_duplicates(candidate_patients, candidate_drugs)


def omop_into_engine(
    con: Any,
    sources: Sequence[OmopInEngine],
    *,
    prefix: str = "",
    vocab: Vocabulary | None = None,
) -> EngineModel:
    """Map the OMOP CDMs in ``con`` to canonical tables ``<prefix>patients`` ... inside ``con``.

    Parameters
    ----------
    con
        The Ibis backend holding every centre's CDM tables (DuckDB with the centre files attached,
        PostgreSQL with one schema per centre, Spark with one database per centre).
    sources
        Each centre's id, provenance label and database.
    prefix
        Prefix of the tables written (``<prefix>patients``, ``<prefix>drug_exposures``,
        ``<prefix>assessments``, ``<prefix>events``, ``<prefix>quarantine``); existing tables of
        those names are replaced.
    vocab
        The vocabularies (default: the ones shipped with oncorwe).

    Returns
    -------
    EngineModel
        Row counts, merges and the quarantine summary; the tables themselves stay in ``con``, for
        :func:`oncorwe.cohort.run` (pass ``merges``) and :func:`oncorwe.endpoints.run`.
    """
    if not sources:
        raise InputError("sources: give at least one OMOP CDM")
    ids = [s.centre_id for s in sources]
    if len(set(ids)) != len(ids):
        raise InputError(f"sources: centre ids must be unique, got {sorted(ids)}")
    vocab = vocab or load_vocabulary()
    # the small lookups travel with the queries (Ibis sends them to the engine as in-memory tables)
    lookups = vocabulary_tables(vocab)
    # Each centre's mapping is stored on its own: one query per centre and table keeps the SQL (and
    # the time Ibis takes to compile it) proportional to one CDM, not to the whole network.
    staged_parts: dict[str, list[ir.Table]] = {name: [] for name in [*CANONICAL_TABLES, "quarantine"]}
    scratch: list[str] = []

    def stage(expr: ir.Table, label: str) -> ir.Table:
        scratch.append(f"{prefix}staged_{label}")
        return engine.materialise(con, expr, scratch[-1])

    try:
        for i, source in enumerate(sources):
            mapped = omop_source.canonical_tables(con, centre_id=source.centre_id, file=source.file,
                                                  database=source.database, **lookups)
            # the mapped drugs and assessments are stored first: the record rules below read them
            # several times, and over a stored table each rule is a small query
            for name in ("drug_exposures", "assessments"):
                mapped[name] = stage(mapped[name], f"mapped_{name}_{i}")
            reasons = _reason_words(mapped["drug_exposures"], vocab)
            reason_table = None
            if reasons.height:
                scratch.append(f"{prefix}reasons_{i}")
                reason_table = engine.upload(con, scratch[-1], reasons)
            tables, quarantine = _centre(mapped, source, reason_table)
            for name, expr in tables.items():
                staged_parts[name].append(stage(expr, f"{name}_{i}"))
            staged_parts["quarantine"].append(stage(quarantine, f"quarantine_{i}"))
    except ValueError as exc:  # the mapping's "not an OMOP CDM"
        for name in scratch:
            con.drop_table(name, force=True)
        raise SourceError(f"OMOP in engine: {exc}") from exc
    staged = {name: _union(parts) for name, parts in staged_parts.items()}
    merges = _merges(staged["patients"], staged["drug_exposures"])
    merged = engine.upload(con, f"{prefix}merged_ids",
                           merges.select(patient_id=pl.col("merged_patient_id")))
    counts: dict[str, int] = {}
    for name in CANONICAL_TABLES:
        kept = staged[name].anti_join(merged, "patient_id")
        stored = engine.materialise(con, kept, f"{prefix}{name}")
        counts[name] = int(stored.count().to_pyarrow().as_py())
    quarantine = engine.materialise(con, staged["quarantine"], f"{prefix}quarantine")
    counts["quarantine"] = int(quarantine.count().to_pyarrow().as_py())
    summary = quarantine.group_by(["centre_id", "sheet", "reason", "action"]).aggregate(n=quarantine.count())
    summary_frame = pl.from_arrow(summary.to_pyarrow())
    assert isinstance(summary_frame, pl.DataFrame)
    for name in [*scratch, f"{prefix}merged_ids"]:
        con.drop_table(name, force=True)
    return EngineModel(
        prefix=prefix,
        row_counts=counts,
        merges=merges,
        quarantine_summary=summary_frame.sort(["centre_id", "sheet", "reason", "action"]),
    )

