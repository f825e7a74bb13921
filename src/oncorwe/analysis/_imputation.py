"""Multiple imputation of missing covariates by chained equations, with the outcome in the model.

Each covariate to impute is regressed on every other covariate of the adjusted comparison, the
treatment arm and, for each outcome, the event indicator and the Nelson-Aalen estimate of the
cumulative hazard at the patient's time (White & Royston 2009: the outcome must be in the
imputation model, or the imputed covariate's association with it is diluted towards none). The
chained equations are scikit-learn's ``IterativeImputer`` with Bayesian ridge regression and
``sample_posterior=True`` (each imputed value a draw from the posterior predictive distribution, as
``mice``'s "norm" method; the Bayesian ridge is fitted from the Gram matrix,
``_bayesian_ridge.GramBayesianRidge``, equal to scikit-learn's ``BayesianRidge`` and independent of
the number of rows after one pass over them), ``max_iter`` rounds per set; set i of m draws from the random state
``SeedSequence([seed, i])``, so the same seed gives the same sets. Imputed values are kept in the
covariate's range: an integer covariate (ECOG) is rounded to a whole number within the observed
values, a yes/no covariate is "yes" when its draw is above 0.5.

References
----------
White IR, Royston P (2009). Imputing missing covariate values for the Cox model. Stat Med 28:1982-98.
van Buuren S, Groothuis-Oudshoorn K (2011). mice: multivariate imputation by chained equations in R.
J Stat Softw 45(3).
Nelson W (1972). Theory and applications of hazard plotting for censored failure data.
Technometrics 14:945-966.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from oncorwe.errors import InputError

__all__ = ["impute", "nelson_aalen_at"]

FloatArray = npt.NDArray[np.float64]


def nelson_aalen_at(time: FloatArray, event: FloatArray) -> FloatArray:
    """The Nelson-Aalen cumulative hazard H(t) = sum_{t_j <= t} d_j / n_j at each patient's own time."""
    distinct, position = np.unique(time, return_inverse=True)
    deaths = np.bincount(position, weights=event, minlength=distinct.size)
    exits = np.bincount(position, minlength=distinct.size)
    at_risk = time.size - (np.cumsum(exits) - exits)
    return np.asarray(np.cumsum(deaths / at_risk)[position], dtype=np.float64)


def _predictors(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[FloatArray, list[str]]:
    """Columns as numbers (yes/no as 0/1, categories as indicators of the non-first levels), nulls NaN."""
    blocks: list[FloatArray] = []
    names: list[str] = []
    for name in columns:
        series = frame[name]
        if series.dtype == pl.String or series.dtype == pl.Categorical:
            levels = sorted(v for v in series.unique().to_list() if v is not None)
            for level in levels[1:]:
                indicator = (series == level).cast(pl.Float64).to_numpy().astype(float)
                blocks.append(np.where(series.is_null().to_numpy(), np.nan, indicator))
                names.append(f"{name}={level}")
        else:
            blocks.append(series.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float))
            names.append(name)
    return np.column_stack(blocks), names


def impute(
    frame: pl.DataFrame,
    *,
    impute_columns: Sequence[str],
    other_columns: Sequence[str],
    outcomes: Sequence[tuple[str, str]],
    m: int,
    seed: int,
    max_iter: int,
) -> list[pl.DataFrame]:
    """``m`` copies of ``frame`` with the nulls of ``impute_columns`` filled (see the module text).

    ``other_columns`` (complete) and the outcomes' (time, event) columns are the other predictors.
    The imputation library is imported here: scikit-learn is needed only when a protocol imputes.
    """
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (IterativeImputer is experimental)
    from sklearn.impute import IterativeImputer

    from oncorwe.analysis._bayesian_ridge import GramBayesianRidge

    x, names = _predictors(frame, [*impute_columns, *other_columns])
    extra = []
    for time_column, event_column in outcomes:
        time = frame[time_column].cast(pl.Float64).to_numpy().astype(float)
        event = frame[event_column].cast(pl.Float64).to_numpy().astype(float)
        extra.extend([event, nelson_aalen_at(time, event)])
    design = np.column_stack([x, *extra])
    targets = {name: names.index(name) for name in impute_columns}
    for name, j in targets.items():
        if np.isnan(design[:, j]).all():
            raise InputError(f"imputation: covariate {name!r} has no observed value: it cannot be imputed")
    observed = {name: design[~np.isnan(design[:, j]), j] for name, j in targets.items()}
    # draws stay within each column's observed range in every round of the chained equations
    low = np.where(np.isnan(design).all(axis=0), -np.inf, np.nanmin(np.where(np.isnan(design), np.inf, design), axis=0))
    high = np.where(np.isnan(design).all(axis=0), np.inf, np.nanmax(np.where(np.isnan(design), -np.inf, design), axis=0))
    # a column constant where observed (a small study) keeps that value: scikit-learn wants the
    # bounds apart
    high = np.where(high > low, high, np.nextafter(low, np.inf))
    out = []
    for i in range(m):
        state = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        imputer = IterativeImputer(estimator=GramBayesianRidge(), sample_posterior=True, max_iter=max_iter,
                                   random_state=state,
                                   skip_complete=True, min_value=low, max_value=high)
        filled = imputer.fit_transform(design)
        columns = {}
        for name, j in targets.items():
            values = filled[:, j]
            dtype = frame.schema[name]
            if dtype == pl.Boolean:
                columns[name] = pl.Series(name, values > 0.5, dtype=pl.Boolean)
            elif dtype.is_integer():
                whole = np.clip(np.rint(values), observed[name].min(), observed[name].max())
                columns[name] = pl.Series(name, whole).cast(dtype)
            else:
                columns[name] = pl.Series(name, values).cast(dtype)
        out.append(frame.with_columns(list(columns.values())))
    return out
