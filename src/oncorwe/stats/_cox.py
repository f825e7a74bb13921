"""Cox proportional hazards regression that equals R's ``coxph`` (Efron or Breslow ties).

``cox_ph`` takes a polars or pandas frame and column names, drops rows with missing values (as R's
``na.omit``, reporting ``n_dropped``), expands categorical columns to dummies named
``f"{column}={level}"`` against a reference level (first in sorted order unless ``reference`` names
one), fits by Newton-Raphson with R's ``coxph.control()`` settings (eps 1e-9, 20 iterations, step
halving, start at 0), and returns an immutable :class:`CoxResult`.

References
----------
Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
Efron B (1977). The efficiency of Cox's likelihood function for censored data. JASA 72:557-565.
Lin DY, Wei LJ (1989). The robust inference for the Cox proportional hazards model. JASA 84:1074-8.
Therneau TM (2023). survival: A Package for Survival Analysis in R, version 3.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats as scipy_stats

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats._cox_concordance import ConcordanceCounts
from oncorwe.stats._cox_concordance import concordance as _concordance
from oncorwe.stats._cox_core import (
    FitState,
    RiskSets,
    cholesky_inverse,
    newton_raphson,
    risk_sets,
    sorted_columns,
)
from oncorwe.stats._cox_input import CoxDesign, build_design
from oncorwe.stats._cox_residuals import score_residuals
from oncorwe.stats._types import Estimate, Test

__all__ = ["CoxResult", "cox_ph"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoxResult:
    """An immutable Cox model fit.

    Attributes
    ----------
    terms : tuple of str
        Model column names (one per coefficient; dummies named ``f"{column}={level}"``).
    coef, se : tuple of float
        Coefficients (log hazard ratios) and model-based standard errors.
    robust_se : tuple of float or None
        Sandwich (Lin-Wei) standard errors when ``robust`` or ``cluster`` was given, else None;
        then z, p-values and intervals use them, as R does.
    variance : tuple of tuple of float
        The variance matrix used for inference (robust when requested).
    loglik : (float, float)
        Log partial likelihood at beta = 0 and at the estimate.
    lr_test, wald_test, score_test : Test
        Likelihood-ratio, Wald and score (log-rank) tests of all coefficients = 0.
    concordance, concordance_se : Estimate, float (properties)
        Harrell's C as R's ``concordance(fit)`` and its standard error, computed on first access.
    n, n_events, n_dropped : int
        Rows used, events among them (unweighted), rows dropped for missing values.
    weights : str or None
        The case-weight column, if any.
    """

    terms: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    robust_se: tuple[float, ...] | None
    variance: tuple[tuple[float, ...], ...]
    naive_variance: tuple[tuple[float, ...], ...]
    loglik: tuple[float, float]
    lr_test: Test
    wald_test: Test
    score_test: Test
    n: int
    n_events: int
    n_dropped: int
    iterations: int
    ties: str
    conf_level: float
    covariates: tuple[str, ...]
    term_columns: tuple[tuple[int, ...], ...]
    reference_levels: Mapping[str, str]
    strata: tuple[str, ...]
    cluster: str | None
    weights: str | None
    _design: CoxDesign = field(repr=False, compare=False)
    _linear_predictor: FloatArray = field(repr=False, compare=False)
    _risk_sets: RiskSets = field(repr=False, compare=False)

    @cached_property
    def _concordance_counts(self) -> ConcordanceCounts:
        if self.weights is not None:
            raise InputError(
                "concordance: not implemented for a weighted Cox fit (R weights every pair); "
                "fit the model without weights for Harrell's C"
            )
        # computed on first use: counting comparable pairs costs more than the fit itself
        return _concordance(self._risk_sets, self._linear_predictor, self._design.cluster)

    @property
    def concordance(self) -> Estimate:
        """Harrell's C as R's ``concordance(fit)``, with a normal interval at ``conf_level``."""
        counts = self._concordance_counts
        quantile = float(scipy_stats.norm.ppf(1 - (1 - self.conf_level) / 2))
        return Estimate(counts.value, counts.value - quantile * counts.se, counts.value + quantile * counts.se)

    @property
    def concordance_se(self) -> float:
        """Standard error of the concordance (R's ``sqrt(concordance(fit)$var)``)."""
        return self._concordance_counts.se

    @property
    def inference_se(self) -> tuple[float, ...]:
        """The standard errors behind z, p and the intervals (robust when requested)."""
        return self.robust_se if self.robust_se is not None else self.se

    def to_frame(self) -> pl.DataFrame:
        """One row per model term: term, coef, se, robust_se, hazard_ratio, lower, upper, z, p_value."""
        coef = np.array(self.coef)
        se = np.array(self.inference_se)
        z = coef / se
        quantile = float(scipy_stats.norm.ppf(1 - (1 - self.conf_level) / 2))
        return pl.DataFrame(
            {
                "term": list(self.terms),
                "coef": coef,
                "se": np.array(self.se),
                "robust_se": np.array(self.robust_se) if self.robust_se is not None else np.full(coef.size, np.nan),
                "hazard_ratio": np.exp(coef),
                "lower": np.exp(coef - quantile * se),
                "upper": np.exp(coef + quantile * se),
                "z": z,
                "p_value": 2 * scipy_stats.norm.sf(np.abs(z)),
            },
            schema={
                "term": pl.String, "coef": pl.Float64, "se": pl.Float64, "robust_se": pl.Float64,
                "hazard_ratio": pl.Float64, "lower": pl.Float64, "upper": pl.Float64,
                "z": pl.Float64, "p_value": pl.Float64,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (no per-patient data): coefficients, tests, counts, settings."""
        return {
            "coefficients": self.to_frame().to_dicts(),
            "loglik": list(self.loglik),
            "lr_test": self.lr_test._asdict(),
            "wald_test": self.wald_test._asdict(),
            "score_test": self.score_test._asdict(),
            "concordance": self._concordance_record(),
            "n": self.n,
            "n_events": self.n_events,
            "n_dropped": self.n_dropped,
            "iterations": self.iterations,
            "ties": self.ties,
            "conf_level": self.conf_level,
            "robust": self.robust_se is not None,
            "covariates": list(self.covariates),
            "reference_levels": dict(self.reference_levels),
            "strata": list(self.strata),
            "cluster": self.cluster,
            "weights": self.weights,
        }

    def _concordance_record(self) -> dict[str, float] | None:
        """Harrell's C and its SE for :meth:`to_dict` (None with case weights)."""
        if self.weights is not None:
            return None
        return {"value": self.concordance.value, "se": self.concordance_se}

    def __repr__(self) -> str:
        lines = [
            f"CoxResult(ties={self.ties!r}, n={self.n}, n_events={self.n_events}, n_dropped={self.n_dropped}"
            + (f", strata={list(self.strata)}" if self.strata else "")
            + (", robust" if self.robust_se is not None else "")
            + ")"
        ]
        for term, b, s in zip(self.terms, self.coef, self.inference_se, strict=True):
            lines.append(f"  {term}: coef={b:.6g} se={s:.6g} HR={math.exp(b):.4g}")
        fit_line = f"  loglik={self.loglik[1]:.6g} (null {self.loglik[0]:.6g}); LR {self.lr_test!r}"
        if self.weights is None:
            fit_line += f"; concordance={self.concordance.value:.4f} (se {self.concordance_se:.4f})"
        lines.append(fit_line)
        return "\n".join(lines)


_TIES = ("efron", "breslow")


def cox_ph(
    data: Any,
    *,
    time: str,
    event: str,
    covariates: Sequence[str],
    ties: Literal["efron", "breslow"] = "efron",
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    robust: bool = False,
    weights: str | None = None,
    reference: Mapping[str, str] | None = None,
    conf_level: float = 0.95,
    eps: float = 1e-9,
    max_iter: int = 20,
) -> CoxResult:
    """Fit a Cox proportional hazards model, as R's ``coxph``.

    Parameters
    ----------
    data : polars.DataFrame or pandas.DataFrame
        One row per subject.
    time, event : str
        Columns of follow-up time (>= 0) and event indicator (0/1 or bool).
    covariates : sequence of str
        Covariate columns: numeric/boolean as they are, string/categorical as treatment dummies.
    ties : {"efron", "breslow"}
        Handling of tied event times.
    strata : str or sequence of str, optional
        Stratify the baseline hazard by these columns (R's ``strata()``).
    cluster : str, optional
        Column of cluster labels: robust (sandwich) variance summed within clusters (R's
        ``cluster()``); implies ``robust``.
    robust : bool
        Sandwich variance with each row its own cluster (R's ``robust = TRUE``).
    weights : str, optional
        Column of case weights > 0 (e.g. propensity weights), as R's ``coxph(weights = w)``: the
        partial likelihood is weighted (tied deaths share their mean weight in Efron's rule), the
        robust variance sums ``(w_i dfbeta_i)(w_i dfbeta_i)'``. With non-integer weights ask for
        ``robust=True``: the model-based variance then treats weights as frequencies.
    reference : mapping, optional
        Reference level per categorical covariate, e.g. ``{"sex": "female"}``.
    conf_level : float
        Level of the hazard-ratio intervals.
    eps, max_iter : float, int
        Convergence settings, as R's ``coxph.control(eps, iter.max)``; ``max_iter = 0`` evaluates
        the model at beta = 0.

    Returns
    -------
    CoxResult

    Raises
    ------
    InputError
        Bad arguments or data (unknown column, non-finite values, no events, ...).
    ConvergenceError
        A constant or collinear covariate, a diverging coefficient (complete separation), or no
        convergence; the message names the columns.
    """
    if ties not in _TIES:
        raise InputError(f"ties: must be one of {_TIES}, got {ties!r}")
    if not isinstance(robust, bool):
        raise InputError(f"robust: must be True or False, got {robust!r}")
    if not (isinstance(conf_level, float | int) and 0 < conf_level < 1):
        raise InputError(f"conf_level: must be between 0 and 1, got {conf_level!r}")
    if not (isinstance(eps, float | int) and eps > 0):
        raise InputError(f"eps: must be a positive number, got {eps!r}")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise InputError(f"max_iter: must be an integer >= 0, got {max_iter!r}")
    design = build_design(
        data, time=time, event=event, covariates=covariates, strata=strata,
        cluster=cluster, reference=reference, weights=weights,
    )
    n_events = int(design.event.sum())
    if n_events == 0:
        raise InputError(f"event column {event!r}: no events among the {design.time.size} rows used")
    rs = risk_sets(design.time, design.event, design.strata, efron=ties == "efron")
    means = design.x.mean(axis=0)
    x_sorted = sorted_columns(design.x, rs.order, means)
    _check_constant(x_sorted, rs, design.column_names)
    sorted_weights = None if design.weights is None else design.weights[rs.order]
    fit = newton_raphson(
        rs, x_sorted, design.column_names, eps=float(eps), max_iter=max_iter,
        toler_inf=math.sqrt(eps), weights=sorted_weights,
    )
    beta = fit.beta
    naive = fit.variance
    robust_var: FloatArray | None = None
    if robust or cluster is not None:
        robust_var = _robust_variance(rs, x_sorted, fit.state, naive, design.cluster, sorted_weights)
    variance = robust_var if robust_var is not None else naive
    p = beta.size
    lp = design.x @ beta - float(means @ beta)
    lp.flags.writeable = False
    lr = 2 * (fit.loglik_final - fit.loglik_initial)
    n_clusters = int(design.cluster.max()) + 1 if design.cluster is not None else design.time.size
    wald = _wald(beta, variance, n_clusters)
    return CoxResult(
        terms=design.column_names,
        coef=tuple(float(b) for b in beta),
        se=tuple(float(s) for s in np.sqrt(np.diag(naive))),
        robust_se=None if robust_var is None else tuple(float(s) for s in np.sqrt(np.diag(robust_var))),
        variance=_matrix(variance),
        naive_variance=_matrix(naive),
        loglik=(fit.loglik_initial, fit.loglik_final),
        lr_test=Test(lr, p, float(scipy_stats.chi2.sf(lr, p))),
        wald_test=Test(wald, p, float(scipy_stats.chi2.sf(wald, p))),
        score_test=Test(fit.score_test, p, float(scipy_stats.chi2.sf(fit.score_test, p))),
        n=int(design.time.size),
        n_events=n_events,
        n_dropped=design.n_dropped,
        iterations=fit.iterations,
        ties=ties,
        conf_level=float(conf_level),
        covariates=design.term_names,
        term_columns=design.term_columns,
        reference_levels=dict(design.reference_levels),
        strata=tuple([strata] if isinstance(strata, str) else list(strata or [])),
        cluster=cluster,
        weights=weights,
        _design=design,
        _linear_predictor=lp,
        _risk_sets=rs,
    )


def _matrix(m: FloatArray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in m)


def _check_constant(x_sorted: FloatArray, rs: RiskSets, column_names: tuple[str, ...]) -> None:
    """A column constant within every stratum has no information: name it before fitting."""
    if len(rs.stratum_groups) == 1:
        varies = np.array([bool(np.any(column != column[0])) for column in x_sorted.T])
    else:
        same_stratum = rs.strata[1:] == rs.strata[:-1]
        varies = ((x_sorted[1:] != x_sorted[:-1]) & same_stratum[:, None]).any(axis=0)
    if not varies.all():
        names = [column_names[i] for i in np.flatnonzero(~varies)]
        where = " within every stratum" if len(rs.stratum_groups) > 1 else ""
        raise ConvergenceError(
            f"covariates: column(s) {names} are constant{where} in the rows used; a constant "
            "covariate has no coefficient - remove it"
        )


def _wald(beta: FloatArray, variance: FloatArray, n_clusters: int | None) -> float:
    inverse, singular = cholesky_inverse(variance)
    if singular:
        # only a robust variance can be singular here (the model-based one passed the fit)
        raise ConvergenceError(
            f"cluster/robust: the robust variance is singular ({n_clusters} clusters for "
            f"{beta.size} coefficients); use more clusters or fewer covariates"
        )
    return float(beta @ inverse @ beta)


def _robust_variance(
    rs: RiskSets,
    x: FloatArray,
    state: FitState,
    naive: FloatArray,
    cluster: npt.NDArray[np.int64] | None,
    weights: FloatArray | None = None,
) -> FloatArray:
    """Sandwich variance D'D with D the dfbeta residuals (score residuals times the variance, times
    the case weight), summed within clusters (Lin & Wei 1989; R ``residuals(fit, "dfbeta",
    weighted = TRUE)``)."""
    resid = score_residuals(rs, x, state)
    if weights is not None:
        resid = resid * weights[:, None]
    if cluster is not None:
        codes = cluster[rs.order]
        k = int(codes.max()) + 1
        summed = np.zeros((k, resid.shape[1]))
        for j in range(resid.shape[1]):
            summed[:, j] = np.bincount(codes, weights=resid[:, j], minlength=k)
        resid = summed
    dfbeta = resid @ naive
    return dfbeta.T @ dfbeta
