"""OMOP CDM databases into the canonical model: run the Ibis mapping, then check what came out.

The mapping itself (:func:`oncorwe.sources.omop.canonical_tables`) is portable Ibis; this module
passes it the vocabularies, executes it, and quarantines what the model cannot hold, all as frame
operations (no per-row Python, so a large CDM stays fast): drug exposures of unknown drugs, without
a start date or ending before they start (rejected), stop reasons that are not known words (nulled),
response values that are not RECIST words (rejected).
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
    QUARANTINE_SCHEMA,
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


def _quarantine(
    rows: pl.DataFrame, centre_id: str, file: str, table: str, field: str, raw: pl.Expr, reason: str, action: str
) -> pl.DataFrame:
    return rows.select(
        centre_id=pl.lit(centre_id), file=pl.lit(file), row=pl.col("source_key").cast(pl.Int64),
        field=pl.lit(field), raw_value=raw.cast(pl.String), reason=pl.lit(reason), action=pl.lit(action),
        sheet=pl.lit(table),
    ).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]


def _owners(rows: pl.DataFrame, centre_id: str, file: str, table: str) -> pl.DataFrame:
    return rows.select(
        centre_id=pl.lit(centre_id), file=pl.lit(file), sheet=pl.lit(table),
        row=pl.col("source_key").cast(pl.Int64), patient_id=pl.col("patient_id"),
    )


def _drop_copies(
    rows: pl.DataFrame, same: list[str], centre_id: str, file: str, table: str, acc: Accumulator
) -> pl.DataFrame:
    """Rows equal to an earlier row (lower primary key) in every canonical column: a duplicated
    record, rejected with the key of the row it copies."""
    ordered = rows.sort("source_key").with_columns(
        first_key=pl.col("source_key").first().over(same), copy=~pl.struct(same).is_first_distinct()
    )
    copies = ordered.filter(pl.col("copy"))
    if copies.height:
        acc.quarantine_frames.append(copies.select(
            centre_id=pl.lit(centre_id), file=pl.lit(file), row=pl.col("source_key").cast(pl.Int64),
            field=pl.lit("(row)"), raw_value=pl.lit(None, pl.String),
            reason=pl.format("duplicate of {} row {}", pl.lit(table), pl.col("first_key")),
            action=pl.lit("rejected"), sheet=pl.lit(table),
        ).cast(QUARANTINE_SCHEMA))  # type: ignore[arg-type]
    return ordered.filter(~pl.col("copy")).drop("first_key", "copy")


def _key_from_source() -> pl.Expr:
    return pl.col("source").str.extract(r":(\d+)$").cast(pl.Int64).alias("source_key")


def harmonise_omop(
    con: Any, *, centre_id: str, file: str, vocab: Vocabulary, acc: Accumulator, database: str | None = None
) -> None:
    """Map one OMOP database into ``acc`` (frames, quarantine, reconciliation counts)."""
    tables = omop_source.canonical_tables(con, centre_id=centre_id, file=file, database=database,
                                          **vocabulary_tables(vocab))
    counts = omop_source.record_counts(con, database=database)
    patients = _frame(tables["patients"], PATIENTS_SCHEMA).with_columns(_key_from_source()).sort("source_key")
    exposures = _frame(tables["drug_exposures"], DRUG_EXPOSURES_SCHEMA, ("source_key",)).sort("source_key")
    assessments = _frame(tables["assessments"], ASSESSMENTS_SCHEMA, ("source_key", "raw_response")).sort("source_key")
    events = _frame(tables["events"], EVENTS_SCHEMA).with_columns(
        _key_from_source(), table=pl.col("source").str.extract(r"#(\w+):\d+$")).sort(["table", "source_key"])
    for name in ("person", "drug_exposure", "death", "observation_period"):
        if name in counts:
            acc.read[(centre_id, file, name)] = counts[name]
    attributes = omop_source.attribute_rows(con, centre_id=centre_id, database=database)
    attribute_rows = (
        pl.DataFrame(schema={"table": pl.String(), "row": pl.Int64(), "patient_id": pl.String()})
        if attributes is None else pl.from_arrow(attributes.to_pyarrow())
    )
    assert isinstance(attribute_rows, pl.DataFrame)
    for (table,), part in attribute_rows.partition_by("table", as_dict=True).items():
        acc.read[(centre_id, file, str(table))] = part.height
        acc.row_frames.append(part.select(centre_id=pl.lit(centre_id), file=pl.lit(file), sheet=pl.lit(str(table)),
                                          row=pl.col("row"), patient_id=pl.col("patient_id")))
    key = (centre_id, file, "measurement")
    acc.read[key] = acc.read.get(key, 0) + assessments.height
    if events.filter(pl.col("table") == "episode").height:
        acc.read[(centre_id, file, "episode")] = events.filter(pl.col("table") == "episode").height

    acc.frames["patients"].append(patients.drop("source_key"))
    acc.row_frames.append(_owners(patients, centre_id, file, "person"))
    acc.row_frames.append(_owners(exposures, centre_id, file, "drug_exposure"))
    acc.row_frames.append(_owners(assessments, centre_id, file, "measurement"))
    for table, part in events.partition_by("table", as_dict=True).items():
        acc.row_frames.append(_owners(part, centre_id, file, str(table[0])))

    unknown = exposures.filter(pl.col("ingredient").is_null())
    undated = exposures.filter(pl.col("ingredient").is_not_null() & pl.col("start_date").is_null())
    backwards = exposures.filter(pl.col("ingredient").is_not_null() & (pl.col("end_date") < pl.col("start_date")))
    acc.quarantine_frames += [
        _quarantine(unknown, centre_id, file, "drug_exposure", "drug_source_value", pl.col("source_text"),
                    "unknown drug (neither the concept id nor the source value is in the vocabulary)", "rejected"),
        _quarantine(undated, centre_id, file, "drug_exposure", "drug_exposure_start_date", pl.lit(None),
                    "a drug exposure needs a start date", "rejected"),
        _quarantine(backwards, centre_id, file, "drug_exposure", "drug_exposure_end_date",
                    pl.col("end_date").cast(pl.String), "end date before the start date", "rejected"),
    ]
    good = exposures.filter(
        pl.col("ingredient").is_not_null() & pl.col("start_date").is_not_null()
        & ~(pl.col("end_date") < pl.col("start_date")).fill_null(False)
    )
    good = _drop_copies(good, [c for c in DRUG_EXPOSURES_SCHEMA if c != "source"], centre_id, file,
                        "drug_exposure", acc)
    reasons = vocab.values.get("reason_stopped", {})
    words = good["reason_stopped"].map_elements(normalise_word, return_dtype=pl.String)
    good = good.with_columns(raw_reason=pl.col("reason_stopped"),
                             reason_stopped=words.replace_strict(reasons, default=None, return_dtype=pl.String))
    odd = good.filter(pl.col("raw_reason").is_not_null() & pl.col("reason_stopped").is_null())
    acc.quarantine_frames.append(_quarantine(odd, centre_id, file, "drug_exposure", "stop_reason",
                                             pl.col("raw_reason"), "unknown reason for stopping", "value_nulled"))
    acc.frames["drug_exposures"].append(good.select(list(DRUG_EXPOSURES_SCHEMA)))

    unreadable = assessments.filter(pl.col("response").is_null())
    acc.quarantine_frames.append(_quarantine(unreadable, centre_id, file, "measurement", "value_source_value",
                                             pl.col("raw_response"), "unknown response word (expected a RECIST 1.1 category)",
                                             "rejected"))
    readable = _drop_copies(assessments.filter(pl.col("response").is_not_null()),
                            [c for c in ASSESSMENTS_SCHEMA if c != "source"], centre_id, file, "measurement", acc)
    acc.frames["assessments"].append(readable.select(list(ASSESSMENTS_SCHEMA)))
    acc.frames["events"].append(events.select(list(EVENTS_SCHEMA)))
