"""Subsequent therapy after the index line: counts by class and their responses, and the
duration of the index line (median, range)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import require_columns

__all__ = [
    "DESCRIPTIVE_SCHEMA",
    "REGIMEN_SCHEMA",
    "SUBSEQUENT_SCHEMA",
    "chemo_duration",
    "regimens",
    "subsequent_therapy",
]

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


def subsequent_therapy(
    frame: pl.DataFrame, *, classes: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> pl.DataFrame:
    """Counts of subsequent therapy by class and their responders (:data:`SUBSEQUENT_SCHEMA`):
    "any" (every patient with a subsequent line), each of ``classes`` (the protocol's, in print
    order, its fallback last), each of ``groups`` (a name -> the classes it sums), and
    "unclassified" when some subsequent line has no class."""
    require_columns(frame, ["subsequent_therapy", "subsequent_therapy_class", "subsequent_responder"],
                    what="subsequent therapy")
    total = frame.height
    had = frame.filter(pl.col("subsequent_therapy").fill_null(False))
    rows = [_row("any", had, total)]
    for therapy_class in classes:
        rows.append(_row(therapy_class, had.filter(pl.col("subsequent_therapy_class") == therapy_class), total))
    for group, members in groups.items():
        rows.append(_row(group, had.filter(pl.col("subsequent_therapy_class").is_in(list(members))), total))
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
    """Median (range) duration of the index line, in weeks."""
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
