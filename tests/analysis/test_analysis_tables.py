"""Analysis tables worked out by hand from the per-patient table, and the stage's input errors."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from fake_analysis_table import fake_analysis_table

import oncorwe.analysis as analysis
from oncorwe import protocol
from oncorwe.analysis._table1 import Table1Variable
from oncorwe.errors import InputError, ProtocolError
from oncorwe.model.schema import DAYS_PER_MONTH


def test_every_table_is_made(result: analysis.AnalysisResult) -> None:
    for name in analysis.TABLE_NAMES:
        if name in ("attrition", "reconciliation", "quarantine_summary"):
            assert result[name].height == 0  # not passed in
        else:
            assert result[name].height > 0, name
    assert result.info["n_patients"] == 463 and result.info["n_centres"] == 24


def test_response_counts_by_hand(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    overall = {r["category"]: r for r in result["response"].filter(pl.col("group_var") == "overall").iter_rows(named=True)}
    counts = table["best_response"].value_counts()
    count = dict(zip(counts["best_response"].to_list(), counts["count"].to_list(), strict=True))
    assert overall["CR"]["n"] == count["CR"] == 2
    assert overall["ORR"]["n"] == count["CR"] + count["PR"] == 58
    assert overall["DCR"]["n"] == count["CR"] + count["PR"] + count["SD"]
    assert overall["PD_NE"]["n"] == count["PD"] + count["NE"]
    assert sum(overall[c]["n"] for c in ("CR", "PR", "SD", "PD", "NE")) == 463
    assert math.isclose(overall["ORR"]["percent"], 100 * 58 / 463)
    # By regimen the denominators are the regimen's patients, and they add up to all patients.
    by = result["response"].filter((pl.col("group_var") == "regimen_class") & (pl.col("category") == "ORR"))
    assert by["denominator"].sum() == 463 and by["n"].sum() == 58
    taxane = by.filter(pl.col("group") == "taxane").row(0, named=True)
    assert (taxane["n"], taxane["denominator"], taxane["percent"]) == (10, 40, 25.0)
    # Subgroups of the survival splits get their response rows too (prior anti-PD-1 ORR).
    assert result["response"].filter(pl.col("group_var") == "prior_anti_pd1").height == 16


def test_table1_counts_missing_and_smd(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    t1 = result["table1"]
    ecog = t1.filter((pl.col("variable") == "ecog") & (pl.col("group_var") == "overall"))
    missing = ecog.filter(pl.col("row_kind") == "missing").row(0, named=True)
    assert missing["n"] == table["ecog"].null_count() > 0
    levels = ecog.filter(pl.col("row_kind") == "level")
    assert levels["n"].sum() + missing["n"] == 463
    assert math.isclose(levels["percent"].sum(), 100.0)
    braf = t1.filter((pl.col("variable") == "braf_v600") & (pl.col("group_var") == "overall") & (pl.col("level") == "yes")).row(0, named=True)
    assert braf["n"] == int(table["braf_v600"].sum())
    assert math.isclose(braf["percent_all"], 100 * braf["n"] / 463)
    assert math.isclose(braf["percent"], 100 * braf["n"] / (463 - table["braf_v600"].null_count()))
    age = t1.filter((pl.col("variable") == "age_years") & (pl.col("group_var") == "overall")
                    & (pl.col("row_kind") == "continuous")).row(0, named=True)
    assert math.isclose(age["median"], float(np.median(table["age_years"].to_numpy())))
    # The grouping variable appears in the overall column only.
    assert t1.filter((pl.col("variable") == "regimen_class") & (pl.col("group_var") != "overall")).height == 0


def test_smd_two_groups_by_hand() -> None:
    frame = pl.DataFrame({
        "sex": ["male"] * 6 + ["female"] * 4 + ["male"] * 3 + ["female"] * 7,
        "age_years": [50.0, 60, 70, 55, 65, 75, 52, 58, 61, 66, 40, 45, 50, 55, 60, 48, 52, 58, 47, 51],
        "arm": ["a"] * 10 + ["b"] * 10,
    })
    smd = {r["variable"]: r["smd"] for r in analysis.smd_table(frame, by="arm", variables=[
        Table1Variable("age_years", "Age", continuous=True), Table1Variable("sex", "Sex")]).iter_rows(named=True)}
    p, q = 0.4, 0.7  # female share in a, b ("female" sorts first, so the SMD is on "male")
    expected_sex = abs((1 - p) - (1 - q)) / math.sqrt((p * (1 - p) + q * (1 - q)) / 2)
    assert math.isclose(smd["sex"], expected_sex, rel_tol=1e-12)
    a, b = np.array(frame["age_years"][:10]), np.array(frame["age_years"][10:])
    expected_age = abs(a.mean() - b.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert math.isclose(smd["age_years"], expected_age, rel_tol=1e-12)


def test_landmark_by_hand(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    rows = {r["analysis"]: r for r in result["landmark"].iter_rows(named=True)}
    landmark_months = 12 * 7 / DAYS_PER_MONTH
    assert math.isclose(rows["landmark"]["landmark_months"], landmark_months)
    response_months = table["pfs_months"] - table["duration_of_response_months"]
    kept = table.filter(table["os_months"] > landmark_months)
    responded = (kept["responder"] & ((kept["pfs_months"] - kept["duration_of_response_months"]) <= landmark_months)).fill_null(False)
    assert rows["landmark"]["n"] == kept.height
    assert rows["landmark"]["n_excluded"] == 463 - kept.height
    assert rows["landmark"]["n_responders"] == int(responded.sum())
    assert rows["naive"]["n_responders"] == 58 and rows["naive"]["n"] == 463
    # Some responders of the naive comparison responded after the landmark: they count as non-responders.
    assert rows["landmark"]["n_responders"] < 58
    assert response_months.filter(table["responder"]).null_count() == 0
    # Guarantee-time bias: the naive hazard ratio favours responders more than the landmark one.
    assert rows["naive"]["hazard_ratio"] < rows["landmark"]["hazard_ratio"] < 1


def test_subsequent_by_hand(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    sub = {r["therapy_class"]: r for r in result["subsequent"].iter_rows(named=True)}
    assert sub["any"]["n"] == int(table["subsequent_therapy"].sum())
    ici = table.filter(pl.col("subsequent_therapy_class").is_in(
        ["pd1_with_or_without_ipilimumab", "ipilimumab_alone", "ici_after_other"]))
    assert sub["any_ici"]["n"] == ici.height
    assert sub["any_ici"]["responders"] == int(ici["subsequent_responder"].sum())


def test_chemo_duration_median_and_range(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    row = result["descriptives"].filter(pl.col("measure") == "chemo_duration_weeks").row(0, named=True)
    weeks = table["chemo_duration_weeks"].to_numpy()
    assert (row["value"], row["minimum"], row["maximum"]) == (float(np.median(weeks)), weeks.min(), weeks.max())


def test_result_round_trip(result: analysis.AnalysisResult, tmp_path: Path) -> None:
    back = analysis.AnalysisResult.read(result.write(tmp_path / "res"))
    assert dict(back.info) == dict(result.info)
    for name in analysis.TABLE_NAMES:
        assert back[name].equals(result[name]), name


def test_missing_times_are_counted_not_dropped_silently(goldinger_protocol: object) -> None:
    table = fake_analysis_table().with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("pfs_months")).alias("pfs_months"))
    res = analysis.run(table, goldinger_protocol)
    row = res["survival_summary"].filter((pl.col("endpoint") == "pfs") & (pl.col("group_var") == "overall")).row(0, named=True)
    assert (row["n"], row["n_missing"]) == (460, 3)


def test_input_errors_name_the_problem(goldinger_protocol: object) -> None:
    table = fake_analysis_table()
    with pytest.raises(InputError, match="no patients"):
        analysis.run(table.head(0), goldinger_protocol)
    with pytest.raises(InputError, match="best_response"):
        analysis.run(table.drop("best_response"), goldinger_protocol)
    with pytest.raises(InputError, match="not unique"):
        analysis.run(pl.concat([table, table.head(1)]), goldinger_protocol)
    with pytest.raises(InputError, match="m_stage"):  # a covariate the protocol's Table 1 lists
        analysis.run(table.drop("m_stage"), goldinger_protocol)
    with pytest.raises(InputError, match="Protocol"):
        analysis.run(table, SimpleNamespace(analysis=None))  # a protocol-shaped object is not a protocol
    data = protocol.load("goldinger2022").to_dict()
    del data["analysis"]["landmark_weeks"]
    with pytest.raises(ProtocolError, match=r"analysis\.landmark_weeks: required key is missing"):
        protocol.from_data(data)


def test_logrank_equals_the_test_on_the_group_names(result: analysis.AnalysisResult, table: pl.DataFrame) -> None:
    """The analysis hands the log-rank test level codes, not a string per patient: the statistics
    must be exactly those of the test run on the group names (same groups, same order)."""
    from oncorwe import stats

    rows = result["logrank"].rows(named=True)
    assert rows
    for row in rows:
        time, event = {"pfs": ("pfs_months", "pfs_event"), "os": ("os_months", "os_event")}[row["endpoint"]]
        usable = table.filter(pl.col(time).is_not_null() & pl.col(row["group_var"]).is_not_null())
        names = usable[row["group_var"]]
        names = names.replace_strict({True: "yes", False: "no"}) if names.dtype == pl.Boolean else names
        expected = stats.logrank_test(usable[time].to_numpy(), usable[event].to_numpy(), names.cast(pl.String).to_numpy())
        assert (row["statistic"], row["df"], row["p_value"]) == (expected.statistic, expected.df, expected.p_value)
