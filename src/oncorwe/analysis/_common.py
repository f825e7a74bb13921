"""Small helpers shared by the analysis modules: group labels, column checks, numpy views."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from oncorwe.errors import InputError

__all__ = [
    "OVERALL",
    "group_labels",
    "level_codes",
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

    One pass over the rows (``partition_by``), not one filter per level; within a group the rows
    keep their order in ``frame``, so that sums over a group are the same as over a filter of it.
    Callers report the number of patients with a null group themselves (see ``n_missing_group``).
    """
    keyed = frame.with_columns(group_labels(frame[by]).alias("__group"))
    parts = keyed.partition_by("__group", as_dict=True, maintain_order=True, include_key=False)
    return sorted(((str(key[0]), part) for key, part in parts.items() if key[0] is not None),
                  key=lambda item: item[0])


def level_codes(labels: pl.Series, levels: Sequence[str]) -> np.ndarray:
    """Each label's position in ``levels`` (sorted distinct labels, no nulls) as unsigned integers.

    Statistics that sort their group labels (``stats.logrank_test``) see the same groups in the same
    order as with the strings, without sorting every row's string.
    """
    return labels.cast(pl.Enum(list(levels))).to_physical().to_numpy()


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
