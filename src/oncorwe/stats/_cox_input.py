"""Input handling of the Cox model: a data frame in, a clean numeric design out.

Kept apart from the numerical core (as R's ``coxph`` hands ``coxph.fit`` a clean matrix): column
look-up, missing-value removal (as R's ``na.omit``), categorical expansion to treatment-coded dummies,
strata and cluster labels.

Naming convention of dummy terms: a categorical column ``regimen`` with levels ``a`` (reference),
``b`` and ``c`` becomes the model columns ``regimen=b`` and ``regimen=c``. The reference level is the
first level in sorted order (for a polars Enum: the first declared category; strings, polars
Categorical and pandas categoricals use sorted order), or the one named in
``reference={"regimen": "a"}``. Boolean columns enter as 0/1 under their own name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats._validate import as_event_array, as_float_array, describe_positions

__all__ = ["CoxDesign", "build_design"]


@dataclass(frozen=True)
class CoxDesign:
    """The numeric design of a Cox model after missing rows are dropped.

    Attributes
    ----------
    time, event : arrays, shape (n,)
        Follow-up time (>= 0) and event indicator (0/1) of the rows used.
    x : array, shape (n, p)
        Model matrix (numeric columns as given, categorical columns as 0/1 dummies).
    column_names : tuple of str
        Names of the ``p`` model columns (dummies named ``f"{column}={level}"``).
    term_names : tuple of str
        The covariates as given (one term may own several dummy columns).
    term_columns : tuple of tuple of int
        For each term, the indices of its model columns (R's ``assign``).
    strata : array of int, shape (n,)
        Stratum code 0..k-1 (all 0 without strata).
    cluster : array of int or None
        Cluster code per row, or None.
    n_dropped : int
        Rows removed because a used column was missing.
    reference_levels : mapping
        The reference level chosen for each categorical covariate.
    weights : array, shape (n,), or None
        Case weights (> 0) of the rows used, or None.
    """

    time: npt.NDArray[np.float64]
    event: npt.NDArray[np.int8]
    x: npt.NDArray[np.float64]
    column_names: tuple[str, ...]
    term_names: tuple[str, ...]
    term_columns: tuple[tuple[int, ...], ...]
    strata: npt.NDArray[np.int64]
    cluster: npt.NDArray[np.int64] | None
    n_dropped: int
    reference_levels: Mapping[str, str]
    weights: npt.NDArray[np.float64] | None = None


def _as_polars(data: Any) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        try:
            return pl.from_pandas(data, nan_to_null=True)
        except Exception as exc:  # pandas/pyarrow conversion error, translated
            raise InputError(f"data: could not convert the pandas frame: {exc}") from exc
    raise InputError(f"data: a polars or pandas DataFrame is required, got {type(data).__name__}")


def _names(value: str | Sequence[str] | None, argument: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise InputError(f"{argument}: column names must be strings, got {name!r}")
    return names


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Enum, pl.Categorical))


def _levels(column: pl.Series) -> list[str]:
    """Levels present in ``column`` in their natural order (declared order for an Enum)."""
    present = set(column.cast(pl.String).unique().to_list())
    if isinstance(column.dtype, pl.Enum):
        return [level for level in column.dtype.categories.to_list() if level in present]
    return sorted(present)


def _dummies(
    column: pl.Series, name: str, reference: str | None
) -> tuple[npt.NDArray[np.float64], list[str], str]:
    levels = _levels(column)
    if reference is None:
        reference = levels[0]
    elif reference not in levels:
        raise InputError(
            f"reference: level {reference!r} of column {name!r} does not occur in the rows used; "
            f"levels are {levels}"
        )
    if len(levels) < 2:
        raise ConvergenceError(
            f"covariates: column {name!r} has a single level {levels[0]!r} in the rows used; "
            "a constant covariate cannot be estimated"
        )
    values = column.cast(pl.String).to_numpy()
    kept = [level for level in levels if level != reference]
    matrix = np.column_stack([(values == level).astype(np.float64) for level in kept])
    return matrix, [f"{name}={level}" for level in kept], reference


def _codes(column: pl.Series) -> npt.NDArray[np.int64]:
    """Integer codes 0..k-1 of a label column, in sorted order of the labels."""
    values = column.to_numpy()
    _, codes = np.unique(values.astype(str) if values.dtype.kind == "O" else values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1)


def build_design(
    data: Any,
    *,
    time: str,
    event: str,
    covariates: Sequence[str],
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    reference: Mapping[str, str] | None = None,
    weights: str | None = None,
) -> CoxDesign:
    """Turn a frame and column names into a :class:`CoxDesign` (the input gate of ``cox_ph``).

    Rows with a missing value (null, or NaN in pandas) in any used column are dropped, as R's
    ``na.omit`` does; their number is kept as ``n_dropped``. Non-finite numbers (NaN or infinity in
    a polars float column, infinity anywhere) are errors, not missing values.

    Raises
    ------
    InputError
        An unknown column, a column of unusable type, non-finite values, negative times, events
        other than 0/1, or no rows left; the message names the argument, column and positions.
    """
    frame = _as_polars(data)
    if isinstance(covariates, str):
        raise InputError(f"covariates: a list of column names is required, got the string {covariates!r}")
    covariate_names = _names(covariates, "covariates")
    if not covariate_names:
        raise InputError("covariates: at least one covariate column is required")
    if len(set(covariate_names)) != len(covariate_names):
        raise InputError(f"covariates: repeated column names in {covariate_names}")
    strata_names = _names(strata, "strata")
    cluster_names = _names(cluster, "cluster")
    if len(cluster_names) > 1:
        raise InputError(f"cluster: one column name is required, got {cluster_names}")
    weight_names = _names(weights, "weights")
    if len(weight_names) > 1:
        raise InputError(f"weights: one column name is required, got {weight_names}")
    reference = dict(reference or {})
    roles = {"time": [time], "event": [event], "covariates": covariate_names,
             "strata": strata_names, "cluster": cluster_names, "weights": weight_names}
    for argument, names in roles.items():
        for name in names:
            if not isinstance(name, str):
                raise InputError(f"{argument}: a column name (string) is required, got {name!r}")
            if name not in frame.columns:
                raise InputError(
                    f"{argument}: column {name!r} not found in data; columns are {frame.columns}"
                )
    for name in reference:
        if name not in covariate_names:
            raise InputError(f"reference: {name!r} is not one of the covariates {covariate_names}")
    used = list(dict.fromkeys(
        [time, event, *covariate_names, *strata_names, *cluster_names, *weight_names]
    ))
    frame = frame.select(used)
    for name in used:
        column = frame.get_column(name)
        if column.dtype.is_float():
            values = column.to_numpy()
            bad = ~np.isfinite(values)
            if bad.any():
                bad &= ~column.is_null().to_numpy()
            if bad.any():
                raise InputError(
                    f"column {name!r}: non-finite values (NaN or infinity) at {describe_positions(bad)}; "
                    "use null for a missing value"
                )
    missing = np.zeros(frame.height, dtype=bool)
    for name in used:
        column = frame.get_column(name)
        if column.null_count():
            missing |= column.is_null().to_numpy()
    n_dropped = int(missing.sum())
    if n_dropped:
        frame = frame.filter(pl.Series(~missing))
    if frame.height == 0:
        raise InputError("data: no rows left after dropping rows with missing values in the used columns")

    time_values = as_float_array(frame.get_column(time), f"time column {time!r}", non_negative=True)
    status = as_event_array(frame.get_column(event), f"event column {event!r}")
    case_weights = None
    if weight_names:
        case_weights = as_float_array(frame.get_column(weight_names[0]), f"weights column {weight_names[0]!r}")
        bad = case_weights <= 0
        if bad.any():
            raise InputError(
                f"weights column {weight_names[0]!r}: weights must be > 0; zero or negative at "
                f"{describe_positions(bad)} of the rows used (drop those rows instead)"
            )

    blocks: list[npt.NDArray[np.float64]] = []
    column_names: list[str] = []
    term_columns: list[tuple[int, ...]] = []
    references: dict[str, str] = {}
    for name in covariate_names:
        column = frame.get_column(name)
        if _is_categorical(column.dtype):
            matrix, names, ref = _dummies(column, name, reference.get(name))
            references[name] = ref
        elif column.dtype == pl.Boolean or column.dtype.is_numeric():
            if name in reference:
                raise InputError(f"reference: column {name!r} is numeric, not categorical")
            matrix = column.cast(pl.Float64).to_numpy().reshape(-1, 1)
            names = [name]
        else:
            raise InputError(
                f"covariates: column {name!r} has type {column.dtype}, expected numbers, booleans or strings"
            )
        start = len(column_names)
        term_columns.append(tuple(range(start, start + len(names))))
        column_names.extend(names)
        blocks.append(matrix)
    # column-major: every kernel works column by column
    x = np.empty((frame.height, len(column_names)), dtype=np.float64, order="F")
    position = 0
    for block in blocks:
        x[:, position : position + block.shape[1]] = block
        position += block.shape[1]

    if strata_names:
        keys = frame.select(strata_names).with_columns(pl.all().cast(pl.String))
        combined = keys.select(pl.concat_str(pl.all(), separator="\x1f")).to_series()
        strata_codes = _codes(combined)
    else:
        strata_codes = np.zeros(frame.height, dtype=np.int64)
    cluster_codes = _codes(frame.get_column(cluster_names[0]).cast(pl.String)) if cluster_names else None
    for array in (time_values, status, x, strata_codes, cluster_codes, case_weights):
        if array is not None:
            array.flags.writeable = False  # the design is shared by immutable results
    return CoxDesign(
        time=time_values,
        event=status,
        x=x,
        column_names=tuple(column_names),
        term_names=tuple(covariate_names),
        term_columns=tuple(term_columns),
        strata=strata_codes,
        cluster=cluster_codes,
        n_dropped=n_dropped,
        reference_levels=references,
        weights=case_weights,
    )
