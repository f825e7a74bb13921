"""One OMOP CDM database of a study folder into the canonical model's frames.

The mapping and its record rules are the engine's (:func:`oncorwe.harmonise.in_engine.omop_into_engine`,
portable Ibis); this module runs them for one centre into temporary tables and reads those back, with
the CDM records the mapping read, so that :func:`oncorwe.harmonise.run` can merge duplicates across
the study's files and CDMs and reconcile every record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa

from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._vocab import Vocabulary
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    CONCEPT_ANCESTOR_SCHEMA,
    CONDITIONS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    OBSERVATIONS_SCHEMA,
    PERSON_SCHEMA,
    QUARANTINE_SCHEMA,
)
from oncorwe.model.scope import StudyScope

__all__ = ["harmonise_omop", "vocabulary_tables"]


def vocabulary_tables(vocab: Vocabulary) -> dict[str, pa.Table]:
    """The vocabulary lookups the OMOP mapping joins with, as Arrow tables: ``ingredients``
    (concept_id, ingredient, drug_class), ``drug_words`` (word, ingredient, concept_id,
    drug_class), ``value_words`` (field, word, value: every field of ``values.csv`` and the
    RECIST responses as field ``response``) and ``units`` (unit_word, factor to U/L)."""
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
    for field in sorted(vocab.values):
        for word, value in sorted(vocab.values[field].items()):
            fields.append(field)
            vwords.append(word)
            values.append(value)
    for word, value in sorted(vocab.responses.items()):
        fields.append("response")
        vwords.append(word)
        values.append(value)
    units = pa.table({"unit_word": list(vocab.ldh_units), "factor": pa.array(list(vocab.ldh_units.values()),
                                                                            pa.float64())})
    return {"ingredients": ingredients, "drug_words": drug_words, "units": units,
            "value_words": pa.table({"field": fields, "word": vwords, "value": values})}


def _frame(expr: Any, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def harmonise_omop(
    con: Any, *, centre_id: str, file: str, vocab: Vocabulary, scope: StudyScope, acc: Accumulator,
    database: str | None = None, latest: dt.date | None = None, latest_is_data_cut: bool = False,
) -> None:
    """Map one OMOP database's persons in scope into ``acc`` (frames, quarantine, reconciliation).

    The mapping and its record rules are :func:`oncorwe.harmonise.in_engine.omop_into_engine`'s,
    run inside ``con`` (the database's own engine; DuckDB files attached read-only to an in-memory
    DuckDB) into temporary tables that are then read. Records read, per CDM table, are the records
    of the persons in scope that the mapping uses: records of persons without the study's
    condition, and drugs of no study ingredient, are out of scope (neither read nor lost).
    """
    from oncorwe.harmonise.in_engine import OmopInEngine, omop_into_engine
    from oncorwe.model import engine

    prefix = engine.scratch_name("omop") + "_"
    result = omop_into_engine(con, [OmopInEngine(centre_id, file, database)], scope=scope, vocab=vocab,
                              prefix=prefix, temporary=True, latest=latest, latest_is_data_cut=latest_is_data_cut,
                              records=True)
    try:
        tables = {name: _frame(con.table(f"{prefix}{name}"), schema) for name, schema in _TABLES.items()}
        quarantine = _frame(con.table(f"{prefix}quarantine"), QUARANTINE_SCHEMA)
        rows = _frame(con.table(f"{prefix}records"), _RECORDS).sort(["sheet", "row"])
    finally:
        engine.drop_scratch(con, [f"{prefix}{name}" for name in (*_TABLES, "quarantine", "records")])
    rejected = quarantine.filter(pl.col("action") == "rejected").select(
        "centre_id", "file", "sheet", "row", patient_id=pl.lit(None, pl.String()))
    for (sheet,), part in pl.concat([rows, rejected]).unique(["sheet", "row"]).partition_by(
            "sheet", as_dict=True).items():
        acc.read[(centre_id, file, str(sheet))] = part.height
    acc.row_frames.append(rows)
    for name, frame in tables.items():
        acc.frames[name].append(frame)
    acc.quarantine_frames.append(quarantine)
    assert result.merges.height == 0  # one centre: a cross-centre duplicate is found by harmonise.run


_RECORDS = {"centre_id": pl.String(), "file": pl.String(), "sheet": pl.String(), "row": pl.Int64(),
            "patient_id": pl.String()}

_TABLES = {
    "person": PERSON_SCHEMA, "conditions": CONDITIONS_SCHEMA, "observations": OBSERVATIONS_SCHEMA,
    "concept_ancestor": CONCEPT_ANCESTOR_SCHEMA, "drug_exposures": DRUG_EXPOSURES_SCHEMA,
    "assessments": ASSESSMENTS_SCHEMA, "events": EVENTS_SCHEMA,
}
