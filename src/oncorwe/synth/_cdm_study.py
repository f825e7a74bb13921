"""A study on OMOP CDM centres only, generated from its targets file (``[study] generator = "cdm"``).

The targets file names everything study-specific: the centres, the condition and histology
concepts, covariates, drugs (with their clinical drugs and words), the index regimens with their
patients, responders and median PFS/OS, the prior lines, the calendar and the excluded records.
This module knows none of it: it draws patients with the exact counts, lays out timelines (prior
lines ending in progression on the ICI, the index line, RECIST time points, death), calibrates
each regimen's PFS and OS so that the Kaplan-Meier medians of the written whole-day times round to
the targets, writes every centre as a real-CDM-like database (the study's patients among a
background population twenty times larger, a vocabulary subset with concept_ancestor and 'Maps
to', drugs partly at the clinical-drug level, diagnoses partly as non-standard source concepts,
episodes at some centres) and the truth derived from the written records by the rules of
docs/definitions.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tomli_w

from oncorwe import protocol as protocol_module
from oncorwe.model.schema import DAYS_PER_MONTH, make_patient_id
from oncorwe.synth._allocate import choose_exact, scale_counts, split_exact
from oncorwe.synth._background import write_background
from oncorwe.synth._baseline import EPOCH, day_number, stream
from oncorwe.synth._cdm_writer import connect_cdm, insert_columns, table_schema, write_vocabulary
from oncorwe.synth._records import Scan
from oncorwe.synth._times import km_median
from oncorwe.synth._truth import best_response
from oncorwe.synth._vocabulary import concept_named

__all__ = ["CDM_TRUTH_COLUMNS", "generate_cdm_study"]

PROGRESSION_WINDOW_DAYS = 90
#: The exclusion roles, in the order the criteria are applied; the targets file's ``[excluded]``
#: gives each its reason as the protocol names it and its number of records.
ROLES = ("no_index_therapy", "no_ici_before_index", "no_progression_on_ici", "index_outside_window")
LOCAL_REGIMEN_BASE = 2_002_000_000
CDM_TRUTH_COLUMNS = (
    "patient_id", "centre_id", "source_patient_id", "eligible", "exclusion_reason", "index_date", "index_line_number",
    "age_years", "sex", "ecog", "pdl1_category", "histology", "prior_ici_regimen", "prior_platinum", "regimen_class",
    "regimen_ingredients", "best_response", "responder", "disease_control", "pfs_months", "pfs_event", "os_months",
    "os_event",
)
TRUTH_README = """# Ground truth of this synthetic OMOP study

`patients.csv`: every in-scope person (one with the study's condition), eligible or not, with the
true analysis values; `summary.csv`: the counts, response rates and Kaplan-Meier medians by regimen
with their targets; `scope.csv`: per centre, the study's persons and the background persons (who
are out of scope, some of them on the study's drugs for another disease). Only tests read this
folder; the oncorwe pipeline never does.
"""
_BOR_MU = {"SD": math.log(70.0), "PR": math.log(160.0), "CR": math.log(320.0)}


@dataclass(frozen=True)
class Drug:
    """One ingredient of a line: given from ``start`` to ``end`` (day numbers), every cycle."""

    ingredient: str
    start: int
    end: int


@dataclass(frozen=True)
class Line:
    drugs: tuple[Drug, ...]
    role: str  # "prior" | "index"

    @property
    def start(self) -> int:
        return min(d.start for d in self.drugs)

    @property
    def end(self) -> int:
        return max(d.end for d in self.drugs)

    @property
    def ingredients(self) -> tuple[str, ...]:
        return tuple(sorted({d.ingredient for d in self.drugs}))


@dataclass(frozen=True)
class Person:
    """One in-scope person as the centre's CDM holds them (days are day numbers since 1970)."""

    key: int
    centre: int
    person_id: int
    reason: str
    male: bool
    birth_year: int
    diagnosis_day: int
    histology: str
    ecog: int | None
    pdl1: float | None
    prior_name: str
    lines: tuple[Line, ...]
    scans: tuple[Scan, ...]
    progressions: tuple[int, ...]
    death_day: int | None
    last_contact_day: int


def _date(value: Any) -> int:
    return day_number(value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)))


def _year_days(rng: np.random.Generator, weights: dict[str, Any], n: int) -> npt.NDArray[np.int64]:
    years = [int(y) for y in weights]
    p = np.array([float(w) for w in weights.values()])
    pick = rng.choice(len(years), size=n, p=p / p.sum())
    starts = np.array([day_number(dt.date(y, 1, 1)) for y in years])
    lengths = np.array([366 if y % 4 == 0 else 365 for y in years])
    return (starts[pick] + np.floor(rng.random(n) * lengths[pick])).astype(np.int64)


@dataclass(frozen=True)
class _Draw:
    """Per record arrays (eligible first), and each regimen's PFS and OS scale after calibration."""

    reason: npt.NDArray[np.object_]
    regimen: npt.NDArray[np.object_]  # "" for a record without an index line
    histology: npt.NDArray[np.object_]
    male: npt.NDArray[np.bool_]
    age: npt.NDArray[np.float64]
    ecog: npt.NDArray[np.int64]
    pdl1: npt.NDArray[np.float64]
    prior: npt.NDArray[np.int64]
    bor: npt.NDArray[np.object_]
    index_day: npt.NDArray[np.int64]
    risk: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]
    u: npt.NDArray[np.float64]


def _draw(t: dict[str, Any], n_eligible: int, excluded: dict[str, int], seed: int) -> _Draw:
    rng = stream(seed, "cdm-baseline")
    n = n_eligible + sum(excluded.values())
    elig = np.arange(n) < n_eligible
    reason = np.array([""] * n_eligible + [k for k, v in excluded.items() for _ in range(v)], dtype=object)
    regs = t["regimens"]
    counts = scale_counts({k: v["patients"] for k, v in regs.items()}, n_eligible)
    regimen = np.empty(n, dtype=object)
    regimen[:n_eligible] = rng.permutation(np.array([k for k, v in counts.items() for _ in range(v)], dtype=object))
    p_reg = np.array([v["patients"] for v in regs.values()], dtype=float)
    regimen[~elig] = rng.choice(np.array(list(regs), dtype=object), size=int((~elig).sum()), p=p_reg / p_reg.sum())
    regimen[reason == "no_index_therapy"] = ""

    hist = t["histology"]
    names = list(hist)
    shares = np.array([hist[h]["share"] for h in names])
    histology = np.empty(n, dtype=object)
    for reg in [*regs, ""]:
        mask = regimen == reg
        allowed = regs[reg].get("histology", names) if reg else names
        p = np.where(np.isin(names, allowed), shares, 0.0)
        histology[mask] = rng.choice(np.array(names, dtype=object), size=int(mask.sum()), p=p / p.sum())

    cov = t["covariates"]
    male = rng.random(n) < cov["male_share"]
    age = np.clip(rng.normal(cov["age_median_years"], cov["age_sd_years"], n), 35, 88)
    ecog_shares = np.array(cov["ecog_shares"], dtype=float)
    ecog = rng.choice(len(ecog_shares), size=n, p=ecog_shares / ecog_shares.sum()).astype(np.int64)
    ecog[rng.random(n) < cov["ecog_missing_share"]] = -1
    cats = list(cov["pdl1_categories"])
    cat_p = np.array([cov["pdl1_shares"][c] for c in cats], dtype=float)
    cat = rng.choice(len(cats), size=n, p=cat_p / cat_p.sum())
    low = np.array([cov["pdl1_categories"][c][0] for c in cats])[cat]
    high = np.array([cov["pdl1_categories"][c][1] for c in cats])[cat]
    pdl1 = (low + np.floor(rng.random(n) * (high - low + 1))).astype(float)
    pdl1[rng.random(n) < cov["pdl1_missing_share"]] = np.nan

    # the prior ICI option, among those given for the histology
    options = t["prior"]
    prior = np.zeros(n, dtype=np.int64)
    for h in names:
        mask = histology == h
        p = np.array([o["weight"] if h in o.get("histology", names) else 0.0 for o in options])
        prior[mask] = rng.choice(len(options), size=int(mask.sum()), p=p / p.sum())

    risk = 0.55 * (ecog == 2) - 0.25 * (ecog == 0)
    for h, effect in cov.get("histology_risk", {}).items():
        risk = risk + float(effect) * (histology == h)
    good = np.exp(-0.9 * risk)
    responder = np.zeros(n, dtype=bool)
    for reg, spec in regs.items():
        k = min(round(spec["responders"] * counts[reg] / spec["patients"]), counts[reg])
        responder |= choose_exact(rng, elig & (regimen == reg), k, good)
    bor_t = t["best_response"]
    n_resp = int(responder.sum())
    total_resp = sum(v["responders"] for v in regs.values())
    n_cr = min(round(bor_t["CR"] * n_resp / total_resp), n_resp)
    bor = np.full(n, "", dtype=object)
    bor[responder] = split_exact(rng, responder, {"CR": n_cr, "PR": n_resp - n_cr})[responder]
    non = elig & ~responder
    split = scale_counts({k: bor_t[k] for k in ("SD", "PD", "NE")}, int(non.sum()))
    bor[non] = split_exact(rng, non, split, {"NE": np.exp(1.2 * risk), "SD": np.exp(-0.6 * risk)})[non]
    share = np.array([bor_t["SD"], bor_t["PD"], total_resp], dtype=float)
    bor[~elig] = rng.choice(np.array(["SD", "PD", "PR"], dtype=object), size=int((~elig).sum()), p=share / share.sum())

    index_day = _year_days(rng, t["calendar"]["index_year_weights"], n)
    first, last = _date(t["study"]["index_first"]), _date(t["study"]["index_last"])
    cutoff = _date(t["study"]["data_cutoff"])
    outside = np.flatnonzero(reason == "index_outside_window")
    late = rng.random(outside.shape[0]) < 0.5
    room = max(cutoff - last - 200, 1)
    index_day[outside] = np.where(late, last + 1 + (rng.random(outside.shape[0]) * room).astype(np.int64),
                                  first - 1 - (rng.random(outside.shape[0]) * 300).astype(np.int64))
    return _Draw(reason, regimen, histology, male, age, ecog, pdl1, prior, bor, index_day, risk,
                 rng.standard_normal((n, 3)), rng.random((n, 16)))


@dataclass(frozen=True)
class _Times:
    """Relative days from the index date: first scan, scan interval, progression (PD) day or -1,
    death day, last contact, whether death is recorded; and the derived PFS and OS."""

    first_scan: npt.NDArray[np.int64]
    interval: npt.NDArray[np.int64]
    pd_day: npt.NDArray[np.int64]
    death: npt.NDArray[np.int64]
    last_contact: npt.NDArray[np.int64]
    dead: npt.NDArray[np.bool_]
    pfs: npt.NDArray[np.int64]
    pfs_event: npt.NDArray[np.bool_]


def _times(d: _Draw, pfs_scale: npt.NDArray[np.float64], os_scale: npt.NDArray[np.float64], cutoff: int) -> _Times:
    """The timeline arithmetic, vectorised (so calibration can rerun it), and its PFS/OS."""
    u, z = d.u, d.z
    is_pd, is_ne = d.bor == "PD", d.bor == "NE"
    first = np.where(is_pd, 35 + (u[:, 0] * 28).astype(np.int64), 42 + (u[:, 0] * 21).astype(np.int64))
    interval = 42 + (u[:, 1] * 42).astype(np.int64)
    mu = np.array([_BOR_MU.get(b, 0.0) for b in d.bor])
    excess = (pfs_scale * np.exp(mu + 0.7 * z[:, 0] - 0.3 * d.risk)).astype(np.int64)
    pd_day = np.where(is_pd, first, first + 1 + excess)
    pd_day = np.where(is_ne, -1, pd_day)
    ne_death = 7 + (u[:, 2] * 30).astype(np.int64)
    pps = 5 + (os_scale * np.exp(math.log(120.0) + 0.8 * z[:, 1] - 0.3 * d.risk)).astype(np.int64)
    death = np.where(is_ne, ne_death, pd_day + pps)
    lost = np.where(u[:, 3] < 0.04, first + 1 + (u[:, 4] * 600).astype(np.int64), np.iinfo(np.int64).max // 4)
    censor = np.minimum(cutoff - d.index_day, lost)
    last_contact = np.minimum(death, censor)
    dead = death <= censor
    progressed = (~is_ne) & (pd_day <= last_contact)
    last_regular = first + np.minimum((last_contact - first) // interval, (pd_day - 1 - first) // interval) * interval
    pfs = np.where(is_ne, death, np.where(progressed, pd_day, last_regular))
    event = is_ne | progressed
    return _Times(first, interval, pd_day, death, last_contact, dead, pfs.astype(np.int64), event)


def _median(days: npt.NDArray[np.int64], event: npt.NDArray[np.bool_]) -> float:
    """The Kaplan-Meier median in months; +inf when the curve never reaches one half."""
    value = km_median(days / DAYS_PER_MONTH, event)
    return math.inf if math.isnan(value) else value


class _Unreachable(Exception):
    """The median cannot be made to round to its target with this draw."""


def _solve(measure: Any, target: float, what: str) -> float:
    """The scale at which ``measure(scale)`` (non-decreasing) first rounds to ``target`` (1 decimal)."""
    lo, hi = -6.0, 6.0
    if not measure(math.exp(lo)) < target <= measure(math.exp(hi)):
        raise _Unreachable(f"synth: {what} target {target} cannot be reached")
    for _ in range(60):
        mid = (lo + hi) / 2
        if measure(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    for step in range(400):  # from the first scale at or above the target, up to the rounding
        value = measure(math.exp(hi + step * 1e-3))
        if round(value, 1) == target:
            return math.exp(hi + step * 1e-3)
    raise _Unreachable(f"synth: {what} does not round to {target}")


def _calibrate(t: dict[str, Any], d: _Draw, cutoff: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, float]]:
    """Each regimen's PFS scale, then its OS scale, so that the Kaplan-Meier medians of its
    eligible patients round to the targets. Where a median jumps over the target's rounding
    interval (two event times more than 0.1 month apart at one half), that regimen's latent
    normal draws are redrawn (a numbered, deterministic stream) and the search repeated."""
    n = d.reason.shape[0]
    pfs_scale, os_scale = np.ones(n), np.ones(n)
    figures: dict[str, float] = {}
    eligible = d.reason == ""
    for reg, spec in t["regimens"].items():
        g = eligible & (d.regimen == reg)
        if not g.any():
            continue
        for column, key, scale in ((0, "pfs_median", pfs_scale), (1, "os_median", os_scale)):

            def measure(value: float, g: npt.NDArray[np.bool_] = g, column: int = column) -> float:
                trial = (np.where(g, value, pfs_scale), os_scale) if column == 0 else (pfs_scale, np.where(g, value, os_scale))
                tm = _times(d, trial[0], trial[1], cutoff)
                return _median(tm.pfs[g], tm.pfs_event[g]) if column == 0 else _median(tm.last_contact[g], tm.dead[g])

            for attempt in range(50):
                try:
                    scale[g] = _solve(measure, float(spec[key]), f"{reg} {key}")
                    break
                except _Unreachable:
                    d.z[g, column] = stream(seed, f"cdm-redraw:{reg}:{key}:{attempt}").standard_normal(int(g.sum()))
            else:
                raise RuntimeError(f"synth: {reg} {key} {spec[key]} not reached after 50 draws")
            figures[f"{key}_{reg}"] = measure(float(scale[g][0]))
    return pfs_scale, os_scale, figures


def _drugs(spec: list[list[Any]], start: int, end: int, cycle: dict[str, int]) -> tuple[Drug, ...]:
    out = []
    for ingredient, cycles in spec:
        stop = end if not cycles else min(end, start + cycle[ingredient] * (int(cycles) - 1))
        out.append(Drug(str(ingredient), start, max(stop, start)))
    return tuple(out)


def _person(t: dict[str, Any], d: _Draw, tm: _Times, i: int, centre: int, person_id: int) -> Person:
    """The records of one person: prior lines, the index line, time points, death."""
    u, z = d.u[i], d.z[i]
    cycle = {k: int(v) for k, v in t["drugs"]["cycle_days"].items()}
    reason = str(d.reason[i])
    index = int(d.index_day[i])
    option = t["prior"][int(d.prior[i])]
    scans: list[Scan] = []
    progressions: list[int] = []
    gap = 14 + int(u[5] * 42)
    pd_ici = index - gap
    if reason == "no_ici_before_index":
        spec_lines, prior_name = t["no_ici_prior"]["lines"], ""
    else:
        spec_lines, prior_name = option["lines"], str(option["name"])
    lines: list[Line] = []
    last_pd = pd_ici
    for k, spec in enumerate(reversed(spec_lines)):
        if k == 0:
            if reason == "no_progression_on_ici":
                end = pd_ici - (PROGRESSION_WINDOW_DAYS + 1 + int(u[6] * 120))
                duration = 42 + int(u[7] * 200)
                scans.append(Scan(end + 30, "SD", "prior"))
            else:
                end = pd_ici - int(u[6] * 14)
                duration = int(min(max(math.exp(math.log(150.0) + 0.7 * z[2]), 42), 900))
            start = end - duration
            if reason != "no_progression_on_ici":
                scans.append(Scan(pd_ici, "PD", "prior"))
                progressions.append(pd_ici)
                if start + 56 < pd_ici - 21:
                    scans.append(Scan(start + 56, "SD", "prior"))
        else:
            following = lines[0].start
            last_pd = following - (7 + int(u[8] * 20))
            start = last_pd - (63 + 14 + int(u[9] * 90))
            end = start + 63
            scans.append(Scan(last_pd, "PD", "prior"))
            progressions.append(last_pd)
        lines.insert(0, Line(_drugs(spec, start, end, cycle), "prior"))
    diagnosis = lines[0].start - (7 + int(u[10] * 50))

    dead = bool(tm.dead[i])
    last_contact = index + int(tm.last_contact[i])
    death_day = index + int(tm.death[i]) if dead else None
    if reason == "no_index_therapy":
        last_contact = index + int(u[11] * 200)
        death_day = last_contact if u[12] < 0.7 else None
    else:
        bor = str(d.bor[i])
        pd_abs = index + int(tm.pd_day[i]) if tm.pd_day[i] >= 0 else None
        if bor != "NE":
            day = index + int(tm.first_scan[i])
            step = int(tm.interval[i])
            while day <= last_contact and (pd_abs is None or day < pd_abs):
                scans.append(Scan(day, "SD" if bor in ("SD", "PD") else bor, "index"))
                day += step
            if pd_abs is not None and pd_abs <= last_contact:
                scans.append(Scan(pd_abs, "PD", "index"))
                progressions.append(pd_abs)
        end = pd_abs - int(u[13] * 7) if pd_abs is not None and pd_abs <= last_contact else last_contact
        if bor == "NE" and death_day is not None:
            end = death_day
        if u[14] < 0.25:
            end = min(end, index + 21 * (3 + int(u[15] * 3)))
        end = max(end, index)
        ingredients = t["regimens"][str(d.regimen[i])]["ingredients"]
        oral = set(t["drugs"]["oral"])
        lines.append(Line(tuple(Drug(x, index + (1 if x in oral else 0), max(end, index + (1 if x in oral else 0)))
                                for x in ingredients), "index"))
    ecog = int(d.ecog[i])
    pdl1 = float(d.pdl1[i])
    return Person(
        key=i, centre=centre, person_id=person_id, reason=reason, male=bool(d.male[i]),
        birth_year=_birth_year(index, float(d.age[i])), diagnosis_day=diagnosis, histology=str(d.histology[i]),
        ecog=None if ecog < 0 else ecog, pdl1=None if math.isnan(pdl1) else pdl1, prior_name=prior_name,
        lines=tuple(lines), scans=tuple(sorted(scans, key=lambda s: s.day)), progressions=tuple(sorted(progressions)),
        death_day=death_day, last_contact_day=last_contact,
    )


def _birth_year(index: int, age: float) -> int:
    """The birth year whose July 1 lies ``age`` years before the index day (nearest)."""
    when = EPOCH + dt.timedelta(days=index)
    day_of_year = (when - dt.date(when.year, 1, 1)).days + 1
    return round(when.year + (day_of_year - 182) / 365.25 - age)


# --- the truth, derived from the records by the protocol's rules -------------------------------


def _classify(t: dict[str, Any], p: Person) -> tuple[str, Line | None]:
    """The first criterion ``p`` fails (or "") and the index line, by the study's rules."""
    index_drug = set.intersection(*[set(r["ingredients"]) for r in t["regimens"].values()])
    ici = set(t["drugs"]["ici"])
    lines = sorted(p.lines, key=lambda x: x.start)
    index_lines = [x for x in lines if index_drug & set(x.ingredients)]
    if not index_lines:
        return "no_index_therapy", None
    ici_lines = [x for x in lines if ici & set(x.ingredients)]
    if not any(x.start < y.start for x in ici_lines for y in index_lines):
        return "no_ici_before_index", None
    progression = [s.day for s in p.scans if s.response == "PD"] + list(p.progressions)
    candidates = []
    for line in ici_lines:
        later = [y.start for y in index_lines if y.start > line.start]
        hits = [x for x in progression if line.start <= x <= line.end + PROGRESSION_WINDOW_DAYS and later and x < min(later)]
        if hits:
            candidates.append(min(y for y in later if y > min(hits)))
    if not candidates:
        return "no_progression_on_ici", None
    index = min(candidates)
    line = next(x for x in index_lines if x.start == index)
    first, last = _date(t["study"]["index_first"]), _date(t["study"]["index_last"])
    if not first <= index <= last:
        return "index_outside_window", line
    return "", line


def pdl1_category(t: dict[str, Any], score: float) -> str:
    """The category whose [low, high] range holds the recorded score."""
    return next(c for c, (lo, hi) in t["covariates"]["pdl1_categories"].items() if lo <= score <= hi)


def _truth_row(t: dict[str, Any], p: Person, centre_id: str, sd_min_days: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CDM_TRUTH_COLUMNS)
    reason, line = _classify(t, p)
    if reason != p.reason:
        raise RuntimeError(f"synth bug: record {p.key} designed {p.reason!r}, rules say {reason!r}")
    local = str(p.person_id)
    row.update(patient_id=make_patient_id(centre_id, local), centre_id=centre_id, source_patient_id=local,
               eligible=reason == "", exclusion_reason=t["excluded"][reason][0] if reason else "")
    if reason or line is None:
        return row
    lines = sorted(p.lines, key=lambda x: x.start)
    position = lines.index(line)
    nxt = lines[position + 1].start if position + 1 < len(lines) else None
    index = line.start
    later_prog = [x for x in p.progressions if x > index and (nxt is None or x < nxt)]
    bor = best_response(list(p.scans), index, nxt, bool(later_prog), sd_min_days)
    pd_after = [s.day for s in p.scans if s.day > index and s.response == "PD"]
    events = [x for x in (min(pd_after, default=None), min((x for x in p.progressions if x > index), default=None), p.death_day) if x is not None]
    if events:
        pfs_day, pfs_event = min(events), 1
    else:
        evaluable = [s.day for s in p.scans if s.day > index and s.response in ("CR", "PR", "SD")]
        pfs_day, pfs_event = (max(evaluable) if evaluable else index), 0
    os_day = p.death_day if p.death_day is not None else p.last_contact_day
    regimen = next(name for name, r in t["regimens"].items() if sorted(r["ingredients"]) == list(line.ingredients))
    platinum = set(t["drugs"]["platinum"])
    category = None if p.pdl1 is None else pdl1_category(t, p.pdl1)
    row.update(
        index_date=(EPOCH + dt.timedelta(days=index)).isoformat(),
        index_line_number=position + 1,
        age_years=(index - (dt.date(p.birth_year, 7, 1) - EPOCH).days) / 365.25,
        sex="male" if p.male else "female",
        ecog=p.ecog,
        pdl1_category=category,
        histology=p.histology,
        prior_ici_regimen=p.prior_name,
        prior_platinum=any(platinum & set(x.ingredients) for x in lines[:position]),
        regimen_class=regimen,
        regimen_ingredients="+".join(line.ingredients),
        best_response=bor,
        responder=bor in ("CR", "PR"),
        disease_control=bor in ("CR", "PR", "SD"),
        pfs_months=(pfs_day - index) / DAYS_PER_MONTH,
        pfs_event=pfs_event,
        os_months=(os_day - index) / DAYS_PER_MONTH,
        os_event=int(p.death_day is not None),
    )
    return row


# --- writing one centre -----------------------------------------------------------------------


class _CentreWriter:
    """Rows of one centre's study persons, collected as columns and written at the end."""

    def __init__(self, t: dict[str, Any], centre: dict[str, Any], seed: int) -> None:
        self.t, self.centre = t, centre
        self.rng = stream(seed, f"cdm-centre:{centre['id']}")
        names = t["concepts"]
        self.cid = {key: concept_named(value).concept_id for key, value in names.items() if isinstance(value, str)}
        self.response_cid = {k: concept_named(v).concept_id for k, v in names["responses"].items()}
        self.ingredient_cid = {x: concept_named(x).concept_id for x in t["drugs"]["cycle_days"]}
        self.clinical_cid = {x: [concept_named(c).concept_id for c in v] for x, v in t["drugs"]["clinical"].items()}
        self.pdl1_values = {k: concept_named(v).concept_id for k, v in t["covariates"]["pdl1_value_concepts"].items()}
        self.hist = {h: (concept_named(v["standard"]), concept_named(v["source"])) for h, v in t["histology"].items()}
        self.rows: dict[str, dict[str, list[Any]]] = {}
        self.ids = dict.fromkeys(("observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure",
                                  "measurement", "episode"), 0)

    def _add(self, table: str, **values: Any) -> None:
        cols = self.rows.setdefault(table, {})
        for k, v in values.items():
            cols.setdefault(k, []).append(v)

    def _next(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def add(self, p: Person) -> None:
        c, rng = self.centre, self.rng
        ehr = self.cid["record_type"]
        pid = p.person_id
        self._add("person", person_id=pid, gender_concept_id=self.cid["gender_male" if p.male else "gender_female"],
                  year_of_birth=p.birth_year, race_concept_id=0, ethnicity_concept_id=0, person_source_value=str(pid),
                  gender_source_value="M" if p.male else "F")
        self._add("observation_period", observation_period_id=self._next("observation_period"), person_id=pid,
                  observation_period_start_date=p.diagnosis_day - 30, observation_period_end_date=p.last_contact_day,
                  period_type_concept_id=ehr)
        standard, source = self.hist[p.histology]
        as_source = rng.random() < float(c["source_condition_share"])
        self._add("condition_occurrence", condition_occurrence_id=self._next("condition_occurrence"), person_id=pid,
                  condition_concept_id=source.concept_id if as_source else standard.concept_id,
                  condition_start_date=p.diagnosis_day, condition_type_concept_id=ehr,
                  condition_source_value=source.code, condition_source_concept_id=source.concept_id)
        index_line = next((x for x in p.lines if x.role == "index"), None)
        if p.ecog is not None:
            day = (index_line.start if index_line else p.lines[-1].end) - 7
            self._measure(pid, self.cid["ecog"], day, value_as_number=float(p.ecog), measurement_source_value="ECOG")
        if p.pdl1 is not None:
            category = pdl1_category(self.t, p.pdl1)
            self._measure(pid, self.cid["pdl1"], p.diagnosis_day + 10, value_as_number=p.pdl1, unit_concept_id=0,
                          value_as_concept_id=self.pdl1_values[category], unit_source_value="%",
                          measurement_source_value="PD-L1 TPS (22C3)", value_source_value=f"{p.pdl1:g}%")
        scan_ids: dict[int, int] = {}
        for s in p.scans:
            scan_ids[s.day] = self._measure(pid, self.cid["response"], s.day, value_as_concept_id=self.response_cid[s.response],
                                            measurement_source_value="RECIST 1.1", value_source_value=s.response)
            self._visit(pid, s.day)
        clinical = rng.random() < float(c["clinical_drug_share"])
        for number, line in enumerate(sorted(p.lines, key=lambda x: x.start), start=1):
            exposure_ids = [e for drug in line.drugs for e in self._exposures(pid, drug, clinical)]
            if c["episodes"]:
                regimen = "+".join(line.ingredients)
                eid = self._next("episode")
                self._add("episode", episode_id=eid, person_id=pid, episode_concept_id=self.cid["regimen_episode"],
                          episode_start_date=line.start, episode_end_date=line.end, episode_number=number,
                          episode_object_concept_id=LOCAL_REGIMEN_BASE + zlib.crc32(regimen.encode()) % 900_000,
                          episode_type_concept_id=self.cid["episode_type"], episode_source_value=regimen[:50])
                for e in exposure_ids:
                    self._add("episode_event", episode_id=eid, event_id=e, episode_event_field_concept_id=self.cid["drug_field"])
        if c["episodes"]:
            disease = self.cid["disease"]
            for day in p.progressions:
                eid = self._next("episode")
                self._add("episode", episode_id=eid, person_id=pid, episode_concept_id=self.cid["progression_episode"],
                          episode_start_date=day, episode_end_date=None, episode_number=None, episode_object_concept_id=disease,
                          episode_type_concept_id=self.cid["episode_type"], episode_source_value="progression")
                if day in scan_ids:
                    self._add("episode_event", episode_id=eid, event_id=scan_ids[day],
                              episode_event_field_concept_id=self.cid["measurement_field"])
        if p.death_day is not None:
            self._add("death", person_id=pid, death_date=p.death_day, death_type_concept_id=ehr)

    def _measure(self, pid: int, concept: int, day: int, **values: Any) -> int:
        mid = self._next("measurement")
        row = {"value_as_number": None, "value_as_concept_id": None, "unit_concept_id": None, "unit_source_value": None,
               "measurement_source_value": None, "value_source_value": None, **values}
        self._add("measurement", measurement_id=mid, person_id=pid, measurement_concept_id=concept, measurement_date=day,
                  measurement_type_concept_id=self.cid["record_type"], **row)
        return mid

    def _visit(self, pid: int, day: int) -> None:
        self._add("visit_occurrence", visit_occurrence_id=self._next("visit_occurrence"), person_id=pid,
                  visit_concept_id=concept_named("Outpatient Visit").concept_id, visit_start_date=day, visit_end_date=day,
                  visit_type_concept_id=self.cid["record_type"], visit_source_value="OP")

    def _exposures(self, pid: int, drug: Drug, clinical: bool) -> list[int]:
        t = self.t
        step = int(t["drugs"]["cycle_days"][drug.ingredient])
        oral = drug.ingredient in t["drugs"]["oral"]
        options = self.clinical_cid.get(drug.ingredient, [])
        concept = options[zlib.crc32(f"{pid}:{drug.ingredient}".encode()) % len(options)] if clinical and options else self.ingredient_cid[drug.ingredient]
        words = t["drugs"]["words"][drug.ingredient]
        word = words[zlib.crc32(f"{self.centre['id']}:{drug.ingredient}".encode()) % len(words)]
        out = []
        day = drug.start
        while day <= drug.end:
            eid = self._next("drug_exposure")
            stop = min(day + 29, drug.end) if oral else day
            self._add("drug_exposure", drug_exposure_id=eid, person_id=pid, drug_concept_id=concept, drug_exposure_start_date=day,
                      drug_exposure_end_date=stop, drug_type_concept_id=self.cid["record_type"],
                      days_supply=stop - day + 1 if oral else None, drug_source_value=word, drug_source_concept_id=0)
            if not oral:
                self._visit(pid, day)
            out.append(eid)
            day += step
        return out

    def write(self, folder: Path, background: int, seed: int, first_day: int, last_day: int) -> dict[str, int]:
        con = connect_cdm(folder / "omop.duckdb")
        for table in ("person", "observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure",
                      "measurement", "episode", "episode_event", "death"):
            if table in self.rows:
                insert_columns(con, table, self.rows[table], table_schema(con, table))
        written = write_background(con, persons=background, seed=seed, centre_id=self.centre["id"], first_day=first_day,
                                   last_day=last_day, clinical_share=float(self.centre["clinical_drug_share"]), ids=self.ids)
        write_vocabulary(con)
        con.close()
        return written


# --- the study --------------------------------------------------------------------------------


def _default_size(t: dict[str, Any]) -> int:
    return int(t["study"]["eligible"] + sum(int(v[1]) for v in t["excluded"].values()))


def generate_cdm_study(study: str, t: dict[str, Any], out: Path, *, seed: int, patients: int | None,
                       background_multiple: int | None = None) -> Path:
    """Write the OMOP-only study ``study`` described by its targets ``t`` into ``out``."""
    total = _default_size(t) if patients is None else patients
    n_eligible = round(total * t["study"]["eligible"] / _default_size(t))
    excluded = scale_counts({role: int(v[1]) for role, v in t["excluded"].items()}, total - n_eligible)
    multiple = int(t["study"].get("background_multiple", 0)) if background_multiple is None else int(background_multiple)
    cutoff = _date(t["study"]["data_cutoff"])
    d = _draw(t, n_eligible, excluded, seed)
    pfs_scale, os_scale, figures = _calibrate(t, d, cutoff, seed)
    tm = _times(d, pfs_scale, os_scale, cutoff)

    centres = t["centre"]
    rng = stream(seed, "cdm-centres")
    weights = np.array([float(c["weight"]) for c in centres])
    n = d.reason.shape[0]
    centre_of = np.empty(n, dtype=np.int64)
    counts = scale_counts({str(k): float(w) for k, w in enumerate(weights)}, n_eligible)
    centre_of[:n_eligible] = rng.permutation(np.array([int(k) for k, v in counts.items() for _ in range(v)], dtype=np.int64))
    centre_of[n_eligible:] = rng.choice(len(centres), size=n - n_eligible, p=weights / weights.sum())

    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "_truth"
    truth_dir.mkdir(exist_ok=True)
    (truth_dir / "README.md").write_text(TRUTH_README, encoding="utf-8")
    first_day = _date(t["study"]["index_first"]) - 3 * 365
    # the truth applies the study's own response rules, as the pipeline does
    sd_min_days = protocol_module.load(study).response.sd_min_days
    rows: list[dict[str, Any]] = []
    scope: list[tuple[Any, ...]] = []
    for c_idx, centre in enumerate(centres):
        keys = np.flatnonzero(centre_of == c_idx)
        numbers = rng.permutation(keys.shape[0]) + 1
        order = np.argsort(numbers, kind="stable")
        folder = out / centre["id"]
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        writer = _CentreWriter(t, centre, seed)
        for j in order.tolist():
            i = int(keys[j])
            person_id = int(t["study"]["first_person_id"]) + int(numbers[j]) * int(t["study"]["person_id_step"])
            p = _person(t, d, tm, i, c_idx, person_id)
            writer.add(p)
            rows.append(_truth_row(t, p, centre["id"], sd_min_days))
        written = writer.write(folder, multiple * keys.shape[0], seed, first_day, cutoff)
        scope.append((centre["id"], keys.shape[0], written["person"]))
    _write_csv(truth_dir / "patients.csv", CDM_TRUTH_COLUMNS,
               [["true" if v is True else "false" if v is False else v for v in r.values()] for r in rows])
    _write_csv(truth_dir / "scope.csv", ("centre_id", "study_persons", "background_persons"), scope)
    _write_csv(truth_dir / "summary.csv", ("figure", "target", "generated"), _summary(t, rows))
    _write_csv(truth_dir / "calibration.csv", ("figure", "published", "generated"),
               [(k, "", repr(float(v))) for k, v in figures.items()])
    (truth_dir / "defects.csv").write_text("centre_id,file,row,sheet,field,kind,raw_value,consequence\n", encoding="utf-8")
    manifest = {"study": study, "centre": [{"id": c["id"], "country": c["country"], "files": ["omop.duckdb"]} for c in centres]}
    (out / "centres.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return out


def _summary(t: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Counts, response rates and Kaplan-Meier medians by regimen and overall, from the truth."""
    eligible = [r for r in rows if r["eligible"]]
    out: list[tuple[Any, ...]] = [("eligible", t["study"]["eligible"], len(eligible))]
    for reason, k in t["excluded"].values():
        out.append((f"excluded_{reason}", k, sum(r["exclusion_reason"] == reason for r in rows)))
    groups: dict[str, list[dict[str, Any]]] = {"all": eligible}
    for reg in t["regimens"]:
        groups[reg] = [r for r in eligible if r["regimen_class"] == reg]
    for name, group in groups.items():
        spec = t["regimens"].get(name, {})
        pfs = np.array([r["pfs_months"] for r in group]), np.array([bool(r["pfs_event"]) for r in group])
        os_ = np.array([r["os_months"] for r in group]), np.array([bool(r["os_event"]) for r in group])
        responders = sum(bool(r["responder"]) for r in group)
        out += [
            (f"patients_{name}", spec.get("patients", ""), len(group)),
            (f"responders_{name}", spec.get("responders", ""), responders),
            (f"orr_{name}", "", repr(responders / len(group)) if group else ""),
            (f"pfs_median_{name}", spec.get("pfs_median", ""), repr(km_median(*pfs)) if group else ""),
            (f"os_median_{name}", spec.get("os_median", ""), repr(km_median(*os_)) if group else ""),
        ]
    for bor in ("CR", "PR", "SD", "PD", "NE"):
        out.append((f"best_response_{bor}", t["best_response"].get(bor, ""), sum(r["best_response"] == bor for r in eligible)))
    return out


def _write_csv(path: Path, header: tuple[str, ...], rows: Any) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
