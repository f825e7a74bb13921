"""Subsequent therapy after the index chemotherapy: counts by class and their responses, and the
duration of the index chemotherapy (median, range)."""

from __future__ import annotations

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import require_columns

__all__ = [
    "DESCRIPTIVE_SCHEMA",
    "REGIMEN_SCHEMA",
    "SUBSEQUENT_CLASSES",
    "SUBSEQUENT_SCHEMA",
    "chemo_duration",
    "regimens",
    "subsequent_therapy",
]

#: Classes of the first line after the index line (docs/definitions.md), in print order. The
#: pseudo-classes "any" (every patient with a subsequent line) and "any_ici" (the three ICI classes)
#: are added as rows too.
SUBSEQUENT_CLASSES = ("pd1_with_or_without_ipilimumab", "ipilimumab_alone", "ici_after_other", "targeted", "other")
ICI_CLASSES = SUBSEQUENT_CLASSES[:3]

SUBSEQUENT_SCHEMA: dict[str, pl.DataType] = {
    "therapy_class": pl.String(),
    "n": pl.Int64(),
    "percent": pl.Float64(),  # of all patients
    "responders": pl.Int64(),
    "response_percent": pl.Float64(),  # responders / n
    "response_lower": pl.Float64(),  # exact 95% CI
    "response_upper": pl.Float64(),
}

REGIMEN_SCHEMA: dict[str, pl.DataType] = {
    "regimen_class": pl.String(),
    "regimen_ingredients": pl.String(),  # "+"-joined ingredients of the index line, as derived
    "n": pl.Int64(),
    "percent": pl.Float64(),  # of all patients
}

DESCRIPTIVE_SCHEMA: dict[str, pl.DataType] = {
    "measure": pl.String(),
    "n": pl.Int64(),
    "value": pl.Float64(),
    "lower": pl.Float64(),
    "upper": pl.Float64(),
    "minimum": pl.Float64(),
    "maximum": pl.Float64(),
}


def subsequent_therapy(frame: pl.DataFrame) -> pl.DataFrame:
    """Counts of subsequent therapy by class and their responders (:data:`SUBSEQUENT_SCHEMA`)."""
    require_columns(frame, ["subsequent_therapy", "subsequent_therapy_class", "subsequent_responder"],
                    what="subsequent therapy")
    total = frame.height
    had = frame.filter(pl.col("subsequent_therapy").fill_null(False))
    rows = [_row("any", had, total)]
    for therapy_class in SUBSEQUENT_CLASSES:
        rows.append(_row(therapy_class, had.filter(pl.col("subsequent_therapy_class") == therapy_class), total))
    rows.append(_row("any_ici", had.filter(pl.col("subsequent_therapy_class").is_in(list(ICI_CLASSES))), total))
    unclassified = had.filter(pl.col("subsequent_therapy_class").is_null())
    if unclassified.height:
        rows.append(_row("unclassified", unclassified, total))
    return pl.DataFrame(rows, schema=SUBSEQUENT_SCHEMA)


def _row(name: str, sub: pl.DataFrame, total: int) -> dict[str, object]:
    n = sub.height
    responders = int(sub["subsequent_responder"].fill_null(False).sum())
    ci = stats.binomial_ci(responders, n) if n else None
    return {
        "therapy_class": name, "n": n, "percent": 100.0 * n / total if total else None,
        "responders": responders, "response_percent": 100.0 * responders / n if n else None,
        "response_lower": 100.0 * ci.lower if ci else None, "response_upper": 100.0 * ci.upper if ci else None,
    }


def chemo_duration(frame: pl.DataFrame) -> dict[str, object]:
    """Median (range) duration of the index chemotherapy line, in weeks."""
    require_columns(frame, ["chemo_duration_weeks"], what="duration of chemotherapy")
    values = frame["chemo_duration_weeks"].drop_nulls().cast(pl.Float64).to_numpy()
    values = values[~np.isnan(values)]
    row: dict[str, object] = {"measure": "chemo_duration_weeks", "n": int(values.size)}
    if values.size:
        row.update(value=float(np.median(values)), minimum=float(values.min()), maximum=float(values.max()))
    return row


def regimens(frame: pl.DataFrame) -> pl.DataFrame:
    """Index-line regimens: patients per regimen class and ingredient combination (most frequent first)."""
    require_columns(frame, ["regimen_class", "regimen_ingredients"], what="regimens")
    total = frame.height
    counts = frame.group_by(["regimen_class", "regimen_ingredients"]).len(name="n")
    return counts.with_columns(
        (pl.col("n").cast(pl.Float64) * 100.0 / total).alias("percent"), pl.col("n").cast(pl.Int64)
    ).sort(["regimen_class", "n", "regimen_ingredients"], descending=[False, True, False], nulls_last=True).select(
        list(REGIMEN_SCHEMA)
    ).cast(REGIMEN_SCHEMA)  # type: ignore[arg-type]
