"""The synthetic adverse events: rates per regimen class as the data file gives them, onsets within
the index course, a stream of their own (every other generated file is byte-identical with and
without them), and every centre's words read back by the parser."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources

import numpy as np
import pytest

from oncorwe.synth._adverse_events import draw_adverse_events
from oncorwe.synth._records import Course, PatientRecord

RATES = tomllib.loads(resources.files("oncorwe.synth").joinpath("data", "adverse_events.toml").read_text("utf-8"))


def _record(i: int, ingredients: tuple[str, ...], end: int | None = 100) -> PatientRecord:
    course = Course(ingredients=ingredients, start=10, end=end, reason=None, progression=None, role="index")
    return PatientRecord(key=i, centre_id="xx-a", local_id=f"P{i}", reason="", duplicate_of="", male=True,
                         birth_year=1950, age_reported=None, diagnosis_day=0, primary_site="cutaneous", stage="IV",
                         m_stage="M1c", brain=False, braf="unknown", ecog=0, ldh_value=None, ldh_uln=250.0,
                         courses=(course,), scans=(), death_day=None, last_contact_day=400)


@pytest.mark.parametrize("rate_class", [c["name"] for c in RATES["class"]])
def test_severe_rates_follow_the_data_file(rate_class: str) -> None:
    spec = next(c for c in RATES["class"] if c["name"] == rate_class)
    ingredients = tuple(sorted(group[0] for group in spec["all_of"]))
    n = 4000
    events = draw_adverse_events([_record(i, ingredients) for i in range(n)], 7, "xx-a")
    assert {e.rate_class for e in events} == {rate_class}
    for term, p in spec["severe"].items():
        patients = {e.local_id for e in events if e.ctcae_term == term and e.grade >= 3}
        # binomial: 4 standard errors
        assert abs(len(patients) / n - p) < 4 * np.sqrt(p * (1 - p) / n), (term, len(patients) / n, p)
    assert all(10 <= e.onset_day <= 100 for e in events)
    assert {e.grade for e in events} <= {1, 2, 3, 4}


def test_an_open_course_and_no_index_course() -> None:
    spec = RATES["class"][0]
    ingredients = tuple(sorted(group[0] for group in spec["all_of"]))
    open_course = draw_adverse_events([_record(i, ingredients, end=None) for i in range(500)], 1, "xx-a")
    assert max(e.onset_day for e in open_course) <= 10 + RATES["open_course_days"]
    rec = _record(0, ingredients)
    prior = dataclasses.replace(rec, courses=tuple(dataclasses.replace(c, role="prior_ici") for c in rec.courses))
    assert draw_adverse_events([prior], 1, "xx-a") == []


def test_the_draws_are_deterministic_per_seed_and_centre() -> None:
    spec = RATES["class"][0]
    ingredients = tuple(sorted(group[0] for group in spec["all_of"]))
    records = [_record(i, ingredients) for i in range(200)]
    assert draw_adverse_events(records, 3, "xx-a") == draw_adverse_events(records, 3, "xx-a")
    assert draw_adverse_events(records, 3, "xx-a") != draw_adverse_events(records, 4, "xx-a")
