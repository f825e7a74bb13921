"""Propensity-score weights for two or more treatments, from a multinomial logistic model.

The propensity model is multinomial logistic regression of the treatment on the covariates (an
intercept, numeric covariates as they are, categorical ones as treatment-coded dummies, named as in
``cox_ph``), fitted by Newton-Raphson to the maximum-likelihood estimate: for two levels it is R's
binomial ``glm``, for more it is the model R's ``nnet::multinom`` fits (whose quasi-Newton search
stops near, not at, the same maximum). From the fitted probabilities p_a(x) of each level a:

- ``"ATE"``: w = 1 / p_A(x), A the row's own treatment (inverse probability of treatment weights);
  ``stabilize=True`` multiplies by the share of A in the sample (Robins, Hernan & Brumback 2000).
- ``"ATT"`` (with ``reference`` = the treated level r): w = p_r(x) / p_A(x), 1 for level r.
- ``"overlap"``: w = (1 / p_A(x)) / sum_a (1 / p_a(x)), the generalised overlap weights (Li & Li
  2019; Li, Morgan & Zaslavsky 2018 for two arms: 1 - p_A).

Optional, in this order: ``trim`` drops rows with some p_a(x) < trim and refits the model on the
rest (symmetric trimming, Crump et al. 2009; Yoshida et al. 2019 for several arms); ``truncate``
caps the weights at their ``truncate`` quantile (Cole & Hernan 2008). A weight above ``max_weight``
(default 100) is an error: it means a patient nearly never given their treatment, whose outcome
would dominate the comparison - trim, truncate or change the model.

References
----------
Rosenbaum PR, Rubin DB (1983). The central role of the propensity score. Biometrika 70:41-55.
Li F, Li F (2019). Propensity score weighting for causal inference with multiple treatments. Ann
Appl Stat 13:2389-2415.
Crump RK, Hotz VJ, Imbens GW, Mitnik OA (2009). Dealing with limited overlap. Biometrika 96:187-99.
Cole SR, Hernan MA (2008). Constructing inverse probability weights. Am J Epidemiol 168:656-64.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats._cox_input import _as_polars, _dummies, _is_categorical
from oncorwe.stats._validate import describe_positions

__all__ = [
    "CovariateWarning",
    "PropensityWeights",
    "propensity_weights",
]

FloatArray = npt.NDArray[np.float64]
Estimand = Literal["ATE", "ATT", "overlap"]
_ESTIMANDS = ("ATE", "ATT", "overlap")

#: Fitted probabilities below this count as 0: the model separates the treatments.
_SEPARATION_PROBABILITY = 1e-10


class CovariateWarning(UserWarning):
    """A covariate is constant within one treatment arm (its balance or model term is fragile)."""


def effective_sample_size(weights: FloatArray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2."""
    total = float(weights.sum())
    return total * total / float((weights * weights).sum()) if weights.size else 0.0


@dataclass(frozen=True, eq=False)
class PropensityWeights:
    """Propensity scores and weights, one per row of the input (in its order).

    Attributes
    ----------
    levels : tuple of str
        Treatment levels in sorted order (columns of ``propensity``).
    estimand, reference : str, str or None
    weights : numpy.ndarray, shape (n,)
        The weight of each row; 0 for rows dropped by trimming.
    kept : numpy.ndarray of bool, shape (n,)
        False for rows dropped by trimming.
    propensity : numpy.ndarray, shape (n, k)
        Fitted probability of each level (of the final model; nan for trimmed rows).
    treatment : numpy.ndarray of str, shape (n,)
        Each row's treatment level.
    terms, coef : the propensity model's columns and coefficients (one row per non-first level).
    iterations : Newton-Raphson iterations of the final fit.
    n_trimmed : rows dropped by trimming; ``truncated_at``: the cap applied by ``truncate`` or None.
    stabilized : bool
    warnings : tuple of str
        Covariates constant within an arm (also issued as :class:`CovariateWarning`).
    """

    levels: tuple[str, ...]
    estimand: str
    reference: str | None
    weights: FloatArray
    kept: npt.NDArray[np.bool_]
    propensity: FloatArray
    treatment: npt.NDArray[np.str_]
    terms: tuple[str, ...]
    coef: FloatArray
    iterations: int
    n_trimmed: int
    truncated_at: float | None
    stabilized: bool
    warnings: tuple[str, ...]

    def effective_sample_size(self) -> dict[str, float]:
        """Kish's effective sample size of each arm among the kept rows."""
        return {
            level: effective_sample_size(self.weights[self.kept & (self.treatment == level)])
            for level in self.levels
        }

    def to_frame(self) -> pl.DataFrame:
        """One row per input row: treatment, kept, weight, and ``p_<level>`` for each level."""
        columns: dict[str, Any] = {
            "treatment": self.treatment.tolist(),
            "kept": self.kept,
            "weight": self.weights,
        }
        for j, level in enumerate(self.levels):
            columns[f"p_{level}"] = self.propensity[:, j]
        return pl.DataFrame(columns)

    def to_dict(self) -> dict[str, Any]:
        """Summary without per-patient data: settings, model, weight distribution, ESS per arm."""
        kept = self.weights[self.kept]
        return {
            "levels": list(self.levels),
            "estimand": self.estimand,
            "reference": self.reference,
            "stabilized": self.stabilized,
            "n": int(self.weights.size),
            "n_trimmed": self.n_trimmed,
            "truncated_at": self.truncated_at,
            "iterations": self.iterations,
            "model": [
                {"level": level, **dict(zip(self.terms, map(float, row), strict=True))}
                for level, row in zip(self.levels[1:], self.coef, strict=True)
            ],
            "weight_min": float(kept.min()),
            "weight_max": float(kept.max()),
            "weight_mean": float(kept.mean()),
            "effective_sample_size": self.effective_sample_size(),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        ess = ", ".join(f"{k}={v:.1f}" for k, v in self.effective_sample_size().items())
        return (
            f"PropensityWeights(estimand={self.estimand!r}, levels={list(self.levels)}, "
            f"n={self.weights.size}, trimmed={self.n_trimmed}, ESS: {ess})"
        )


def treatment_codes(frame: pl.DataFrame, treatment: str) -> tuple[npt.NDArray[np.int64], tuple[str, ...]]:
    """Integer codes 0..k-1 of the treatment column (levels as strings, sorted); errors name rows."""
    if not isinstance(treatment, str):
        raise InputError(f"treatment: a column name (string) is required, got {treatment!r}")
    if treatment not in frame.columns:
        raise InputError(f"treatment: column {treatment!r} not found in data; columns are {frame.columns}")
    column = frame.get_column(treatment)
    missing = column.is_null().to_numpy()
    if column.dtype.is_float():
        missing |= np.isnan(column.to_numpy())
    if missing.any():
        raise InputError(f"treatment column {treatment!r}: missing values at {describe_positions(missing)}")
    values = column.cast(pl.String).to_numpy().astype(str)
    levels, codes = np.unique(values, return_inverse=True)
    if levels.size < 2:
        raise InputError(
            f"treatment column {treatment!r}: a single level {levels.tolist()}; at least two are needed"
        )
    return codes.astype(np.int64).reshape(-1), tuple(levels.tolist())


def covariate_matrix(
    frame: pl.DataFrame, covariates: Sequence[str], *, argument: str = "covariates"
) -> tuple[FloatArray, tuple[str, ...], tuple[str, ...]]:
    """Numeric matrix of the covariates (dummies ``f"{column}={level}"`` for categorical ones,
    first sorted level as reference), its column names, and the covariate owning each column.

    Missing values are errors here (a weight per row needs every covariate): impute first.
    """
    if isinstance(covariates, str) or not covariates:
        raise InputError(f"{argument}: a non-empty list of column names is required, got {covariates!r}")
    names = list(covariates)
    if len(set(names)) != len(names):
        raise InputError(f"{argument}: repeated column names in {names}")
    blocks: list[FloatArray] = []
    columns: list[str] = []
    owners: list[str] = []
    for name in names:
        if not isinstance(name, str) or name not in frame.columns:
            raise InputError(f"{argument}: column {name!r} not found in data; columns are {frame.columns}")
        column = frame.get_column(name)
        missing = column.is_null().to_numpy()
        if column.dtype.is_float():
            missing = missing | ~np.isfinite(column.fill_null(0.0).to_numpy())
        if missing.any():
            raise InputError(
                f"{argument}: column {name!r} has missing or non-finite values at "
                f"{describe_positions(missing)}; impute them (or drop the rows) first"
            )
        if _is_categorical(column.dtype):
            try:
                matrix, dummy_names, _ = _dummies(column, name, None)
            except ConvergenceError as exc:
                raise InputError(str(exc)) from exc
        elif column.dtype == pl.Boolean or column.dtype.is_numeric():
            matrix, dummy_names = column.cast(pl.Float64).to_numpy().reshape(-1, 1), [name]
        else:
            raise InputError(
                f"{argument}: column {name!r} has type {column.dtype}, expected numbers, booleans or strings"
            )
        blocks.append(matrix)
        columns.extend(dummy_names)
        owners.extend([name] * len(dummy_names))
    return np.column_stack(blocks).astype(np.float64), tuple(columns), tuple(owners)


def constant_within_arm_warnings(
    x: FloatArray, columns: Sequence[str], codes: npt.NDArray[np.int64], levels: Sequence[str]
) -> list[str]:
    """One message per (column, arm) where the column takes a single value in that arm."""
    messages = []
    for j, name in enumerate(columns):
        for a, level in enumerate(levels):
            values = x[codes == a, j]
            if values.size and np.all(values == values[0]):
                messages.append(
                    f"covariate {name!r} is constant ({values[0]:g}) in treatment arm {level!r}: "
                    "its propensity term may be infinite (separation) and its balance fragile"
                )
    return messages


def _fit_multinomial(
    x: FloatArray, codes: npt.NDArray[np.int64], k: int, columns: Sequence[str], owners: Sequence[str],
    max_iter: int = 50, tol: float = 1e-10,
) -> tuple[FloatArray, FloatArray, int]:
    """Maximum-likelihood multinomial logistic regression by Newton-Raphson with step halving.

    ``x`` includes the intercept column. Returns coefficients (k-1, p), fitted probabilities (n, k)
    and iterations. Raises ConvergenceError on separation (a fitted probability of 0 or 1, or a
    singular information), naming the covariates with the largest standardised coefficients.
    """
    n, p = x.shape
    m = k - 1
    y = np.zeros((n, m))
    rows = codes > 0
    y[np.flatnonzero(rows), codes[rows] - 1] = 1.0
    beta = np.zeros((m, p))

    def probabilities(b: FloatArray) -> tuple[FloatArray, float]:
        eta = x @ b.T  # (n, m)
        top = np.maximum(eta.max(axis=1), 0.0)
        expo = np.exp(eta - top[:, None])
        denom = np.exp(-top) + expo.sum(axis=1)
        prob = expo / denom[:, None]
        loglik = float((y * eta).sum() - (top + np.log(denom)).sum())
        return prob, loglik

    prob, loglik = probabilities(beta)
    iterations = 0
    for iteration in range(1, max_iter + 1):
        iterations = iteration
        score = ((y - prob).T @ x).reshape(-1)
        info = np.empty((m * p, m * p))
        for a in range(m):
            for b in range(a, m):
                w = prob[:, a] * ((1.0 if a == b else 0.0) - prob[:, b])
                block = (x * w[:, None]).T @ x
                info[a * p : (a + 1) * p, b * p : (b + 1) * p] = block
                info[b * p : (b + 1) * p, a * p : (a + 1) * p] = block.T
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            raise _separation(beta, x, columns, owners, "the information matrix is singular") from None
        if not np.all(np.isfinite(step)):
            raise _separation(beta, x, columns, owners, "the information matrix is singular")
        new_beta = beta + step.reshape(m, p)
        new_prob, new_loglik = probabilities(new_beta)
        halving = 0
        while (not math.isfinite(new_loglik) or new_loglik < loglik - 1e-12 * abs(loglik)) and halving < 30:
            halving += 1
            new_beta = (new_beta + beta) / 2
            new_prob, new_loglik = probabilities(new_beta)
        converged = abs(new_loglik - loglik) <= tol * (abs(new_loglik) + 0.1)
        beta, prob, loglik = new_beta, new_prob, new_loglik
        if converged:
            break
    else:
        raise _separation(beta, x, columns, owners, f"no convergence in {max_iter} iterations")
    full = np.column_stack([1.0 - prob.sum(axis=1), prob])
    if full.min() < _SEPARATION_PROBABILITY:
        raise _separation(beta, x, columns, owners, "some fitted probabilities are 0 or 1")
    return beta, full, iterations


def _separation(
    beta: FloatArray, x: FloatArray, columns: Sequence[str], owners: Sequence[str], why: str
) -> ConvergenceError:
    spread = x.std(axis=0)
    standardised = np.abs(beta) * spread[None, :]
    standardised[:, 0] = 0.0  # the intercept
    order = np.argsort(-standardised.max(axis=0))
    suspects = list(dict.fromkeys(owners[j - 1] for j in order[:3] if j > 0 and spread[j] > 0))
    return ConvergenceError(
        f"propensity model: {why}: the covariates separate the treatments (perfect or "
        f"quasi-perfect prediction), most likely {suspects}; remove or regroup them, or trim"
    )


def _raw_weights(prob: FloatArray, codes: npt.NDArray[np.int64], estimand: str, ref: int | None) -> FloatArray:
    own = prob[np.arange(codes.size), codes]
    if estimand == "ATE":
        return 1.0 / own
    if estimand == "ATT":
        assert ref is not None
        return prob[:, ref] / own
    return (1.0 / own) / (1.0 / prob).sum(axis=1)


def propensity_weights(
    data: Any,
    *,
    treatment: str,
    covariates: Sequence[str],
    estimand: Estimand,
    reference: str | None = None,
    stabilize: bool = False,
    trim: float | None = None,
    truncate: float | None = None,
    max_weight: float | None = 100.0,
) -> PropensityWeights:
    """Propensity-score weights, one per row (see the module text for the definitions).

    Parameters
    ----------
    data : polars.DataFrame or pandas.DataFrame
        One row per patient; no missing values in ``treatment`` or ``covariates``.
    treatment : str
        Column of the treatment (any type; its levels are compared as strings).
    covariates : sequence of str
        Confounders in the propensity model (numbers, booleans or strings).
    estimand : {"ATE", "ATT", "overlap"}
    reference : str, optional
        For "ATT": the treated level whose population is the target (required).
    stabilize : bool
        "ATE" only: multiply the weights by the sample share of the row's arm.
    trim : float in (0, 1/k), optional
        Drop rows whose fitted probability of some level is below ``trim``, then refit.
    truncate : float in (0.5, 1), optional
        Cap the weights at this quantile of the kept weights.
    max_weight : float or None
        Largest weight accepted (default 100); None accepts any.

    Raises
    ------
    InputError
        Unknown columns or levels, missing values, bad options, an arm with no patients after
        trimming, or a weight above ``max_weight``.
    ConvergenceError
        Separation in the propensity model, naming the covariates.
    """
    frame = _as_polars(data)
    if estimand not in _ESTIMANDS:
        raise InputError(f"estimand: must be one of {_ESTIMANDS}, got {estimand!r}")
    codes, levels = treatment_codes(frame, treatment)
    k = len(levels)
    ref: int | None = None
    if estimand == "ATT":
        if reference is None:
            raise InputError(f"reference: the ATT needs the treated level, one of {list(levels)}")
        if str(reference) not in levels:
            raise InputError(f"reference: level {reference!r} is not a level of {treatment!r}: {list(levels)}")
        ref = levels.index(str(reference))
    elif reference is not None:
        raise InputError(f"reference: only used with estimand 'ATT', not {estimand!r}")
    if not isinstance(stabilize, bool):
        raise InputError(f"stabilize: must be True or False, got {stabilize!r}")
    if stabilize and estimand != "ATE":
        raise InputError(f"stabilize: defined for estimand 'ATE' only, not {estimand!r}")
    if trim is not None and not (isinstance(trim, float | int) and 0 < trim < 1 / k):
        raise InputError(f"trim: must be a probability in (0, 1/{k}), got {trim!r}")
    if truncate is not None and not (isinstance(truncate, float | int) and 0.5 < truncate < 1):
        raise InputError(f"truncate: must be a quantile in (0.5, 1), got {truncate!r}")
    if max_weight is not None and not (isinstance(max_weight, float | int) and max_weight > 1):
        raise InputError(f"max_weight: must be a number > 1 or None, got {max_weight!r}")
    x, columns, owners = covariate_matrix(frame, covariates)
    messages = constant_within_arm_warnings(x, columns, codes, levels)
    for message in messages:
        warnings.warn(message, CovariateWarning, stacklevel=2)
    design = np.column_stack([np.ones(x.shape[0]), x])
    terms = ("(Intercept)", *columns)
    n = codes.size
    kept = np.ones(n, dtype=bool)
    beta, prob, iterations = _fit_multinomial(design, codes, k, terms, owners)
    if trim is not None:
        kept = prob.min(axis=1) >= trim
        for a, level in enumerate(levels):
            if not np.any(kept & (codes == a)):
                raise InputError(
                    f"trim: no patient of treatment arm {level!r} is left after trimming at {trim:g} "
                    f"({int(np.sum(codes == a))} before); lower trim or change the propensity model"
                )
        if not kept.all():
            beta, prob_kept, iterations = _fit_multinomial(design[kept], codes[kept], k, terms, owners)
            prob = np.full((n, k), np.nan)
            prob[kept] = prob_kept
    weights = np.zeros(n)
    weights[kept] = _raw_weights(prob[kept], codes[kept], estimand, ref)
    if stabilize:
        share = np.bincount(codes[kept], minlength=k) / kept.sum()
        weights[kept] *= share[codes[kept]]
    truncated_at = None
    if truncate is not None:
        truncated_at = float(np.quantile(weights[kept], truncate))
        weights[kept] = np.minimum(weights[kept], truncated_at)
    if max_weight is not None:
        over = weights > max_weight
        if over.any():
            raise InputError(
                f"propensity weights: {int(over.sum())} weights exceed max_weight={max_weight:g} "
                f"(largest {weights.max():.4g}) at {describe_positions(over)}: patients almost never "
                "given their treatment; trim, truncate, revise the covariates, or raise max_weight"
            )
    for array in (weights, kept, prob, beta):
        array.flags.writeable = False
    labels = np.asarray(levels)[codes]
    labels.flags.writeable = False
    return PropensityWeights(
        levels=levels,
        estimand=estimand,
        reference=None if ref is None else levels[ref],
        weights=weights,
        kept=kept,
        propensity=prob,
        treatment=labels,
        terms=terms,
        coef=beta,
        iterations=iterations,
        n_trimmed=int(n - kept.sum()),
        truncated_at=truncated_at,
        stabilized=stabilize,
        warnings=tuple(messages),
    )

