"""Competing risks: Aalen-Johansen cumulative incidence per cause, as R's ``survfit`` multi-state.

``event`` codes 0 = censored and 1..k = the cause that ended follow-up. At each distinct time t_j with
n_j at risk, d_cj events of cause c and d_j events of any cause, the cumulative incidence of cause c
is F_c(t) = sum_{t_j <= t} S(t_{j-1}) d_cj / n_j, with S the Kaplan-Meier curve of any event (Aalen &
Johansen 1978). Its standard error is R's infinitesimal jackknife: the influence of subject i on
F_c(t) is sum_j [S(t_{j-1}) (dN_ci(t_j) - Y_i(t_j) h_cj) / n_j + h_cj dS(t_{j-1}) / dw_i] with h_cj =
d_cj / n_j; the variance is the sum of squared (weighted) influences. Subjects still at risk share one
influence and a subject's influence after it leaves grows linearly in F_c, so the variance at every
time needs cumulative sums only (no subject-by-time matrix). Intervals are R's default "log" type:
exp(log F -/+ z se / F), the upper limit at most 1.

References
----------
Aalen OO, Johansen S (1978). An empirical transition matrix for non-homogeneous Markov chains based
on censored observations. Scand J Stat 5:141-150.
Therneau TM. survival, R package: ``survfit`` with a factor status (``survfitCI``), ``finegray``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats as scipy_stats

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats._cox_core import cholesky_inverse
from oncorwe.stats._cox_input import _as_polars
from oncorwe.stats._km import _confidence_band
from oncorwe.stats._types import Estimate, Test
from oncorwe.stats._validate import (
    as_float_array,
    as_label_array,
    check_lengths,
    describe_positions,
    near_tie_cuts,
    snap_to_cuts,
    z_for_conf_level,
)
from oncorwe.stats._weights import covariate_matrix

__all__ = [
    "CumulativeIncidence",
    "FineGrayResult",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_cause_codes(event: Any, name: str = "event") -> IntArray:
    """Event codes as integers: 0 = censored, 1..k = causes (whole numbers >= 0)."""
    arr = as_float_array(event, name)
    bad = (arr < 0) | (arr != np.floor(arr))
    if bad.any():
        raise InputError(
            f"{name}: codes must be whole numbers 0 (censored), 1, 2, ... (the cause); other values "
            f"at {describe_positions(bad)}"
        )
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class CumulativeIncidence:
    """Aalen-Johansen cumulative incidence curves, one per cause (and group).

    Attributes
    ----------
    causes : tuple of int
        The cause codes (1..k as they occur in ``event``).
    groups : tuple of str
        Group labels (``("all",)`` without groups).
    table : polars.DataFrame
        ``group, cause, time, n_risk, n_event, estimate, se, lower, upper``: one row per cause
        and distinct time of the group (censoring times included), as R's ``pstate``/``std.err``
        (``se`` is the standard error of the cumulative incidence itself).
    conf_level : float
    gray_tests : dict of int to Test
        Gray's test of equal incidence across groups per cause (empty without groups).
    """

    causes: tuple[int, ...]
    groups: tuple[str, ...]
    table: pl.DataFrame
    conf_level: float
    gray_tests: dict[int, Test]

    def curve(self, cause: int, group: str | None = None) -> pl.DataFrame:
        """The rows of one cause (and group)."""
        if cause not in self.causes:
            raise InputError(f"cause: {cause!r} is not one of the causes {list(self.causes)}")
        label = self._group(group)
        return self.table.filter((pl.col("cause") == cause) & (pl.col("group") == label))

    def at(self, t: float, cause: int, group: str | None = None) -> Estimate:
        """F_cause(t) with its interval (0 before the first time)."""
        curve = self.curve(cause, group)
        times = curve["time"].to_numpy()
        row = int(np.searchsorted(times, t, side="right")) - 1
        if row < 0:
            return Estimate(0.0, 0.0, 0.0)
        return Estimate(float(curve["estimate"][row]), float(curve["lower"][row]), float(curve["upper"][row]))

    def _group(self, group: str | None) -> str:
        if group is None:
            if len(self.groups) > 1:
                raise InputError(f"group: name one of {list(self.groups)}")
            return self.groups[0]
        if str(group) not in self.groups:
            raise InputError(f"group: {group!r} is not one of {list(self.groups)}")
        return str(group)

    def to_frame(self) -> pl.DataFrame:
        """The curves (see ``table``)."""
        return self.table

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (curves as lists), suitable for JSON."""
        return {
            "causes": list(self.causes),
            "groups": list(self.groups),
            "conf_level": self.conf_level,
            "gray_tests": {str(c): test._asdict() for c, test in self.gray_tests.items()},
            "table": {name: values.to_list() for name, values in self.table.to_dict().items()},
        }

    def __repr__(self) -> str:
        return f"CumulativeIncidence(causes={list(self.causes)}, groups={list(self.groups)}, rows={self.table.height})"


def _aalen_johansen(
    time: FloatArray, cause: IntArray, weights: FloatArray, causes: tuple[int, ...]
) -> tuple[FloatArray, FloatArray, dict[int, tuple[FloatArray, FloatArray, FloatArray]]]:
    """Distinct times, weight at risk, and per cause (events, F, se(F)) by the jackknife."""
    distinct, position = np.unique(time, return_inverse=True)
    m = distinct.size
    total = np.bincount(position, weights=weights, minlength=m).astype(np.float64)
    n_risk = np.cumsum(total[::-1])[::-1]
    any_event = (cause > 0).astype(np.float64)
    d_all = np.bincount(position, weights=weights * any_event, minlength=m).astype(np.float64)
    hazard = d_all / n_risk
    survival = np.cumprod(1 - hazard)
    before = np.concatenate(([1.0], survival[:-1]))  # S(t_{j-1})
    survivors = n_risk - d_all
    with np.errstate(divide="ignore", invalid="ignore"):
        leave_step = np.where((d_all > 0) & (survivors > 0), hazard / survivors, 0.0)
        own_leave = np.where(survivors > 0, 1.0 / survivors, 0.0)
    b = np.cumsum(leave_step)  # B(j): influence on log S of a subject still at risk
    b_before = np.concatenate(([0.0], b[:-1]))
    c = b[position] - any_event * own_leave[position]  # influence on log S once the subject left
    w2 = weights * weights
    w2_after = np.append(np.cumsum(np.bincount(position, weights=w2, minlength=m)[::-1])[::-1][1:], 0.0)
    out: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}
    for code in causes:
        own = (cause == code).astype(np.float64)
        d_c = np.bincount(position, weights=weights * own, minlength=m).astype(np.float64)
        h_c = d_c / n_risk
        incidence = np.cumsum(before * h_c)
        g = np.cumsum(h_c * before * (b_before - 1.0 / n_risk))  # influence while at risk
        a = g[position] + before[position] * own / n_risk[position]
        alpha = a - c * incidence[position]

        def cumulative(values: FloatArray, pos: IntArray = position) -> FloatArray:
            return np.cumsum(np.bincount(pos, weights=values, minlength=m))

        variance = (
            g * g * w2_after
            + cumulative(w2 * alpha * alpha)
            + 2 * incidence * cumulative(w2 * alpha * c)
            + incidence * incidence * cumulative(w2 * c * c)
        )
        out[code] = (d_c, incidence, np.sqrt(np.maximum(variance, 0.0)))
    return distinct, n_risk, out


def cumulative_incidence(
    time: Any,
    event: Any,
    *,
    group: Any = None,
    weights: Any = None,
    conf_level: float = 0.95,
) -> CumulativeIncidence:
    """Aalen-Johansen cumulative incidence of each cause (see the module text).

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up time >= 0.
    event : array-like, shape (n,)
        0 = censored, 1..k = the cause that ended follow-up.
    group : array-like, shape (n,), optional
        Curves per group (the ``~ group`` of R's formula), with Gray's test per cause
        (`gray_test`; Gray's test is defined for unweighted data, so weighted curves come without).
    weights : array-like, shape (n,), optional
        Case weights > 0 (e.g. propensity weights).
    conf_level : float

    Raises
    ------
    InputError
        Bad times, codes, labels or weights (naming positions), or no event of any cause.
    """
    t = as_float_array(time, "time", non_negative=True)
    codes = check_cause_codes(event)
    check_lengths({"time": t, "event": codes})
    z = z_for_conf_level(conf_level)
    if weights is None:
        w = np.ones(t.size)
    else:
        w = as_float_array(weights, "weights")
        check_lengths({"time": t, "weights": w})
        if np.any(w <= 0):
            raise InputError(f"weights: must be > 0; other values at {describe_positions(w <= 0)}")
    causes = tuple(int(c) for c in np.unique(codes[codes > 0]))
    if not causes:
        raise InputError("event: no event of any cause (all codes are 0): nothing to estimate")
    cuts = near_tie_cuts(np.unique(t))
    if cuts is not None:
        t = snap_to_cuts(t, cuts)
    if group is None:
        labels = np.full(t.size, "all", dtype=object)
    else:
        labels = as_label_array(group, "group").astype(str)
        check_lengths({"time": t, "group": labels})
    frames = []
    group_names = tuple(str(g) for g in np.unique(labels))
    for name in group_names:
        rows = labels == name
        distinct, n_risk, per_cause = _aalen_johansen(t[rows], codes[rows], w[rows], causes)
        for code, (d_c, incidence, se) in per_cause.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                log_se = np.where(incidence > 0, se / np.where(incidence > 0, incidence, 1.0), np.inf)
            lower, upper = _confidence_band(incidence, log_se, "log", z)
            frames.append(
                pl.DataFrame(
                    {
                        "group": name, "cause": code, "time": distinct, "n_risk": n_risk,
                        "n_event": d_c, "estimate": incidence, "se": se, "lower": lower, "upper": upper,
                    },
                    schema={
                        "group": pl.String, "cause": pl.Int64, "time": pl.Float64, "n_risk": pl.Float64,
                        "n_event": pl.Float64, "estimate": pl.Float64, "se": pl.Float64,
                        "lower": pl.Float64, "upper": pl.Float64,
                    },
                )
            )
    tests: dict[int, Test] = {}
    if group is not None and len(group_names) > 1 and weights is None:
        tests = gray_test(t, codes, labels)
    return CumulativeIncidence(causes, group_names, pl.concat(frames), float(conf_level), tests)


def _gray_score(
    time: FloatArray, status: IntArray, group: IntArray, n_groups: int, rho: float
) -> tuple[FloatArray, FloatArray]:
    """Gray's score vector (first k-1 groups) and its variance for one cause in one stratum.

    ``status``: 0 censored, 1 the cause of interest, 2 any other cause; ``group`` codes 0..k-1.
    Walks the distinct event times once, keeping per group the left-continuous all-cause
    Kaplan-Meier S_g(t-) and cause-1 incidence F_g(t-); the pooled incidence F is the weighted
    combination with weights h_g = R_g / S_g(t-) (Gray 1988, section 2); the variance adds the
    asymptotic contributions of cause-1 and other-cause events with the tie corrections of cmprsk.
    """
    k = n_groups
    order = np.argsort(time, kind="stable")
    time, status, group = time[order], status[order], group[order]
    distinct, start = np.unique(time, return_index=True)
    bounds = np.append(start, time.size)
    at_risk = np.bincount(group, minlength=k).astype(np.float64)
    surv_left = np.ones(k)
    inc_left = np.zeros(k)
    pooled_left = 0.0
    score = np.zeros(k - 1)
    c = np.zeros((k, k))
    v3 = np.zeros(k)
    v2 = np.zeros((k - 1, k))
    v = np.zeros((k - 1, k - 1))
    for j in range(distinct.size):
        rows = slice(bounds[j], bounds[j + 1])
        g_rows, s_rows = group[rows], status[rows]
        d1 = np.bincount(g_rows[s_rows == 1], minlength=k).astype(np.float64)
        d2 = np.bincount(g_rows[s_rows == 2], minlength=k).astype(np.float64)
        nd1, nd2 = float(d1.sum()), float(d2.sum())
        leaving = np.bincount(g_rows, minlength=k).astype(np.float64)
        if nd1 == 0 and nd2 == 0:
            at_risk -= leaving
            continue
        present = at_risk > 0
        safe_risk = np.where(present, at_risk, 1.0)
        surv_right = np.where(present, surv_left * (at_risk - d1 - d2) / safe_risk, surv_left)
        inc_right = np.where(present, inc_left + surv_left * d1 / safe_risk, inc_left)
        safe_surv = np.where(present, surv_left, 1.0)
        h = np.where(present, at_risk / safe_surv, 0.0)
        total_h = float(h.sum())
        q = float(np.where(present, at_risk * (1 - inc_left) / safe_surv, 0.0).sum())
        pooled_right = pooled_left + nd1 / total_h
        weight = (1 - pooled_left) ** rho
        a = -weight * np.outer(h, h) / total_h
        a[np.diag_indices(k)] = weight * h * (1 - h / total_h)
        a[~present, :] = 0.0
        a[:, ~present] = 0.0
        c += a * nd1 / (total_h * (1 - pooled_left))
        first = present[: k - 1]
        score[first] += weight * (d1[: k - 1] - nd1 * h[: k - 1] * (1 - inc_left[: k - 1]) / q)[first]
        if nd1 > 0:
            for g in np.flatnonzero(present):
                t4 = 1 - (1 - pooled_right) / surv_right[g] if surv_right[g] > 0 else 1.0
                t5 = 1 - (nd1 - 1) / (total_h * surv_left[g] - 1) if nd1 > 1 else 1.0
                t3 = t5 * surv_left[g] * nd1 / (total_h * at_risk[g])
                v3[g] += t4 * t4 * t3
                t1 = a[: k - 1, g] - t4 * c[: k - 1, g]
                v2[:, g] += t1 * t4 * t3
                v += np.outer(t1, t1) * t3
        if nd2 > 0:
            for g in np.flatnonzero(present & (surv_right > 0) & (d2 > 0)):
                t4 = (1 - pooled_right) / surv_right[g]
                t5 = 1 - (d2[g] - 1) / (at_risk[g] - 1) if d2[g] > 1 else 1.0
                t3 = t5 * surv_left[g] ** 2 * d2[g] / at_risk[g] ** 2
                v3[g] += t4 * t4 * t3
                t1 = t4 * c[: k - 1, g]
                v2[:, g] -= t1 * t4 * t3
                v += np.outer(t1, t1) * t3
        at_risk -= leaving
        pooled_left = pooled_right
        inc_left, surv_left = inc_right, surv_right
    cc = c[: k - 1]
    v += (cc * v3[None, :]) @ cc.T + cc @ v2.T + v2 @ cc.T
    return score, v


def gray_test(
    time: Any,
    event: Any,
    group: Any,
    *,
    cause: int | None = None,
    strata: Any = None,
    rho: float = 0.0,
) -> dict[int, Test]:
    """Gray's K-sample test that the cumulative incidence of a cause is equal across groups.

    The score compares each group's subdistribution hazard with the pooled one, weighted by
    (1 - F(t-))^rho (rho = 0, the default, as ``cmprsk::cuminc``); the statistic s' V^-1 s is
    referred to chi-square with (groups - 1) degrees of freedom. Scores and variances add over
    ``strata``. Returns one test per cause (or only ``cause``), as ``cuminc(...)$Tests``.

    References
    ----------
    Gray RJ (1988). A class of K-sample tests for comparing the cumulative incidence of a
    competing risk. Ann Stat 16:1141-1154. R package ``cmprsk`` (``cuminc``).

    Raises
    ------
    InputError
        Bad input, fewer than two groups, or an unknown cause.
    """
    t = as_float_array(time, "time", non_negative=True)
    codes = check_cause_codes(event)
    labels = as_label_array(group, "group").astype(str)
    check_lengths({"time": t, "event": codes, "group": labels})
    levels, group_codes = np.unique(labels, return_inverse=True)
    if levels.size < 2:
        raise InputError(f"group: Gray's test needs at least two groups, got {levels.tolist()}")
    strata_codes = (
        np.zeros(t.size, dtype=np.int64) if strata is None
        else np.unique(as_label_array(strata, "strata").astype(str), return_inverse=True)[1]
    )
    check_lengths({"time": t, "strata": strata_codes})
    causes = [int(c) for c in np.unique(codes[codes > 0])]
    if cause is not None:
        if cause not in causes:
            raise InputError(f"cause: {cause!r} does not occur in event; causes are {causes}")
        causes = [cause]
    k = int(levels.size)
    out: dict[int, Test] = {}
    for code in causes:
        status = np.where(codes == code, 1, np.where(codes > 0, 2, 0)).astype(np.int64)
        score = np.zeros(k - 1)
        variance = np.zeros((k - 1, k - 1))
        for s in np.unique(strata_codes):
            rows = strata_codes == s
            sc, var = _gray_score(t[rows], status[rows], group_codes[rows].astype(np.int64), k, float(rho))
            score += sc
            variance += var
        statistic = float(score @ np.linalg.solve(variance, score))
        out[code] = Test(statistic, float(k - 1), float(scipy_stats.chi2.sf(statistic, k - 1)))
    return out


@dataclass(frozen=True, eq=False)
class FineGrayResult:
    """A Fine-Gray subdistribution hazards fit.

    Attributes
    ----------
    cause : int
        The event code modelled; every other non-zero code is a competing event.
    terms, coef, se : model columns (dummies ``f"{column}={level}"``), log subdistribution hazard
        ratios and their model-based standard errors: R's ``fit$naive.var`` of ``coxph`` on
        ``finegray`` data. (R's default ``fit$var`` there is a sandwich over the expanded rows,
        which is not computed here.)
    variance : the variance matrix; ``loglik``: (at 0, at the estimate) of the weighted partial
        likelihood; ``n``, ``n_events``, ``n_competing``, ``n_dropped``; ``ties``; ``iterations``.
    """

    cause: int
    terms: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    variance: tuple[tuple[float, ...], ...]
    loglik: tuple[float, float]
    n: int
    n_events: int
    n_competing: int
    n_dropped: int
    ties: str
    iterations: int
    conf_level: float

    def to_frame(self) -> pl.DataFrame:
        """One row per term: term, coef, se, hazard_ratio (subdistribution), lower, upper, z, p_value."""
        coef = np.array(self.coef)
        se = np.array(self.se)
        z = coef / se
        quantile = z_for_conf_level(self.conf_level)
        return pl.DataFrame(
            {
                "term": list(self.terms), "coef": coef, "se": se, "hazard_ratio": np.exp(coef),
                "lower": np.exp(coef - quantile * se), "upper": np.exp(coef + quantile * se),
                "z": z, "p_value": 2 * scipy_stats.norm.sf(np.abs(z)),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (no per-patient data)."""
        return {
            "cause": self.cause, "coefficients": self.to_frame().to_dicts(), "loglik": list(self.loglik),
            "n": self.n, "n_events": self.n_events, "n_competing": self.n_competing,
            "n_dropped": self.n_dropped, "ties": self.ties, "iterations": self.iterations,
            "conf_level": self.conf_level,
        }

    def __repr__(self) -> str:
        terms = ", ".join(f"{t}: sHR={math.exp(b):.4g}" for t, b in zip(self.terms, self.coef, strict=True))
        return f"FineGrayResult(cause={self.cause}, n={self.n}, events={self.n_events}, {terms})"


def _censoring_survival_before(time: FloatArray, codes: IntArray, at: FloatArray) -> FloatArray:
    """G(t-) of the censoring distribution at each ``at``: the Kaplan-Meier curve of censoring in
    which an event at the same time as a censoring comes first (R's ``finegray``)."""
    distinct, position = np.unique(time, return_inverse=True)
    m = distinct.size
    leaving = np.bincount(position, minlength=m).astype(np.float64)
    at_risk = np.cumsum(leaving[::-1])[::-1]
    events = np.bincount(position, weights=(codes > 0).astype(np.float64), minlength=m)
    censored = leaving - events
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(censored > 0, 1 - censored / (at_risk - events), 1.0)
    curve = np.cumprod(factor)
    index = np.searchsorted(distinct, at, side="left") - 1  # last censoring time strictly before
    return np.where(index >= 0, curve[np.maximum(index, 0)], 1.0)


@dataclass(frozen=True)
class _FineGrayData:
    """What the Fine-Gray likelihood needs that does not depend on beta."""

    x: FloatArray
    position: IntArray  # distinct-time index of each row
    n_times: int
    competing_weight: FloatArray  # 1 / G(T_k-) for competing events, else 0
    event_times: IntArray  # distinct-time index of each cause event time (sorted, unique)
    g_at_event: FloatArray  # G(t-) at each cause event time
    efron_time: IntArray  # per event row (grouped by time): index into event_times
    efron_fraction: FloatArray
    event_rows: IntArray  # rows with the cause, ordered by time


def _fine_gray_data(x: FloatArray, time: FloatArray, codes: IntArray, cause: int, efron: bool) -> _FineGrayData:
    distinct, position = np.unique(time, return_inverse=True)
    own = codes == cause
    competing = (codes > 0) & ~own
    event_rows = np.flatnonzero(own)
    event_rows = event_rows[np.argsort(position[event_rows], kind="stable")]
    event_times, counts = np.unique(position[event_rows], return_counts=True)
    efron_time = np.repeat(np.arange(event_times.size), counts)
    if efron:
        k = np.arange(efron_time.size) - np.repeat(np.cumsum(counts) - counts, counts)
        fraction = k / np.repeat(counts, counts).astype(np.float64)
    else:
        fraction = np.zeros(efron_time.size)
    weight = np.zeros(time.size)
    weight[competing] = 1.0 / _censoring_survival_before(time, codes, time[competing])
    return _FineGrayData(
        x=x, position=position.astype(np.int64), n_times=int(distinct.size), competing_weight=weight,
        event_times=event_times.astype(np.int64), g_at_event=_censoring_survival_before(time, codes, distinct[event_times]),
        efron_time=efron_time.astype(np.int64), efron_fraction=fraction, event_rows=event_rows.astype(np.int64),
    )


def _fine_gray_likelihood(data: _FineGrayData, beta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """Log partial likelihood, score and information of the Fine-Gray model at ``beta``.

    At an event time t of the cause the risk set holds everyone with time >= t (weight 1) and
    everyone with an earlier competing event k (weight G(t-) / G(T_k-)), as the rows R's
    ``finegray`` writes; tied events follow Efron's rule (or Breslow's: all fractions 0).
    """
    x = data.x
    n, p = x.shape
    eta = x @ beta
    risk = np.exp(eta - eta.max())  # a common factor cancels in every ratio
    stacked = np.column_stack([risk, risk[:, None] * x, risk[:, None] * (x[:, :, None] * x[:, None, :]).reshape(n, p * p)])
    per_time = np.zeros((data.n_times, stacked.shape[1]))
    np.add.at(per_time, data.position, stacked)
    at_or_after = np.cumsum(per_time[::-1], axis=0)[::-1]
    competing = np.zeros_like(per_time)
    np.add.at(competing, data.position, stacked * data.competing_weight[:, None])
    strictly_before = np.cumsum(competing, axis=0) - competing
    e = data.event_times
    total = at_or_after[e] + data.g_at_event[:, None] * strictly_before[e]
    deaths = np.zeros((e.size, stacked.shape[1]))
    np.add.at(deaths, data.efron_time, stacked[data.event_rows])
    row_total = total[data.efron_time] - data.efron_fraction[:, None] * deaths[data.efron_time]
    den = row_total[:, 0]
    mean = row_total[:, 1 : 1 + p] / den[:, None]
    second = row_total[:, 1 + p :].reshape(-1, p, p) / den[:, None, None]
    loglik = float(eta[data.event_rows].sum() - np.log(den).sum() - data.event_rows.size * eta.max())
    score = x[data.event_rows].sum(axis=0) - mean.sum(axis=0)
    info = second.sum(axis=0) - mean.T @ mean
    return loglik, score, info


def fine_gray(
    data: Any,
    *,
    time: str,
    event: str,
    cause: int,
    covariates: Sequence[str],
    ties: Literal["efron", "breslow"] = "efron",
    conf_level: float = 0.95,
    eps: float = 1e-9,
    max_iter: int = 20,
) -> FineGrayResult:
    """Fine-Gray proportional subdistribution hazards model, as R's ``finegray()`` then ``coxph``.

    ``coxph(Surv(fgstart, fgstop, fgstatus) ~ covariates, weights = fgwt, data = finegray(...))``:
    patients with a competing event stay in the risk set after it, weighted by the probability of
    still being uncensored, G(t-) / G(T-), G the Kaplan-Meier curve of censoring (Fine & Gray 1999;
    Geskus 2011). Newton-Raphson from 0 as ``coxph`` (convergence when the log-likelihood changes by
    less than ``eps`` relatively). Rows with a missing value in a used column are dropped.

    Parameters
    ----------
    data : polars or pandas DataFrame
    time, event : str
        Follow-up time and event code (0 censored, 1..k causes).
    cause : int
        The code of the event of interest.
    covariates : sequence of str
        Numeric, boolean or string (dummy-coded) columns.
    ties : {"efron", "breslow"}

    Raises
    ------
    InputError
        Unknown columns, bad codes, no event of ``cause``.
    ConvergenceError
        Collinear or separating covariates, or no convergence, naming the columns.

    References
    ----------
    Fine JP, Gray RJ (1999). A proportional hazards model for the subdistribution of a competing
    risk. JASA 94:496-509. Geskus RB (2011). Cause-specific cumulative incidence estimation and the
    Fine and Gray model under both left truncation and right censoring. Biometrics 67:39-49.
    """
    if ties not in ("efron", "breslow"):
        raise InputError(f"ties: must be 'efron' or 'breslow', got {ties!r}")
    frame = _as_polars(data)
    for argument, name in (("time", time), ("event", event)):
        if not isinstance(name, str) or name not in frame.columns:
            raise InputError(f"{argument}: column {name!r} not found in data; columns are {frame.columns}")
    used = list(dict.fromkeys([time, event, *covariates]))
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise InputError(f"covariates: column(s) {missing} not found in data; columns are {frame.columns}")
    before_rows = frame.height
    frame = frame.select(used).drop_nulls()
    n_dropped = before_rows - frame.height
    if frame.height == 0:
        raise InputError("data: no rows left after dropping rows with missing values in the used columns")
    time_values = as_float_array(frame.get_column(time), f"time column {time!r}", non_negative=True)
    codes = check_cause_codes(frame.get_column(event), f"event column {event!r}")
    cuts = near_tie_cuts(np.unique(time_values))
    if cuts is not None:
        time_values = snap_to_cuts(time_values, cuts)
    if not isinstance(cause, int) or isinstance(cause, bool) or cause < 1:
        raise InputError(f"cause: an event code >= 1 is required, got {cause!r}")
    if not np.any(codes == cause):
        raise InputError(f"cause: no event with code {cause} among the {frame.height} rows used")
    x, columns, _ = covariate_matrix(frame, covariates)
    x = x - x.mean(axis=0)
    fg = _fine_gray_data(x, time_values, codes, cause, ties == "efron")
    beta = np.zeros(x.shape[1])
    loglik0, score, info = _fine_gray_likelihood(fg, beta)
    inverse, singular = cholesky_inverse(info)
    if singular:
        raise ConvergenceError(
            f"covariates: column(s) {[columns[i] for i in singular]} carry no information (constant or "
            "collinear among the rows used); remove them"
        )
    loglik = loglik0
    iterations = 0
    converged = False
    for iteration in range(1, max_iter + 1):
        iterations = iteration
        step = inverse @ score
        new_beta = beta + step
        new_loglik, new_score, new_info = _fine_gray_likelihood(fg, new_beta)
        halving = 0
        while (not math.isfinite(new_loglik) or new_loglik < loglik) and halving < 30:
            halving += 1
            new_beta = (new_beta + beta) / 2
            new_loglik, new_score, new_info = _fine_gray_likelihood(fg, new_beta)
        done = abs(new_loglik - loglik) <= eps * abs(new_loglik)
        beta, loglik, score, info = new_beta, new_loglik, new_score, new_info
        inverse, singular = cholesky_inverse(info)
        if singular or not np.all(np.isfinite(beta)):
            break
        if done:
            converged = True
            break
    if not converged or singular:
        spread = np.abs(beta) * x.std(axis=0)
        suspects = [columns[i] for i in np.argsort(-spread)[:2]]
        raise ConvergenceError(
            f"fine_gray: no convergence in {max_iter} iterations (log-likelihood {loglik:.6g}); a "
            f"coefficient may be infinite (separation), most likely {suspects}"
        )
    se = np.sqrt(np.diag(inverse))
    return FineGrayResult(
        cause=cause, terms=columns, coef=tuple(float(b) for b in beta), se=tuple(float(v) for v in se),
        variance=tuple(tuple(float(v) for v in row) for row in inverse), loglik=(loglik0, loglik),
        n=int(time_values.size), n_events=int(np.sum(codes == cause)),
        n_competing=int(np.sum((codes > 0) & (codes != cause))), n_dropped=n_dropped, ties=ties,
        iterations=iterations, conf_level=float(conf_level),
    )
