"""The Cox model fitted across centres that keep their patients: distributed Newton-Raphson.

Each Newton-Raphson round the coordinator sends the current coefficients ``beta`` (and, once, the
global sorted distinct event times per stratum and a centring vector); every site returns, per
global event time ``t`` of each stratum, its risk-set sums at ``beta`` (with ``r = exp((x - c) b)``)::

    S0(t) = sum_{time >= t} r        S1(t) = sum_{time >= t} r x        S2(t) = sum_{time >= t} r x x'

and the sums over its own deaths at ``t``: their number ``d``, ``sum x`` and, for Efron's rule,
``D0, D1, D2`` (the same three sums over the tied deaths only). The partial likelihood is a sum
over event times of functions of these totals, so the sums over sites give exactly the pooled
log-likelihood, score and information (Lu et al. 2015; Therneau & Grambsch 2000 ch. 3):

    Efron    loglik = sum_t [ sum_deaths x b - sum_{k=0}^{d-1} log(S0 - k/d D0) ]
    Breslow  loglik = sum_t [ sum_deaths x b - d log S0 ]

Everything else is R's ``coxph``: start at 0, Newton steps, step halving, convergence when
``|1 - loglik_old / loglik_new| <= eps`` (the same code path as :func:`oncorwe.stats.cox_ph`).

Centring: sites compute with ``x - center`` (the coordinator sends the global covariate means, as
R's ``coxph`` centres), so ``exp`` does not overflow for large covariates. The log-likelihood,
score, information and coefficients do not depend on the centre: each death's ``-c'b`` in
``sum x b`` cancels against the ``-c'b`` that every denominator term ``log(S0 - f D0)`` carries.

What leaves a site: only arrays indexed by the coordinator's event times (no row, no own time).
These are aggregates, not anonymous by themselves: where a site has one patient at risk,
``S1 / S0`` is that patient's covariate vector, and a single death's ``D1 / D0`` is the dead
patient's. Disclosure control (minimum counts, refusing thin risk sets) belongs to the caller
that packages the sums (``oncorwe site-export``); ``n_at_risk`` and ``n_deaths`` are returned so
that it can apply it.

The robust (sandwich) variance takes one more round after the fit: the coordinator sends the
pooled per-event-time hazard increments and means (:func:`cox_residual_request`); each site forms
its patients' score residuals and returns only ``sum_clusters r r'`` and ``sum r``
(:func:`cox_site_residual_sums`); :func:`robust_variance_federated` gives ``I^-1 (R'R) I^-1``, exact
when each cluster lies within one site (each patient its own cluster, or the site the cluster).
A cluster spread over several sites is not possible from these sums. (A site of one patient
discloses that patient's squared residual here too: the same disclosure caveat applies.)

Case weights (``cox_ph(weights=)``) are not part of this protocol.

Not available from these aggregates (said so by the result): Harrell's concordance (it compares
pairs of patients across sites) and the ``"rank"`` time transform of the proportional hazards
test (it ranks censored times too).

References
----------
Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
Efron B (1977). The efficiency of Cox's likelihood function for censored data. JASA 72:557-565.
Lu CL, Wang S, Ji Z, et al. (2015). WebDISCO: a web service for distributed Cox model learning
without patient-level data sharing. JAMIA 22:1212-1219.
Therneau TM, Grambsch PM (2000). Modeling Survival Data: Extending the Cox Model. Springer.
Grambsch PM, Therneau TM (1994). Proportional hazards tests and diagnostics based on weighted
residuals. Biometrika 81:515-526.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NoReturn, cast

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from oncorwe.errors import InputError
from oncorwe.stats._cox import CoxResult, _matrix, _wald
from oncorwe.stats._cox_core import (
    RiskSets,
    newton_raphson_on,
)
from oncorwe.stats._cox_input import CoxDesign
from oncorwe.stats._types import Test
from oncorwe.stats._validate import as_label_array, check_time_event
from oncorwe.stats._zph import ProportionalHazardsTest, _quadratic

__all__ = [
    "CoxResidualRequest",
    "CoxResidualSums",
    "CoxSiteSums",
    "FederatedCoxResult",
    "StratumHazards",
    "StratumSums",
    "cox_federated",
    "cox_residual_request",
    "cox_site_residual_sums",
    "cox_site_sums",
    "proportional_hazards_test_federated",
    "robust_variance_federated",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Version of the JSON layout of :class:`CoxSiteSums` (bump on any change of keys or meaning).
SITE_SUMS_SCHEMA = 1

_TIES = ("efron", "breslow")


def _frozen(values: npt.ArrayLike, dtype: Any) -> npt.NDArray[Any]:
    out = np.array(values, dtype=dtype)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class StratumSums:
    """One site's sums for one stratum, one entry per GLOBAL event time of that stratum.

    Attributes
    ----------
    stratum : str or None
        The stratum label (None for an unstratified model).
    time : array (T,)
        The global sorted distinct event times of the stratum, as the coordinator sent them.
    n_at_risk, n_deaths : int arrays (T,)
        The site's patients with ``time >= t`` and its deaths at ``t`` (``d``).
    s0, s1, s2 : arrays (T,), (T, p), (T, p, p)
        Risk-set sums of ``r``, ``r x`` and ``r x x'`` (``r = exp((x - center) beta)``, ``x``
        centred).
    death_x_sum : array (T, p)
        Sum of the centred ``x`` over the site's deaths at ``t``.
    d0, d1, d2 : arrays (T,), (T, p), (T, p, p)
        The sums of ``s0, s1, s2`` restricted to the deaths at ``t`` (Efron's tied-death sums).
    """

    stratum: str | None
    time: FloatArray
    n_at_risk: IntArray
    n_deaths: IntArray
    s0: FloatArray
    s1: FloatArray
    s2: FloatArray
    death_x_sum: FloatArray
    d0: FloatArray
    d1: FloatArray
    d2: FloatArray


_FLOAT_FIELDS = ("time", "s0", "s1", "s2", "death_x_sum", "d0", "d1", "d2")
#: Symmetric p x p fields travel as their upper triangles (row-major, i <= j): half the bytes.
_SYMMETRIC = ("s2", "d2")


def _pack(name: str, values: FloatArray) -> FloatArray:
    if name not in _SYMMETRIC:
        return values
    rows, cols = np.triu_indices(values.shape[1])
    return values[:, rows, cols]


def _unpack(name: str, values: FloatArray, p: int) -> FloatArray:
    if name not in _SYMMETRIC:
        return values
    rows, cols = np.triu_indices(p)
    out = np.empty((values.shape[0], p, p))
    out[:, rows, cols] = values
    out[:, cols, rows] = values
    return out
_INT_FIELDS = ("n_at_risk", "n_deaths")


def _encode(values: FloatArray) -> Any:
    """Nested lists of Python floats; a non-finite value (an overflowing trial step) as a string."""
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()  # Python floats: json writes repr, which reads back bit for bit
    out = values.astype(object)
    out[~finite] = [repr(float(v)) for v in values[~finite]]  # 'inf', '-inf', 'nan'
    return out.tolist()


def _decode(values: Any, shape_tail: tuple[int, ...], name: str) -> FloatArray:
    try:
        fast = np.array(values)
    except ValueError:  # ragged lists
        raise InputError(f"site sums: {name}: not a rectangular array of numbers") from None
    if fast.dtype.kind in "fiu":
        return _shaped(fast.astype(np.float64), shape_tail, name)

    # strings ('inf', 'nan' of an overflowing step) or bad values: check every entry
    def scalar(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise InputError(f"site sums: {name}: expected numbers, got {v!r}")
        if isinstance(v, str) and v not in ("inf", "-inf", "nan"):
            raise InputError(f"site sums: {name}: expected a number, got the string {v!r}")
        return float(v)

    def walk(v: Any) -> Any:
        return [walk(u) for u in v] if isinstance(v, list) else scalar(v)

    return _shaped(np.array(walk(values), dtype=np.float64), shape_tail, name)


def _shaped(arr: FloatArray, shape_tail: tuple[int, ...], name: str) -> FloatArray:
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.shape[1:] != shape_tail:
        raise InputError(f"site sums: {name}: expected shape (T, {shape_tail}), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class CoxSiteSums:
    """What one site returns for one Newton-Raphson round (no per-patient value: every array is
    indexed by a global event time).

    ``to_json()`` gives a JSON-plain dict (lists of Python floats and ints; ``s2`` and ``d2`` as
    their upper triangles, row-major; a non-finite sum, which only an overflowing trial step
    produces, as the string ``'inf'`` / ``'nan'``);
    ``from_json(to_json())`` reproduces every number bit for bit.
    """

    beta: FloatArray
    center: FloatArray
    stratified: bool
    strata: tuple[StratumSums, ...]

    @property
    def n_terms(self) -> int:
        return int(self.beta.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SITE_SUMS_SCHEMA,
            "beta": _encode(self.beta),
            "center": _encode(self.center),
            "stratified": self.stratified,
            "strata": [
                {
                    "stratum": s.stratum,
                    **{name: [int(v) for v in getattr(s, name)] for name in _INT_FIELDS},
                    **{name: _encode(_pack(name, getattr(s, name))) for name in _FLOAT_FIELDS},
                }
                for s in self.strata
            ],
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> CoxSiteSums:
        if not isinstance(payload, Mapping) or payload.get("schema") != SITE_SUMS_SCHEMA:
            got = payload.get("schema") if isinstance(payload, Mapping) else type(payload).__name__
            raise InputError(f"site sums: schema must be {SITE_SUMS_SCHEMA}, got {got!r}")
        beta = _decode(payload.get("beta"), (), "beta")
        p = beta.size
        center = _decode(payload.get("center"), (), "center")
        if center.size != p:
            raise InputError(f"site sums: center has {center.size} values for {p} coefficients")
        stratified = payload.get("stratified")
        if not isinstance(stratified, bool):
            raise InputError(f"site sums: stratified must be true or false, got {stratified!r}")
        strata: list[StratumSums] = []
        for raw in payload.get("strata") or []:
            label = raw.get("stratum")
            if (label is None) == stratified or not (label is None or isinstance(label, str)):
                raise InputError(f"site sums: stratum label {label!r} does not fit stratified={stratified}")
            values: dict[str, Any] = {}
            tails = {"time": (), "s0": (), "d0": (), "s1": (p,), "d1": (p,), "death_x_sum": (p,),
                     "s2": (p, p), "d2": (p, p)}
            for name in _FLOAT_FIELDS:
                tail = (p * (p + 1) // 2,) if name in _SYMMETRIC else tails[name]
                decoded = _decode(raw.get(name), tail, f"{label}: {name}")
                values[name] = _frozen(_unpack(name, decoded, p), np.float64)
            for name in _INT_FIELDS:
                column = raw.get(name)
                if not isinstance(column, list) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in column
                ):
                    raise InputError(f"site sums: {label}: {name} must be a list of counts >= 0")
                values[name] = _frozen(column, np.int64)
            n_times = values["time"].shape[0]
            if any(values[name].shape[0] != n_times for name in (*_FLOAT_FIELDS, *_INT_FIELDS)):
                raise InputError(f"site sums: {label}: arrays of different lengths")
            strata.append(StratumSums(stratum=label, **values))
        return cls(_frozen(beta, np.float64), _frozen(center, np.float64), stratified, tuple(strata))


def _event_time_table(
    event_times: Mapping[str, Any] | npt.ArrayLike,
) -> tuple[bool, tuple[tuple[str | None, FloatArray], ...]]:
    """(stratified, ((label, sorted distinct times), ...)) from the coordinator's event times."""
    if isinstance(event_times, Mapping):
        items: list[tuple[str | None, Any]] = list(event_times.items())
        stratified = True
    else:
        items = [(None, event_times)]
        stratified = False
    table: list[tuple[str | None, FloatArray]] = []
    for label, raw in items:
        if stratified and not isinstance(label, str):
            raise InputError(f"event_times: stratum labels must be strings, got {label!r}")
        where = "event_times" if label is None else f"event_times[{label!r}]"
        times = np.array(raw, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(times)):
            raise InputError(f"{where}: times must be finite numbers")
        if times.size > 1 and not np.all(np.diff(times) > 0):
            raise InputError(f"{where}: times must be sorted and distinct")
        table.append((label, _frozen(times, np.float64)))
    return stratified, tuple(table)


def _vector(values: Any, name: str, p: int) -> FloatArray:
    arr = np.array(values, dtype=np.float64).reshape(-1)
    if arr.size != p:
        raise InputError(f"{name}: expected {p} values (one per model column), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: values must be finite")
    return arr


def _stratum_sums(
    label: str | None,
    times: FloatArray,
    site_time: FloatArray,
    site_event: npt.NDArray[np.int8],
    xc: FloatArray,
    risk: FloatArray,
) -> StratumSums:
    """Risk-set and tied-death sums of one stratum's rows at the global event ``times``."""
    dead = site_event == 1
    death_time = site_time[dead]
    position = np.searchsorted(times, death_time)
    clipped = np.minimum(position, times.size - 1)
    known = (position < times.size) & (times[clipped] == death_time) if times.size else position < 0
    if not np.all(known):
        missing = float(death_time[~known][0])
        where = "" if label is None else f" in stratum {label!r}"
        raise InputError(
            f"event_times: the site has a death at time {missing!r}{where} that is not among the "
            "global event times; the coordinator's list must hold every site's event times"
        )
    n_times = times.size
    # each row is at risk at the event times <= its own time: bin it at the last of them, sum the
    # bins (one pass, memory T x p x p, never n x p x p), then sum the bins from the end
    last = np.searchsorted(times, site_time, side="right") - 1
    ever = last >= 0
    at_risk_bins = _bin_sums(last[ever], xc[ever], risk[ever], n_times)
    death_bins = _bin_sums(position, xc[dead], risk[dead], n_times)

    def from_end(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.cumsum(values[::-1], axis=0)[::-1]

    return StratumSums(
        stratum=label,
        time=times,
        n_at_risk=_frozen(from_end(at_risk_bins.count), np.int64),
        n_deaths=_frozen(death_bins.count, np.int64),
        s0=_frozen(from_end(at_risk_bins.r), np.float64),
        s1=_frozen(from_end(at_risk_bins.rx), np.float64),
        s2=_frozen(from_end(at_risk_bins.rxx), np.float64),
        death_x_sum=_frozen(death_bins.x, np.float64),
        d0=_frozen(death_bins.r, np.float64),
        d1=_frozen(death_bins.rx, np.float64),
        d2=_frozen(death_bins.rxx, np.float64),
    )


@dataclass(frozen=True)
class _Bins:
    count: IntArray
    x: FloatArray
    r: FloatArray
    rx: FloatArray
    rxx: FloatArray


def _bin_sums(bin_of_row: IntArray, xc: FloatArray, risk: FloatArray, n_bins: int) -> _Bins:
    """Per bin: rows, ``sum x``, ``sum r``, ``sum r x``, ``sum r x x'`` (one bincount per entry)."""
    p = xc.shape[1]

    def per_bin(weights: FloatArray) -> FloatArray:
        return np.bincount(bin_of_row, weights=weights, minlength=n_bins).astype(np.float64)

    with np.errstate(invalid="ignore", over="ignore"):
        rx_rows = xc * risk[:, None]
        rxx = np.empty((n_bins, p, p))
        for a in range(p):
            for b in range(a, p):
                rxx[:, a, b] = per_bin(rx_rows[:, a] * xc[:, b])
                rxx[:, b, a] = rxx[:, a, b]
        return _Bins(
            count=np.bincount(bin_of_row, minlength=n_bins).astype(np.int64),
            x=np.column_stack([per_bin(xc[:, a]) for a in range(p)]).reshape(n_bins, p),
            r=per_bin(risk),
            rx=np.column_stack([per_bin(rx_rows[:, a]) for a in range(p)]).reshape(n_bins, p),
            rxx=rxx,
        )


def cox_site_sums(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    beta: npt.ArrayLike,
    event_times: Mapping[str, npt.ArrayLike] | npt.ArrayLike,
    strata: npt.ArrayLike | None = None,
    center: npt.ArrayLike | None = None,
) -> CoxSiteSums:
    """One site's contribution to one Newton-Raphson round (pure; runs at the site).

    Parameters
    ----------
    time, event : array-like (n,)
        The site's follow-up times (>= 0) and event indicators (0/1).
    x : array-like (n, p)
        The site's model matrix, dummy-coded by the caller with the coordinator's term list.
    beta : array-like (p,)
        The coefficients the coordinator sent for this round.
    event_times : array-like, or mapping stratum -> array-like
        The GLOBAL sorted distinct event times (per stratum when ``strata`` is given). Every death
        of the site must be at one of them; a time with nobody of the site at risk gets zeros.
    strata : array-like (n,), optional
        Stratum label per row (e.g. the centre id), matched as strings to ``event_times``' keys.
        Rows of a stratum absent from ``event_times`` must be censored (such a stratum has no
        event anywhere, so it does not enter the likelihood).
    center : array-like (p,), optional
        The coordinator's centring vector (the global covariate means); default 0. The sums are
        of ``x - center``; the likelihood is invariant to it, only overflow is avoided.

    Returns
    -------
    CoxSiteSums
        Risk-set (``time >= t``, R's convention) and tied-death sums per global event time.
    """
    t, e = check_time_event(time, event)
    xm = np.array(x, dtype=np.float64)
    if xm.ndim != 2 or xm.shape[0] != t.size:
        raise InputError(f"x: expected a matrix of {t.size} rows (one per patient), got shape {xm.shape}")
    if not np.all(np.isfinite(xm)):
        raise InputError("x: values must be finite (drop or impute missing values first)")
    p = xm.shape[1]
    b = _vector(beta, "beta", p)
    c = np.zeros(p) if center is None else _vector(center, "center", p)
    stratified, table = _event_time_table(event_times)
    if stratified != (strata is not None):
        raise InputError(
            "event_times: give a mapping stratum -> times together with strata, or one array "
            "without strata"
        )
    xc = xm - c
    with np.errstate(over="ignore", invalid="ignore"):
        # an overflowing trial step gives inf here; the coordinator halves the step, as coxph does
        risk = np.exp(xc @ b)
    out: list[StratumSums] = []
    if strata is None:
        (label, times), = table
        out.append(_stratum_sums(label, times, t, e, xc, risk))
    else:
        labels = as_label_array(strata, "strata").astype(str)
        if labels.size != t.size:
            raise InputError(f"strata: expected {t.size} labels (one per patient), got {labels.size}")
        known = [str(label) for label, _ in table]
        orphan = (e == 1) & ~np.isin(labels, known)
        if orphan.any():
            raise InputError(
                f"strata: the site has deaths in stratum {str(labels[orphan][0])!r}, which is not "
                "among the strata of event_times"
            )
        for label, times in table:
            rows = labels == label
            out.append(_stratum_sums(label, times, t[rows], e[rows], xc[rows], risk[rows]))
    return CoxSiteSums(_frozen(b, np.float64), _frozen(c, np.float64), stratified, tuple(out))


@dataclass(frozen=True)
class _PooledSums:
    """The sites' sums added up, strata stacked, restricted to times with at least one death."""

    stratum_of_time: tuple[str | None, ...]
    time: FloatArray
    n_deaths: IntArray
    s0: FloatArray
    s1: FloatArray
    s2: FloatArray
    death_x_sum: FloatArray
    d0: FloatArray
    d1: FloatArray
    d2: FloatArray


def _pool(
    sites: Sequence[CoxSiteSums],
    beta: FloatArray,
    center: FloatArray,
    stratified: bool,
    table: tuple[tuple[str | None, FloatArray], ...],
) -> _PooledSums:
    if len(sites) == 0:
        raise InputError("round_sums: returned no site sums")
    p = beta.size
    totals: dict[str, list[npt.NDArray[Any]]] = {name: [] for name in (*_FLOAT_FIELDS, "n_deaths")}
    labels: list[str | None] = []
    for label, times in table:
        acc: dict[str, Any] = {}
        for i, site in enumerate(sites):
            if not isinstance(site, CoxSiteSums):
                raise InputError(f"round_sums: item {i} is a {type(site).__name__}, not CoxSiteSums")
            if not np.array_equal(site.beta, beta):
                raise InputError(f"site sums {i}: computed at beta {site.beta.tolist()}, not the {beta.tolist()} sent")
            if not np.array_equal(site.center, center):
                raise InputError(f"site sums {i}: centred at {site.center.tolist()}, not the {center.tolist()} sent")
            if site.stratified != stratified:
                raise InputError(f"site sums {i}: stratified={site.stratified}, the model's is {stratified}")
            mine = next((s for s in site.strata if s.stratum == label), None)
            if mine is None or not np.array_equal(mine.time, times):
                raise InputError(
                    f"site sums {i}: the times of stratum {label!r} differ from the global event "
                    "times of that stratum" if mine is not None else
                    f"site sums {i}: no sums for stratum {label!r}"
                )
            if len(site.strata) != len(table):
                raise InputError(f"site sums {i}: {len(site.strata)} strata, the model has {len(table)}")
            if mine.s1.shape[1:] != (p,):
                raise InputError(f"site sums {i}: {mine.s1.shape[1]} model columns, expected {p}")
            for name in (*_FLOAT_FIELDS[1:], "n_deaths"):
                value = getattr(mine, name)
                acc[name] = value.copy() if i == 0 else acc[name] + value
        keep = acc["n_deaths"] > 0
        labels.extend([label] * int(keep.sum()))
        totals["time"].append(times[keep])
        for name, value in acc.items():
            totals[name].append(value[keep])
    stacked = {name: np.concatenate(values) for name, values in totals.items()}
    return _PooledSums(
        stratum_of_time=tuple(labels),
        time=stacked["time"],
        n_deaths=stacked["n_deaths"].astype(np.int64),
        s0=stacked["s0"],
        s1=stacked["s1"],
        s2=stacked["s2"],
        death_x_sum=stacked["death_x_sum"],
        d0=stacked["d0"],
        d1=stacked["d1"],
        d2=stacked["d2"],
    )


@dataclass(frozen=True)
class _State:
    loglik: float
    score: FloatArray
    information: FloatArray
    per_time_information: FloatArray
    per_time_mean_sum: FloatArray
    #: per event time, what a patient's score residual needs (``_cox_residuals.score_residuals``)
    hazard: FloatArray
    hazard_mean: FloatArray
    own_hazard: FloatArray
    own_hazard_mean: FloatArray


def _efron_state(pooled: _PooledSums, beta: FloatArray, efron: bool) -> _State:
    """Log-likelihood, score and information from the pooled per-time sums (Efron or Breslow).

    Efron row ``k`` of a time with ``d`` deaths: ``den_k = S0 - f_k D0``, mean
    ``m_k = (S1 - f_k D1) / den_k``, information ``(S2 - f_k D2) / den_k - m_k m_k'`` with
    ``f_k = k / d`` (Breslow: ``f_k = 0``).
    """
    d = pooled.n_deaths
    n_times = d.size
    group = np.repeat(np.arange(n_times), d)
    starts = (np.cumsum(d) - d).astype(np.int64)
    k = np.arange(group.size) - np.repeat(starts, d)
    f = k / d[group].astype(np.float64) if efron else np.zeros(group.size)
    den = pooled.s0[group] - f * pooled.d0[group]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = 1.0 / den
        inv2 = inv * inv

        def by_time(values: FloatArray) -> FloatArray:
            return np.add.reduceat(values, starts) if n_times else np.zeros(0)

        log_den = by_time(np.log(den))
        s_inv, s_f_inv = by_time(inv), by_time(f * inv)
        s_inv2, s_f_inv2, s_ff_inv2 = by_time(inv2), by_time(f * inv2), by_time(f * f * inv2)
        s1, d1 = pooled.s1, pooled.d1
        mean_sum = s1 * s_inv[:, None] - d1 * s_f_inv[:, None]
        cross = np.einsum("ti,tj->tij", s1, d1) * s_f_inv2[:, None, None]
        per_time_info = (
            pooled.s2 * s_inv[:, None, None]
            - pooled.d2 * s_f_inv[:, None, None]
            - np.einsum("ti,tj->tij", s1, s1) * s_inv2[:, None, None]
            + cross
            + cross.transpose(0, 2, 1)
            - np.einsum("ti,tj->tij", d1, d1) * s_ff_inv2[:, None, None]
        )
        death_x_sum = pooled.death_x_sum.sum(axis=0)
        loglik = float(death_x_sum @ beta - log_den.sum())
        score = death_x_sum - mean_sum.sum(axis=0)
        hazard_mean = s1 * s_inv2[:, None] - d1 * s_f_inv2[:, None]
        own_hazard_mean = s1 * (s_inv2 - s_f_inv2)[:, None] - d1 * (s_f_inv2 - s_ff_inv2)[:, None]
    return _State(
        loglik, score, per_time_info.sum(axis=0), per_time_info, mean_sum,
        hazard=s_inv, hazard_mean=hazard_mean, own_hazard=s_inv - s_f_inv,
        own_hazard_mean=own_hazard_mean,
    )


class _NotPooled:
    """Stands for patient-level data a federated fit does not have: any use names the reason."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and hasattr probe dunders: not "data"
        raise InputError(
            f"{self._what}: not available from a federated Cox fit (it needs patient-level data, "
            "which stays at the sites); see FederatedCoxResult"
        )

    def __getitem__(self, key: Any) -> NoReturn:
        self.__getattr__("item")


@dataclass(frozen=True)
class FederatedCoxResult(CoxResult):
    """A :class:`CoxResult` fitted from site aggregates by :func:`cox_federated`.

    Filled as ``cox_ph`` fills it: coefficients, model-based standard errors and variance, the
    log-likelihood at 0 and at the estimate, the likelihood-ratio, Wald and score tests, counts.
    Not available from per-event-time aggregates, and therefore None or an error naming the reason:

    - ``robust_se``: None from :func:`cox_federated`. The sandwich variance sums each patient's
      (or cluster's) squared score residual, which takes one further round:
      :func:`cox_residual_request` (pooled per-time hazards, sent to the sites),
      :func:`cox_site_residual_sums` (each site's sum of ``resid resid'``) and
      :func:`robust_variance_federated`, exact when every cluster lies within one site (or the
      cluster is the site).
    - ``concordance`` / ``concordance_se``: raise InputError. Harrell's C counts concordant pairs
      of patients across sites.
    - ``to_dict()['concordance']`` is None; ``to_dict()['federated']`` is True.

    ``final_sums`` holds the sites' sums at the returned coefficients (the last round), which
    :func:`proportional_hazards_test_federated` uses.
    """

    n_sites: int = 0
    final_sums: tuple[CoxSiteSums, ...] = field(default=(), repr=False, compare=False)

    @property
    def concordance(self) -> NoReturn:  # type: ignore[override]
        raise InputError(
            "concordance: not available from a federated Cox fit (Harrell's C compares pairs of "
            "patients, which stay at their sites)"
        )

    @property
    def concordance_se(self) -> NoReturn:  # type: ignore[override]
        raise InputError(
            "concordance_se: not available from a federated Cox fit (Harrell's C compares pairs "
            "of patients, which stay at their sites)"
        )

    def _concordance_record(self) -> None:
        return None  # pairs of patients stay at their sites

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "weights": None, "federated": True, "n_sites": self.n_sites}

    def __repr__(self) -> str:
        lines = [
            f"FederatedCoxResult(ties={self.ties!r}, n={self.n}, n_events={self.n_events}, "
            f"sites={self.n_sites}" + (f", strata={list(self.strata)}" if self.strata else "")
            + (", robust" if self.robust_se is not None else "") + ")"
        ]
        for term, b, s in zip(self.terms, self.coef, self.inference_se, strict=True):
            lines.append(f"  {term}: coef={b:.6g} se={s:.6g} HR={math.exp(b):.4g}")
        lines.append(f"  loglik={self.loglik[1]:.6g} (null {self.loglik[0]:.6g}); LR {self.lr_test!r}")
        return "\n".join(lines)


def _check_count(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return value


def cox_federated(
    round_sums: Callable[[FloatArray], Sequence[CoxSiteSums]],
    *,
    terms: Sequence[str],
    event_times: Mapping[str, npt.ArrayLike] | npt.ArrayLike,
    ties: Literal["efron", "breslow"] = "efron",
    n: int,
    n_events: int,
    center: npt.ArrayLike | None = None,
    max_iter: int = 20,
    eps: float = 1e-9,
    covariates: Sequence[str] | None = None,
    term_columns: Sequence[Sequence[int]] | None = None,
    reference_levels: Mapping[str, str] | None = None,
    strata: Sequence[str] = (),
    conf_level: float = 0.95,
    n_dropped: int = 0,
) -> FederatedCoxResult:
    """Fit a Cox model by distributed Newton-Raphson, equal to ``cox_ph`` on the pooled rows.

    Parameters
    ----------
    round_sums : callable
        ``round_sums(beta)`` asks every site for :func:`cox_site_sums` at ``beta`` (with the same
        ``event_times`` and ``center``) and returns their answers; one call per iteration.
    terms : sequence of str
        Names of the ``p`` model columns (dummies named ``f"{column}={level}"``, as ``cox_ph``).
    event_times : array-like, or mapping stratum -> array-like
        The global sorted distinct event times (per stratum for a stratified model).
    ties : {"efron", "breslow"}
    n, n_events : int
        Patients and events over all sites (``n_events`` is checked against the sites' deaths).
    center : array-like (p,), optional
        The centring vector the sites use (default 0); pass the global covariate means, as
        ``cox_ph`` centres, for results equal to it to rounding.
    max_iter, eps : int, float
        As R's ``coxph.control(iter.max, eps)``.
    covariates, term_columns : optional
        The covariates as given and the indices of each one's model columns (a categorical
        covariate owns several dummies; default: one term per column). They set the degrees of
        freedom of :func:`proportional_hazards_test_federated`.
    reference_levels, strata, conf_level, n_dropped : optional
        Recorded on the result as ``cox_ph`` records them (``strata``: the strata column names).

    Returns
    -------
    FederatedCoxResult
        A :class:`CoxResult`; see :class:`FederatedCoxResult` for what aggregates cannot give.

    Raises
    ------
    InputError
        Bad arguments, or site sums that do not fit the round (other beta, centre, event times).
    ConvergenceError
        As ``cox_ph``: a column without information, a diverging coefficient, no convergence.
    """
    if not callable(round_sums):
        raise InputError("round_sums: must be a function beta -> sequence of CoxSiteSums")
    if ties not in _TIES:
        raise InputError(f"ties: must be one of {_TIES}, got {ties!r}")
    column_names = tuple(str(t) for t in terms)
    p = len(column_names)
    if p == 0:
        raise InputError("terms: at least one model column is required")
    _check_count(n, "n", 1)
    _check_count(n_events, "n_events", 1)
    _check_count(max_iter, "max_iter", 0)
    _check_count(n_dropped, "n_dropped", 0)
    if not (isinstance(eps, float | int) and eps > 0):
        raise InputError(f"eps: must be a positive number, got {eps!r}")
    if not (isinstance(conf_level, float | int) and 0 < conf_level < 1):
        raise InputError(f"conf_level: must be between 0 and 1, got {conf_level!r}")
    if covariates is None:
        covariates = column_names
    if term_columns is None:
        term_columns = [[j] for j in range(p)] if len(covariates) == p else None
    columns = tuple(tuple(int(j) for j in cols) for cols in (term_columns or []))
    if len(columns) != len(covariates) or sorted(j for cols in columns for j in cols) != list(range(p)):
        raise InputError("term_columns: must give each covariate its model columns, every column once")
    c = np.zeros(p) if center is None else _vector(center, "center", p)
    stratified, table = _event_time_table(event_times)
    efron = ties == "efron"
    rounds: list[tuple[CoxSiteSums, ...]] = []

    def state_at(beta: FloatArray) -> _State:
        sent = beta.copy()
        sent.flags.writeable = False
        sites = tuple(round_sums(sent))
        pooled = _pool(sites, sent, c, stratified, table)
        if len(rounds) == 0 and int(pooled.n_deaths.sum()) != n_events:
            raise InputError(
                f"n_events: {n_events} given, but the sites report {int(pooled.n_deaths.sum())} "
                "deaths at the global event times"
            )
        rounds.append(sites)
        return _efron_state(pooled, beta, efron)

    fit = newton_raphson_on(state_at, p, column_names, eps=float(eps), max_iter=max_iter,
                             toler_inf=math.sqrt(eps))
    beta, naive = fit.beta, fit.variance
    lr = 2 * (fit.loglik_final - fit.loglik_initial)
    wald = _wald(beta, naive, None)
    se = np.sqrt(np.diag(naive))
    return FederatedCoxResult(
        terms=column_names,
        coef=tuple(float(b) for b in beta),
        se=tuple(float(s) for s in se),
        robust_se=None,
        variance=_matrix(naive),
        naive_variance=_matrix(naive),
        loglik=(fit.loglik_initial, fit.loglik_final),
        lr_test=Test(lr, p, float(scipy_stats.chi2.sf(lr, p))),
        wald_test=Test(wald, p, float(scipy_stats.chi2.sf(wald, p))),
        score_test=Test(fit.score_test, p, float(scipy_stats.chi2.sf(fit.score_test, p))),
        n=n,
        n_events=n_events,
        n_dropped=n_dropped,
        iterations=fit.iterations,
        ties=ties,
        conf_level=float(conf_level),
        covariates=tuple(str(v) for v in covariates),
        term_columns=columns,
        reference_levels=dict(reference_levels or {}),
        strata=tuple(strata),
        cluster=None,
        weights=None,
        _design=cast(CoxDesign, _NotPooled("the patient-level design")),
        _linear_predictor=cast(FloatArray, _NotPooled("the per-patient linear predictor")),
        _risk_sets=cast(RiskSets, _NotPooled("the patient-level risk sets")),
        n_sites=len(rounds[-1]),
        final_sums=rounds[-1],
    )


_FEDERATED_TRANSFORMS = ("km", "identity", "log")


def _pooled_left_km(km_sums: Sequence[CoxSiteSums]) -> tuple[FloatArray, FloatArray]:
    """(times, 1 - S(t-)) at the pooled distinct event times, from unstratified site sums.

    The Kaplan-Meier estimate (all patients, strata ignored, as R's ``cox.zph``) only steps at
    event times, so the numbers at risk and deaths there determine it exactly.
    """
    first = km_sums[0]
    if first.stratified or len(first.strata) != 1:
        raise InputError(
            "km_sums: need unstratified site sums (cox_site_sums with strata=None) over the "
            "distinct event times of all strata together"
        )
    times = first.strata[0].time
    at_risk = np.zeros(times.size, dtype=np.int64)
    deaths = np.zeros(times.size, dtype=np.int64)
    for i, site in enumerate(km_sums):
        if site.stratified or len(site.strata) != 1 or not np.array_equal(site.strata[0].time, times):
            raise InputError(f"km_sums {i}: not unstratified sums over the same event times as site 0")
        at_risk += site.strata[0].n_at_risk
        deaths += site.strata[0].n_deaths
    if np.any(at_risk[deaths > 0] == 0):
        raise InputError("km_sums: a time with deaths but nobody at risk (inconsistent site sums)")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(deaths > 0, 1.0 - deaths / at_risk.astype(np.float64), 1.0)
    surv_after = np.cumprod(factor)
    surv_before = np.concatenate([[1.0], surv_after[:-1]])
    return times, 1.0 - surv_before


def proportional_hazards_test_federated(
    fit: FederatedCoxResult,
    site_sums: Sequence[CoxSiteSums] | None = None,
    *,
    km_sums: Sequence[CoxSiteSums] | None = None,
    transform: Literal["km", "identity", "log"] = "km",
) -> ProportionalHazardsTest:
    """Score tests of proportional hazards from site aggregates, equal to R's ``cox.zph(fit)``.

    The model ``beta + gamma g(t)`` has, at ``gamma = 0`` and the fitted ``beta``, the score
    ``sum_t g(t) [sum_deaths x - sum_k m_k]`` and information blocks ``sum_t g^j(t) I_t``
    (``j = 0, 1, 2``), with ``I_t`` the information of event time ``t`` (Grambsch & Therneau 1994;
    R's ``zph1.c``): functions of the per-event-time sums only, so the test is exact. ``g`` is
    centred by its mean over the deaths.

    Parameters
    ----------
    fit : FederatedCoxResult
        From :func:`cox_federated`.
    site_sums : sequence of CoxSiteSums, optional
        The sites' sums at ``fit.coef`` (default: ``fit.final_sums``, the last round).
    km_sums : sequence of CoxSiteSums, optional
        For ``transform="km"``: the sites' UNSTRATIFIED sums (any beta; only ``n_at_risk`` and
        ``n_deaths`` are used) over the distinct event times of all strata together, from which
        the pooled Kaplan-Meier estimate is built. Default: ``site_sums`` when the fit is not
        stratified; required for a stratified fit.
    transform : {"km", "identity", "log"}
        ``g(t)``: one minus the left-continuous pooled Kaplan-Meier estimate (R's default), ``t``,
        or ``log t``. ``"rank"`` is not available: it ranks every patient's time, censored ones
        included, which the per-event-time sums do not hold. ``"log"`` checks the event times
        only (R refuses any time <= 0, also a censored one).

    Returns
    -------
    ProportionalHazardsTest
    """
    if not isinstance(fit, FederatedCoxResult):
        raise InputError(f"fit: a FederatedCoxResult from cox_federated is required, got {type(fit).__name__}")
    if transform == "rank":
        raise InputError(
            "transform: 'rank' is not available from site aggregates (it ranks censored times "
            "too); use 'km', 'identity' or 'log'"
        )
    if transform not in _FEDERATED_TRANSFORMS:
        raise InputError(f"transform: must be one of {_FEDERATED_TRANSFORMS}, got {transform!r}")
    sites = tuple(fit.final_sums if site_sums is None else site_sums)
    if not sites:
        raise InputError("site_sums: no site sums given")
    beta = np.array(fit.coef)
    first = sites[0]
    table = tuple((s.stratum, s.time) for s in first.strata)
    pooled = _pool(sites, beta, first.center, first.stratified, table)
    state = _efron_state(pooled, beta, fit.ties == "efron")
    if transform == "km":
        if km_sums is None:
            if first.stratified:
                raise InputError(
                    "km_sums: a stratified fit needs the sites' unstratified sums over all event "
                    "times for the pooled Kaplan-Meier estimate (cox_site_sums with strata=None)"
                )
            km_sums = sites
        km_times, km_g = _pooled_left_km(km_sums)
        where = np.searchsorted(km_times, pooled.time)
        clipped = np.minimum(where, km_times.size - 1)
        if km_times.size == 0 or not np.array_equal(km_times[clipped], pooled.time):
            raise InputError("km_sums: their event times do not include every event time of the fit")
        g = km_g[clipped]
    elif transform == "identity":
        g = pooled.time.copy()
    else:
        if np.any(pooled.time <= 0):
            raise InputError("transform: 'log' needs all times > 0; some event times are 0")
        g = np.log(pooled.time)
    d = pooled.n_deaths.astype(np.float64)
    w = g - float((d * g).sum() / d.sum())
    p = beta.size
    gamma_score = (w[:, None] * (pooled.death_x_sum - state.per_time_mean_sum)).sum(axis=0)
    info = np.empty((2 * p, 2 * p))
    i12 = (state.per_time_information * w[:, None, None]).sum(axis=0)
    info[:p, :p] = state.information
    info[:p, p:] = i12
    info[p:, :p] = i12.T
    info[p:, p:] = (state.per_time_information * (w * w)[:, None, None]).sum(axis=0)
    terms = list(fit.covariates)
    statistic: list[float] = []
    df: list[float] = []
    for columns in fit.term_columns:
        keep = [*range(p), *(p + c for c in columns)]
        u = np.concatenate([np.zeros(p), gamma_score[list(columns)]])
        statistic.append(_quadratic(info[np.ix_(keep, keep)], u, fit.covariates, terms))
        df.append(float(len(columns)))
    statistic.append(_quadratic(info, np.concatenate([np.zeros(p), gamma_score]), fit.covariates, terms))
    df.append(float(p))
    return ProportionalHazardsTest(
        terms=(*terms, "GLOBAL"),
        statistic=tuple(statistic),
        df=tuple(df),
        p_value=tuple(float(scipy_stats.chi2.sf(c, k)) for c, k in zip(statistic, df, strict=True)),
        transform=transform,
    )


@dataclass(frozen=True, eq=False)
class StratumHazards:
    """Pooled per-event-time quantities of one stratum at the fitted coefficients (no patient's).

    For the event times with deaths: ``hazard = sum_k 1/den_k`` (Breslow: ``d / S0``),
    ``hazard_mean = sum_k m_k / den_k``, the same two over the tied deaths' Efron weights
    (``own_*``: ``sum_k (1 - k/d) ...``) and ``mean_of_means = sum_k m_k / d`` (R's ``coxscore2``).
    """

    stratum: str | None
    time: FloatArray
    hazard: FloatArray
    hazard_mean: FloatArray
    own_hazard: FloatArray
    own_hazard_mean: FloatArray
    mean_of_means: FloatArray


_HAZARD_FIELDS = ("time", "hazard", "hazard_mean", "own_hazard", "own_hazard_mean", "mean_of_means")


@dataclass(frozen=True, eq=False)
class CoxResidualRequest:
    """What the coordinator sends for the robust-variance round (JSON-plain, exact round trip)."""

    beta: FloatArray
    center: FloatArray
    stratified: bool
    strata: tuple[StratumHazards, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SITE_SUMS_SCHEMA,
            "beta": _encode(self.beta),
            "center": _encode(self.center),
            "stratified": self.stratified,
            "strata": [
                {"stratum": s.stratum, **{name: _encode(getattr(s, name)) for name in _HAZARD_FIELDS}}
                for s in self.strata
            ],
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> CoxResidualRequest:
        if not isinstance(payload, Mapping) or payload.get("schema") != SITE_SUMS_SCHEMA:
            raise InputError(f"residual request: schema must be {SITE_SUMS_SCHEMA}")
        beta = _frozen(_decode(payload.get("beta"), (), "beta"), np.float64)
        p = beta.size
        center = _frozen(_decode(payload.get("center"), (), "center"), np.float64)
        tails = {"time": (), "hazard": (), "own_hazard": (), "hazard_mean": (p,),
                 "own_hazard_mean": (p,), "mean_of_means": (p,)}
        strata = tuple(
            StratumHazards(
                stratum=raw.get("stratum"),
                **{name: _frozen(_decode(raw.get(name), tails[name], name), np.float64)
                   for name in _HAZARD_FIELDS},
            )
            for raw in payload.get("strata") or []
        )
        return cls(beta, center, bool(payload.get("stratified")), strata)


@dataclass(frozen=True, eq=False)
class CoxResidualSums:
    """One site's answer to the robust round: ``cross = sum_clusters r_c r_c'`` (p x p) over its
    clusters (each patient one by default), ``total = sum r`` (p) and the number of clusters."""

    cross: FloatArray
    total: FloatArray
    n_clusters: int

    def to_json(self) -> dict[str, Any]:
        return {"schema": SITE_SUMS_SCHEMA, "cross": _encode(self.cross), "total": _encode(self.total),
                "n_clusters": int(self.n_clusters)}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> CoxResidualSums:
        if not isinstance(payload, Mapping) or payload.get("schema") != SITE_SUMS_SCHEMA:
            raise InputError(f"residual sums: schema must be {SITE_SUMS_SCHEMA}")
        total = _frozen(_decode(payload.get("total"), (), "total"), np.float64)
        cross = _frozen(_decode(payload.get("cross"), (total.size,), "cross"), np.float64)
        n_clusters = payload.get("n_clusters")
        if not isinstance(n_clusters, int) or isinstance(n_clusters, bool) or n_clusters < 0:
            raise InputError(f"residual sums: n_clusters must be a count, got {n_clusters!r}")
        return cls(cross, total, n_clusters)


def cox_residual_request(fit: FederatedCoxResult) -> CoxResidualRequest:
    """The pooled per-event-time hazards at ``fit.coef`` that the sites need for their score
    residuals (computed from ``fit.final_sums``; every number is a sum over sites)."""
    if not isinstance(fit, FederatedCoxResult) or not fit.final_sums:
        raise InputError("fit: a FederatedCoxResult from cox_federated (with its final sums) is required")
    beta = np.array(fit.coef)
    first = fit.final_sums[0]
    table = tuple((s.stratum, s.time) for s in first.strata)
    pooled = _pool(fit.final_sums, beta, first.center, first.stratified, table)
    state = _efron_state(pooled, beta, fit.ties == "efron")
    d = pooled.n_deaths.astype(np.float64)
    labels = np.array([str(v) for v in pooled.stratum_of_time], dtype=object)
    strata: list[StratumHazards] = []
    for label, _ in table:
        rows = labels == str(label)
        strata.append(StratumHazards(
            stratum=label,
            time=_frozen(pooled.time[rows], np.float64),
            hazard=_frozen(state.hazard[rows], np.float64),
            hazard_mean=_frozen(state.hazard_mean[rows], np.float64),
            own_hazard=_frozen(state.own_hazard[rows], np.float64),
            own_hazard_mean=_frozen(state.own_hazard_mean[rows], np.float64),
            mean_of_means=_frozen(state.per_time_mean_sum[rows] / d[rows][:, None], np.float64),
        ))
    return CoxResidualRequest(_frozen(beta, np.float64), first.center, first.stratified, tuple(strata))


def _stratum_residuals(
    hz: StratumHazards, t: FloatArray, e: npt.NDArray[np.int8], xc: FloatArray, risk: FloatArray
) -> FloatArray:
    """Score residuals of one stratum's rows (``_cox_residuals.score_residuals``, per row)."""
    p = xc.shape[1]
    passed = np.searchsorted(hz.time, t, side="right")  # event times <= the row's time
    cum_h = np.concatenate([[0.0], np.cumsum(hz.hazard)])[passed]
    cum_hm = np.concatenate([np.zeros((1, p)), np.cumsum(hz.hazard_mean, axis=0)])[passed]
    resid = -risk[:, None] * (xc * cum_h[:, None] - cum_hm)
    dead = np.flatnonzero(e == 1)
    j = passed[dead] - 1
    if dead.size and (np.any(j < 0) or not np.array_equal(hz.time[np.maximum(j, 0)], t[dead])):
        raise InputError("request: a death of the site is not at one of the request's event times")
    r_dead = risk[dead][:, None]
    x_dead = xc[dead]
    resid[dead] += r_dead * (x_dead * hz.hazard[j][:, None] - hz.hazard_mean[j])
    resid[dead] -= r_dead * (x_dead * hz.own_hazard[j][:, None] - hz.own_hazard_mean[j])
    resid[dead] += x_dead - hz.mean_of_means[j]
    return resid


def cox_site_residual_sums(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    request: CoxResidualRequest,
    strata: npt.ArrayLike | None = None,
    cluster: npt.ArrayLike | None = None,
) -> CoxResidualSums:
    """The site's part of the robust variance: its patients' score residuals at the fit, summed.

    ``cluster`` labels group the site's rows (default: each row its own cluster, R's
    ``robust = TRUE``); a cluster must not continue at another site. Returns
    ``sum_c r_c r_c'`` over the site's clusters and ``sum r`` (for the cluster = site variance).
    """
    t, e = check_time_event(time, event)
    xm = np.array(x, dtype=np.float64)
    p = request.beta.size
    if xm.ndim != 2 or xm.shape != (t.size, p):
        raise InputError(f"x: expected shape ({t.size}, {p}), got {xm.shape}")
    if request.stratified != (strata is not None):
        raise InputError("strata: give them exactly when the request is stratified")
    xc = xm - request.center
    risk = np.exp(xc @ request.beta)
    resid = np.zeros((t.size, p))
    if strata is None:
        (hz,) = request.strata
        resid = _stratum_residuals(hz, t, e, xc, risk)
    else:
        labels = as_label_array(strata, "strata").astype(str)
        for hz in request.strata:
            rows = labels == hz.stratum
            resid[rows] = _stratum_residuals(hz, t[rows], e[rows], xc[rows], risk[rows])
        # a stratum without any death has score residuals 0 (it does not enter the likelihood)
    if cluster is None:
        cross = resid.T @ resid
        n_clusters = t.size
    else:
        codes = np.unique(as_label_array(cluster, "cluster").astype(str), return_inverse=True)[1].reshape(-1)
        n_clusters = int(codes.max()) + 1
        summed = np.zeros((n_clusters, p))
        for j in range(p):
            summed[:, j] = np.bincount(codes, weights=resid[:, j], minlength=n_clusters)
        cross = summed.T @ summed
    return CoxResidualSums(_frozen(cross, np.float64), _frozen(resid.sum(axis=0), np.float64), n_clusters)


def robust_variance_federated(
    fit: FederatedCoxResult,
    residual_sums: Sequence[CoxResidualSums],
    *,
    cluster: str | None = None,
    cluster_is_site: bool = False,
) -> FederatedCoxResult:
    """``fit`` with the robust (sandwich) variance, as ``cox_ph(robust=True)`` or ``cluster=``.

    ``V = I^-1 (sum over clusters r r') I^-1``: the sites' ``cross`` summed, or with
    ``cluster_is_site`` the outer products of each site's ``total`` (R's ``cluster(site)``).
    ``robust_se``, ``variance`` and the Wald test then use it, as ``cox_ph`` does.
    """
    if not isinstance(fit, FederatedCoxResult):
        raise InputError(f"fit: a FederatedCoxResult is required, got {type(fit).__name__}")
    if not residual_sums:
        raise InputError("residual_sums: no site answers given")
    p = len(fit.coef)
    for i, s in enumerate(residual_sums):
        if not isinstance(s, CoxResidualSums) or s.cross.shape != (p, p):
            raise InputError(f"residual_sums {i}: not the residual sums of a {p}-column model")
    if cluster_is_site:
        meat = sum((np.outer(s.total, s.total) for s in residual_sums), np.zeros((p, p)))
        n_clusters = len(residual_sums)
    else:
        meat = sum((s.cross for s in residual_sums), np.zeros((p, p)))
        n_clusters = sum(s.n_clusters for s in residual_sums)
    naive = np.array(fit.naive_variance)
    robust = naive @ meat @ naive
    wald = _wald(np.array(fit.coef), robust, n_clusters)
    return replace(
        fit,
        robust_se=tuple(float(v) for v in np.sqrt(np.diag(robust))),
        variance=_matrix(robust),
        wald_test=Test(wald, p, float(scipy_stats.chi2.sf(wald, p))),
        cluster=cluster,
    )
