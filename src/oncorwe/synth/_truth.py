"""The true per-patient values, derived from each record by the rules of docs/definitions.md.

This is the generator's own, independent implementation of those rules over its own records (the
pipeline derives the same values from the files). Tests compare the two. The study's parameters
of the rules (drug classes, regimen and subsequent-therapy classes, the ICI classes, windows) are
its protocol's, through the generator design.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK, make_patient_id
from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._design import Design, study_design
from oncorwe.synth._records import Course, PatientRecord, Scan

__all__ = ["TRUTH_COLUMNS", "best_response", "exclusion_reason", "truth_row"]

TRUTH_COLUMNS = (
    "patient_id", "centre_id", "source_patient_id", "eligible", "exclusion_reason", "duplicate_of",
    "index_date", "age_years", "sex", "primary_site", "m_stage", "m1c_or_worse", "brain_metastases",
    "braf_v600", "ecog", "ldh_ratio", "ldh_elevated", "prior_ici_class", "prior_anti_pd1",
    "regimen_class", "regimen_ingredients", "combined_with_targeted_or_immuno", "best_response",
    "best_response_source", "responder", "disease_control", "pfs_months", "pfs_event", "os_months",
    "os_event", "duration_of_response_months", "duration_of_response_event", "chemo_duration_weeks",
    "subsequent_therapy", "subsequent_therapy_months", "subsequent_therapy_class", "subsequent_best_response", "subsequent_responder",
)


def _date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=day)


def _classes(course: Course, design: Design) -> frozenset[str]:
    return _classes_of(design.study, course.ingredients)


@cache
def _classes_of(study: str, ingredients: tuple[str, ...]) -> frozenset[str]:
    # a handful of distinct regimens: looked up once each, not once per course of a million patients
    drug_class = study_design(study).drug_class
    return frozenset(drug_class[x] for x in ingredients)


def regimen_class(ingredients: tuple[str, ...], design: Design) -> str:
    """The first of the protocol's regimen classes the index-class ingredients match: one of each
    ``all_of`` group, and with ``only`` none outside the groups; else the other regimen class."""
    chemo = {x for x in ingredients if design.drug_class[x] == design.index_class}
    for rule in design.regimen_classes:
        if all(group & chemo for group in rule.all_of) and not (rule.only and chemo - frozenset().union(*rule.all_of)):
            return rule.name
    return design.other_regimen_class


def best_response(scans: list[Scan], start: int, stop: int | None, progression_event: bool, sd_min_days: int) -> str:
    """RECIST 1.1 best overall response without confirmation, from time points after ``start``.

    Counted: time points after ``start``, before ``stop`` (the next line), up to the first PD. Stable
    disease counts from ``sd_min_days`` after ``start`` (the protocol's ``[response] sd_min_days``).
    """
    counted: list[Scan] = []
    for scan in sorted(scans, key=lambda x: x.day):
        if scan.day <= start or (stop is not None and scan.day >= stop):
            continue
        counted.append(scan)
        if scan.response == "PD":
            break
    responses = [x.response for x in counted]
    if "CR" in responses:
        return "CR"
    if "PR" in responses:
        return "PR"
    if any(x.response in ("CR", "PR", "SD") and x.day - start >= sd_min_days for x in counted):
        return "SD"
    if "PD" in responses or progression_event:
        return "PD"
    return "NE"


def truth_row(rec: PatientRecord, design: Design) -> dict[str, Any]:
    """One row of ``_truth/patients.csv`` (analysis values only for eligible records)."""
    row: dict[str, Any] = dict.fromkeys(TRUTH_COLUMNS)
    row.update(
        patient_id=make_patient_id(rec.centre_id, rec.local_id),
        centre_id=rec.centre_id,
        source_patient_id=rec.local_id,
        eligible=rec.reason == "",
        exclusion_reason=rec.reason,
        duplicate_of=rec.duplicate_of,
    )
    if rec.reason:
        return row
    lines = sorted(rec.courses, key=lambda x: x.start)
    index_pos = next(k for k, x in enumerate(lines) if x.role == "index")
    index_line = lines[index_pos]
    index = index_line.start
    next_line = lines[index_pos + 1] if index_pos + 1 < len(lines) else None
    scans = list(rec.scans)

    ici = design.ici_classes
    prior = set().union(*[_classes(x, design) for x in lines if x.start < index and _classes(x, design) & ici])
    prior_class = next((name for name, all_of in design.prior_levels if all_of <= prior), design.prior_otherwise)
    progression_events = sorted(
        x.progression for x in lines if x.progression is not None and x.progression > index
    )
    first_pd = next((x.day for x in sorted(scans, key=lambda x: x.day) if x.day > index and x.response == "PD"), None)
    stop = next_line.start if next_line else None
    prog_before_next = any(d for d in progression_events if stop is None or d < stop)
    bor = best_response(scans, index, stop, prog_before_next, design.sd_min_days)
    candidates = [d for d in (first_pd, progression_events[0] if progression_events else None, rec.death_day) if d is not None]
    if candidates:
        pfs_day, pfs_event = min(candidates), 1
    else:
        evaluable = [x.day for x in scans if x.day > index and x.response in ("CR", "PR", "SD")]
        pfs_day, pfs_event = (max(evaluable) if evaluable else index), 0
    os_day = rec.death_day if rec.death_day is not None else rec.last_contact_day
    responder = bor in ("CR", "PR")
    dor_months = dor_event = None
    if responder:
        first_resp = min(
            x.day for x in scans if x.day > index and x.response in ("CR", "PR") and (stop is None or x.day < stop)
        )
        dor_months = (pfs_day - first_resp) / DAYS_PER_MONTH
        dor_event = pfs_event
    end = index_line.end if index_line.end is not None else index_line.start
    age = (
        float(rec.age_reported)
        if rec.age_reported is not None
        else (index - (dt.date(rec.birth_year, 7, 1) - EPOCH).days) / 365.25
    )
    ratio = None if rec.ldh_value is None else rec.ldh_value / rec.ldh_uln
    row.update(
        index_date=_date(index).isoformat(),
        age_years=age,
        sex="male" if rec.male else "female",
        primary_site=rec.primary_site,
        m_stage=rec.m_stage,
        m1c_or_worse=rec.m_stage in ("M1c", "M1d"),
        brain_metastases=rec.brain,
        braf_v600=None if rec.braf == "unknown" else rec.braf.startswith("V600"),
        ecog=rec.ecog,
        ldh_ratio=ratio,
        ldh_elevated=None if ratio is None else ratio > 1.0,
        prior_ici_class=prior_class,
        prior_anti_pd1=bool(design.prior_anti_pd1_classes & prior),
        regimen_class=regimen_class(index_line.ingredients, design),
        regimen_ingredients="+".join(sorted(index_line.ingredients)),
        combined_with_targeted_or_immuno=any(design.drug_class[x] != design.index_class for x in index_line.ingredients),
        best_response=bor,
        best_response_source="derived",
        responder=responder,
        disease_control=bor in ("CR", "PR", "SD"),
        pfs_months=(pfs_day - index) / DAYS_PER_MONTH,
        pfs_event=pfs_event,
        os_months=(os_day - index) / DAYS_PER_MONTH,
        os_event=int(rec.death_day is not None),
        duration_of_response_months=dor_months,
        duration_of_response_event=dor_event,
        chemo_duration_weeks=(end - index) / DAYS_PER_WEEK,
    )
    row.update(_subsequent(lines, index_pos, scans, design))
    return row


def _subsequent(lines: list[Course], index_pos: int, scans: list[Scan], design: Design) -> dict[str, Any]:
    """The class of the first line after the index line: the first of the protocol's classes whose
    drug classes the next line holds (``line = "next"``) or any later line holds (``"later"``,
    whose response is then the one counted); else the protocol's ``otherwise``."""
    index_line = lines[index_pos]
    later = [x for x in lines[index_pos + 1 :] if x.start > index_line.start]
    if not later:
        return {"subsequent_therapy": False, "subsequent_therapy_months": None, "subsequent_therapy_class": None,
                "subsequent_best_response": None, "subsequent_responder": None}
    first = later[0]
    klass, counted = design.subsequent_otherwise, first
    for rule in design.subsequent_classes:
        if rule.line == "next":
            if _classes(first, design) & rule.drug_classes:
                klass = rule.name
                break
        else:
            hit = next((x for x in later[1:] if _classes(x, design) & rule.drug_classes), None)
            if hit is not None:
                klass, counted = rule.name, hit
                break
    pos = lines.index(counted)
    stop = lines[pos + 1].start if pos + 1 < len(lines) else None
    prog = any(
        x.progression is not None and x.progression > counted.start and (stop is None or x.progression < stop)
        for x in lines
    )
    bor = best_response(scans, counted.start, stop, prog, design.sd_min_days)
    return {"subsequent_therapy": True, "subsequent_therapy_months": (first.start - index_line.start) / DAYS_PER_MONTH,
            "subsequent_therapy_class": klass,
            "subsequent_best_response": bor, "subsequent_responder": bor in ("CR", "PR")}


def exclusion_reason(rec: PatientRecord, design: Design) -> str:
    """The first eligibility criterion (2-6 of docs/definitions.md) the record fails, or "".

    Criterion 1 (duplicate referral) concerns two records and is decided by construction.
    """
    why = design.reasons
    if rec.stage not in design.stage_values:
        return why["observation_in"]
    lines = sorted(rec.courses, key=lambda x: x.start)
    chemo = [x for x in lines if design.index_class in _classes(x, design)]
    if not chemo:
        return why["has_line"]
    ici = [x for x in lines if _classes(x, design) & design.ici_classes]
    if not any(i.start < c.start for i in ici for c in chemo):
        return why["line_before_line"]
    failures = []
    for line in ici:
        end = line.end if line.end is not None else line.start
        later_chemo = [c.start for c in chemo if c.start > line.start]
        if not later_chemo:
            continue
        progression = [x.day for x in rec.scans if x.response == "PD"] + [
            x.progression for x in lines if x.progression is not None
        ]
        hits = [d for d in progression if line.start <= d <= end + design.progression_window_days and d < min(later_chemo)]
        if hits:
            failures.append(min(c for c in later_chemo if c > min(hits)))
    if not failures:
        return why["progression_on_prior_line"]
    if not design.index_window[0] <= min(failures) <= design.index_window[1]:
        return why["index_date_within"]
    return ""
