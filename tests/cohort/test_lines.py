"""Lines of therapy from drug records: regimen window, gap, substitutions, dropping, end, classes.

Every case is one patient of a single hand-built study, so the backend round trip runs once.
"""

from __future__ import annotations

import polars as pl
import pytest
from canonical_builder import D, Study, days, run_study

from oncorwe.cohort import CohortResult

S = Study()
START = D(2012, 3, 1)

# Window: day 28 joins the regimen, a new ingredient on day 29 starts a new line.
S.patient("c1:window")
S.drug("c1:window", "carboplatin", START, days(START, 90))
S.drug("c1:window", "paclitaxel", days(START, 28), days(START, 90))
S.drug("c1:window", "temozolomide", days(START, 29), days(START, 60))

# Substitutions (cisplatin for carboplatin, nab-paclitaxel for paclitaxel) and dropping one drug.
S.patient("c1:subst")
S.drug("c1:subst", "carboplatin", START, days(START, 40))
S.drug("c1:subst", "paclitaxel", START, days(START, 100))
S.drug("c1:subst", "cisplatin", days(START, 60), days(START, 100))
S.drug("c1:subst", "nab-paclitaxel", days(START, 110), days(START, 130), "progression")
S.drug("c1:subst", "paclitaxel", days(START, 140), days(START, 150))

# Gap: 120 days without exposure keeps the line, 121 days starts a new one (same drug).
S.patient("c1:gap")
S.drug("c1:gap", "dacarbazine", START, days(START, 30))
S.drug("c1:gap", "dacarbazine", days(START, 150), days(START, 170))
S.drug("c1:gap", "dacarbazine", days(START, 291), None)

# End reason from the last-ending exposure; ICI and targeted flags.
S.patient("c1:reason")
S.drug("c1:reason", "ipilimumab", START, days(START, 63), "toxicity")
S.drug("c1:reason", "nivolumab", START, days(START, 90), "progression")
S.drug("c1:reason", "dabrafenib", days(START, 200), None)

# Two patients with the same dates do not mix.
for pid in ("c2:a", "c3:b"):
    S.patient(pid)
    S.drug(pid, "ipilimumab", D(2012, 1, 1), D(2012, 3, 1))
    S.drug(pid, "dacarbazine", D(2012, 5, 1), D(2012, 7, 1))
S.drug("c3:b", "temozolomide", D(2013, 1, 1), D(2013, 2, 1))

REGIMENS = {
    ("carboplatin", "paclitaxel"): "carboplatin_paclitaxel",
    ("cisplatin", "nab-paclitaxel"): "carboplatin_paclitaxel",
    ("dacarbazine",): "dacarbazine",
    ("temozolomide",): "temozolomide",
    ("paclitaxel",): "taxane",
    ("docetaxel",): "taxane",
    ("nab-paclitaxel",): "taxane",
    ("fotemustine",): "fotemustine",
    ("carboplatin",): "other",
    ("cisplatin", "dacarbazine"): "other",
    ("carboplatin", "dacarbazine", "paclitaxel"): "other",
    ("dabrafenib", "dacarbazine"): "dacarbazine",  # class from the chemotherapy; flagged as combined
}
for i, regimen in enumerate(REGIMENS):
    S.patient(f"c4:{i}")
    for name in regimen:
        S.drug(f"c4:{i}", name, D(2014, 1, 1), D(2014, 3, 1))


@pytest.fixture(scope="module")
def result() -> CohortResult:
    cohort_result, _ = run_study(S)
    return cohort_result


def lines_of(result: CohortResult, pid: str) -> list[dict]:
    return result.lines.filter(pl.col("patient_id") == pid).sort("line_number").to_dicts()


def test_ingredients_within_the_window_form_one_regimen_and_later_ones_a_new_line(result: CohortResult) -> None:
    lines = lines_of(result, "c1:window")
    assert [x["ingredients"] for x in lines] == ["carboplatin+paclitaxel", "temozolomide"]
    assert lines[0]["regimen_class"] == "carboplatin_paclitaxel"
    assert lines[1]["start_date"] == days(START, 29)
    assert [x["line_number"] for x in lines] == [1, 2]


def test_substitution_and_dropping_a_drug_continue_the_line(result: CohortResult) -> None:
    (line,) = lines_of(result, "c1:subst")
    assert line["ingredients"] == "carboplatin+cisplatin+nab-paclitaxel+paclitaxel"
    assert line["start_date"] == START and line["end_date"] == days(START, 150)
    assert line["end_reason"] == "unknown"  # the last-ending exposure (paclitaxel, day 150) has none


def test_a_gap_of_more_than_120_days_starts_a_new_line_even_with_the_same_drug(result: CohortResult) -> None:
    lines = lines_of(result, "c1:gap")
    assert [(x["start_date"], x["end_date"]) for x in lines] == [
        (START, days(START, 170)),
        (days(START, 291), days(START, 291)),  # end missing: the start date
    ]


def test_end_reason_comes_from_the_last_ending_exposure(result: CohortResult) -> None:
    lines = lines_of(result, "c1:reason")
    assert [x["end_reason"] for x in lines] == ["progression", "unknown"]
    assert lines[0]["drug_classes"] == "anti_ctla4+anti_pd1"
    assert lines[0]["has_prior_class"]  # an ICI line: the flagship's prior-failure classes
    assert lines[0]["regimen_class"] is None  # not a chemotherapy line
    assert lines[1]["drug_classes"] == "braf_mek" and not lines[1]["has_prior_class"]


def test_regimen_classes_follow_the_protocol_precedence(result: CohortResult) -> None:
    got = dict(result.lines.filter(pl.col("patient_id").str.starts_with("c4:"))
               .select("patient_id", "regimen_class").iter_rows())
    assert got == {f"c4:{i}": klass for i, klass in enumerate(REGIMENS.values())}
    combined = result.lines.filter(pl.col("ingredients") == "dabrafenib+dacarbazine")
    assert combined["index_class_ingredients"].to_list() == ["dacarbazine"]
    assert combined["has_other_than_index_class"].to_list() == [True]
    assert combined["has_index_class"].to_list() == [True]


def test_lines_are_numbered_per_patient_and_patients_do_not_mix(result: CohortResult) -> None:
    counts = dict(
        result.lines.filter(pl.col("patient_id").is_in(["c2:a", "c3:b"]))
        .group_by("patient_id").agg(pl.col("line_number").max()).iter_rows()
    )
    assert counts == {"c2:a": 2, "c3:b": 3}
