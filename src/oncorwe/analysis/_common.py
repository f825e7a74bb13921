"""Small helpers shared by the analysis modules: group labels, column checks, numpy views."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from oncorwe.errors import InputError

__all__ = [
    "OVERALL",
    "group_labels",
    "require_columns",
    "split_groups",
    "to_float_array",
]

#: The group variable and group label of "all patients" rows.
OVERALL = ("overall", "all")


def require_columns(frame: pl.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise :class:`InputError` naming every column of ``columns`` missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what}: column(s) {', '.join(missing)} missing from the analysis table")


def group_labels(series: pl.Series) -> pl.Series:
    """A grouping column as strings: booleans become "yes"/"no", other values their text; null stays."""
    if series.dtype == pl.Boolean:
        return series.replace_strict({True: "yes", False: "no"}, return_dtype=pl.String)
    return series.cast(pl.String)


def split_groups(frame: pl.DataFrame, by: str) -> list[tuple[str, pl.DataFrame]]:
    """``frame`` split by the (string-labelled) values of ``by``, in sorted order; nulls left out.

    Callers report the number of patients with a null group themselves (see ``n_missing_group``).
    """
    labels = group_labels(frame[by])
    keyed = frame.with_columns(labels.alias("__group"))
    out: list[tuple[str, pl.DataFrame]] = []
    for value in sorted(v for v in labels.unique().to_list() if v is not None):
        out.append((value, keyed.filter(pl.col("__group") == value).drop("__group")))
    return out


def to_float_array(frame: pl.DataFrame, column: str, *, what: str) -> np.ndarray:
    """``frame[column]`` as float64, refusing nulls and NaN (names the column and the count)."""
    series = frame[column]
    n_null = series.null_count()
    values = series.cast(pl.Float64).to_numpy()
    n_nan = int(np.isnan(values).sum()) - n_null
    if n_null or n_nan:
        raise InputError(f"{what}: column {column!r} has {n_null + max(n_nan, 0)} missing value(s)")
    return values


def sorted_unique(values: Sequence[str | None]) -> list[str]:
    """Distinct non-null values, sorted."""
    return sorted({v for v in values if v is not None})
