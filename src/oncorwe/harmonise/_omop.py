"""OMOP CDM databases into the canonical model: run the Ibis mapping, then check what came out.

The mapping itself (:func:`oncorwe.sources.omop.canonical_tables`) is portable Ibis; this module
passes it the vocabularies, executes it (the flagship study is small) and quarantines what the
model cannot hold: drug exposures of unknown drugs or without a start date (rejected), end dates
before the start (nulled), response values that are not RECIST words (rejected).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._vocab import Vocabulary, normalise_word
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    PATIENTS_SCHEMA,
)
from oncorwe.sources import omop as omop_source

__all__ = ["harmonise_omop", "vocabulary_tables"]


def vocabulary_tables(vocab: Vocabulary) -> dict[str, pa.Table]:
    """The lookups the OMOP mapping joins with, as Arrow tables."""
    ingredients = pa.table({
        "concept_id": pa.array([i.concept_id for i in vocab.ingredients.values()], pa.int64()),
        "ingredient": [i.name for i in vocab.ingredients.values()],
        "drug_class": [i.drug_class for i in vocab.ingredients.values()],
    })
    words, names, ids, classes = [], [], [], []
    for word, group in sorted(vocab.drug_words.items()):
        if len(group) != 1:
            continue  # a combination word cannot name one drug_exposure row's single ingredient
        ingredient = vocab.ingredients[group[0]]
        words.append(word)
        names.append(ingredient.name)
        ids.append(ingredient.concept_id)
        classes.append(ingredient.drug_class)
    for ingredient in vocab.ingredients.values():
        if ingredient.name not in vocab.drug_words:
            words.append(ingredient.name)
            names.append(ingredient.name)
            ids.append(ingredient.concept_id)
            classes.append(ingredient.drug_class)
    drug_words = pa.table({"word": words, "ingredient": names, "concept_id": pa.array(ids, pa.int64()),
                           "drug_class": classes})
    fields, vwords, values = [], [], []
    for field in ("braf_v600", "primary_site"):
        for word, value in sorted(vocab.values.get(field, {}).items()):
            fields.append(field)
            vwords.append(word)
            values.append(value)
    for word, value in sorted(vocab.responses.items()):
        fields.append("response")
        vwords.append(word)
        values.append(value)
    return {"ingredients": ingredients, "drug_words": drug_words,
            "value_words": pa.table({"field": fields, "word": vwords, "value": values})}


def _frame(expr: Any, schema: dict[str, pl.DataType], extra: tuple[str, ...] = ()) -> pl.DataFrame:
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    columns = [*schema, *extra]
    return frame.select([pl.col(c).cast(schema[c]) if c in schema else pl.col(c) for c in columns])


def harmonise_omop(
    con: Any, *, centre_id: str, file: str, vocab: Vocabulary, acc: Accumulator, database: str | None = None
) -> None:
    """Map one OMOP database into ``acc`` (rows, quarantine, reconciliation counts)."""
    tables = omop_source.canonical_tables(con, centre_id=centre_id, file=file, database=database,
                                          **vocabulary_tables(vocab))
    counts = omop_source.record_counts(con, database=database)
    patients = _frame(tables["patients"], PATIENTS_SCHEMA).sort("source")
    exposures = _frame(tables["drug_exposures"], DRUG_EXPOSURES_SCHEMA, ("source_key",)).sort("source_key")
    assessments = _frame(tables["assessments"], ASSESSMENTS_SCHEMA, ("source_key",)).sort("source_key")
    events = _frame(tables["events"], EVENTS_SCHEMA).sort("source")
    for name in ("person", "drug_exposure", "death", "observation_period"):
        if name in counts:
            acc.read[(centre_id, file, name)] = counts[name]
    for record in patients.iter_rows(named=True):
        acc.patients[record["patient_id"]] = record
        acc.row_patient[(centre_id, file, "person", int(record["source"].rsplit(":", 1)[1]))] = record["patient_id"]
    reasons = vocab.values.get("reason_stopped", {})
    for record in exposures.iter_rows(named=True):
        key = record.pop("source_key")
        acc.row_patient[(centre_id, file, "drug_exposure", key)] = record["patient_id"]
        if record["ingredient"] is None:
            acc.quarantine_value(centre_id, file, "drug_exposure", key, "drug_source_value", record["source_text"],
                                 "unknown drug (neither the concept id nor the source value is in the vocabulary)",
                                 reject=True)
            continue
        if record["start_date"] is None:
            acc.quarantine_value(centre_id, file, "drug_exposure", key, "drug_exposure_start_date", None,
                                 "a drug exposure needs a start date", reject=True)
            continue
        if record["end_date"] is not None and record["end_date"] < record["start_date"]:
            acc.quarantine_value(centre_id, file, "drug_exposure", key, "drug_exposure_end_date",
                                 record["end_date"].isoformat(),
                                 f"end date before the start date {record['start_date'].isoformat()}", reject=True)
            continue
        reason = record["reason_stopped"]
        if reason is not None:
            record["reason_stopped"] = reasons.get(normalise_word(reason))
            if record["reason_stopped"] is None:
                acc.quarantine_value(centre_id, file, "drug_exposure", key, "stop_reason", reason,
                                     "unknown reason for stopping", reject=False)
        acc.exposures.append(record)
    for record in assessments.iter_rows(named=True):
        key = record.pop("source_key")
        acc.read[(centre_id, file, "measurement")] = acc.read.get((centre_id, file, "measurement"), 0) + 1
        acc.row_patient[(centre_id, file, "measurement", key)] = record["patient_id"]
        if record["response"] is None:
            acc.quarantine_value(centre_id, file, "measurement", key, "value_source_value", None,
                                 "unknown response word (expected a RECIST 1.1 category)", reject=True)
            continue
        acc.assessments.append(record)
    for record in events.iter_rows(named=True):
        table, key = record["source"].rsplit("#", 1)[1].split(":")
        acc.row_patient[(centre_id, file, table, int(key))] = record["patient_id"]
        acc.events.append(record)
