"""PFS, OS, duration of response, baseline values and subsequent therapy on hand-built patients.
Index date 2014-01-01 for everyone; days below are days after the index."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from canonical_builder import DEFAULT_INDEX, Study, days, load_protocol, row, run_study

from oncorwe import protocol
from oncorwe.endpoints import EndpointsResult
from oncorwe.errors import InputError
from oncorwe.model.schema import DAYS_PER_MONTH

INDEX = DEFAULT_INDEX


def months(n_days: int) -> float:
    return n_days / DAYS_PER_MONTH


S = Study()
S.eligible("t:pd_scan")
S.scan("t:pd_scan", days(INDEX, 45), "SD")
S.scan("t:pd_scan", days(INDEX, 91), "PD")
S.eligible("t:death_first")
S.event("t:death_first", "progression", days(INDEX, 200))
S.event("t:death_first", "death", days(INDEX, 150))
S.eligible("t:censor_evaluable", last_contact=None)
for day, response in ((50, "SD"), (100, "SD"), (150, "NE")):
    S.scan("t:censor_evaluable", days(INDEX, day), response)
S.event("t:censor_evaluable", "last_contact", days(INDEX, 300))
S.event("t:censor_evaluable", "last_contact", days(INDEX, 250))
S.eligible("t:no_scans")
S.eligible("t:progression_free")  # an analysis-ready source: "progression-free until" day 200
S.scan("t:progression_free", days(INDEX, 60), "SD")
S.event("t:progression_free", "progression_free", days(INDEX, 200))
S.eligible("t:no_contact", last_contact=None)
S.scan("t:no_contact", days(INDEX, 50), "SD")
S.eligible("t:responder")
S.scan("t:responder", days(INDEX, 60), "PR")
S.scan("t:responder", days(INDEX, 120), "PD")
S.eligible("t:responder_censored")
S.scan("t:responder_censored", days(INDEX, 30), "CR")
S.scan("t:responder_censored", days(INDEX, 90), "CR")
# Baseline values.
S.eligible("b:reported_age", birth_year=None, reported_age_years=61.5, m_stage="M1d", ldh_value=None)
S.eligible("b:m1b", m_stage="M1b", ldh_value=200.0, ldh_uln=250.0)
S.eligible("b:unknown_m", m_stage=None, regimen=("carboplatin", "paclitaxel", "trametinib"), chemo_days=0)
# The centre's own LDH flag: used without a ULN, overruled by a value and ULN that say otherwise.
S.eligible("b:ldh_flag_only", ldh_value=300.0, ldh_uln=None, ldh_elevated=True)
S.eligible("b:ldh_flag_overruled", ldh_value=200.0, ldh_uln=250.0, ldh_elevated=True)
# Prior ICI classes.
S.eligible("p:pd1", ici="nivolumab")
S.eligible("p:both", ici="nivolumab")
S.drug("p:both", "ipilimumab", days(INDEX, -400), days(INDEX, -300))
# Subsequent therapy.
for pid, drugs in (("s:pd1", ("nivolumab", "ipilimumab")), ("s:ipi", ("ipilimumab",)),
                   ("s:targeted", ("dabrafenib", "trametinib")), ("s:other", ("temozolomide",))):
    S.eligible(pid)
    for name in drugs:
        S.drug(pid, name, days(INDEX, 100), days(INDEX, 150))
S.scan("s:pd1", days(INDEX, 160), "PR")
S.eligible("s:ici_after_other")
S.drug("s:ici_after_other", "temozolomide", days(INDEX, 100), days(INDEX, 150))
S.drug("s:ici_after_other", "pembrolizumab", days(INDEX, 200), days(INDEX, 300))
S.scan("s:ici_after_other", days(INDEX, 180), "PR")  # on temozolomide: not the counted line
S.scan("s:ici_after_other", days(INDEX, 260), "SD")  # 60 days into pembrolizumab: SD


@pytest.fixture(scope="module")
def result() -> EndpointsResult:
    return run_study(S)[1]


def test_analysis_table_has_exactly_the_contract_schema(result: EndpointsResult) -> None:
    assert result.analysis_table.schema == pl.Schema(protocol.load("goldinger2022").analysis_schema())
    assert result.analysis_table["patient_id"].is_sorted()


@pytest.mark.parametrize(
    ("pid", "pfs_days", "pfs_event"),
    [
        ("t:pd_scan", 91, 1),
        ("t:death_first", 150, 1),
        ("t:censor_evaluable", 100, 0),  # last evaluable (CR/PR/SD) assessment, not the NE one
        ("t:no_scans", 0, 0),  # nothing evaluable: censored at the index
        ("t:progression_free", 200, 0),
        ("t:responder", 120, 1),
        ("t:responder_censored", 90, 0),
    ],
)
def test_pfs(result: EndpointsResult, pid: str, pfs_days: int, pfs_event: int) -> None:
    got = row(result, pid)
    assert got["pfs_months"] == pytest.approx(months(pfs_days), abs=1e-12)
    assert got["pfs_event"] == pfs_event


@pytest.mark.parametrize(
    ("pid", "os_days", "os_event"),
    [
        ("t:death_first", 150, 1),
        ("t:censor_evaluable", 300, 0),  # the latest of two last contacts
        ("t:no_contact", 50, 0),  # no last contact: the latest record, said so in the trace
        ("t:pd_scan", 400, 0),
    ],
)
def test_os(result: EndpointsResult, pid: str, os_days: int, os_event: int) -> None:
    got = row(result, pid)
    assert got["os_months"] == pytest.approx(months(os_days), abs=1e-12)
    assert got["os_event"] == os_event


def test_no_last_contact_is_visible_in_the_explanation(result: EndpointsResult) -> None:
    assert "no last contact recorded" in result.explain("t:no_contact")


def test_duration_of_response(result: EndpointsResult) -> None:
    responder = row(result, "t:responder")
    assert responder["duration_of_response_months"] == pytest.approx(months(60), abs=1e-12)
    assert responder["duration_of_response_event"] == 1
    censored = row(result, "t:responder_censored")
    assert censored["duration_of_response_months"] == pytest.approx(months(60), abs=1e-12)
    assert censored["duration_of_response_event"] == 0
    assert row(result, "t:pd_scan")["duration_of_response_months"] is None


def test_baseline_values(result: EndpointsResult) -> None:
    default = row(result, "t:pd_scan")
    assert default["age_years"] == pytest.approx((INDEX - dt.date(1950, 7, 1)).days / 365.25, abs=1e-12)
    assert default["ldh_ratio"] == pytest.approx(1.2) and default["ldh_elevated"] is True
    assert default["chemo_duration_weeks"] == pytest.approx(60 / 7)
    assert default["prior_ici_class"] == "anti_ctla4" and default["prior_anti_pd1"] is False
    assert default["regimen_class"] == "dacarbazine" and default["regimen_ingredients"] == "dacarbazine"
    reported = row(result, "b:reported_age")
    assert reported["age_years"] == 61.5 and reported["m1c_or_worse"] is True
    assert reported["ldh_ratio"] is None and reported["ldh_elevated"] is None
    m1b = row(result, "b:m1b")
    assert m1b["m1c_or_worse"] is False and m1b["ldh_elevated"] is False
    flag_only = row(result, "b:ldh_flag_only")
    assert flag_only["ldh_ratio"] is None and flag_only["ldh_elevated"] is True
    overruled = row(result, "b:ldh_flag_overruled")
    assert overruled["ldh_ratio"] == pytest.approx(0.8) and overruled["ldh_elevated"] is False
    combined = row(result, "b:unknown_m")
    assert combined["m1c_or_worse"] is None
    assert combined["regimen_class"] == "carboplatin_paclitaxel"
    assert combined["regimen_ingredients"] == "carboplatin+paclitaxel+trametinib"
    assert combined["combined_with_targeted_or_immuno"] is True
    assert combined["chemo_duration_weeks"] == 0.0
    assert row(result, "p:pd1")["prior_ici_class"] == "anti_pd1"
    assert row(result, "p:both")["prior_ici_class"] == "anti_pd1_ctla4"
    assert row(result, "p:both")["prior_anti_pd1"] is True


@pytest.mark.parametrize(
    ("pid", "klass", "response"),
    [
        ("s:pd1", "pd1_with_or_without_ipilimumab", "PR"),
        ("s:ipi", "ipilimumab_alone", "NE"),
        ("s:targeted", "targeted", "NE"),
        ("s:other", "other", "NE"),
        ("s:ici_after_other", "ici_after_other", "SD"),
        ("t:pd_scan", None, None),
    ],
)
def test_subsequent_therapy(result: EndpointsResult, pid: str, klass: str | None, response: str | None) -> None:
    got = row(result, pid)
    assert got["subsequent_therapy"] is (klass is not None)
    assert got["subsequent_therapy_class"] == klass
    assert got["subsequent_best_response"] == response
    assert got["subsequent_responder"] == (None if response is None else response in ("CR", "PR"))


def test_pfs_censored_at_last_contact_when_the_protocol_says_so() -> None:
    s = Study()
    s.eligible("x:1", last_contact=300)
    s.scan("x:1", days(INDEX, 50), "SD")
    _, result = run_study(s, load_protocol(endpoints={"pfs_censoring": "last_contact"}))
    got = row(result, "x:1")
    assert got["pfs_months"] == pytest.approx(months(300)) and got["pfs_event"] == 0


def test_explain_names_the_records_and_round_trips(result: EndpointsResult, tmp_path) -> None:
    text = result.explain("t:pd_scan")
    assert "index date 2014-01-01" in text
    assert "t/assessments.csv" in text and "t/treatments.csv" in text and "t/followup.csv" in text
    back = EndpointsResult.read(result.write(tmp_path / "endpoints"))
    assert back.analysis_table.equals(result.analysis_table) and back.trace.equals(result.trace)
    assert back.explain("t:pd_scan") == text
    with pytest.raises(InputError, match="not in the analysis set"):
        back.explain("t:nobody")


def test_death_is_no_pfs_event_when_the_protocol_counts_progression_only() -> None:
    s = Study()
    s.eligible("x:1")
    s.scan("x:1", days(INDEX, 50), "SD")
    s.event("x:1", "death", days(INDEX, 120))
    s.eligible("x:2")
    s.event("x:2", "death", days(INDEX, 100))
    s.event("x:2", "progression", days(INDEX, 90))
    # (a study that counts progression only has no death-without-progression competing event)
    _, result = run_study(s, load_protocol(endpoints={"pfs_death_is_event": False}, competing_risks=[]))
    assert (row(result, "x:1")["pfs_months"], row(result, "x:1")["pfs_event"]) == (months(50), 0)
    assert row(result, "x:1")["os_event"] == 1
    assert (row(result, "x:2")["pfs_months"], row(result, "x:2")["pfs_event"]) == (months(90), 1)
