"""Times to event, calibrated so that Kaplan-Meier estimates from the written dates hit the targets.

Each eligible patient's PFS comes from a piecewise-exponential hazard: its best-response class's
pieces (PD patients progress at their first scan, SD and responders at a later one), times
time-varying hazard ratios of the published subgroups (prior anti-PD-1, taxane alone), times the
prognostic score's effect (brain metastases, M1c, elevated LDH and ECOG >= 2 raise the hazards).
Death has its own piecewise-exponential hazard, entered after the progression. The knots sit at the
published times (a median and its 95% CI bounds, the 1-year rate), and each piece's log-hazard is a
"knob" fitted deterministically until every published Kaplan-Meier figure computed from the integer
day counts (median, CI bounds as R's default log-transformed band gives them, rate, follow-up)
rounds to its target (docs/synthetic-data.md). Times are whole days from the index date, exactly as
the files carry them.

The censoring rules are those of docs/definitions.md: PFS is censored at the last evaluable
assessment (here: the last scan before the last contact), OS at the last contact.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK
from oncorwe.synth._baseline import Cohort, day_number, stream

__all__ = ["Calibration", "Times", "draw_times", "km_days", "km_median", "km_survival", "times_for_knobs"]

IntArray = npt.NDArray[np.int64]
PD_FIRST_SCAN = (28, 112)  # days: a PD patient's first scan (the progression) falls in this range
MIN_SECOND_SCAN = 84  # an SD or responding patient progresses at a second scan at the earliest
YEAR_DAYS = 12 * DAYS_PER_MONTH
CALIBRATION_SAMPLE = 50_000
RESTARTS = 3  # fresh rounds of damped steps when a calibration stalls


def km_survival(time: npt.NDArray[np.float64], event: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Kaplan-Meier (1958) product-limit estimate: distinct event times and S just after each."""
    order = np.argsort(time, kind="stable")
    t = time[order]
    e = event[order].astype(np.int64)
    if t.shape[0] == 0:
        return t, t
    first = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
    distinct = t[first]
    at_risk = t.shape[0] - first
    deaths = np.add.reduceat(e, first)
    keep = deaths > 0
    surv = np.cumprod(1.0 - deaths[keep] / at_risk[keep])
    return distinct[keep], surv


def km_days(days: IntArray, event: npt.NDArray[np.bool_]) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """``km_survival`` for whole-day times (>= 0), by counting instead of sorting: O(n).

    The same counts at the same distinct times, divided and multiplied in the same order, so the
    estimates are bit-identical to ``km_survival`` on ``days / DAYS_PER_MONTH``.
    """
    if days.shape[0] == 0:
        return days[:0], np.zeros(0)
    size = int(days.max()) + 1
    exits = np.bincount(days, minlength=size)
    deaths = np.bincount(days[event], minlength=size)
    at_risk = days.shape[0] - (np.cumsum(exits) - exits)  # still followed at the start of each day
    keep = np.flatnonzero(deaths)
    surv = np.cumprod(1.0 - deaths[keep] / at_risk[keep])
    return keep.astype(np.int64), surv


def _median_of_curve(times: npt.NDArray[np.float64], surv: npt.NDArray[np.float64]) -> float:
    below = np.flatnonzero(surv <= 0.5 + 1e-12)
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    if abs(surv[k] - 0.5) < 1e-12 and k + 1 < times.shape[0]:
        return float((times[k] + times[k + 1]) / 2)
    return float(times[k])


def km_median(time: npt.ArrayLike, event: npt.ArrayLike) -> float:
    """Median of the Kaplan-Meier curve as R's ``survival`` prints it (NaN if never reached).

    Where the curve sits exactly at 0.5 between two event times, the median is their midpoint.
    """
    return _median_of_curve(*km_survival(np.asarray(time, dtype=float), np.asarray(event, dtype=bool)))


def km_at(time: npt.ArrayLike, event: npt.ArrayLike, at: float) -> float:
    """Kaplan-Meier survival at time ``at``."""
    times, surv = km_survival(np.asarray(time, dtype=float), np.asarray(event, dtype=bool))
    return _surv_at(times, surv, at)


def _surv_at(times: npt.NDArray[np.float64], surv: npt.NDArray[np.float64], at: float) -> float:
    idx = np.searchsorted(times, at, side="right") - 1
    return 1.0 if idx < 0 else float(surv[idx])


def _km_months(days: IntArray, event: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    distinct, surv = km_days(days, event)
    return distinct / DAYS_PER_MONTH, surv


@dataclass(frozen=True)
class Times:
    """Per patient, in whole days from the index date."""

    pfs_days: IntArray  # PFS event or censoring day
    pfs_kind: npt.NDArray[np.object_]  # "pd" (a PD scan) | "death" | "censored"
    os_days: IntArray  # death or last contact
    os_event: npt.NDArray[np.bool_]
    chemo_days: IntArray  # index line end - start


@dataclass(frozen=True)
class Calibration:
    """What the calibration reached (months; weeks for the chemotherapy duration)."""

    figures: dict[str, float]
    iterations: int
    converged: bool
    #: the fitted log-hazards of the time model (the pieces of ``_pieces``, then the censoring
    #: scale): with the cohort's covariates and responses they are the generator's outcome model
    knobs: tuple[float, ...] = ()


CONF_LEVEL = 0.95  # the paper's intervals are 95% CIs
_Z = NormalDist().inv_cdf(0.5 + CONF_LEVEL / 2)
_FAR = 1e7  # days: where the last piece of a hazard is extrapolated to (beyond any follow-up)

#: the Kaplan-Meier figures the time model is fitted to, by target key: (endpoint, group mask);
#: each may come with "_lower" and "_upper" targets (its 95% CI bounds) in the targets file
_MEDIAN_GROUPS = {
    "pfs_median": ("pfs", "all"),
    "pfs_median_responders": ("pfs", "resp"),
    "pfs_median_taxane": ("pfs", "tax"),
    "pfs_median_prior_anti_pd1": ("pfs", "pd1"),
    "os_median": ("os", "all"),
    "os_median_responders": ("os", "resp"),
    "os_median_nonresponders": ("os", "nonresp"),
}


@dataclass(frozen=True)
class _Piece:
    """One knob: the log-hazard (per day) of ``members`` on [start, end) days, fitted to ``figure``.

    A piece of a class (``base``) sets the hazard of the class's patients; a piece of a subgroup
    multiplies the hazard of its members (a time-varying hazard ratio, log scale).
    """

    endpoint: str  # "pfs" | "os"
    members: str  # mask name
    base: bool
    start: float
    end: float
    figure: str


def _pieces(goal: dict[str, float]) -> tuple[_Piece, ...]:
    """The piecewise-exponential hazards and the figure each piece is fitted to.

    Knots sit at the published times themselves: a piece ends where the figure after it is read
    (e.g. PD patients: [first scan, CI lower), [CI lower, median), [median, ...) fitted to the
    lower bound, the median and the upper bound of the median PFS). Figures without a target in
    the targets file are left out, so a study without published CIs gets one piece per median.
    """

    def chain(endpoint: str, members: str, base: bool, start: float, figures: list[str]) -> list[_Piece]:
        figures = [f for f in figures if f in goal]
        knots = [start] + [goal[f] * DAYS_PER_MONTH for f in figures[:-1]] + [_FAR]
        if any(b <= a for a, b in itertools.pairwise(knots)):
            raise ValueError(f"synth targets: the times of {figures} must increase after day {start:g}")
        return [_Piece(endpoint, members, base, a, b, f) for (a, b), f in zip(itertools.pairwise(knots), figures, strict=True)]

    def ci(key: str) -> list[str]:
        return [f"{key}_lower", key, f"{key}_upper"]

    first, later = float(PD_FIRST_SCAN[0]), float(MIN_SECOND_SCAN)
    return tuple(
        chain("pfs", "pd", True, first, ci("pfs_median"))
        + chain("pfs", "sd", True, later, ["pfs_rate_12_months"])
        + chain("pfs", "resp", True, later, ci("pfs_median_responders"))
        + chain("pfs", "pd1", False, 0.0, ci("pfs_median_prior_anti_pd1"))
        + chain("pfs", "tax", False, 0.0, ci("pfs_median_taxane"))
        # OS: non-responders carry the overall median and its upper bound, responders its lower one
        + chain("os", "nonresp", True, 0.0, ["os_median_nonresponders", "os_median", "os_median_upper"])
        + chain("os", "resp", True, 0.0, ["os_median_lower", "os_median_responders"])
    )


def _initial_knobs(pieces: tuple[_Piece, ...]) -> list[float]:
    """Starting log-hazards per day (typical times of each class; subgroup ratios 1)."""
    typical = {"pd": 30.0, "sd": 120.0, "resp": 250.0, "nonresp": 170.0}
    return [-np.log(typical[p.members]) if p.base else 0.0 for p in pieces] + [0.0]  # + censoring


def _piece_rates(
    pieces: tuple[_Piece, ...], k: list[float], endpoint: str, klass: str, member_of: dict[str, bool]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Knots and per-day hazard on each interval after them, for one cell of patients."""
    own = [p for p in pieces if p.endpoint == endpoint and p.base and p.members == klass]
    factors = [(p, k[i]) for i, p in enumerate(pieces) if p.endpoint == endpoint and not p.base and member_of.get(p.members)]
    knots = sorted({own[0].start, *(p.start for p in own), *(p.start for p, _ in factors if p.start > own[0].start)})
    knots_arr = np.array(knots, dtype=float)
    rates = np.empty(knots_arr.shape[0])
    for j, t in enumerate(knots_arr):
        log_rate = next(k[pieces.index(p)] for p in own if p.start <= t < p.end)
        log_rate += sum(value for p, value in factors if p.start <= t < p.end)
        rates[j] = np.exp(log_rate)
    return knots_arr, rates


def _invert(knots: npt.NDArray[np.float64], rates: npt.NDArray[np.float64], h: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The time at which the piecewise-linear cumulative hazard reaches ``h`` (>= 0)."""
    ends = np.append(knots[1:], _FAR)
    cum = np.concatenate(([0.0], np.cumsum(rates * (ends - knots))))
    return np.interp(h, cum, np.append(knots, _FAR))


def _cumulative(knots: npt.NDArray[np.float64], rates: npt.NDArray[np.float64], t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    ends = np.append(knots[1:], _FAR)
    cum = np.concatenate(([0.0], np.cumsum(rates * (ends - knots))))
    return np.interp(t, np.append(knots, _FAR), cum)


def _stratified_exponential(z: npt.NDArray[np.float64], cells: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Unit exponentials at evenly spaced quantiles within each cell, in the order of ``z``.

    -log(1 - (rank + 1/2) / n) for the patient of rank ``rank`` among the ``n`` of its cell: each
    cell's times then follow its hazard as closely as n patients can, whatever the seed (the seed
    still decides which patient gets which time); the published figures of small subgroups no
    longer hinge on a lucky draw.
    """
    out = np.empty(z.shape[0])
    for cell in np.unique(cells):
        rows = np.flatnonzero(cells == cell)
        ranks = np.empty(rows.shape[0])
        ranks[np.argsort(z[rows], kind="stable")] = np.arange(rows.shape[0])
        out[rows] = -np.log1p(-(ranks + 0.5) / rows.shape[0])
    return out


def _km_band(days: IntArray, event: npt.NDArray[np.bool_]) -> tuple[IntArray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``km_days`` with the standard error of the cumulative hazard (Greenwood), as R's std.err."""
    if days.shape[0] == 0:
        return days[:0], np.zeros(0), np.zeros(0)
    size = int(days.max()) + 1
    exits = np.bincount(days, minlength=size)
    deaths = np.bincount(days[event], minlength=size)
    at_risk = days.shape[0] - (np.cumsum(exits) - exits)
    keep = np.flatnonzero(deaths)
    d, n = deaths[keep], at_risk[keep]
    surv = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore"):
        se = np.sqrt(np.cumsum(d / (n * (n - d))))
    return keep.astype(np.int64), surv, se


def _figures(t: dict[str, Any], g: dict[str, npt.NDArray[np.bool_]], goal: dict[str, float], se_scale: float) -> dict[str, float]:
    """The fitted figures of the realised times (months; the 12-month rate as a proportion).

    CI bounds are the times at which the log-transformed 95% pointwise band, exp(log S -/+ z se),
    first reaches 0.5 (R's survfit default, conf.type = "log"), ``se`` scaled by ``se_scale``
    (sqrt(n / published n): a study of another size is fitted to the curve shape whose CI at the
    published size is the published one).
    """
    out: dict[str, float] = {}
    for key, (endpoint, group) in _MEDIAN_GROUPS.items():
        if key not in goal:
            continue
        mask = g[group]
        days, ev = (t["pfs"], t["pfs_event"]) if endpoint == "pfs" else (t["os"], t["os_event"])
        times, surv, se = _km_band(days[mask], ev[mask])
        months = times / DAYS_PER_MONTH
        out[key] = _median_of_curve(months, surv)
        if f"{key}_lower" in goal:
            out[f"{key}_lower"] = _median_of_curve(months, surv * np.exp(-_Z * se_scale * se))
        if f"{key}_upper" in goal:
            # where everyone still at risk has the event, S = 0 and se = inf: the band is 0 there
            upper = np.where(surv > 0, surv * np.exp(_Z * se_scale * np.where(surv > 0, se, 0.0)), 0.0)
            out[f"{key}_upper"] = _median_of_curve(months, np.minimum(upper, 1.0))
        if key == "pfs_median":
            out["pfs_rate_12_months"] = _surv_at(months, surv, 12.0)
            if "pfs_rate_12_months_upper" in goal:
                row = int(np.searchsorted(months, 12.0, side="right")) - 1
                rate, rate_se = (1.0, 0.0) if row < 0 else (float(surv[row]), float(se[row]))
                out["pfs_rate_12_months_upper"] = min(rate * float(np.exp(_Z * se_scale * rate_se)), 1.0)
    out["followup_median"] = _median_of_curve(*_km_months(t["os"], ~t["os_event"]))
    return out


def _miss(fig: dict[str, float], target: dict[str, float]) -> float:
    """0 when every figure rounds to its published value, else the summed distance in units of
    the published precision (0.1 month, 1 percentage point, 1 month of follow-up)."""
    total = 0.0
    for key, value in fig.items():
        goal = target[key]
        unit, digits = {"pfs_rate_12_months": (0.01, 2), "pfs_rate_12_months_upper": (0.01, 2), "followup_median": (1.0, 0)}.get(key, (0.1, 1))
        if not np.isfinite(value):
            total += 100.0
        elif _round_half_up(value, digits) != _round_half_up(goal, digits):
            total += abs(value - goal) / unit
    return total


def _round_half_up(value: float, digits: int) -> Decimal:
    """Rounding as the published-vs-reproduced table does (half up on the shortest decimal form,
    at the published precision)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _masks(c: Cohort) -> dict[str, npt.NDArray[np.bool_]]:
    """Boolean masks of the cohort the time model needs (computed once, not per iteration)."""
    resp = np.isin(c.bor, ["CR", "PR"])
    pd = c.bor == "PD"
    ne = c.bor == "NE"
    return {
        "all": np.ones(c.n, dtype=bool),
        "resp": resp,
        "nonresp": ~resp,
        "pd": pd,
        "ne": ne,
        "sd": ~pd & ~ne & ~resp,
        "tax": c.regimen_class == "taxane",
        "pd1": np.isin(c.prior, ["anti_pd1", "combined", "sequence"]),
    }


@dataclass(frozen=True)
class _Draws:
    """What a realisation needs besides the knobs (fixed for a cohort and seed)."""

    pieces: tuple[_Piece, ...]
    e_pfs: npt.NDArray[np.float64]  # unit exponentials, stratified per PFS cell
    e_os: npt.NDArray[np.float64]  # unit exponentials, stratified per OS class
    pfs_cells: npt.NDArray[np.int64]
    pfs_cell_members: tuple[tuple[str, dict[str, bool]], ...]  # per cell: class, subgroup membership


_PFS_CLASSES = ("pd", "sd", "resp")
_PFS_FACTORS = ("pd1", "tax")


def _draws(c: Cohort, m: dict[str, npt.NDArray[np.bool_]], z: npt.NDArray[np.float64], pieces: tuple[_Piece, ...]) -> _Draws:
    klass = np.select([m["pd"], m["sd"], m["resp"]], [0, 1, 2], default=0)
    cells = klass * 4 + 2 * m["pd1"] + m["tax"]
    members = tuple(
        (_PFS_CLASSES[cell // 4], {"pd1": bool(cell & 2), "tax": bool(cell & 1)}) for cell in range(12)
    )
    return _Draws(
        pieces=pieces,
        e_pfs=_stratified_exponential(z[:, 0], cells),
        e_os=_stratified_exponential(z[:, 1], m["resp"].astype(np.int64)),
        pfs_cells=cells,
        pfs_cell_members=members,
    )


# the prognostic score multiplies the hazards (log hazard ratio per unit of score)
_RISK_PD, _RISK_LATER, _RISK_OS = 0.3, 0.6, 0.5


def _realise(
    c: Cohort, m: dict[str, npt.NDArray[np.bool_]], d: _Draws, u: npt.NDArray[np.float64], z: npt.NDArray[np.float64],
    admin: IntArray, k: list[float], *, kinds: bool = False,
) -> dict[str, Any]:
    """Integer-day times for the knob values ``k`` (vectorised; the same rules for every size).

    PFS: per patient a piecewise-exponential hazard (its best-response class's pieces, times the
    subgroup ratios, times exp(b risk)); PD patients progress at their first scan (the time capped
    at the last first-scan day), SD and responders at a second or later scan. OS: a death hazard
    on the same time axis, per responder class, entered only after the progression (so death
    follows it), also times exp(b risk).
    """
    resp, pd, ne = m["resp"], m["pd"], m["ne"]
    later = ~pd & ~ne
    risk = c.risk
    pfs_latent = np.empty(c.n)
    scale = np.exp(-np.where(pd, _RISK_PD, _RISK_LATER) * risk)
    for cell, (klass, member_of) in enumerate(d.pfs_cell_members):
        rows = d.pfs_cells == cell
        if rows.any():
            knots, rates = _piece_rates(d.pieces, k, "pfs", klass, member_of)
            pfs_latent[rows] = _invert(knots, rates, d.e_pfs[rows] * scale[rows])
    pfs = np.where(pd, np.clip(pfs_latent, *PD_FIRST_SCAN), np.maximum(pfs_latent, MIN_SECOND_SCAN))
    pfs = np.rint(pfs).astype(np.int64)
    ne_death = (7 + np.floor(u[:, 0] * 34)).astype(np.int64)  # dies before the first scan
    pfs = np.where(ne, ne_death, pfs)
    death_first = later & (u[:, 1] < 0.07)  # dies without a documented progression

    death = np.empty(c.n)
    os_scale = np.exp(-_RISK_OS * risk)
    entry = pfs.astype(float) + 1.0  # at least a day between a progression and death
    for klass, rows in (("nonresp", ~resp), ("resp", resp)):
        if rows.any():
            knots, rates = _piece_rates(d.pieces, k, "os", klass, {})
            h0 = _cumulative(knots, rates, entry[rows])
            death[rows] = _invert(knots, rates, h0 + d.e_os[rows] * os_scale[rows])
    death_days = np.rint(death).astype(np.int64)
    death_days = np.where(ne | death_first, pfs, death_days)

    loss = np.rint(np.exp(np.log(700.0) + 1.0 * z[:, 2] + k[-1])).astype(np.int64)
    contact = np.minimum(admin, loss)
    # a progression that is in the files was seen: the last contact is not before it
    contact = np.where(pd | ne, np.maximum(contact, pfs), np.maximum(contact, 60))
    os_event = death_days <= contact
    os_days = np.where(os_event, death_days, contact)
    censored = later & (pfs > contact)
    last_scan = np.maximum(contact - np.floor(u[:, 2] * 28).astype(np.int64), 42)
    pfs = np.where(censored, last_scan, pfs)
    out = {"pfs": pfs, "pfs_event": ~censored, "os": os_days, "os_event": os_event}
    if kinds:  # the words only for the final draw: object arrays are slow at a million patients
        pfs_kind = np.where(ne | death_first, "death", "pd").astype(object)
        pfs_kind[censored] = "censored"
        out["pfs_kind"] = pfs_kind
    return out


def _chemo_days(c: Cohort, t: dict[str, Any], z: npt.NDArray[np.float64], target_weeks: float, max_weeks: float) -> IntArray:
    """Index-line duration: planned course, stopped at progression, death or last contact.

    One common scale of the planned durations is found by bisection so the median is the target;
    then the shortest course is a single administration (0 weeks) and the longest (a long
    responder) lasts ``max_weeks``.
    """
    resp = (c.bor == "CR") | (c.bor == "PR")
    upper = np.where(t["pfs_kind"] == "censored", t["os"], t["pfs"])
    planned = np.exp(np.log(50.0) + 0.7 * z[:, 3] + 0.5 * resp + 0.2 * (c.bor == "SD"))
    target_days = target_weeks * DAYS_PER_WEEK
    n = planned.shape[0]
    lo, hi = 0.05, 50.0
    days = np.minimum(upper, np.rint(planned))
    for _ in range(80):
        mid = (lo + hi) / 2
        days = np.minimum(upper, np.rint(planned * mid)).astype(np.int64)
        med = float(np.median(days / DAYS_PER_WEEK))
        if round(med, 1) == round(target_weeks, 1) and n:
            break
        if med * DAYS_PER_WEEK < target_days:
            lo = mid
        else:
            hi = mid
    if n:
        # The analysis reads the median over the courses whose end date survives the centres'
        # defects, a few patients fewer than here: courses within 3 days of the median are set to
        # it, so that dropping a few does not move the median by a day (7.9 weeks is 55 days; 56 is
        # 8.0).
        median_day = round(float(np.median(days)))
        near = (np.abs(days - median_day) <= 3) & (upper >= median_day)
        days = np.where(near, median_day, days)
    max_days = round(max_weeks * DAYS_PER_WEEK)
    days = np.minimum(days.astype(np.int64), max_days)
    if n >= 3:
        days[int(np.argmin(days))] = 0
        longest = int(np.argmax(upper))
        days[longest] = min(int(upper[longest]), round(max_weeks * DAYS_PER_WEEK))
    return days


def draw_times(
    c: Cohort, targets: dict[str, Any], seed: int, max_iter: int = 300, refine_passes: int = 12
) -> tuple[Times, Calibration]:
    """Calibrated times for every record (the knobs are fitted on the eligible ones only)."""
    rng = stream(seed, "times")
    z = rng.standard_normal((c.n, 4))
    u = rng.random((c.n, 3))
    cutoff = day_number(dt.date.fromisoformat(targets["study"]["data_cutoff"]))
    admin = cutoff - c.index_day
    goal = {k: float(v) for k, v in targets["published"]["times"].items()}
    fit_goal = {k: v for k, v in goal.items() if not k.startswith(("chemo_", "age_"))}
    pieces = _pieces(fit_goal)
    elig = c.eligible
    n_elig = int(elig.sum())
    se_scale = float(np.sqrt(n_elig / targets["study"]["eligible"])) if n_elig else 1.0
    # a large study is calibrated on an evenly spaced sample of its eligible patients (the
    # Kaplan-Meier figures of 50,000 patients already sit within a rounding step of the whole),
    # then refined on everyone
    fit = elig.copy()
    if n_elig > CALIBRATION_SAMPLE:
        positions = np.flatnonzero(elig)
        fit[:] = False
        fit[positions[:: int(np.ceil(n_elig / CALIBRATION_SAMPLE))]] = True
    k = _initial_knobs(pieces)
    sample = _subset(c, fit)
    k, fig, converged, it = _fit(k, sample, z[fit], u[fit], admin[fit], pieces, fit_goal, se_scale, max_iter, refine_passes)
    for _ in range(RESTARTS):
        if converged:
            break
        # stalled a rounding step short (coupled step functions of small groups): restart the
        # damped steps from the best knobs so far
        k, fig, converged, steps = _fit(k, sample, z[fit], u[fit], admin[fit], pieces, fit_goal, se_scale, max_iter, refine_passes)
        it += steps
    everyone = _subset(c, elig)
    if n_elig > CALIBRATION_SAMPLE:
        k, fig, converged, steps = _fit(k, everyone, z[elig], u[elig], admin[elig], pieces, fit_goal, se_scale, 40, 3)
        it += steps
    masks = _masks(c)
    t_all = _realise(c, masks, _draws_by_eligibility(c, masks, z, pieces), u, z, admin, k, kinds=True)
    chemo = np.zeros(c.n, dtype=np.int64)
    t_elig = {key: value[elig] for key, value in t_all.items()}
    chemo[elig] = _chemo_days(everyone, t_elig, z[elig], goal["chemo_duration_median_weeks"], goal["chemo_duration_max_weeks"])
    if (~elig).any():
        t_ex = {key: value[~elig] for key, value in t_all.items()}
        chemo[~elig] = np.minimum(
            np.where(t_ex["pfs_kind"] == "censored", t_ex["os"], t_ex["pfs"]),
            np.rint(np.exp(np.log(55.0) + 0.7 * z[~elig, 3])),
        ).astype(np.int64)
    fig["chemo_duration_median_weeks"] = float(np.median(chemo[elig] / DAYS_PER_WEEK)) if elig.any() else float("nan")
    fig["chemo_duration_max_weeks"] = float(chemo[elig].max() / DAYS_PER_WEEK) if elig.any() else float("nan")
    times = Times(
        pfs_days=t_all["pfs"],
        pfs_kind=t_all["pfs_kind"],
        os_days=t_all["os"],
        os_event=t_all["os_event"],
        chemo_days=chemo,
    )
    return times, Calibration(figures=fig, iterations=it, converged=converged, knobs=tuple(float(v) for v in k))


def times_for_knobs(c: Cohort, targets: dict[str, Any], seed: int, knobs: tuple[float, ...]) -> dict[str, Any]:
    """The integer-day times of the eligible cohort ``c`` under fitted ``knobs`` (no calibration):
    ``{"pfs", "pfs_event", "os", "os_event"}``, drawn as ``draw_times`` draws them from ``seed``.

    The same outcome and censoring model as the study whose calibration gave the knobs, applied
    to other patients (e.g. a large cohort with the regimen assigned at random).
    """
    if not c.eligible.all():
        raise ValueError("times_for_knobs: the cohort must hold eligible patients only")
    rng = stream(seed, "times")
    z = rng.standard_normal((c.n, 4))
    u = rng.random((c.n, 3))
    admin = day_number(dt.date.fromisoformat(targets["study"]["data_cutoff"])) - c.index_day
    goal = {k: float(v) for k, v in targets["published"]["times"].items()}
    pieces = _pieces({k: v for k, v in goal.items() if not k.startswith(("chemo_", "age_"))})
    if len(knobs) != len(pieces) + 1:
        raise ValueError(f"times_for_knobs: {len(pieces) + 1} knobs expected, got {len(knobs)}")
    masks = _masks(c)
    t = _realise(c, masks, _draws(c, masks, z, pieces), u, z, admin, list(knobs))
    return {key: t[key] for key in ("pfs", "pfs_event", "os", "os_event")}


def _draws_by_eligibility(c: Cohort, m: dict[str, npt.NDArray[np.bool_]], z: npt.NDArray[np.float64], pieces: tuple[_Piece, ...]) -> _Draws:
    """Stratified draws for every record: the eligible ones stratified among themselves (as in
    the fit), the excluded ones among themselves."""
    elig = c.eligible
    d = _draws(c, m, z, pieces)
    if not (~elig).any():
        return d
    cells = d.pfs_cells + 12 * (~elig)
    return _Draws(
        pieces=pieces,
        e_pfs=_stratified_exponential(z[:, 0], cells),
        e_os=_stratified_exponential(z[:, 1], m["resp"].astype(np.int64) + 2 * (~elig)),
        pfs_cells=d.pfs_cells,
        pfs_cell_members=d.pfs_cell_members,
    )


def _fit(
    k: list[float], c: Cohort, z: npt.NDArray[np.float64], u: npt.NDArray[np.float64], admin: IntArray,
    pieces: tuple[_Piece, ...], goal: dict[str, float], se_scale: float, max_iter: int, refine_passes: int,
) -> tuple[list[float], dict[str, float], bool, int]:
    """Knobs that make every figure of ``c`` round to its target.

    First Newton-like fixed-point steps: each piece's log-hazard moves by the missing cumulative
    hazard at its figure's time (log S(t) / target level, the level 0.5 for a median and
    0.5 exp(+/- z se(t)) for a CI bound), divided by the Nelson-Aalen hazard its members carry on
    the piece, damped. Then a deterministic coordinate search on the pieces whose figure still
    misses by a rounding step (Kaplan-Meier figures of a few dozen patients move in steps).
    Returns the knobs, their figures, whether every figure rounds and the number of evaluations.
    """
    masks = _masks(c)
    d = _draws(c, masks, z, pieces)

    def evaluate(knobs: list[float]) -> tuple[dict[str, Any], dict[str, float], float]:
        t = _realise(c, masks, d, u, z, admin, knobs)
        fig = _figures(t, masks, goal, se_scale)
        return t, fig, _miss(fig, goal)

    k = list(k)
    t, fig, miss = evaluate(k)
    best, best_fig, best_miss = list(k), fig, miss
    used = 1
    for it in range(1, max_iter + 1):
        if miss == 0.0:
            break
        _update(k, t, fig, masks, pieces, goal, se_scale, damp=0.7 / (1.0 + it / 80.0))
        t, fig, miss = evaluate(k)
        used += 1
        if miss < best_miss:
            best, best_fig, best_miss = list(k), fig, miss
    for _ in range(refine_passes):
        if best_miss == 0.0:
            break
        before = best_miss
        for i, piece in enumerate((*pieces, None)):
            key = piece.figure if piece is not None else "followup_median"
            keys = [key, "pfs_rate_12_months_upper"] if key == "pfs_rate_12_months" and "pfs_rate_12_months_upper" in goal else [key]
            if _miss({name: best_fig[name] for name in keys}, goal) == 0.0:
                continue
            target = goal[key]
            if len(keys) == 2:  # the 1-year rate aims where it and its upper bound both round
                t_best = _realise(c, masks, d, u, z, admin, best)
                times, _, se = _km_band(t_best["pfs"], t_best["pfs_event"])
                row = int(np.searchsorted(times, YEAR_DAYS, side="right")) - 1
                target = _rate_level(goal, se_scale * float(se[row]) if row >= 0 else 0.0)
            trial, found, evaluations = _bisect(evaluate, best, i, keys, target, goal, rising=piece is None)
            used += evaluations
            if found is not None and found[1] < best_miss:
                best, best_fig, best_miss = trial, found[0], found[1]
        if best_miss >= before:
            break
    return best, best_fig, best_miss == 0.0, used


def _bisect(
    evaluate: Any, knobs: list[float], i: int, keys: list[str], target: float, goal: dict[str, float], *, rising: bool,
) -> tuple[list[float], tuple[dict[str, float], float] | None, int]:
    """Move knob ``i`` alone until its figure(s) round to the published value(s): bracket the
    target by doubling steps, then bisect. ``rising``: the figure grows with the knob (the
    censoring scale); a hazard's figure (a time or a rate) falls as the hazard grows."""

    def at(value: float) -> tuple[list[float], dict[str, float], float, float]:
        trial = list(knobs)
        trial[i] = value
        _, fig, miss = evaluate(trial)
        figure = fig[keys[0]]
        return trial, fig, miss, (figure if np.isfinite(figure) else 1e9) - target

    used = 1
    _, _, _, gap = at(knobs[i])
    direction = (1.0 if rising else -1.0) * (-1.0 if gap > 0 else 1.0)
    a, gap_a, step = knobs[i], gap, 0.02
    b, gap_b = a, gap
    for _ in range(12):  # bracket
        b = a + direction * step
        trial, fig, miss, gap_b = at(b)
        used += 1
        if _miss({k: fig[k] for k in keys}, goal) == 0.0:
            return trial, (fig, miss), used
        if np.sign(gap_b) != np.sign(gap_a):
            break
        a, gap_a, step = b, gap_b, step * 2
    else:
        return knobs, None, used
    for _ in range(30):  # bisect
        mid = (a + b) / 2
        trial, fig, miss, gap_mid = at(mid)
        used += 1
        if _miss({k: fig[k] for k in keys}, goal) == 0.0:
            return trial, (fig, miss), used
        if np.sign(gap_mid) == np.sign(gap_a):
            a, gap_a = mid, gap_mid
        else:
            b = mid
    return knobs, None, used


def _update(
    k: list[float], t: dict[str, Any], fig: dict[str, float], m: dict[str, npt.NDArray[np.bool_]],
    pieces: tuple[_Piece, ...], goal: dict[str, float], se_scale: float, damp: float,
) -> None:
    for i, piece in enumerate(pieces):
        key = piece.figure
        base = key.removesuffix("_lower").removesuffix("_upper")
        endpoint, group = _MEDIAN_GROUPS.get(base, ("pfs", "all"))
        at = goal[key] * DAYS_PER_MONTH if key != "pfs_rate_12_months" else YEAR_DAYS
        days, ev = (t["pfs"], t["pfs_event"]) if endpoint == "pfs" else (t["os"], t["os_event"])
        rows = m[group]
        times, surv, se = _km_band(days[rows], ev[rows])
        idx = int(np.searchsorted(times, at, side="right")) - 1
        s_now = 1.0 if idx < 0 else float(surv[idx])
        se_now = 0.0 if idx < 0 or not np.isfinite(se[idx]) else float(se[idx])
        if key == "pfs_rate_12_months":
            level = _rate_level(goal, se_scale * se_now)
        elif key.endswith("_lower"):
            level = 0.5 * np.exp(_Z * se_scale * se_now)
        elif key.endswith("_upper"):
            level = 0.5 * np.exp(-_Z * se_scale * se_now)
        else:
            level = 0.5
        missing = np.log(max(s_now, 1e-6) / max(level, 1e-6))  # > 0: too many still event-free at ``at``
        carried = _member_hazard(days[rows], ev[rows], m[piece.members][rows], piece.start, at)
        value = fig[key]
        if key != "pfs_rate_12_months" and np.isfinite(value):
            # a crossing time: Kaplan-Meier levels move in steps, times move smoothly, so the
            # missing hazard is the time error times the group's hazard around the figure's time
            width = 0.15 * at
            density = _member_hazard(days[rows], ev[rows], np.ones(int(rows.sum()), dtype=bool), at - width, at + width) / (2 * width)
            missing = (value * DAYS_PER_MONTH - at) * density
        k[i] += damp * float(np.clip(missing / max(carried, 0.02), -1.0, 1.0))
    value = fig["followup_median"]
    k[-1] += damp * (np.log(goal["followup_median"] / value) if np.isfinite(value) and value > 0 else 0.5)


def _rate_level(goal: dict[str, float], se: float) -> float:
    """The 1-year PFS level to aim at: the published rate, or where a published upper CI bound
    is a target too, the middle of the levels at which both round to their published values
    (S in [rate - 0.005, rate + 0.005) and S exp(z se) in [upper - 0.005, upper + 0.005))."""
    rate = goal["pfs_rate_12_months"]
    if "pfs_rate_12_months_upper" not in goal:
        return rate
    factor = float(np.exp(_Z * se))
    upper = goal["pfs_rate_12_months_upper"]
    low, high = max(rate - 0.005, (upper - 0.005) / factor), min(rate + 0.005, (upper + 0.005) / factor)
    return (low + high) / 2 if low < high else rate


def _member_hazard(days: IntArray, event: npt.NDArray[np.bool_], members: npt.NDArray[np.bool_], start: float, end: float) -> float:
    """Nelson-Aalen hazard of the members' events on [start, end) days, at risk = the whole group."""
    if days.shape[0] == 0:
        return 0.0
    size = int(days.max()) + 1
    exits = np.bincount(days, minlength=size)
    at_risk = days.shape[0] - (np.cumsum(exits) - exits)
    own = np.bincount(days[event & members], minlength=size)
    lo, hi = max(int(np.ceil(start)), 0), min(int(np.ceil(end)), size)
    if hi <= lo:
        return 0.0
    return float(np.sum(own[lo:hi] / np.maximum(at_risk[lo:hi], 1)))


def _subset(c: Cohort, mask: npt.NDArray[np.bool_]) -> Cohort:
    # the per-patient uniforms of the timelines are not needed for times: not copied
    per_record = (name for name in c.__dataclass_fields__ if name not in ("n_eligible", "uniforms", "response_thresholds"))
    arrays = {name: getattr(c, name)[mask] for name in per_record}
    return Cohort(n_eligible=int(mask.sum()), uniforms=c.uniforms[:0], response_thresholds=c.response_thresholds, **arrays)
