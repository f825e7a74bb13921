"""The numerical core of the Cox model: vectorised partial likelihood, Newton-Raphson, residuals.

Everything here works on clean arrays (no frames, no names) sorted once by stratum and time. Risk-set
sums are cumulative sums over distinct (stratum, time) groups; tied deaths are handled by expanding
each death group of size ``d`` into ``d`` "Efron rows" with weight fractions ``k/d`` (``k = 0..d-1``;
all zero for Breslow), so no Python loop runs over patients or times.

References
----------
Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
Efron B (1977). The efficiency of Cox's likelihood function for censored data. JASA 72:557-565.
Therneau TM, Grambsch PM (2000). Modeling Survival Data. Springer (appendix: the formulas checked in
``tests/stats/test_cox_book.py``); R package ``survival``, ``coxfit6.c`` and ``coxscore2.c`` (the
iteration and convergence rules copied here so that results agree with R to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.errors import ConvergenceError

__all__ = [
    "CHOLESKY_TOLERANCE",
    "FitState",
    "RiskSets",
    "cholesky_inverse",
    "information_with_weights",
    "newton_raphson",
    "partial_likelihood",
    "risk_sets",
    "score_residuals",
    "time_weighted_score",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: R's ``coxph.control()$toler.chol`` (.Machine$double.eps ^ 0.75).
CHOLESKY_TOLERANCE = float(np.finfo(np.float64).eps ** 0.75)


@dataclass(frozen=True)
class RiskSets:
    """Sorting and grouping of the data, computed once per fit.

    Rows are sorted by (stratum, time ascending, events before censorings). A *group* is a distinct
    (stratum, time); ``group_start`` has ``G + 1`` entries. ``stratum_groups`` holds the half-open
    group range of each stratum.
    """

    order: IntArray
    time: FloatArray
    event: npt.NDArray[np.int8]
    strata: IntArray
    group_start: IntArray
    group_of_row: IntArray
    stratum_groups: tuple[tuple[int, int], ...]
    deaths_per_group: IntArray
    efron_group: IntArray
    efron_fraction: FloatArray
    death_rows: IntArray

    @property
    def n_groups(self) -> int:
        return int(self.group_start.size - 1)


def risk_sets(
    time: FloatArray, event: npt.NDArray[np.int8], strata: IntArray, *, efron: bool
) -> RiskSets:
    """Sort once and describe the risk sets (see :class:`RiskSets`)."""
    order = np.lexsort((1 - event, time, strata)).astype(np.int64)
    t = time[order]
    e = event[order]
    s = strata[order]
    n = t.size
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.logical_or(t[1:] != t[:-1], s[1:] != s[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    group_start = np.append(starts, n).astype(np.int64)
    group_of_row = np.cumsum(new_group, dtype=np.int64) - 1
    group_stratum = s[starts]
    bounds = np.flatnonzero(np.diff(group_stratum)) + 1
    edges = [0, *bounds.tolist(), int(starts.size)]
    stratum_groups = tuple((edges[i], edges[i + 1]) for i in range(len(edges) - 1))
    deaths = np.add.reduceat(e.astype(np.int64), starts)
    death_groups = np.flatnonzero(deaths)
    d = deaths[death_groups]
    efron_group = np.repeat(death_groups, d)
    if efron:
        # k = 0..d-1 inside each group: position in the repeated block
        block_start = np.repeat(np.cumsum(d) - d, d)
        k = np.arange(efron_group.size) - block_start
        fraction = k / np.repeat(d, d).astype(np.float64)
    else:
        fraction = np.zeros(efron_group.size)
    return RiskSets(
        order=order,
        time=t,
        event=e,
        strata=s,
        group_start=group_start,
        group_of_row=group_of_row,
        stratum_groups=stratum_groups,
        deaths_per_group=deaths,
        efron_group=efron_group.astype(np.int64),
        efron_fraction=fraction,
        death_rows=np.flatnonzero(e).astype(np.int64),
    )


def _reverse_cumsum(values: npt.NDArray[Any], rs: RiskSets) -> FloatArray:
    """Sum over groups at or after each group, within its stratum (the risk-set sums)."""
    out = np.empty_like(values)
    for g0, g1 in rs.stratum_groups:
        out[g0:g1] = np.cumsum(values[g0:g1][::-1], axis=0)[::-1]
    return out


def _forward_cumsum(values: npt.NDArray[Any], rs: RiskSets) -> FloatArray:
    """Sum over groups at or before each group, within its stratum."""
    out = np.empty_like(values)
    for g0, g1 in rs.stratum_groups:
        out[g0:g1] = np.cumsum(values[g0:g1], axis=0)
    return out


@dataclass(frozen=True)
class FitState:
    """Log partial likelihood, score and information at one ``beta`` (plus the pieces reused)."""

    loglik: float
    score: FloatArray
    information: FloatArray
    risk: FloatArray
    denominator: FloatArray
    mean: FloatArray


def partial_likelihood(rs: RiskSets, x: FloatArray, beta: FloatArray) -> FitState:
    """Log partial likelihood (Efron or Breslow, as ``rs`` was built), score vector, information.

    ``x`` is the sorted, centred model matrix (n, p). For the Efron row of death group ``g`` with
    fraction ``f = k/d``: denominator ``S0(g) - f D0(g)``, mean ``(S1(g) - f D1(g)) / den``, where
    ``S`` sums over the risk set and ``D`` over the tied deaths; the information is
    ``sum_rows (S2 - f D2)/den - mean mean'`` computed as one weighted cross-product ``X' W X``.
    """
    eta = x @ beta
    risk = np.exp(eta)
    starts = rs.group_start[:-1]
    s0 = _reverse_cumsum(np.add.reduceat(risk, starts), rs)
    rx = x * risk[:, None]
    s1 = _reverse_cumsum(np.add.reduceat(rx, starts, axis=0), rs)
    death_risk = risk * rs.event
    d0 = np.add.reduceat(death_risk, starts)
    d1 = np.add.reduceat(rx * rs.event[:, None], starts, axis=0)
    g = rs.efron_group
    f = rs.efron_fraction
    den = s0[g] - f * d0[g]
    mean = (s1[g] - f[:, None] * d1[g]) / den[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = float(eta[rs.death_rows].sum() - np.log(den).sum())
    score = x[rs.death_rows].sum(axis=0) - mean.sum(axis=0)
    info = information_with_weights(rs, x, risk, den, mean, None)
    return FitState(loglik, score, info, risk, den, mean)


def information_with_weights(
    rs: RiskSets,
    x: FloatArray,
    risk: FloatArray,
    den: FloatArray,
    mean: FloatArray,
    row_weight: FloatArray | None,
) -> FloatArray:
    """``sum over Efron rows of w * ((S2 - f D2)/den - mean mean')`` as one cross-product.

    ``S2(g)/den`` summed over rows equals ``X' diag(risk * A) X`` with ``A`` the cumulative sum of
    ``1/den`` over the death groups a subject was at risk for; the tied deaths' share ``f D2``
    only touches the deaths of that group. ``row_weight`` (one per Efron row, default 1) serves the
    time-weighted blocks of the proportional hazards test.
    """
    g = rs.efron_group
    f = rs.efron_fraction
    w = np.ones(g.size) if row_weight is None else row_weight
    n_groups = rs.n_groups
    alpha = np.bincount(g, weights=w / den, minlength=n_groups)
    beta = np.bincount(g, weights=w * f / den, minlength=n_groups)
    cumulative = _forward_cumsum(alpha, rs)
    row = rs.group_of_row
    subject_weight = risk * (cumulative[row] - rs.event * beta[row])
    return (x * subject_weight[:, None]).T @ x - (mean * w[:, None]).T @ mean


def cholesky_inverse(
    matrix: FloatArray, tolerance: float = CHOLESKY_TOLERANCE
) -> tuple[FloatArray, list[int]]:
    """Invert a symmetric positive (semi)definite matrix by Cholesky, as R's ``cholesky2``/``chinv2``.

    Returns the inverse and the indices of columns whose pivot fell below ``tolerance`` times the
    largest diagonal element (columns that are constant or linear combinations of earlier ones).
    """
    p = matrix.shape[0]
    a = np.array(matrix, dtype=np.float64, copy=True)
    diag_max = float(np.max(np.diag(a))) if p else 0.0
    eps = tolerance * diag_max if diag_max > 0 else tolerance
    singular: list[int] = []
    lower = np.zeros_like(a)
    d = np.zeros(p)
    for i in range(p):
        pivot = a[i, i] - float(np.sum(lower[i, :i] ** 2 * d[:i]))
        if not np.isfinite(pivot) or pivot < eps:
            singular.append(i)
            d[i] = 0.0
            lower[i, i] = 1.0
            continue
        d[i] = pivot
        lower[i, i] = 1.0
        if i + 1 < p:
            lower[i + 1 :, i] = (a[i + 1 :, i] - (lower[i + 1 :, :i] * lower[i, :i] * d[:i]).sum(axis=1)) / pivot
    if singular:
        return np.full_like(a, np.nan), singular
    inv_lower = np.linalg.inv(lower)
    inverse = inv_lower.T @ (inv_lower / d[:, None])
    return (inverse + inverse.T) / 2, []


@dataclass(frozen=True)
class NewtonResult:
    """Outcome of :func:`newton_raphson` (coefficients on the scale of the centred matrix)."""

    beta: FloatArray
    variance: FloatArray
    loglik_initial: float
    loglik_final: float
    score_test: float
    score_final: FloatArray
    iterations: int
    state: FitState


def newton_raphson(
    rs: RiskSets,
    x: FloatArray,
    column_names: tuple[str, ...],
    *,
    eps: float,
    max_iter: int,
    toler_inf: float,
) -> NewtonResult:
    """Maximise the partial likelihood from ``beta = 0`` exactly as R's ``coxfit6`` does.

    Newton-Raphson steps; convergence when ``|1 - loglik_old / loglik_new| <= eps``; a step that
    lowers the log-likelihood (or overflows) is pulled back towards the last good ``beta``
    (``(new + h * old) / (h + 1)`` for the h-th consecutive halving).

    Raises
    ------
    ConvergenceError
        Collinear columns, running out of iterations, or a coefficient diverging (monotone
        likelihood, e.g. complete separation), naming the columns.
    """
    p = x.shape[1]
    beta = np.zeros(p)
    state = partial_likelihood(rs, x, beta)
    loglik0 = state.loglik
    inverse, singular = cholesky_inverse(state.information)
    if singular:
        names = ", ".join(repr(column_names[i]) for i in singular)
        raise ConvergenceError(
            f"covariates: column(s) {names} are constant or a linear combination of earlier columns "
            "(within strata); the model cannot be estimated - remove them"
        )
    step = inverse @ state.score
    score_test = float(state.score @ step)
    if max_iter == 0:
        return NewtonResult(beta, inverse, loglik0, loglik0, score_test, state.score, 0, state)
    best = loglik0
    best_state = state
    new_beta = beta + step
    halving = 0
    for iteration in range(1, max_iter + 1):
        new_state = partial_likelihood(rs, x, new_beta)
        new_inverse, singular = cholesky_inverse(new_state.information)
        finite = (
            np.isfinite(new_state.loglik)
            and bool(np.all(np.isfinite(new_state.score)))
            and bool(np.all(np.isfinite(new_state.information)))
        )
        if finite and not singular and abs(1 - best / new_state.loglik) <= eps:
            _check_infinite(new_state.score, new_inverse, new_beta, column_names, eps, toler_inf)
            return NewtonResult(
                new_beta, new_inverse, loglik0, new_state.loglik, score_test, new_state.score,
                iteration, new_state,
            )
        if iteration == max_iter:
            break
        if not finite or singular or new_state.loglik < best:
            halving += 1
            new_beta = (new_beta + halving * beta) / (halving + 1.0)
        else:
            halving = 0
            best = new_state.loglik
            best_state = new_state
            beta = new_beta
            new_beta = new_beta + new_inverse @ new_state.score
    last_inverse, _ = cholesky_inverse(best_state.information)
    still_moving = np.abs(last_inverse @ best_state.score) > toler_inf * np.maximum(np.abs(beta), 1.0)
    if still_moving.any() and np.all(np.isfinite(last_inverse)):
        names = ", ".join(repr(column_names[i]) for i in np.flatnonzero(still_moving))
        raise ConvergenceError(
            f"covariates: the coefficient of {names} kept growing for {max_iter} Newton-Raphson "
            f"iterations while the log-likelihood levelled off at {best:.6g}: the coefficient is "
            "infinite (monotone likelihood, e.g. complete separation: all events in one group). "
            "Remove or regroup that covariate."
        )
    raise ConvergenceError(
        f"Cox model did not converge in {max_iter} Newton-Raphson iterations "
        f"(log-likelihood {best:.6g}). Check the covariates {list(column_names)} for "
        "extreme values, or raise max_iter."
    )


def _check_infinite(
    score: FloatArray,
    inverse: FloatArray,
    beta: FloatArray,
    column_names: tuple[str, ...],
    eps: float,
    toler_inf: float,
) -> None:
    """R's "Loglik converged before variable ...; coefficient may be infinite" test, as an error."""
    remaining_step = np.abs(score @ inverse)
    diverging = ~np.isfinite(score) | ((remaining_step > eps) & (remaining_step > toler_inf * np.abs(beta)))
    if diverging.any():
        names = ", ".join(repr(column_names[i]) for i in np.flatnonzero(diverging))
        raise ConvergenceError(
            f"covariates: the log-likelihood converged while the coefficient of {names} kept "
            "growing: the coefficient is infinite (monotone likelihood, e.g. complete separation: "
            "all events in one group). Remove or regroup that covariate."
        )


def score_residuals(rs: RiskSets, x: FloatArray, state: FitState) -> FloatArray:
    """Score residuals per sorted row (n, p), as R's ``coxscore2`` (Efron or Breslow).

    For subject j: its own share of ``x_j - mean`` at its death, minus
    ``risk_j * sum (x_j - mean(t)) dLambda(t)`` over the death times it was at risk for; tied deaths
    at their own time carry the Efron weights ``1 - k/d``.
    """
    g = rs.efron_group
    f = rs.efron_fraction
    hazard = 1.0 / state.denominator
    mean = state.mean
    n_groups = rs.n_groups
    p = x.shape[1]
    h_sum = np.bincount(g, weights=hazard, minlength=n_groups)
    hm_sum = np.zeros((n_groups, p))
    np.add.at(hm_sum, g, mean * hazard[:, None])
    own = 1.0 - f
    h_own = np.bincount(g, weights=hazard * own, minlength=n_groups)
    hm_own = np.zeros((n_groups, p))
    np.add.at(hm_own, g, mean * (hazard * own)[:, None])
    mean_of_means = np.zeros((n_groups, p))
    np.add.at(mean_of_means, g, mean)
    deaths = np.maximum(rs.deaths_per_group, 1).astype(np.float64)
    mean_of_means /= deaths[:, None]
    cum_h = _forward_cumsum(h_sum, rs)
    cum_hm = _forward_cumsum(hm_sum, rs)
    row = rs.group_of_row
    risk = state.risk
    resid = -risk[:, None] * (x * cum_h[row][:, None] - cum_hm[row])
    dead = rs.death_rows
    gd = row[dead]
    # a death is not "at risk" with full weight in its own group: swap the full-weight term for
    # the Efron-weighted one and add its own contribution x - mean
    resid[dead] += risk[dead][:, None] * (x[dead] * h_sum[gd][:, None] - hm_sum[gd])
    resid[dead] -= risk[dead][:, None] * (x[dead] * h_own[gd][:, None] - hm_own[gd])
    resid[dead] += x[dead] - mean_of_means[gd]
    return resid


def time_weighted_score(
    rs: RiskSets, x: FloatArray, eta: FloatArray, group_time_weight: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Score (2p) and information (2p x 2p) of the model ``beta + gamma * g(t)`` at ``gamma = 0``.

    ``eta`` is the fitted linear predictor (sorted rows); ``group_time_weight`` is ``g(t)`` per
    (stratum, time) group. Blocks: ``I11`` as the fit, ``I12 = sum g * (...)``, ``I22 = sum g^2 (...)``,
    as R's ``zph1.c`` (Grambsch & Therneau 1994).
    """
    risk = np.exp(eta)
    starts = rs.group_start[:-1]
    s0 = _reverse_cumsum(np.add.reduceat(risk, starts), rs)
    rx = x * risk[:, None]
    s1 = _reverse_cumsum(np.add.reduceat(rx, starts, axis=0), rs)
    d0 = np.add.reduceat(risk * rs.event, starts)
    d1 = np.add.reduceat(rx * rs.event[:, None], starts, axis=0)
    g = rs.efron_group
    f = rs.efron_fraction
    den = s0[g] - f * d0[g]
    mean = (s1[g] - f[:, None] * d1[g]) / den[:, None]
    row_weight = group_time_weight[g]
    dead = rs.death_rows
    death_weight = group_time_weight[rs.group_of_row[dead]]
    u1 = x[dead].sum(axis=0) - mean.sum(axis=0)
    u2 = (x[dead] * death_weight[:, None]).sum(axis=0) - (mean * row_weight[:, None]).sum(axis=0)
    i11 = information_with_weights(rs, x, risk, den, mean, None)
    i12 = information_with_weights(rs, x, risk, den, mean, row_weight)
    i22 = information_with_weights(rs, x, risk, den, mean, row_weight**2)
    p = x.shape[1]
    info = np.empty((2 * p, 2 * p))
    info[:p, :p] = i11
    info[:p, p:] = i12
    info[p:, :p] = i12.T
    info[p:, p:] = i22
    return np.concatenate([u1, u2]), info
