"""Covariate balance between treatment arms: standardised mean differences, as cobalt's defaults.

For each covariate column (categorical covariates as one 0/1 column per level, ``f"{name}={level}"``,
every level shown) and each pair of arms (a, b) in level order::

    smd = (weighted mean in a - weighted mean in b) / sqrt(mean over all arms of the unweighted variance)

The denominator is cobalt's ``s.d.denom = "pooled"``: computed on the unweighted sample, so it is the
same before and after weighting and the two SMDs are comparable (Austin & Stuart 2015). The variance
of a 0/1 column is p (1 - p), of any other column the sample variance (n - 1), as cobalt's
``col_w_sd``. An |SMD| below 0.1 is the usual mark of adequate balance.

References
----------
Austin PC, Stuart EA (2015). Moving towards best practice when using inverse probability of treatment
weighting (IPTW) using the propensity score to estimate causal treatment effects in observational
studies. Stat Med 34:3661-3679.
Greifer N. cobalt: Covariate Balance Tables and Plots, R package (``bal.tab``, ``col_w_smd``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from oncorwe.errors import InputError
from oncorwe.stats._cox_input import _as_polars, _is_categorical
from oncorwe.stats._validate import as_float_array, describe_positions
from oncorwe.stats._weights import (
    CovariateWarning,
    constant_within_arm_warnings,
    effective_sample_size,
    treatment_codes,
)

__all__ = ["Balance", "balance"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Balance:
    """A balance table with the effective sample size of each arm.

    Attributes
    ----------
    table : polars.DataFrame
        ``covariate, level_a, level_b, mean_a, mean_b, smd``: one row per covariate column and pair
        of arms.
    effective_sample_size : dict of str to float
        Kish's (sum w)^2 / sum w^2 per arm (the arm size when unweighted).
    n : dict of str to int
        Patients per arm (weight > 0).
    weighted : bool
    warnings : tuple of str
        Covariates constant within an arm (also issued as ``CovariateWarning``).
    """

    table: pl.DataFrame
    effective_sample_size: dict[str, float]
    n: dict[str, int]
    weighted: bool
    warnings: tuple[str, ...]

    def to_frame(self) -> pl.DataFrame:
        """The balance table (see ``table``)."""
        return self.table

    def max_abs_smd(self) -> float:
        """The largest |SMD| over covariates and pairs."""
        return float(self.table.get_column("smd").abs().max())  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form: rows of the table, ESS and counts per arm."""
        return {
            "table": self.table.to_dicts(),
            "effective_sample_size": dict(self.effective_sample_size),
            "n": dict(self.n),
            "weighted": self.weighted,
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        return (
            f"Balance(covariates={self.table.get_column('covariate').n_unique()}, "
            f"weighted={self.weighted}, max |smd|={self.max_abs_smd():.4f}, n={self.n})"
        )


def _indicator_columns(frame: pl.DataFrame, covariates: Sequence[str]) -> tuple[FloatArray, list[str]]:
    """Every level of a categorical covariate as its own 0/1 column; numbers and booleans as given."""
    if isinstance(covariates, str) or not covariates:
        raise InputError(f"covariates: a non-empty list of column names is required, got {covariates!r}")
    blocks: list[FloatArray] = []
    names: list[str] = []
    for name in covariates:
        if not isinstance(name, str) or name not in frame.columns:
            raise InputError(f"covariates: column {name!r} not found in data; columns are {frame.columns}")
        column = frame.get_column(name)
        missing = column.is_null().to_numpy()
        if column.dtype.is_float():
            missing = missing | ~np.isfinite(column.fill_null(0.0).to_numpy())
        if missing.any():
            raise InputError(
                f"covariates: column {name!r} has missing or non-finite values at {describe_positions(missing)}"
            )
        if _is_categorical(column.dtype):
            values = column.cast(pl.String).to_numpy().astype(str)
            for level in np.unique(values):
                blocks.append((values == level).astype(np.float64).reshape(-1, 1))
                names.append(f"{name}={level}")
        elif column.dtype == pl.Boolean or column.dtype.is_numeric():
            blocks.append(column.cast(pl.Float64).to_numpy().reshape(-1, 1))
            names.append(name)
        else:
            raise InputError(f"covariates: column {name!r} has type {column.dtype}, expected numbers, booleans or strings")
    return np.column_stack(blocks), names


def balance(
    data: Any,
    *,
    treatment: str,
    covariates: Sequence[str],
    weights: Any = None,
) -> Balance:
    """Standardised mean differences between every pair of arms (see the module text).

    Parameters
    ----------
    data : polars.DataFrame or pandas.DataFrame
    treatment : str
        Column of the treatment arm.
    covariates : sequence of str
        Columns to compare (numbers, booleans or strings).
    weights : str or array-like, optional
        A column name or one weight >= 0 per row (e.g. ``PropensityWeights.weights``; rows of
        weight 0, such as trimmed ones, leave the means but stay in the pooled SD).

    Raises
    ------
    InputError
        Unknown columns, missing values, negative weights, an arm whose weights sum to 0, or a
        covariate constant in the whole sample (its SMD is undefined), naming the covariate.
    """
    frame = _as_polars(data)
    codes, levels = treatment_codes(frame, treatment)
    x, names = _indicator_columns(frame, covariates)
    if weights is None:
        w = np.ones(codes.size)
    else:
        source = frame.get_column(weights) if isinstance(weights, str) and weights in frame.columns else weights
        if isinstance(weights, str) and weights not in frame.columns:
            raise InputError(f"weights: column {weights!r} not found in data; columns are {frame.columns}")
        w = as_float_array(source, "weights", non_negative=True)
        if w.size != codes.size:
            raise InputError(f"weights: {w.size} values for {codes.size} rows")
    messages = constant_within_arm_warnings(x, names, codes, levels)
    for message in messages:
        warnings.warn(message, CovariateWarning, stacklevel=2)
    k = len(levels)
    means = np.empty((k, x.shape[1]))
    variances = np.empty((k, x.shape[1]))
    binary = np.all((x == 0) | (x == 1), axis=0)
    for a, level in enumerate(levels):
        in_arm = codes == a
        wa = w[in_arm]
        if wa.sum() <= 0:
            raise InputError(f"weights: the weights of treatment arm {level!r} sum to 0")
        xa = x[in_arm]
        means[a] = wa @ xa / wa.sum()
        raw_mean = xa.mean(axis=0)
        sample_var = xa.var(axis=0, ddof=1) if xa.shape[0] > 1 else np.zeros(x.shape[1])
        variances[a] = np.where(binary, raw_mean * (1 - raw_mean), sample_var)
    pooled_sd = np.sqrt(variances.mean(axis=0))
    flat = pooled_sd <= 0
    if flat.any():
        raise InputError(
            f"covariates: {[names[j] for j in np.flatnonzero(flat)]} constant in every arm: the "
            "standardised difference is undefined; remove them"
        )
    rows: dict[str, list[Any]] = {k_: [] for k_ in ("covariate", "level_a", "level_b", "mean_a", "mean_b", "smd")}
    for j, name in enumerate(names):
        for a in range(k):
            for b in range(a + 1, k):
                rows["covariate"].append(name)
                rows["level_a"].append(levels[a])
                rows["level_b"].append(levels[b])
                rows["mean_a"].append(float(means[a, j]))
                rows["mean_b"].append(float(means[b, j]))
                rows["smd"].append(float((means[a, j] - means[b, j]) / pooled_sd[j]))
    table = pl.DataFrame(
        rows,
        schema={"covariate": pl.String, "level_a": pl.String, "level_b": pl.String,
                "mean_a": pl.Float64, "mean_b": pl.Float64, "smd": pl.Float64},
    )
    positive = w > 0
    return Balance(
        table=table,
        effective_sample_size={
            level: effective_sample_size(w[(codes == a) & positive]) for a, level in enumerate(levels)
        },
        n={level: int(np.sum((codes == a) & positive)) for a, level in enumerate(levels)},
        weighted=weights is not None,
        warnings=tuple(messages),
    )
