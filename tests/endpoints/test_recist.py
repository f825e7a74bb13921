"""RECIST 1.1 best overall response (section 4.4) on hand-built patients, without and with
confirmation. Index date 2014-01-01 for everyone; days below are days after the index."""

from __future__ import annotations

import pytest
from canonical_builder import DEFAULT_INDEX, Study, days, load_protocol, row, run_study

from oncorwe.endpoints import EndpointsResult

INDEX = DEFAULT_INDEX


def scans(study: Study, pid: str, *points: tuple[int, str], **values: object) -> None:
    study.eligible(pid, **values)
    for day, response in points:
        study.scan(pid, days(INDEX, day), response)


# Without confirmation (the protocol default).
S = Study()
scans(S, "r:cr", (40, "PR"), (90, "CR"))
scans(S, "r:pr", (30, "SD"), (60, "PR"))
scans(S, "r:sd42", (42, "SD"))
scans(S, "r:sd41", (41, "SD"))
scans(S, "r:pr_early_counts", (20, "PR"))  # CR/PR need no minimum interval
scans(S, "r:sd41_then_pd", (41, "SD"), (80, "PD"))
scans(S, "r:ne_only", (40, "NE"), (90, "NE"))
scans(S, "r:no_scan")
scans(S, "r:pd_first", (30, "PD"), (60, "PR"))  # responses after the first PD do not count
scans(S, "r:scan_on_index", (0, "PR"))  # not after the index date
scans(S, "r:event_only")
S.event("r:event_only", "progression", days(INDEX, 70))
scans(S, "r:new_line", (50, "SD"), (120, "PR"), chemo_days=30)
S.drug("r:new_line", "temozolomide", days(INDEX, 100), days(INDEX, 160))
scans(S, "r:reported")
S.scan("r:reported", None, "PR", kind="best_overall")
scans(S, "r:reported_but_scans", (50, "SD"))
S.scan("r:reported_but_scans", None, "PR", kind="best_overall")

EXPECTED = {
    "r:cr": "CR", "r:pr": "PR", "r:sd42": "SD", "r:sd41": "NE", "r:pr_early_counts": "PR",
    "r:sd41_then_pd": "PD", "r:ne_only": "NE", "r:no_scan": "NE", "r:pd_first": "PD",
    "r:scan_on_index": "NE", "r:event_only": "PD", "r:new_line": "SD", "r:reported": "PR",
    "r:reported_but_scans": "SD",
}

# With confirmation (repeat CR/PR at least 28 days later).
K = Study()
scans(K, "k:pr_confirmed", (50, "PR"), (78, "PR"))
scans(K, "k:pr_then_cr", (50, "PR"), (80, "CR"))
scans(K, "k:pr_27_days_sd", (50, "PR"), (77, "PR"))
scans(K, "k:pr_early_ne", (30, "PR"))
scans(K, "k:pr_then_pd", (30, "PR"), (60, "PD"))
scans(K, "k:cr_confirmed", (50, "CR"), (80, "CR"))
scans(K, "k:cr_then_pr", (50, "CR"), (80, "PR"))
scans(K, "k:cr_unconfirmed_sd", (50, "CR"))

EXPECTED_CONFIRMED = {
    "k:pr_confirmed": "PR", "k:pr_then_cr": "PR", "k:pr_27_days_sd": "SD", "k:pr_early_ne": "NE",
    "k:pr_then_pd": "PD", "k:cr_confirmed": "CR", "k:cr_then_pr": "PR", "k:cr_unconfirmed_sd": "SD",
}


@pytest.fixture(scope="module")
def unconfirmed() -> EndpointsResult:
    return run_study(S)[1]


@pytest.fixture(scope="module")
def confirmed() -> EndpointsResult:
    return run_study(K, load_protocol(response={"confirmation": True}))[1]


@pytest.mark.parametrize("pid", sorted(EXPECTED))
def test_best_overall_response_without_confirmation(unconfirmed: EndpointsResult, pid: str) -> None:
    got = row(unconfirmed, pid)
    assert got["best_response"] == EXPECTED[pid]
    assert got["responder"] == (EXPECTED[pid] in ("CR", "PR"))
    assert got["disease_control"] == (EXPECTED[pid] in ("CR", "PR", "SD"))


@pytest.mark.parametrize("pid", sorted(EXPECTED_CONFIRMED))
def test_best_overall_response_with_confirmation(confirmed: EndpointsResult, pid: str) -> None:
    assert row(confirmed, pid)["best_response"] == EXPECTED_CONFIRMED[pid]


def test_reported_best_response_is_used_only_without_scans_and_says_so(unconfirmed: EndpointsResult) -> None:
    assert row(unconfirmed, "r:reported")["best_response_source"] == "reported"
    assert row(unconfirmed, "r:reported_but_scans")["best_response_source"] == "derived"
    assert row(unconfirmed, "r:cr")["best_response_source"] == "derived"
    # a reported response without a date has no start for a duration of response
    assert row(unconfirmed, "r:reported")["duration_of_response_months"] is None


def test_response_after_a_new_line_counts_for_the_subsequent_line(unconfirmed: EndpointsResult) -> None:
    got = row(unconfirmed, "r:new_line")
    assert got["subsequent_therapy"] and got["subsequent_therapy_class"] == "other"
    assert got["subsequent_best_response"] == "PR" and got["subsequent_responder"]


def test_response_counts_match_the_expected_table(unconfirmed: EndpointsResult) -> None:
    counts = dict(unconfirmed.analysis_table["best_response"].value_counts().iter_rows())
    expected: dict[str, int] = {}
    for response in EXPECTED.values():
        expected[response] = expected.get(response, 0) + 1
    assert counts == expected
