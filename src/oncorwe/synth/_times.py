"""Times to event, calibrated so that Kaplan-Meier estimates from the written dates hit the targets.

Each eligible patient gets latent times from a log-normal model with covariate effects (the
prognostic score ``risk``: brain metastases, M1c, elevated LDH and ECOG >= 2 shorten times; the best
response sets the PFS range: PD patients progress at their first scan, SD and responders later).
Then a few multiplicative "knobs" (log-scale shifts of subgroups, one spread) are adjusted
deterministically, damped, until every published Kaplan-Meier figure computed from the integer day
counts rounds to its target. Times are whole days from the index date, exactly as the files carry them.

The censoring rules are those of docs/definitions.md: PFS is censored at the last evaluable
assessment (here: the last scan before the last contact), OS at the last contact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK
from oncorwe.synth._baseline import Cohort, day_number, stream

__all__ = ["Calibration", "Times", "draw_times", "km_days", "km_median", "km_survival"]

IntArray = npt.NDArray[np.int64]
PD_FIRST_SCAN = (28, 112)  # days: a PD patient's first scan (the progression) falls in this range
MIN_SECOND_SCAN = 84  # an SD or responding patient progresses at a second scan at the earliest
YEAR_DAYS = 12 * DAYS_PER_MONTH
CALIBRATION_SAMPLE = 50_000


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


_KNOBS = ("pd", "sd", "resp", "tax", "pd1", "os_nr", "os_sig", "os_r", "cens")


def _figures(t: dict[str, Any], g: dict[str, npt.NDArray[np.bool_]]) -> dict[str, float]:
    pfs, ev = t["pfs"], t["pfs_event"]
    os_days, oe = t["os"], t["os_event"]
    resp = g["resp"]
    pfs_all = _km_months(pfs, ev)
    return {
        "pfs_median": _median_of_curve(*pfs_all),
        "pfs_rate_12_months": _surv_at(*pfs_all, 12.0),
        "pfs_median_responders": _median_of_curve(*_km_months(pfs[resp], ev[resp])),
        "pfs_median_taxane": _median_of_curve(*_km_months(pfs[g["tax"]], ev[g["tax"]])),
        "pfs_median_prior_anti_pd1": _median_of_curve(*_km_months(pfs[g["pd1"]], ev[g["pd1"]])),
        "os_median": _median_of_curve(*_km_months(os_days, oe)),
        "os_median_responders": _median_of_curve(*_km_months(os_days[resp], oe[resp])),
        "os_median_nonresponders": _median_of_curve(*_km_months(os_days[~resp], oe[~resp])),
        "followup_median": _median_of_curve(*_km_months(os_days, ~oe)),
    }


def _miss(fig: dict[str, float], target: dict[str, float]) -> float:
    """0 when every figure rounds to its published value, else the summed distance in units of
    the published precision (0.1 month, 1 percentage point, 1 month of follow-up)."""
    total = 0.0
    for key, value in fig.items():
        goal = target[key]
        unit, digits = {"pfs_rate_12_months": (0.01, 2), "followup_median": (1.0, 0)}.get(key, (0.1, 1))
        if not np.isfinite(value):
            total += 100.0
        elif round(value, digits) != round(goal, digits):
            total += abs(value - goal) / unit
    return total


def _masks(c: Cohort) -> dict[str, npt.NDArray[np.bool_]]:
    """Boolean masks of the cohort the time model needs (computed once, not per iteration)."""
    return {
        "resp": np.isin(c.bor, ["CR", "PR"]),
        "pd": c.bor == "PD",
        "ne": c.bor == "NE",
        "tax": c.regimen_class == "taxane",
        "pd1": np.isin(c.prior, ["anti_pd1", "combined", "sequence"]),
    }


def _realise(
    c: Cohort, m: dict[str, npt.NDArray[np.bool_]], z: npt.NDArray[np.float64], u: npt.NDArray[np.float64],
    admin: IntArray, k: dict[str, float], *, kinds: bool = False,
) -> dict[str, Any]:
    """Integer-day times for the knob values ``k`` (vectorised; the same rules for every size)."""
    resp, pd, ne = m["resp"], m["pd"], m["ne"]
    later = ~pd & ~ne
    risk = c.risk
    log_base = np.where(
        pd, np.log(60.0) + 0.30 * z[:, 0] - 0.15 * risk,
        np.where(resp, np.log(250.0) + 0.75 * z[:, 0] - 0.3 * risk, np.log(160.0) + 0.55 * z[:, 0] - 0.3 * risk),
    )
    shift = (
        k["pd"] * pd + k["sd"] * later + k["resp"] * resp
        + k["tax"] * m["tax"]
        + k["pd1"] * m["pd1"]
    )
    latent = np.exp(log_base + shift)
    pfs = np.where(pd, np.clip(latent, *PD_FIRST_SCAN), np.maximum(latent, MIN_SECOND_SCAN))
    pfs = np.rint(pfs).astype(np.int64)
    ne_death = (7 + np.floor(u[:, 0] * 34)).astype(np.int64)  # dies before the first scan
    pfs = np.where(ne, ne_death, pfs)
    death_first = later & (u[:, 1] < 0.07)  # dies without a documented progression

    sigma_nr = 0.85 * np.exp(k["os_sig"])
    log_pps = np.where(
        resp, np.log(230.0) + 0.8 * z[:, 1] - 0.35 * risk + k["os_r"],
        np.log(95.0) + sigma_nr * z[:, 1] - 0.45 * risk + k["os_nr"],
    )
    pps = np.maximum(np.rint(np.exp(log_pps)), 1).astype(np.int64)
    death = np.where(ne | death_first, pfs, pfs + pps)

    loss = np.rint(np.exp(np.log(700.0) + 1.0 * z[:, 2] + k["cens"])).astype(np.int64)
    contact = np.minimum(admin, loss)
    # a progression that is in the files was seen: the last contact is not before it
    contact = np.where(pd | ne, np.maximum(contact, pfs), np.maximum(contact, 60))
    os_event = death <= contact
    os_days = np.where(os_event, death, contact)
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
    max_days = round(max_weeks * DAYS_PER_WEEK)
    days = np.minimum(days.astype(np.int64), max_days)
    if n >= 3:
        days[int(np.argmin(days))] = 0
        longest = int(np.argmax(upper))
        days[longest] = min(int(upper[longest]), round(max_weeks * DAYS_PER_WEEK))
    return days


def draw_times(
    c: Cohort, targets: dict[str, Any], seed: int, max_iter: int = 250, refine_steps: int = 600
) -> tuple[Times, Calibration]:
    """Calibrated times for every record (the knobs are fitted on the eligible ones only)."""
    rng = stream(seed, "times")
    z = rng.standard_normal((c.n, 4))
    u = rng.random((c.n, 3))
    cutoff = day_number(dt.date.fromisoformat(targets["study"]["data_cutoff"]))
    admin = cutoff - c.index_day
    goal = {k: float(v) for k, v in targets["published"]["times"].items()}
    elig = c.eligible
    # a large study is calibrated on an evenly spaced sample of its eligible patients (the
    # Kaplan-Meier figures of 50,000 patients already sit within a rounding step of the whole)
    fit = elig.copy()
    n_elig = int(elig.sum())
    if n_elig > CALIBRATION_SAMPLE:
        positions = np.flatnonzero(elig)
        fit[:] = False
        fit[positions[:: int(np.ceil(n_elig / CALIBRATION_SAMPLE))]] = True
    sub = _subset(c, fit)
    groups = _masks(sub)
    z_sub, u_sub, admin_sub = z[fit], u[fit], admin[fit]
    k = dict.fromkeys(_KNOBS, 0.0)
    fig: dict[str, float] = {}
    converged = False
    it = 0
    def evaluate(knobs: dict[str, float]) -> dict[str, float]:
        return _figures(_realise(sub, groups, z_sub, u_sub, admin_sub, knobs), groups)

    for it in range(1, max_iter + 1):
        fig = evaluate(k)
        if _miss(fig, goal) == 0.0:
            converged = True
            break
        _update(k, fig, goal, it)
    if not converged:
        # the damped updates stall on the step functions of small groups: finish with a
        # deterministic local search on the knobs
        search = stream(seed, "refine")
        best, best_fig = dict(k), evaluate(k)
        best_miss = _miss(best_fig, goal)
        for step in range(refine_steps):
            width = 0.08 * (1.0 - step / refine_steps) + 0.005
            trial = {name: value + width * search.standard_normal() for name, value in best.items()}
            trial_fig = evaluate(trial)
            trial_miss = _miss(trial_fig, goal)
            it += 1
            if trial_miss < best_miss:
                best, best_fig, best_miss = trial, trial_fig, trial_miss
                if best_miss == 0.0:
                    converged = True
                    break
        k, fig = best, best_fig
    everyone = sub
    if n_elig > CALIBRATION_SAMPLE:
        # the sample's knobs, refined on everyone: damped steps, then a local search
        everyone = _subset(c, elig)
        k, fig, converged, steps = _refine(k, everyone, z[elig], u[elig], admin[elig], goal, seed)
        it += steps
    t_all = _realise(c, _masks(c), z, u, admin, k, kinds=True)
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
    return times, Calibration(figures=fig, iterations=it, converged=converged)


def _refine(
    k: dict[str, float], c: Cohort, z: npt.NDArray[np.float64], u: npt.NDArray[np.float64], admin: IntArray,
    goal: dict[str, float], seed: int, steps: int = 40, trials: int = 120,
) -> tuple[dict[str, float], dict[str, float], bool, int]:
    """Knobs that make every figure of ``c`` (all eligible patients) round to its target.

    At a million patients a Kaplan-Meier median moves smoothly with the knobs, so the damped
    fixed-point steps usually land; where two figures pull one knob apart, a deterministic local
    search with small steps finishes. Returns the knobs, their figures, whether every figure
    rounds to its target and the number of evaluations.
    """
    masks = _masks(c)

    def evaluate(knobs: dict[str, float]) -> tuple[dict[str, float], float]:
        fig = _figures(_realise(c, masks, z, u, admin, knobs), masks)
        return fig, _miss(fig, goal)

    k = dict(k)
    fig, miss = evaluate(k)
    best, best_fig, best_miss = dict(k), fig, miss
    used = 1
    for step in range(1, steps + 1):
        if miss == 0.0:
            break
        _update(k, fig, goal, 150 + step)
        fig, miss = evaluate(k)
        used += 1
        if miss < best_miss:
            best, best_fig, best_miss = dict(k), fig, miss
    search = stream(seed, "refine everyone")
    for trial in range(trials):
        if best_miss == 0.0:
            break
        width = 0.03 * (1.0 - trial / trials) + 0.003
        candidate = {name: value + width * search.standard_normal() for name, value in best.items()}
        fig, miss = evaluate(candidate)
        used += 1
        if miss < best_miss:
            best, best_fig, best_miss = candidate, fig, miss
    return best, best_fig, best_miss == 0.0, used


def _update(k: dict[str, float], fig: dict[str, float], goal: dict[str, float], it: int) -> None:
    damp = 0.6 / (1.0 + it / 60.0)

    def step(name: str, key: str, gain: float) -> None:
        value = fig[key]
        if np.isfinite(value) and value > 0:
            k[name] += damp * gain * np.log(goal[key] / value)
        else:
            k[name] -= damp * 0.5  # median not reached: times too long

    step("pd", "pfs_median", 1.0)
    rate = min(max(fig["pfs_rate_12_months"], 1e-3), 1 - 1e-3)
    target = goal["pfs_rate_12_months"]
    k["sd"] += damp * 0.6 * (np.log(target / (1 - target)) - np.log(rate / (1 - rate)))
    step("resp", "pfs_median_responders", 1.0)
    step("tax", "pfs_median_taxane", 1.0)
    step("pd1", "pfs_median_prior_anti_pd1", 1.0)
    step("os_nr", "os_median_nonresponders", 1.0)
    step("os_sig", "os_median", 2.0)
    step("os_r", "os_median_responders", 1.0)
    step("cens", "followup_median", 1.0)


def _subset(c: Cohort, mask: npt.NDArray[np.bool_]) -> Cohort:
    # the per-patient uniforms of the timelines are not needed for times: not copied
    arrays = {name: getattr(c, name)[mask] for name in c.__dataclass_fields__ if name not in ("n_eligible", "uniforms")}
    return Cohort(n_eligible=int(mask.sum()), uniforms=c.uniforms[:0], **arrays)
