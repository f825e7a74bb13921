"""The published medians of the flagship study and the truth-file subsets they describe, for the
calibration tests at the default size and at scale."""

from __future__ import annotations

import polars as pl

from oncorwe.stats import kaplan_meier

#: (subset, endpoint, published median in months)
PUBLISHED_MEDIANS = [
    (None, "pfs", 2.6),
    ("responder", "pfs", 8.7),
    ("taxane", "pfs", 3.9),
    ("prior_anti_pd1", "pfs", 2.5),
    (None, "os", 7.1),
    ("responder", "os", 16.8),
    ("non_responder", "os", 6.5),
]


def subset(eligible: pl.DataFrame, name: str | None) -> pl.DataFrame:
    """The eligible patients of the truth file in the named subset (None: all of them)."""
    filters = {
        "responder": pl.col("responder"),
        "non_responder": ~pl.col("responder"),
        "taxane": pl.col("regimen_class") == "taxane",
        "prior_anti_pd1": pl.col("prior_anti_pd1"),
    }
    return eligible if name is None else eligible.filter(filters[name])


def km_median(frame: pl.DataFrame, time: str, event: str) -> float:
    """Kaplan-Meier median of ``time`` (months) with ``event`` (1 = event)."""
    return float(kaplan_meier(frame[time].to_numpy(), frame[event].to_numpy()).median.value)
