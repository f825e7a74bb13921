"""Test of the proportional hazards assumption of a Cox fit, as R's ``cox.zph`` (survival >= 3.0).

For each term, a score test that the coefficient does not change linearly in ``g(t)``, the
transformed time (default ``"km"``: one minus the left-continuous Kaplan-Meier estimate), at the
fitted coefficients; and a GLOBAL test of all terms together. The model is extended to
``beta + gamma * g(t)`` and the score for ``gamma`` and the full 2p x 2p information are computed at
``gamma = 0`` in one pass (R's ``zph1.c``).

References
----------
Grambsch PM, Therneau TM (1994). Proportional hazards tests and diagnostics based on weighted
residuals. Biometrika 81:515-526. Therneau TM, Grambsch PM (2000). Modeling Survival Data, ch. 6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats as scipy_stats

from oncorwe.errors import InputError
from oncorwe.stats._cox import CoxResult
from oncorwe.stats._cox_core import cholesky_inverse, sorted_columns
from oncorwe.stats._cox_residuals import time_weighted_score
from oncorwe.stats._types import Test

__all__ = ["ProportionalHazardsTest", "proportional_hazards_test"]

FloatArray = npt.NDArray[np.float64]

_TRANSFORMS = ("km", "identity", "rank", "log")


@dataclass(frozen=True)
class ProportionalHazardsTest:
    """Per-term and GLOBAL tests of proportional hazards.

    Attributes
    ----------
    terms : tuple of str
        The covariates of the model as given (a categorical covariate is one term with several
        degrees of freedom), then ``"GLOBAL"``.
    statistic, df, p_value : tuples of float
        Score test statistic, degrees of freedom and p-value per entry of ``terms``.
    transform : str
        The time transform used.
    """

    terms: tuple[str, ...]
    statistic: tuple[float, ...]
    df: tuple[float, ...]
    p_value: tuple[float, ...]
    transform: str

    @property
    def global_test(self) -> Test:
        """The GLOBAL test (all terms together)."""
        return Test(self.statistic[-1], self.df[-1], self.p_value[-1])

    def test(self, term: str) -> Test:
        """The test of one term (or ``"GLOBAL"``)."""
        if term not in self.terms:
            raise InputError(f"term: {term!r} is not one of {list(self.terms)}")
        i = self.terms.index(term)
        return Test(self.statistic[i], self.df[i], self.p_value[i])

    def to_frame(self) -> pl.DataFrame:
        """One row per term and a last row GLOBAL: term, statistic, df, p_value."""
        return pl.DataFrame(
            {"term": list(self.terms), "statistic": list(self.statistic), "df": list(self.df),
             "p_value": list(self.p_value)},
            schema={"term": pl.String, "statistic": pl.Float64, "df": pl.Float64, "p_value": pl.Float64},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"transform": self.transform, "tests": self.to_frame().to_dicts()}

    def __repr__(self) -> str:
        rows = [f"ProportionalHazardsTest(transform={self.transform!r})"]
        for term, c, d, p in zip(self.terms, self.statistic, self.df, self.p_value, strict=True):
            rows.append(f"  {term}: statistic={c:.4g} df={d:g} p={p:.4g}")
        return "\n".join(rows)


def _left_km(time: FloatArray, event: npt.NDArray[np.int8]) -> FloatArray:
    """Kaplan-Meier estimate (all rows, no strata) just before each row's time, S(t-)."""
    unique, inverse = np.unique(time, return_inverse=True)
    inverse = inverse.reshape(-1)
    at_time = np.bincount(inverse, minlength=unique.size)
    deaths = np.bincount(inverse, weights=event.astype(np.float64), minlength=unique.size)
    at_risk = at_time[::-1].cumsum()[::-1].astype(np.float64)
    surv_after = np.cumprod(1.0 - deaths / at_risk)
    surv_before = np.concatenate([[1.0], surv_after[:-1]])
    return surv_before[inverse]


def _transform_time(
    time: FloatArray, event: npt.NDArray[np.int8], transform: str
) -> FloatArray:
    if transform == "km":
        return 1.0 - _left_km(time, event)
    if transform == "identity":
        return time.copy()
    if transform == "rank":
        return np.asarray(scipy_stats.rankdata(time), dtype=np.float64)
    if np.any(time <= 0):
        raise InputError("transform: 'log' needs all times > 0; some times are 0")
    return np.log(time)


def proportional_hazards_test(
    cox_result: CoxResult, *, transform: Literal["km", "identity", "rank", "log"] = "km"
) -> ProportionalHazardsTest:
    """Score tests of proportional hazards per term and GLOBAL, as R's ``cox.zph(fit)``.

    Parameters
    ----------
    cox_result : CoxResult
        A fit from :func:`oncorwe.stats.cox_ph` (same ties method, strata, rows).
    transform : {"km", "identity", "rank", "log"}
        The function of time the coefficients may drift along (R's default ``"km"``).

    Returns
    -------
    ProportionalHazardsTest
    """
    if not isinstance(cox_result, CoxResult):
        raise InputError(f"cox_result: a CoxResult from cox_ph is required, got {type(cox_result).__name__}")
    if transform not in _TRANSFORMS:
        raise InputError(f"transform: must be one of {_TRANSFORMS}, got {transform!r}")
    if cox_result.weights is not None:
        raise InputError(
            "proportional_hazards_test: not implemented for a weighted Cox fit; test the "
            "unweighted model"
        )
    design = cox_result._design
    ttimes = _transform_time(design.time, design.event, transform)
    events = design.event == 1
    g_time = ttimes - ttimes[events].mean()
    rs = cox_result._risk_sets
    x = sorted_columns(design.x, rs.order, design.x.mean(axis=0))
    eta = np.asarray(cox_result._linear_predictor)[rs.order]
    group_time_weight = g_time[rs.order][rs.group_start[:-1]]
    score, information = time_weighted_score(rs, x, eta, group_time_weight)
    p = x.shape[1]
    gamma_score = score[p:]
    terms = list(cox_result.covariates)
    statistic: list[float] = []
    df: list[float] = []
    for columns in cox_result.term_columns:
        keep = [*range(p), *(p + c for c in columns)]
        u = np.concatenate([np.zeros(p), gamma_score[list(columns)]])
        statistic.append(_quadratic(information[np.ix_(keep, keep)], u, cox_result.covariates, terms))
        df.append(float(len(columns)))
    u_all = np.concatenate([np.zeros(p), gamma_score])
    statistic.append(_quadratic(information, u_all, cox_result.covariates, terms))
    df.append(float(p))
    p_values = [float(scipy_stats.chi2.sf(c, d)) for c, d in zip(statistic, df, strict=True)]
    return ProportionalHazardsTest(
        terms=(*terms, "GLOBAL"),
        statistic=tuple(statistic),
        df=tuple(df),
        p_value=tuple(p_values),
        transform=transform,
    )


def _quadratic(matrix: FloatArray, u: FloatArray, covariates: tuple[str, ...], terms: list[str]) -> float:
    inverse, singular = cholesky_inverse(matrix)
    if singular:
        from oncorwe.errors import ConvergenceError

        raise ConvergenceError(
            f"proportional hazards test: the information matrix for {list(covariates)} is singular "
            "(a covariate does not vary among subjects at risk at the event times)"
        )
    return float(u @ inverse @ u)
