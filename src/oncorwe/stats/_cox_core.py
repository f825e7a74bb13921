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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.errors import ConvergenceError

__all__ = [
    "CHOLESKY_TOLERANCE",
    "EfronSums",
    "FitState",
    "RiskSets",
    "cholesky_inverse",
    "death_group_weights",
    "efron_sums",
    "forward_cumsum",
    "newton_raphson",
    "partial_likelihood",
    "risk_sets",
    "sort_order",
    "sorted_columns",
    "weighted_death_sum",
    "weighted_information",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: R's ``coxph.control()$toler.chol`` (.Machine$double.eps ^ 0.75).
CHOLESKY_TOLERANCE = float(np.finfo(np.float64).eps ** 0.75)


@dataclass(frozen=True)
class RiskSets:
    """Sorting and grouping of the data, computed once per fit.

    Rows are sorted by (stratum, time ascending, events before censorings). A *group* is a distinct
    (stratum, time): ``group_start`` has ``G + 1`` entries; each group is one block of deaths then
    one block of censorings (``block_start`` lists the non-empty blocks, for ``np.add.reduceat``).
    ``death_groups`` are the groups with at least one death; the "Efron rows" expand death group
    ``j`` into ``d_j`` rows with ``efron_fraction`` ``k/d_j`` (all zero for Breslow).
    """

    order: IntArray
    time: FloatArray
    event: npt.NDArray[np.int8]
    strata: IntArray
    group_start: IntArray
    group_size: IntArray
    stratum_groups: tuple[tuple[int, int], ...]
    deaths_per_group: IntArray
    death_groups: IntArray
    block_start: IntArray
    block_size: IntArray
    block_is_death: npt.NDArray[np.bool_]
    block_group: IntArray
    first_block_of_group: IntArray
    efron_group: IntArray
    efron_start: IntArray
    efron_fraction: FloatArray
    death_rows: IntArray

    @property
    def n_groups(self) -> int:
        return int(self.group_size.size)

    def per_row(self, group_values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Spread one value per group to the rows of that group (sorted order)."""
        return np.repeat(group_values, self.group_size, axis=0)


def sort_order(time: FloatArray, event: npt.NDArray[np.int8], strata: IntArray) -> IntArray:
    """Row order by (stratum, time, events before censorings).

    One unstable sort by time, a stable sort by stratum, then a stable pass over the (nearly
    sorted) group keys that puts deaths first inside each (stratum, time); the result is a
    deterministic function of the input.
    """
    order = np.argsort(time)
    if strata.size and strata.max() > 0:
        order = order[np.argsort(strata[order], kind="stable")]
    t = time[order]
    s = strata[order]
    new_group = np.empty(t.size, dtype=np.int64)
    new_group[0] = 0
    np.logical_or(t[1:] != t[:-1], s[1:] != s[:-1], out=new_group[1:], casting="unsafe")
    key = np.cumsum(new_group) * 2 + (event[order] != 1)
    return order[np.argsort(key, kind="stable")].astype(np.int64)


def sorted_columns(x: FloatArray, order: IntArray, center: FloatArray) -> FloatArray:
    """``x[order] - center`` as a column-major array (each column gathered on its own: fast)."""
    out = np.empty(x.shape, dtype=np.float64, order="F")
    for j in range(x.shape[1]):
        np.take(x[:, j], order, out=out[:, j])
        out[:, j] -= center[j]
    return out


def risk_sets(
    time: FloatArray, event: npt.NDArray[np.int8], strata: IntArray, *, efron: bool
) -> RiskSets:
    """Sort once and describe the risk sets (see :class:`RiskSets`)."""
    order = sort_order(time, event, strata)
    t = time[order]
    e = event[order]
    s = strata[order]
    n = t.size
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.logical_or(t[1:] != t[:-1], s[1:] != s[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    group_start = np.append(starts, n).astype(np.int64)
    group_size = np.diff(group_start)
    group_stratum = s[starts]
    bounds = np.flatnonzero(np.diff(group_stratum)) + 1
    edges = [0, *bounds.tolist(), int(starts.size)]
    stratum_groups = tuple((edges[i], edges[i + 1]) for i in range(len(edges) - 1))
    deaths = np.add.reduceat(e.astype(np.int64), starts)
    death_groups = np.flatnonzero(deaths)
    block_start = np.sort(
        np.concatenate([starts[deaths > 0], (starts + deaths)[group_size > deaths]])
    ).astype(np.int64)
    first_block_of_group = np.searchsorted(block_start, starts).astype(np.int64)
    block_size = np.diff(np.append(block_start, n)).astype(np.int64)
    block_is_death = e[block_start] == 1
    block_group = (np.searchsorted(starts, block_start, side="right") - 1).astype(np.int64)
    d = deaths[death_groups]
    efron_group = np.repeat(np.arange(death_groups.size), d)
    if efron:
        # k = 0..d-1 inside each group: position in the repeated block
        k = np.arange(efron_group.size) - np.repeat(np.cumsum(d) - d, d)
        fraction = k / np.repeat(d, d).astype(np.float64)
    else:
        fraction = np.zeros(efron_group.size)
    return RiskSets(
        order=order,
        time=t,
        event=e,
        strata=s,
        group_start=group_start,
        group_size=group_size,
        stratum_groups=stratum_groups,
        deaths_per_group=deaths,
        death_groups=death_groups.astype(np.int64),
        block_start=block_start,
        block_size=block_size,
        block_is_death=block_is_death,
        block_group=block_group,
        first_block_of_group=first_block_of_group,
        efron_group=efron_group.astype(np.int64),
        efron_start=(np.cumsum(d) - d).astype(np.int64),
        efron_fraction=fraction,
        death_rows=np.flatnonzero(e).astype(np.int64),
    )


def _reverse_cumsum(values: npt.NDArray[Any], rs: RiskSets) -> FloatArray:
    """Sum over groups at or after each group, within its stratum (the risk-set sums)."""
    out = np.empty_like(values)
    for g0, g1 in rs.stratum_groups:
        out[g0:g1] = np.cumsum(values[g0:g1][::-1], axis=0)[::-1]
    return out


def forward_cumsum(values: npt.NDArray[Any], rs: RiskSets) -> FloatArray:
    """Sum over groups at or before each group, within its stratum."""
    out = np.empty_like(values)
    for g0, g1 in rs.stratum_groups:
        out[g0:g1] = np.cumsum(values[g0:g1], axis=0)
    return out


@dataclass(frozen=True)
class EfronSums:
    """Per death group: risk-set sums and the sums over its Efron rows that everything needs.

    With ``den_k = s0 - f_k d0`` and ``f_k = k/d``: ``inv = sum 1/den_k``, ``f_inv = sum f_k/den_k``,
    ``inv2 = sum 1/den_k^2``, ``f_inv2 = sum f_k/den_k^2``, ``ff_inv2 = sum f_k^2/den_k^2``,
    ``log_den = sum log den_k``; ``s1``/``d1`` are the risk-set and tied-death sums of ``risk * x``.
    The mean of Efron row k is ``(s1 - f_k d1) / den_k``, so every sum over rows is a combination of
    these (no array of length "number of deaths" times p is ever formed).
    """

    s1: FloatArray
    d1: FloatArray
    inv: FloatArray
    f_inv: FloatArray
    inv2: FloatArray
    f_inv2: FloatArray
    ff_inv2: FloatArray
    log_den: FloatArray


def efron_sums(rs: RiskSets, x: FloatArray, risk: FloatArray) -> EfronSums:
    """Risk-set sums at each death group and the Efron-row sums (see :class:`EfronSums`)."""
    block0 = np.add.reduceat(risk, rs.block_start)
    block1 = np.add.reduceat(x * risk[:, None], rs.block_start, axis=0)
    first = rs.first_block_of_group
    s0 = _reverse_cumsum(np.add.reduceat(block0, first), rs)
    s1 = _reverse_cumsum(np.add.reduceat(block1, first, axis=0), rs)
    dg = rs.death_groups
    n_death_groups = dg.size
    death_block = first[dg]
    d0 = block0[death_block]
    d1 = block1[death_block]
    g = rs.efron_group
    f = rs.efron_fraction
    den = s0[dg][g] - f * d0[g]
    inv_den = 1.0 / den
    inv_den2 = inv_den * inv_den

    def by_group(values: FloatArray) -> FloatArray:
        # Efron rows of one death group are contiguous: a segmented sum
        return np.add.reduceat(values, rs.efron_start) if n_death_groups else np.zeros(0)

    with np.errstate(divide="ignore", invalid="ignore"):
        log_den = by_group(np.log(den))
    return EfronSums(
        s1=s1[dg],
        d1=d1,
        inv=by_group(inv_den),
        f_inv=by_group(f * inv_den),
        inv2=by_group(inv_den2),
        f_inv2=by_group(f * inv_den2),
        ff_inv2=by_group(f * f * inv_den2),
        log_den=log_den,
    )


def weighted_information(
    rs: RiskSets, x: FloatArray, risk: FloatArray, sums: EfronSums, weight: FloatArray | None
) -> FloatArray:
    """``sum over Efron rows of w * ((S2 - f D2)/den - mean mean')`` as one cross-product.

    ``S2(g)/den`` summed over rows equals ``X' diag(risk * A) X`` with ``A`` the cumulative sum of
    ``1/den`` over the death groups a subject was at risk for; the tied deaths' share ``f D2``
    only touches the deaths of that group. ``weight`` (one per death group, default 1) serves the
    time-weighted blocks of the proportional hazards test.
    """
    w = np.ones(rs.death_groups.size) if weight is None else weight
    at_group = np.zeros(rs.n_groups)
    at_group[rs.death_groups] = w * sums.inv
    own = np.zeros(rs.n_groups)
    own[rs.death_groups] = w * sums.f_inv
    # per block (deaths / censorings of one time): cumulative 1/den, minus the deaths' Efron share
    block_weight = forward_cumsum(at_group, rs)[rs.block_group] - rs.block_is_death * own[rs.block_group]
    subject_weight = risk * np.repeat(block_weight, rs.block_size)
    s1, d1 = sums.s1, sums.d1
    cross = (s1 * (w * sums.f_inv2)[:, None]).T @ d1
    mean_part = (s1 * (w * sums.inv2)[:, None]).T @ s1 - cross - cross.T
    mean_part += (d1 * (w * sums.ff_inv2)[:, None]).T @ d1
    return (x * subject_weight[:, None]).T @ x - mean_part


@dataclass(frozen=True)
class FitState:
    """Log partial likelihood, score and information at one ``beta`` (plus the pieces reused).

    ``risk`` is exp(eta) per sorted row (without case weights); ``death_weight`` is the mean case
    weight of the deaths of each death group (None when unweighted: all 1).
    """

    loglik: float
    score: FloatArray
    information: FloatArray
    risk: FloatArray
    sums: EfronSums
    death_weight: FloatArray | None = None


def death_group_weights(rs: RiskSets, weights: FloatArray) -> FloatArray:
    """Mean case weight of the tied deaths of each death group (sorted-row ``weights``).

    With case weights every Efron row of a group carries this mean weight, as R's ``coxfit6``.
    """
    if rs.death_groups.size == 0:
        return np.zeros(0)
    d = rs.deaths_per_group[rs.death_groups].astype(np.float64)
    return np.add.reduceat(weights[rs.death_rows], rs.efron_start) / d


def partial_likelihood(
    rs: RiskSets,
    x: FloatArray,
    beta: FloatArray,
    death_x_sum: FloatArray | None = None,
    weights: FloatArray | None = None,
) -> FitState:
    """Log partial likelihood (Efron or Breslow, as ``rs`` was built), score vector, information.

    ``x`` is the sorted, centred model matrix (n, p). For the Efron row k of a death group:
    denominator ``S0 - f D0``, mean ``(S1 - f D1) / den`` with ``f = k/d``, where ``S`` sums over
    the risk set and ``D`` over the tied deaths (Efron 1977); Breslow is ``f = 0``. With case
    ``weights`` (sorted rows) the sums are of ``w exp(eta)``, a death contributes ``w x`` and each
    Efron row is weighted by the group's mean death weight (R's ``coxph(weights = w)``).
    """
    if death_x_sum is None:
        death_x_sum = weighted_death_sum(rs, x, weights)
    eta = x @ beta
    risk = np.exp(eta)
    if weights is None:
        sums = efron_sums(rs, x, risk)
        loglik = float(death_x_sum @ beta - sums.log_den.sum())
        score = death_x_sum - (sums.s1 * sums.inv[:, None] - sums.d1 * sums.f_inv[:, None]).sum(axis=0)
        info = weighted_information(rs, x, risk, sums, None)
        return FitState(loglik, score, info, risk, sums)
    group_weight = death_group_weights(rs, weights)
    sums = efron_sums(rs, x, risk * weights)
    loglik = float(death_x_sum @ beta - (group_weight * sums.log_den).sum())
    row_means = sums.s1 * sums.inv[:, None] - sums.d1 * sums.f_inv[:, None]
    score = death_x_sum - (row_means * group_weight[:, None]).sum(axis=0)
    info = weighted_information(rs, x, risk * weights, sums, group_weight)
    return FitState(loglik, score, info, risk, sums, group_weight)


def weighted_death_sum(rs: RiskSets, x: FloatArray, weights: FloatArray | None) -> FloatArray:
    """``sum over deaths of w x`` (w = 1 without weights)."""
    if weights is None:
        return x[rs.death_rows].sum(axis=0)
    return weights[rs.death_rows] @ x[rs.death_rows]


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
    state: Any  # a FitState on rows; the pooled state of the centres' sums in _cox_federated


def newton_raphson(
    rs: RiskSets,
    x: FloatArray,
    column_names: tuple[str, ...],
    *,
    eps: float,
    max_iter: int,
    toler_inf: float,
    weights: FloatArray | None = None,
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
    death_x_sum = weighted_death_sum(rs, x, weights)
    return newton_raphson_on(
        lambda beta: partial_likelihood(rs, x, beta, death_x_sum, weights), x.shape[1], column_names,
        eps=eps, max_iter=max_iter, toler_inf=toler_inf)


def newton_raphson_on(
    state_at: Callable[[FloatArray], Any],
    p: int,
    column_names: tuple[str, ...],
    *,
    eps: float,
    max_iter: int,
    toler_inf: float,
) -> NewtonResult:
    """The iteration of :func:`newton_raphson` on any partial-likelihood state: ``state_at(beta)``
    gives an object with ``loglik``, ``score`` and ``information`` at ``beta`` (the rows' sums here,
    the centres' pooled sums in ``_cox_federated``). The last call is at the returned coefficients.
    """
    beta = np.zeros(p)
    state = state_at(beta)
    loglik0 = state.loglik
    inverse, singular = cholesky_inverse(state.information)
    if singular:
        names = ", ".join(repr(column_names[i]) for i in singular)
        raise ConvergenceError(
            f"covariates: column(s) {names} carry no information: constant or a linear combination "
            "of earlier columns (within strata), or never different between a subject with an event "
            "and those at risk with it; the model cannot be estimated - remove them"
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
        new_state = state_at(new_beta)
        new_inverse, singular = cholesky_inverse(new_state.information)
        finite = (
            np.isfinite(new_state.loglik)
            and bool(np.all(np.isfinite(new_state.score)))
            and bool(np.all(np.isfinite(new_state.information)))
        )
        if finite and not singular and _converged(best, new_state.loglik, eps):
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


def _converged(previous: float, current: float, eps: float) -> bool:
    """R's test ``|1 - previous / current| <= eps``, written so that a log-likelihood of 0 works."""
    return abs(current - previous) <= eps * abs(current)


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
