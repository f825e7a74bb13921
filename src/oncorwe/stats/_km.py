"""Kaplan-Meier estimator with Greenwood standard errors, as R's ``survival::survfit`` computes it.

Numerical kernels (`_risk_table`, `_confidence_band`, `_find_quantile`, `_print_median`) are pure
functions over sorted arrays; `kaplan_meier` validates its input and wraps them in an immutable
`KaplanMeier` result.

References
----------
Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc 1958;
53:457-81.
Greenwood M. The natural duration of cancer. Rep Public Health Med Subj 1926;33:1-26.
Schemper M, Smith TL. A note on quantifying follow-up in studies of failure time. Control Clin
Trials 1996;17:343-6.
Therneau TM. survival: R package, functions ``survfitKM``, ``survfit_confint``, ``quantile.survfit``
and ``survmean`` (version 3.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import ndtri

from oncorwe.errors import InputError
from oncorwe.stats._types import Estimate
from oncorwe.stats._validate import (
    as_float_array,
    check_lengths,
    check_time_event,
    describe_positions,
    near_tie_cuts,
    snap_to_cuts,
    z_for_conf_level,
)

__all__ = ["ConfType", "KaplanMeier", "RestrictedMean", "kaplan_meier", "reverse_km_followup"]

ConfType = Literal["log", "log-log", "plain"]
_CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain")

#: R's ``sqrt(.Machine$double.eps)``: survival values this close to a quantile count as equal to it.
_TOLERANCE = math.sqrt(np.finfo(np.float64).eps)

FloatArray = npt.NDArray[np.float64]


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _risk_table(
    time: FloatArray, event: npt.NDArray[np.int8]
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per distinct time (censored-only times included): time, n at risk, n events, n censored.

    Vectorised: one sort of all times and one of event times, no loop over rows.
    """
    n = time.shape[0]
    sorted_time = np.sort(time)
    is_first = np.empty(n, dtype=bool)
    is_first[0] = True
    np.not_equal(sorted_time[1:], sorted_time[:-1], out=is_first[1:])
    first_position = np.flatnonzero(is_first)
    distinct_time = sorted_time[first_position]
    n_at_time = np.diff(np.append(first_position, n))
    n_risk = (n - first_position).astype(np.float64)
    event_time = time[event == 1]  # a fresh array: sort in place
    event_time.sort()
    # every event time is a distinct time, so the counts are the steps of one searchsorted
    n_event = np.diff(np.searchsorted(event_time, distinct_time, side="right"), prepend=0).astype(
        np.float64
    )
    n_censor = n_at_time.astype(np.float64) - n_event
    return distinct_time, n_risk, n_event, n_censor


def _greenwood_terms(n_risk: FloatArray, n_event: FloatArray) -> FloatArray:
    """d / (n (n - d)) per time; infinite where everyone at risk dies (as R's survfit)."""
    survivors = n_risk - n_event
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n_event > 0, n_event / (n_risk * survivors), 0.0)
    return terms


def _confidence_band(
    survival: FloatArray, se: FloatArray, conf_type: str, z: float
) -> tuple[FloatArray, FloatArray]:
    """Pointwise CI of S(t) from the standard error of the cumulative hazard (R's survfit_confint).

    log:     exp(log S -/+ z se), upper clipped at 1; NA where S = 0.
    log-log: exp(-exp(log(-log S) -/+ z se / log S)); NA where S = 0 or S = 1.
    plain:   S -/+ z se S, clipped to [0, 1].
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half_width = se * survival * z
            return np.maximum(survival - half_width, 0.0), np.minimum(survival + half_width, 1.0)
        if conf_type == "log":
            log_s = np.where(survival == 0, np.nan, np.log(np.where(survival == 0, 1.0, survival)))
            return np.exp(log_s - z * se), np.minimum(np.exp(log_s + z * se), 1.0)
        defined = (survival > 0) & (survival < 1)
        safe = np.where(defined, survival, 0.5)
        log_s = np.log(safe)
        shift = z * se / log_s
        loglog = np.log(-log_s)
        lower = np.where(defined, np.exp(-np.exp(loglog - shift)), np.nan)
        upper = np.where(defined, np.exp(-np.exp(loglog + shift)), np.nan)
        return lower, upper


def _find_quantile(curve_time: FloatArray, curve: FloatArray, p: float) -> float:
    """Time at which 1 - curve first reaches p, as R's ``survival:::findq``.

    Where the curve sits exactly at 1 - p (within sqrt(machine eps)) over an interval, the result is
    the midpoint of that interval; at the end of the curve, the midpoint with the last time.
    """
    x = np.concatenate(([0.0], curve_time))
    y = np.concatenate(([0.0], 1.0 - curve))
    finite = ~np.isnan(y)
    if not finite.any() or y[finite].max() < p:
        return math.nan
    first_x, last_x = float(x[0]), float(x[-1])
    # R: duplicated(y) keeps the first time each value occurs (a single NA kept as one value)
    _, first_index = np.unique(np.where(finite, y, np.inf), return_index=True)
    keep = np.sort(first_index)
    x, y = x[keep], y[keep]
    last_y = y[-1]
    defined = ~np.isnan(y)
    x_def, y_def = x[defined], y[defined]
    order = np.argsort(y_def, kind="stable")
    x_def, y_def = x_def[order], y_def[order]

    def step_index(knots: FloatArray) -> int | None:
        # approx(knots, 1:n, p, method="constant", f=1): the first knot >= p, NA outside the range
        if p < knots[0] or p > knots[-1]:
            return None
        return int(np.searchsorted(knots, p, side="left"))

    index_low = step_index(y_def + _TOLERANCE)
    index_high = step_index(y_def - _TOLERANCE)
    # the same order of overrides as R: p = 0 gives the start, then a curve that ends exactly at
    # 1 - p gives the midpoint with the last time (NA when the curve never reaches p, even p = 0)
    if not np.isnan(last_y) and abs(p - last_y) < _TOLERANCE:
        return math.nan if index_low is None else (float(x_def[index_low]) + last_x) / 2
    if p == 0:
        return first_x
    if index_low is None or index_high is None:
        return math.nan
    return (float(x_def[index_low]) + float(x_def[index_high])) / 2


def _print_median(curve_time: FloatArray, curve: FloatArray) -> float:
    """Median as ``print(survfit)`` reports it (R's ``survmean`` helper ``minmin``).

    The first time the curve is <= 0.5; if it equals 0.5 there and drops later, the midpoint of that
    time and the time of the drop.
    """
    keep = ~np.isnan(curve) & (curve < 0.5 + _TOLERANCE)
    if not keep.any():
        return math.nan
    x, y = curve_time[keep], curve[keep]
    if abs(y[0] - 0.5) < _TOLERANCE:
        below = np.flatnonzero(y < y[0])
        if below.size:
            return (float(x[0]) + float(x[below[0]])) / 2
    return float(x[0])


class RestrictedMean(NamedTuple):
    """Restricted mean survival time up to ``tau``: value, standard error and normal CI."""

    value: float
    se: float
    lower: float
    upper: float
    tau: float

    def to_dict(self) -> dict[str, float]:
        """Plain-Python form, suitable for JSON."""
        return dict(self._asdict())


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """A Kaplan-Meier curve: one entry per distinct time, censored-only times included.

    Attributes
    ----------
    time, n_risk, n_event, n_censor, survival : numpy.ndarray, shape (m,)
        As R's ``survfit``.
    se : numpy.ndarray, shape (m,)
        Standard error of the cumulative hazard, sqrt(sum d / (n (n - d))) (Greenwood), i.e. R's
        ``fit$std.err``; infinite where everyone still at risk dies.
    lower, upper : numpy.ndarray, shape (m,)
        Pointwise confidence limits for S(t) (``nan`` where R gives NA).
    conf_type, conf_level : the interval's construction.
    n : number of observations.
    n_event_rows : number of observations with an event (unweighted).
    weighted : bool
        Case weights were given: ``n_risk``, ``n_event``, ``n_censor`` are sums of weights.
    variance : {"greenwood", "jackknife"}
        How ``se`` was computed: Greenwood's formula (on weighted counts when weighted), or the
        infinitesimal jackknife (robust) variance R's ``survfit`` uses for non-integer weights.
    """

    time: FloatArray
    n_risk: FloatArray
    n_event: FloatArray
    n_censor: FloatArray
    survival: FloatArray
    se: FloatArray
    lower: FloatArray
    upper: FloatArray
    conf_type: str
    conf_level: float
    n: int
    n_event_rows: int
    weighted: bool
    variance: str

    @property
    def n_events(self) -> int:
        """Total number of rows with an event (whatever their weight)."""
        return self.n_event_rows

    @property
    def median(self) -> Estimate:
        """Median survival with its CI, as ``print(survfit)`` shows (nan where R prints NA).

        Equal to ``quantile(0.5)`` except when the curve ends exactly at 0.5: R's print then gives
        the time the curve reached 0.5, ``quantile()`` the midpoint with the last time.
        """
        return Estimate(
            _print_median(self.time, self.survival),
            _print_median(self.time, self.lower),
            _print_median(self.time, self.upper),
        )

    def quantile(self, p: float) -> Estimate:
        """The time by which a fraction ``p`` has had the event, with CI, as R's ``quantile(fit, p)``.

        Parameters
        ----------
        p : float in [0, 1]
            0.5 gives the median; the CI comes from the lower and upper confidence curves.
        """
        if not isinstance(p, Real) or isinstance(p, bool) or not 0 <= p <= 1:
            raise InputError(f"p: must be a probability in [0, 1], got {p!r}")
        p = float(p)
        return Estimate(
            _find_quantile(self.time, self.survival, p),
            # the lower curve reaches 1 - p first, so it gives the lower limit (R's doquant)
            _find_quantile(self.time, self.lower, p),
            _find_quantile(self.time, self.upper, p),
        )

    def survival_at(self, t: float, *, extend: bool = False) -> Estimate:
        """S(t) with its pointwise CI, as R's ``summary(fit, times=t)``.

        Before the first time S = 1 with limits 1. Beyond the last observed time the value is
        undefined unless ``extend=True`` (R's ``extend=TRUE``: the last value carried forward).
        """
        if not isinstance(t, Real) or isinstance(t, bool) or not math.isfinite(t) or t < 0:
            raise InputError(f"t: must be a finite time >= 0, got {t!r}")
        if t > self.time[-1] and not extend:
            raise InputError(
                f"t: {t:g} is beyond the last observed time {self.time[-1]:g}; survival is not "
                "estimable there (pass extend=True to carry the last value forward, as R's extend=TRUE)"
            )
        row = int(np.searchsorted(self.time, t, side="right")) - 1
        if row < 0:
            return Estimate(1.0, 1.0, 1.0)
        return Estimate(float(self.survival[row]), float(self.lower[row]), float(self.upper[row]))

    def restricted_mean(self, tau: float) -> RestrictedMean:
        """Restricted mean survival time up to ``tau`` with its standard error and normal CI.

        The area under the curve on [0, tau]; its variance is sum_i A_i^2 d_i / (n_i (n_i - d_i)),
        A_i the area between time i and tau (R's ``survmean``, as ``print(fit, rmean=tau)``).
        The CI is value -/+ z se at this curve's ``conf_level``.
        """
        mean, se = self._restricted_mean(tau)
        z = float(ndtri(1 - (1 - self.conf_level) / 2))
        return RestrictedMean(mean, se, mean - z * se, mean + z * se, float(tau))

    def _restricted_mean(self, tau: float) -> tuple[float, float]:
        if self.variance != "greenwood":
            raise InputError(
                "restricted_mean: the standard error of a restricted mean is implemented for "
                "Greenwood variances only, not for a jackknife (non-integer weights) curve"
            )
        if not isinstance(tau, Real) or isinstance(tau, bool) or not math.isfinite(tau) or tau <= 0:
            raise InputError(f"tau: must be a finite time > 0, got {tau!r}")
        survivors = self.n_risk - self.n_event
        with np.errstate(divide="ignore", invalid="ignore"):
            hazard_terms = np.where(survivors == 0, 0.0, self.n_event / (self.n_risk * survivors))
        keep = self.time <= tau
        step_time = np.append(self.time[keep], tau)
        step_surv = np.append(self.survival[keep], self.survival[keep][-1] if keep.any() else 1.0)
        terms = np.append(hazard_terms[keep], 0.0)
        widths = np.diff(np.concatenate(([0.0], step_time)))
        rectangles = widths * np.concatenate(([1.0], step_surv[:-1]))
        area_after = np.cumsum(rectangles[1:][::-1])[::-1]
        variance = float(np.sum(area_after**2 * terms[:-1]))
        return float(rectangles.sum()), math.sqrt(variance)

    def to_frame(self) -> pl.DataFrame:
        """One row per distinct time: time, n_risk, n_event, n_censor, survival, se, lower, upper.

        The counts are integers, or sums of weights (floats) for a weighted curve.
        """
        count = np.float64 if self.weighted else np.int64
        return pl.DataFrame(
            {
                "time": self.time,
                "n_risk": self.n_risk.astype(count),
                "n_event": self.n_event.astype(count),
                "n_censor": self.n_censor.astype(count),
                "survival": self.survival,
                "se": self.se,
                "lower": self.lower,
                "upper": self.upper,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary and table (lists), suitable for JSON."""
        median = self.median
        return {
            "n": self.n,
            "n_events": self.n_events,
            "conf_type": self.conf_type,
            "conf_level": self.conf_level,
            "weighted": self.weighted,
            "variance": self.variance,
            "median": median._asdict(),
            "table": {name: values.to_list() for name, values in self.to_frame().to_dict().items()},
        }

    def __repr__(self) -> str:
        median = self.median
        return (
            f"KaplanMeier(n={self.n}, events={self.n_events}, times={self.time.size}, "
            f"median={median!r}, conf_type={self.conf_type!r}, conf_level={self.conf_level:g})"
        )


def _check_conf(conf_type: Any, conf_level: Any) -> float:
    if conf_type not in _CONF_TYPES:
        raise InputError(
            f"conf_type: must be one of {', '.join(map(repr, _CONF_TYPES))}, got {conf_type!r}"
        )
    return z_for_conf_level(conf_level)


def _fit(
    time: FloatArray,
    event: npt.NDArray[np.int8],
    conf_type: str,
    conf_level: float,
    weights: FloatArray | None = None,
    robust: bool = False,
) -> KaplanMeier:
    z = _check_conf(conf_type, conf_level)
    cuts = near_tie_cuts(np.unique(time))
    if cuts is not None:  # near-equal times are one time, as R's survfit (timefix = TRUE)
        time = snap_to_cuts(time, cuts)
    if weights is None:
        distinct_time, n_risk, n_event, n_censor = _risk_table(time, event)
    else:
        distinct_time, n_risk, n_event, n_censor = _weighted_risk_table(time, event, weights)
    survival: FloatArray = np.cumprod((n_risk - n_event) / n_risk, dtype=np.float64)
    se: FloatArray
    if robust:
        assert weights is not None
        se = _jackknife_log_se(time, event, weights, distinct_time, n_risk, n_event, survival)
    else:
        se = np.sqrt(np.cumsum(_greenwood_terms(n_risk, n_event)))
    lower, upper = _confidence_band(survival, se, conf_type, z)
    if robust and conf_type == "plain":
        # R's jackknife curve keeps se(S) itself, 0 where S = 0, so its plain band there is [0, 0]
        zero = survival == 0
        lower[zero] = 0.0
        upper[zero] = 0.0
    return KaplanMeier(
        time=_frozen(distinct_time),
        n_risk=_frozen(n_risk),
        n_event=_frozen(n_event),
        n_censor=_frozen(n_censor),
        survival=_frozen(survival),
        se=_frozen(se),
        lower=_frozen(lower),
        upper=_frozen(upper),
        conf_type=conf_type,
        conf_level=float(conf_level),
        n=int(time.shape[0]),
        n_event_rows=int(event.sum()),
        weighted=weights is not None,
        variance="jackknife" if robust else "greenwood",
    )


def _weighted_risk_table(
    time: FloatArray, event: npt.NDArray[np.int8], weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per distinct time: time, weight at risk, weight of events, weight of censorings."""
    distinct_time, position = np.unique(time, return_inverse=True)
    k = distinct_time.size
    total = np.bincount(position, weights=weights, minlength=k).astype(np.float64)
    n_event = np.bincount(position, weights=weights * event, minlength=k).astype(np.float64)
    n_risk = np.cumsum(total[::-1])[::-1]
    return distinct_time, n_risk, n_event, total - n_event


def _jackknife_log_se(
    time: FloatArray,
    event: npt.NDArray[np.int8],
    weights: FloatArray,
    distinct_time: FloatArray,
    n_risk: FloatArray,
    n_event: FloatArray,
    survival: FloatArray,
) -> FloatArray:
    """Infinitesimal-jackknife standard error of log S(t), as R's ``survfitkm`` (robust variance).

    The influence of subject k on log S(t) is ``-sum_{t_j <= t} (dN_k(t_j) - Y_k(t_j) h_j) / (n_j -
    d_j)`` with h_j = d_j / n_j; the variance is ``sum_k (w_k * influence_k)^2``. A subject still at
    risk after t has influence B(t) = sum_{t_j <= t} h_j / (n_j - d_j); one whose time T_k <= t has
    the constant ``B(T_k) - event_k / (n(T_k) - d(T_k))``; so the variance at every time is
    ``B(t)^2 * sum_{T_k > t} w_k^2 + sum_{T_k <= t} (w_k c_k)^2``, without a loop over subjects.
    Infinite once S = 0 (R stores se(S) = 0 there: its log-scale CI is NA, as here).
    """
    survivors = n_risk - n_event
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(n_event > 0, 1.0 / survivors, 0.0)
        step = np.where(n_event > 0, (n_event / n_risk) / survivors, 0.0)
    cumulative = np.cumsum(step)
    position = np.searchsorted(distinct_time, time)
    with np.errstate(invalid="ignore"):
        constant = cumulative[position] - event * own[position]
    w2 = weights * weights
    k = distinct_time.size
    leaving = np.cumsum(np.bincount(position, weights=w2 * constant * constant, minlength=k))
    w2_after = np.cumsum(np.bincount(position, weights=w2, minlength=k)[::-1])[::-1]
    w2_after = np.append(w2_after[1:], 0.0)
    with np.errstate(invalid="ignore"):
        variance = cumulative * cumulative * w2_after + leaving
    return np.where(survival > 0, np.sqrt(variance), np.inf)


def _check_weights(weights: Any, n: int) -> FloatArray:
    """Case weights: finite and > 0, one per observation."""
    arr = as_float_array(weights, "weights")
    check_lengths({"time": np.empty(n), "weights": arr})
    bad = arr <= 0
    if bad.any():
        raise InputError(
            f"weights: must be > 0; zero or negative weights at {describe_positions(bad)} "
            "(drop those observations instead)"
        )
    return arr


def kaplan_meier(
    time: Any,
    event: Any,
    *,
    weights: Any = None,
    robust: bool | None = None,
    conf_type: ConfType = "log",
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Kaplan-Meier estimate of S(t) = prod_{t_i <= t} (1 - d_i / n_i) with Greenwood errors.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times >= 0 (numpy, list, polars or pandas Series).
    event : array-like, shape (n,)
        1/True = event, 0/False = censored.
    weights : array-like, shape (n,), optional
        Case weights > 0 (e.g. propensity weights): every count becomes a sum of weights, as R's
        ``survfit(..., weights = w)``.
    robust : bool, optional
        Infinitesimal-jackknife (robust) standard errors instead of Greenwood's. The default is R's:
        robust exactly when some weight is not a whole number (frequency weights keep Greenwood).
    conf_type : {"log", "log-log", "plain"}
        Construction of the pointwise CI (R's ``conf.type``; "log" is R's default).
    conf_level : float
        Confidence level of the intervals.

    Returns
    -------
    KaplanMeier
        ``se`` is always the standard error of log S(t) (R's ``fit$std.err`` for Greenwood;
        for a robust fit R stores se(S) itself, ``se * survival`` here).

    Raises
    ------
    InputError
        Invalid times or events (naming positions), unknown ``conf_type``, bad ``conf_level``.

    References
    ----------
    Kaplan & Meier 1958; Greenwood 1926; R survival ``survfit`` and ``survfitkm.c`` (jackknife).
    """
    time_arr, event_arr = check_time_event(time, event)
    if robust is not None and not isinstance(robust, bool):
        raise InputError(f"robust: must be True, False or None, got {robust!r}")
    if weights is None:
        if robust:
            raise InputError("robust: a jackknife variance needs weights (R uses it for weighted curves)")
        return _fit(time_arr, event_arr, conf_type, conf_level)
    weight_arr = _check_weights(weights, time_arr.size)
    if robust is None:
        robust = bool(np.any(weight_arr != np.floor(weight_arr)))
    return _fit(time_arr, event_arr, conf_type, conf_level, weight_arr, robust)


def reverse_km_followup(
    time: Any,
    event: Any,
    *,
    conf_type: ConfType = "log",
    conf_level: float = 0.95,
) -> Estimate:
    """Median follow-up by the reverse Kaplan-Meier method, with its CI.

    Censoring is treated as the event and events as censoring (Schemper & Smith 1996): the median
    of ``survfit(Surv(time, 1 - event) ~ 1)`` as R prints it.

    Raises
    ------
    InputError
        Invalid input, as for `kaplan_meier`.
    """
    time_arr, event_arr = check_time_event(time, event)
    return _fit(time_arr, (1 - event_arr).astype(np.int8), conf_type, conf_level).median
