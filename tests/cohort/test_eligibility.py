"""Eligibility in protocol order, the ICI failure and index, attrition overall and per centre."""

from __future__ import annotations

import polars as pl
import pytest
from canonical_builder import D, Study, days, load_protocol, run_study

from oncorwe import cohort, protocol
from oncorwe.cohort import CohortResult
from oncorwe.errors import DataError, InputError
from oncorwe.model import store
from oncorwe.model.schema import ATTRITION_SCHEMA

S = Study()
INDEX = D(2014, 1, 1)

S.eligible("a:ok")
S.eligible("a:stage3", stage="III")  # also fails nothing else: stage is the reason
S.eligible("a:nostage", stage=None)
S.eligible("a:stage3u", stage="III_unresectable")
# Failing several criteria: the first in protocol order is the reason.
S.patient("a:stage_and_nochemo", stage="II")
S.drug("a:stage_and_nochemo", "nivolumab", D(2014, 1, 1), D(2014, 6, 1))
S.patient("b:nochemo")
S.drug("b:nochemo", "nivolumab", D(2014, 1, 1), D(2014, 6, 1))
S.scan("b:nochemo", D(2014, 5, 1), "PD")
S.patient("b:chemo_first")  # chemotherapy only before the ICI
S.drug("b:chemo_first", "dacarbazine", D(2013, 1, 1), D(2013, 3, 1))
S.drug("b:chemo_first", "ipilimumab", D(2013, 6, 1), D(2013, 9, 1))
S.scan("b:chemo_first", D(2013, 10, 1), "PD")
S.patient("b:same_line")  # chemo combined with the ICI in one line: no ICI *before* chemotherapy
S.drug("b:same_line", "ipilimumab", D(2013, 6, 1), D(2013, 9, 1))
S.drug("b:same_line", "dacarbazine", D(2013, 6, 1), D(2013, 9, 1))
# Progression window: PD 90 days after the ICI end counts, 91 days does not.
for pid, offset in (("b:pd90", 90), ("b:pd91", 91)):
    S.patient(pid)
    S.drug(pid, "ipilimumab", D(2013, 1, 1), D(2013, 3, 1))
    S.scan(pid, days(D(2013, 3, 1), offset), "PD")
    S.drug(pid, "temozolomide", D(2013, 9, 1), D(2013, 10, 1))
# Progression after the chemotherapy started does not make an ICI failure.
S.patient("b:pd_after_chemo")
S.drug("b:pd_after_chemo", "nivolumab", D(2013, 1, 1), D(2013, 6, 1))
S.drug("b:pd_after_chemo", "dacarbazine", D(2013, 5, 1), D(2013, 7, 1))
S.scan("b:pd_after_chemo", D(2013, 5, 10), "PD")
# A progression event (no scan) counts, and PD before the ICI started does not.
S.patient("c:event")
S.drug("c:event", "pembrolizumab", D(2015, 1, 1), D(2015, 4, 1))
S.event("c:event", "progression", D(2015, 3, 20))
S.drug("c:event", "paclitaxel", D(2015, 5, 1), D(2015, 6, 1))
S.patient("c:pd_before_ici")
S.scan("c:pd_before_ici", D(2014, 12, 1), "PD")
S.drug("c:pd_before_ici", "pembrolizumab", D(2015, 1, 1), D(2015, 4, 1))
S.drug("c:pd_before_ici", "paclitaxel", D(2015, 5, 1), D(2015, 6, 1))
# Index = the first chemotherapy after the ICI failure, not an earlier chemotherapy.
S.patient("c:second_chemo")
S.drug("c:second_chemo", "dacarbazine", D(2012, 1, 1), D(2012, 3, 1))
S.drug("c:second_chemo", "ipilimumab", D(2012, 8, 1), D(2012, 10, 1))
S.scan("c:second_chemo", D(2012, 11, 1), "PD")
S.drug("c:second_chemo", "temozolomide", D(2013, 1, 1), D(2013, 3, 1))
S.drug("c:second_chemo", "fotemustine", D(2013, 9, 1), D(2013, 10, 1))
# Calendar window edges.
for pid, index in (("d:first_day", D(2007, 1, 1)), ("d:before", D(2006, 12, 31)),
                   ("d:last_day", D(2017, 12, 31)), ("d:after", D(2018, 1, 1))):
    S.eligible(pid, index=index)
# Duplicates: merged records are excluded first (they are not in the canonical tables).
S.merges.append({"kept_patient_id": "a:ok", "merged_patient_id": "d:dup", "rule": "same person"})

EXPECTED = {
    "a:ok": None, "a:stage3": "not_stage_iv_unresectable", "a:nostage": "not_stage_iv_unresectable",
    "a:stage3u": None, "a:stage_and_nochemo": "not_stage_iv_unresectable", "b:nochemo": "no_chemotherapy",
    "b:chemo_first": "no_ici_before_chemotherapy", "b:same_line": "no_ici_before_chemotherapy",
    "b:pd90": None, "b:pd91": "no_progression_on_ici", "b:pd_after_chemo": "no_progression_on_ici",
    "c:event": None, "c:pd_before_ici": "no_progression_on_ici", "c:second_chemo": None,
    "d:first_day": None, "d:before": "chemotherapy_outside_window", "d:last_day": None,
    "d:after": "chemotherapy_outside_window", "d:dup": "duplicate_referral",
}


@pytest.fixture(scope="module")
def result() -> CohortResult:
    cohort_result, _ = run_study(S)
    return cohort_result


def test_each_patient_is_excluded_for_the_first_criterion_failed(result: CohortResult) -> None:
    got = dict(result.exclusions.select("patient_id", "reason").iter_rows())
    got.update(dict.fromkeys(result.index["patient_id"].to_list()))
    assert got == EXPECTED
    assert result.exclusions.filter(pl.col("patient_id") == "d:dup")["centre_id"].to_list() == ["d"]


def test_index_is_the_first_chemotherapy_after_the_ici_failure(result: CohortResult) -> None:
    index = {r["patient_id"]: r for r in result.index.to_dicts()}
    assert index["c:second_chemo"]["index_date"] == D(2013, 1, 1)
    assert index["c:second_chemo"]["index_line"] == 3 and index["c:second_chemo"]["prior_line"] == 2
    assert index["c:second_chemo"]["prior_failure_date"] == D(2012, 11, 1)
    assert index["c:event"]["prior_failure_date"] == D(2015, 3, 20)
    assert "followup.csv" in index["c:event"]["prior_failure_sources"]
    assert index["a:ok"]["index_date"] == INDEX


def test_attrition_counts_add_up_overall_and_per_centre(result: CohortResult) -> None:
    att = result.attrition
    assert att.schema == pl.Schema(ATTRITION_SCHEMA)
    overall = att.filter(pl.col("centre_id").is_null()).sort("step")
    assert overall["criterion"].to_list() == ["source_records", *protocol.load("goldinger2022").criterion_ids]
    assert overall["n_before"][0] == len(EXPECTED)
    reasons = pl.Series([r for r in EXPECTED.values() if r]).value_counts()
    expected_excluded = dict(reasons.iter_rows())
    for step in overall.iter_rows(named=True):
        assert step["n_after"] == step["n_before"] - step["n_excluded"]
        assert step["n_excluded"] == expected_excluded.get(step["criterion"], 0)
    assert overall["n_after"][-1] == result.index.height == sum(r is None for r in EXPECTED.values())
    # per centre rows sum to the overall rows at every step
    per_centre = att.filter(pl.col("centre_id").is_not_null()).group_by("step").agg(
        pl.col("n_excluded").sum(), pl.col("n_after").sum()
    ).sort("step")
    assert per_centre["n_excluded"].to_list() == overall["n_excluded"].to_list()
    assert per_centre["n_after"].to_list() == overall["n_after"].to_list()
    centre_b = att.filter(pl.col("centre_id") == "b").sort("step")
    assert centre_b["n_before"][0] == 6 and centre_b["n_after"][-1] == 1


def test_result_round_trips_through_files(result: CohortResult, tmp_path) -> None:
    back = CohortResult.read(result.write(tmp_path / "cohort"))
    for name in ("attrition", "exclusions", "lines", "index"):
        assert getattr(back, name).equals(getattr(result, name)), name
    assert back.protocol_name == "goldinger2022"
    text = back.explain("c:second_chemo")
    assert "index date 2013-01-01" in text and "c/treatments.csv" in text
    assert "excluded: no_progression_on_ici" in back.explain("b:pd91")
    with pytest.raises(InputError, match="nobody"):
        back.explain("x:nobody")


def test_a_protocol_criterion_order_changes_the_reason() -> None:
    s = Study()
    s.patient("a:1", stage="II")  # fails stage and has no chemotherapy
    proto = load_protocol(criteria=[
        "duplicate_referral", "no_chemotherapy", "not_stage_iv_unresectable", "no_ici_before_chemotherapy",
        "no_progression_on_ici", "chemotherapy_outside_window"])
    con = store.connect(None)
    store.write_model(con, s.model())
    got = cohort.run(con, proto)
    assert got.exclusions["reason"].to_list() == ["no_chemotherapy"]
    assert got.attrition.filter(pl.col("centre_id").is_null())["criterion"][1:3].to_list() == [
        "duplicate_referral", "no_chemotherapy"]


def test_bad_inputs_are_named() -> None:
    s = Study()
    s.patient("a:1")
    s.drug("a:1", "dacarbazine", None)  # type: ignore[arg-type]
    con = store.connect(None)
    store.write_model(con, s.model())
    with pytest.raises(DataError, match="without start_date"):
        cohort.run(con, protocol.load("goldinger2022"))
    with pytest.raises(InputError, match="protocol"):
        cohort.run(con, "goldinger2022")  # type: ignore[arg-type]
    merged_still_there = pl.DataFrame({"kept_patient_id": ["a:2"], "merged_patient_id": ["a:1"], "rule": ["x"]})
    s2 = Study()
    s2.patient("a:1")
    store.write_model(con, s2.model())
    with pytest.raises(DataError, match="a:1 is still in the patients table"):
        cohort.run(con, protocol.load("goldinger2022"), merges=merged_still_there)


def test_without_the_ici_failure_criterion_the_first_index_class_line_is_the_index() -> None:
    proto = load_protocol(
        criteria=["duplicate_referral"],
        index={"drug_class": "anti_pd1", "label": "the start of the first anti-PD-1 line", "prior_failure": None},
        regimen_classes=[{"name": "nivolumab", "label": "Nivolumab", "all_of": [["nivolumab"]], "only": True}],
        analysis={"cox_reference": {"prior_ici_class": "anti_ctla4", "sex": "female"}},
        # the flagship's adjusted comparison names its chemotherapy classes, which this study has not
        adjusted=None, competing_risks=[], imputation=None,
    )
    s = Study()
    s.patient("a:1")
    s.drug("a:1", "dacarbazine", D(2013, 1, 1), D(2013, 2, 1))
    s.drug("a:1", "nivolumab", D(2013, 6, 1), D(2013, 9, 1))
    con = store.connect(None)
    store.write_model(con, s.model())
    first = cohort.run(con, proto)
    got = first.index.row(0, named=True)
    assert (got["index_date"], got["index_line"], got["prior_line"]) == (D(2013, 6, 1), 2, None)
    flags = first.lines.sort("line_number").select("has_index_class", "drug_classes", "regimen_class").rows()
    assert flags == [(False, "chemotherapy", None), (True, "anti_pd1", "nivolumab")]
    s.patient("a:2")  # nothing to index on, and no criterion excludes them
    store.write_model(con, s.model())
    with pytest.raises(DataError, match=r"a:2 passes every criterion .* no anti_pd1 line"):
        cohort.run(con, proto)
