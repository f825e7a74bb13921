"""Per-patient timelines: every line of therapy, every tumour assessment, death and last contact.

The record is what a centre knows about one patient, in canonical words and absolute day numbers;
the writers render it in the centre's own style. Lines are laid out so that the rules of
docs/definitions.md give back the designed values: drugs of a line start together, lines never
share an ingredient or a substitute, progression dates sit on PD assessments.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from statistics import NormalDist

from oncorwe.synth._baseline import EPOCH, Cohort
from oncorwe.synth._config import CentreStyle
from oncorwe.synth._design import Design, choose
from oncorwe.synth._subsequent import Subsequent
from oncorwe.synth._times import Times

__all__ = ["Course", "PatientRecord", "Scan", "build_record", "with_identity"]

_NORMAL = NormalDist()
_EPOCH_ORDINAL = EPOCH.toordinal()


@dataclass(frozen=True)
class Course:
    """One line's drug course (all its ingredients start on ``start``)."""

    ingredients: tuple[str, ...]
    start: int  # day number
    end: int | None  # None = ongoing at the last contact
    reason: str | None  # progression | toxicity | completed | death | other | None
    progression: int | None  # the progression date recorded for this line
    role: str  # prior_targeted | prior_ici | index | subsequent | later


@dataclass(frozen=True)
class Scan:
    day: int
    response: str  # CR | PR | SD | PD
    role: str  # prior | index | subsequent


@dataclass(frozen=True)
class PatientRecord:
    """What one centre sent about one patient (canonical words, day numbers)."""

    key: int  # position in the cohort (or the kept record's position for a duplicate)
    centre_id: str
    local_id: str
    reason: str  # "" eligible, else the exclusion reason
    duplicate_of: str  # patient_id of the kept record, for duplicate referrals
    male: bool
    birth_year: int
    age_reported: int | None  # centres that send an age instead of a birth year
    diagnosis_day: int
    primary_site: str
    stage: str  # IV | III_unresectable | III
    m_stage: str
    brain: bool
    braf: str  # V600E | V600K | wild_type | unknown
    ecog: int | None
    ldh_value: float | None  # in the centre's unit, as written
    ldh_uln: float  # in the centre's unit
    courses: tuple[Course, ...]
    scans: tuple[Scan, ...]
    death_day: int | None
    last_contact_day: int


def _norm(u: float) -> float:
    """Standard normal quantile of ``u`` (inverse CDF)."""
    return _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9))


def _clip(value: float, low: float, high: float) -> int:
    return int(min(max(value, low), high))


def _spaced(start: int, length: int, count: int) -> list[int]:
    """``count`` scan days after ``start``, evenly spaced, the last at ``start + length``."""
    return [start + round(length * j / count) for j in range(1, count + 1)]


def _evaluable(bor: str, count: int, u: float) -> list[str]:
    if bor == "SD" or count == 0:
        return ["SD"] * count
    if bor == "CR":
        return ["CR"] if count == 1 else ["PR"] + ["CR"] * (count - 1)
    if count == 1 or u < 0.6:
        return ["PR"] * count
    return ["SD"] + ["PR"] * (count - 1)


def _index_scans(bor: str, kind: str, index: int, pfs: int, u: float) -> list[Scan]:
    """Assessments after the index date that give best response ``bor`` and the designed PFS."""
    if bor == "NE":
        return []
    if bor == "PD":
        return [Scan(index + pfs, "PD", "index")]
    if kind == "pd":
        count = max(2, math.ceil(pfs / 84))
        days = _spaced(index, pfs, count)
        return [Scan(d, r, "index") for d, r in zip(days[:-1], _evaluable(bor, count - 1, u), strict=True)] + [
            Scan(days[-1], "PD", "index")
        ]
    span = pfs - 7 if kind == "death" else pfs
    count = max(1, math.ceil(span / 84))
    days = _spaced(index, span, count)
    return [Scan(d, r, "index") for d, r in zip(days, _evaluable(bor, count, u), strict=True)]


def _other_regimen(design: Design, index_ingredients: tuple[str, ...], u: float) -> tuple[str, ...]:
    """One of the design's other chemotherapies sharing no ingredient (nor substitute) with the index line."""
    substitute = design.substitute
    taken = {substitute.get(x, x) for x in index_ingredients}
    options = [r for r in design.subsequent.other if not taken & {substitute.get(x, x) for x in r}]
    return options[int(u * len(options))]


def build_record(
    c: Cohort, t: Times, s: Subsequent, i: int, style: CentreStyle, local_id: str, design: Design
) -> PatientRecord:
    """The timeline of cohort entry ``i`` as centre ``style`` recorded it (drugs of ``design``)."""
    u = c.uniforms[i].tolist()  # plain floats: scalar numpy arithmetic is slow per patient
    index = int(c.index_day[i])
    reason = str(c.reason[i])
    courses: list[Course] = []
    scans: list[Scan] = []

    # --- prior ICI line(s), ending with the progression that makes the patient eligible
    prior = str(c.prior[i])
    gap_to_chemo = 7 + int(u[0] * 50)
    pd_ici = index - gap_to_chemo
    why = design.reasons
    no_pd = reason == why["progression_on_prior_line"]
    if no_pd:
        pd_ici = index - gap_to_chemo  # the progression that led to chemotherapy, long after the ICI
    if prior == "anti_ctla4":
        ici_end = pd_ici - (int(u[3] * 60) if not no_pd else 91 + int(u[3] * 120))
        ici_start = ici_end - (63 if u[2] < 0.8 else 21 * (1 + int(u[2] * 2)))
        drugs: tuple[str, ...] = design.prior_anti_ctla4
    else:
        dur = _clip(math.exp(math.log(105) + 0.6 * _norm(u[2])), 21, 700)
        ici_end = pd_ici - (int(u[3] * 21) if not no_pd else 91 + int(u[3] * 120))
        ici_start = ici_end - dur
        drugs = choose(design.prior_anti_pd1, u[1])
        if prior == "combined":
            drugs = design.prior_combined
    first_line = ici_start
    if reason != why["line_before_line"]:
        ici_reason = "toxicity" if no_pd else "progression"
        courses.append(Course(drugs, ici_start, ici_end, ici_reason, None if no_pd else pd_ici, "prior_ici"))
        if ici_start + 98 < pd_ici - 14 and ici_start + 98 < ici_end + 90:
            scans.append(Scan(ici_start + 56 + int(u[4] * 42), "SD", "prior"))
        scans.append(Scan(pd_ici, "PD", "prior"))
        if prior == "sequence":
            ipi_pd = ici_start - (14 + int(u[5] * 60))
            ipi_end = ipi_pd - int(u[6] * 40)
            ipi_start = ipi_end - 63
            courses.insert(0, Course(design.prior_anti_ctla4, ipi_start, ipi_end, "progression", ipi_pd, "prior_ici"))
            scans.insert(0, Scan(ipi_pd, "PD", "prior"))
            first_line = ipi_start
    if c.braf[i] == 1 and u[7] < design.prior_targeted_share:
        tg_pd = first_line - (14 + int(u[8] * 45))
        tg_end = tg_pd - int(u[9] * 10)
        tg_start = tg_end - _clip(math.exp(math.log(200) + 0.6 * _norm(u[10])), 30, 900)
        early = tg_start < design.prior_targeted_later_from or u[11] < design.prior_targeted_early_share_after
        tg = design.prior_targeted_early if early else design.prior_targeted_later
        courses.insert(0, Course(tg, tg_start, tg_end, "progression", tg_pd, "prior_targeted"))
        scans.insert(0, Scan(tg_pd, "PD", "prior"))
        if tg_start + 70 < tg_pd - 14:
            scans.insert(0, Scan(tg_start + 56 + int(u[12] * 14), "PR", "prior"))
        first_line = tg_start

    # --- the index chemotherapy line and its assessments
    bor = str(c.bor[i])
    kind = str(t.pfs_kind[i])
    pfs = int(t.pfs_days[i])
    os_days = int(t.os_days[i])
    dead = bool(t.os_event[i])
    chemo_end = index + int(t.chemo_days[i])
    ingredients = tuple(sorted(str(c.regimen[i]).split("+") + ([*str(c.partner[i]).split("+")] if c.partner[i] else [])))
    if chemo_end == index + pfs and kind == "pd":
        stop = "progression"
    elif dead and chemo_end == index + os_days:
        stop = "death"
    else:
        stop = ("toxicity", "completed", "other")[int(u[13] * 3)]
    if reason != why["has_line"]:
        courses.append(Course(ingredients, index, chemo_end, stop, index + pfs if kind == "pd" else None, "index"))
    scans.extend(_index_scans(bor, kind, index, pfs, u[14]))

    # --- subsequent therapy
    klass = str(s.klass[i])
    if klass and reason != why["has_line"]:
        _add_subsequent(design, c, s, i, courses, scans, index + pfs, index + os_days, dead, ingredients, u)

    diagnosis = first_line - _clip(math.exp(math.log(600) + 0.9 * _norm(u[15])), 30, 7000)
    if reason == why["line_before_line"]:
        diagnosis = min(diagnosis, index - 30)
    age = float(c.age_years[i])
    birth_year = _birth_year(index, age)
    ldh_value = _ldh(float(c.ldh_ratio[i]), style)
    braf = {1: "V600E" if u[16] < 0.8 else "V600K", 0: "wild_type", -1: "unknown"}[int(c.braf[i])]
    stage = str(c.stage[i])
    return PatientRecord(
        key=i,
        centre_id=style.centre_id,
        local_id=local_id,
        reason=reason,
        duplicate_of="",
        male=bool(c.male[i]),
        birth_year=birth_year,
        age_reported=int(age) if style.sends_age else None,
        diagnosis_day=diagnosis,
        primary_site=str(c.primary_site[i]),
        stage=stage,
        m_stage=str(c.m_stage[i]),
        brain=bool(c.brain[i]),
        braf=braf,
        ecog=None if c.ecog[i] < 0 else int(c.ecog[i]),
        ldh_value=ldh_value,
        ldh_uln=style.ldh_uln,
        courses=tuple(courses),
        scans=tuple(sorted(scans, key=lambda x: x.day)),
        death_day=index + os_days if dead else None,
        last_contact_day=index + os_days,
    )


def _birth_year(index: int, age: float) -> int:
    """The birth year whose July 1 lies ``age`` years before the index day (nearest)."""
    ordinal = _EPOCH_ORDINAL + index
    year = dt.date.fromordinal(ordinal).year
    day_of_year = ordinal - dt.date(year, 1, 1).toordinal() + 1
    year_float = year + (day_of_year - 182) / 365.25 - age
    return round(year_float)


def _ldh(ratio: float, style: CentreStyle) -> float | None:
    if not math.isfinite(ratio):
        return None
    if style.ldh_unit == "U/L":
        return float(round(ratio * style.ldh_uln))
    return round(ratio * style.ldh_uln, 2)


def _add_subsequent(
    design: Design,
    c: Cohort,
    s: Subsequent,
    i: int,
    courses: list[Course],
    scans: list[Scan],
    progression: int,
    end_of_follow_up: int,
    dead: bool,
    index_ingredients: tuple[str, ...],
    u: list[float],
) -> None:
    klass = str(s.klass[i])
    start = progression + int(s.gap_days[i])
    partner = str(c.partner[i])
    prior = str(c.prior[i])
    sub = design.subsequent
    role = sub.role_of[klass]
    if role == "anti_pd1":
        if partner == design.partners["anti_pd1"] or u[17] < sub.anti_pd1_combination_share:
            drugs: tuple[str, ...] = (
                sub.anti_pd1_instead_of_combination if prior == "anti_ctla4" or partner else sub.anti_pd1_combination
            )
        else:
            drugs = choose(sub.anti_pd1_alone, u[18])
    elif role == "anti_ctla4":
        drugs = sub.anti_ctla4
    elif role == "targeted":
        drugs = choose(sub.targeted, u[17])
    elif role == "other":
        drugs = _other_regimen(design, index_ingredients, u[17])
    else:  # ici_after_other: a non-ICI line, then the ICI line whose response counts
        first = (
            sub.ici_after_other_first_targeted if c.braf[i] == 1 and not partner
            else _other_regimen(design, index_ingredients, u[17])
        )
        second_start = start + int(s.second_line_days[i])
        courses.append(Course(first, start, second_start - 14, "progression", second_start - 7, "subsequent"))
        scans.append(Scan(second_start - 7, "PD", "subsequent"))
        start = second_start
        drugs = choose(sub.ici_after_other, u[18])
    duration = _clip(math.exp(math.log(90) + 0.7 * _norm(u[19])), 1, 2000)
    end: int | None = start + duration
    if end is not None and end >= end_of_follow_up:
        end = end_of_follow_up if dead else None
    first_scan = start + int(s.scan_days[i])
    line_scans: list[Scan] = []
    if first_scan < end_of_follow_up:
        if s.responder[i]:
            line_scans.append(Scan(first_scan, "CR" if u[20] < 0.15 else "PR", "subsequent"))
        else:
            line_scans.append(Scan(first_scan, "SD" if s.stable[i] else "PD", "subsequent"))
        follow = first_scan + 84
        if line_scans[0].response != "PD" and follow < end_of_follow_up and u[21] < 0.7:
            line_scans.append(Scan(follow, "PD", "subsequent"))
    pd_day = next((x.day for x in line_scans if x.response == "PD"), None)
    stop: str | None
    if pd_day is not None and (end is None or pd_day <= end):
        end, stop = pd_day, "progression"
    elif end is None:
        stop = None
    else:
        stop = "death" if dead and end == end_of_follow_up else "completed"
    courses.append(Course(drugs, start, end, stop, pd_day, "subsequent"))
    scans.extend(line_scans)


def with_identity(record: PatientRecord, centre_id: str, local_id: str, duplicate_of: str, style: CentreStyle,
                  design: Design) -> PatientRecord:
    """A copy of ``record`` as another centre sent it (a duplicate referral)."""
    return replace(
        record,
        centre_id=centre_id,
        local_id=local_id,
        reason=design.reasons["duplicate_referral"],
        duplicate_of=duplicate_of,
        age_reported=None,
        ldh_value=None if record.ldh_value is None else _ldh(record.ldh_value / record.ldh_uln, style),
        ldh_uln=style.ldh_uln,
    )
