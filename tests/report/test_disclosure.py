"""Disclosure control from the one results spec (report/results_spec.toml): primary and
complementary suppression, no withheld count recoverable by an attacker who knows every relation
the spec declares, risk tables and curves in the OHDSI shareable form, estimates of small groups
and single patients' values withheld, undeclared columns dropped (fail closed)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe import pipeline
from oncorwe.analysis import TABLE_NAMES
from oncorwe.report import _with_centre_totals
from oncorwe.report._disclosure import (
    COMPLEMENTARY,
    disclose,
    recoverable_cells,
    results_spec,
    shareable_curves,
)

K = 5
CATEGORIES = ["CR", "PR", "SD", "PD", "NE"]


def _response(groups: dict[str, list[int]]) -> pl.DataFrame:
    """A response table as the analysis stage writes it: per group the five categories and the
    ORR, DCR and PD_NE rows, plus the overall margin."""
    rows = []

    def add(group_var: str, group: str, counts: list[int]) -> None:
        total = sum(counts)
        cat = dict(zip(CATEGORIES, counts, strict=True))
        derived = {"PD_NE": cat["PD"] + cat["NE"], "ORR": cat["CR"] + cat["PR"],
                   "DCR": cat["CR"] + cat["PR"] + cat["SD"]}
        for category, n in [*cat.items(), *derived.items()]:
            rows.append({"group_var": group_var, "group": group, "category": category, "n": n,
                         "denominator": total, "percent": 100 * n / total if total else None,
                         "lower": None, "upper": None})

    overall = [sum(c[i] for c in groups.values()) for i in range(len(CATEGORIES))]
    add("overall", "all", overall)
    for name, counts in groups.items():
        add("arm", name, counts)
    return pl.DataFrame(rows, schema_overrides={"lower": pl.Float64, "upper": pl.Float64})


def test_a_small_cr_cannot_be_recovered_from_the_orr_or_the_denominator() -> None:
    raw = {"response": _response({"a": [2, 28, 32, 139, 3], "b": [0, 28, 64, 162, 5]})}
    shown = disclose(raw, K).tables["response"]
    overall_cr = shown.filter((pl.col("group_var") == "overall") & (pl.col("category") == "CR")).row(0, named=True)
    assert overall_cr["n"] == "<5" and overall_cr["percent"] is None
    # CR = ORR - PR: one of them must be withheld as well
    a = dict(shown.filter(pl.col("group") == "a").select("category", "n").iter_rows())
    assert COMPLEMENTARY in (a["PR"], a["ORR"])
    assert recoverable_cells(raw, {"response": shown}, K) == []
    # nothing a reader sees is a count below the minimum
    assert not any(v in {"1", "2", "3", "4"} for v in shown["n"].to_list())


def test_without_withholding_the_attacker_recovers_the_cell() -> None:
    """The audit is not vacuous: printing "<5" but leaving the ORR and PR shown is caught."""
    raw = {"response": _response({"a": [2, 28, 32, 139, 3], "b": [0, 28, 64, 162, 5]})}
    naive = raw["response"].with_columns(
        pl.when(pl.col("n").is_between(1, K - 1)).then(pl.lit(f"<{K}")).otherwise(pl.col("n").cast(pl.String))
        .alias("n"))
    assert recoverable_cells(raw, {"response": naive}, K)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.integers(0, 40), min_size=5, max_size=5).filter(lambda c: sum(c) > 0),
                min_size=1, max_size=4))
def test_no_withheld_response_count_is_recoverable(arms: list[list[int]]) -> None:
    raw = {"response": _response({f"arm{i}": counts for i, counts in enumerate(arms)})}
    shown = disclose(raw, K).tables["response"]
    assert recoverable_cells(raw, {"response": shown}, K) == []
    assert not any(v in {"1", "2", "3", "4"} for v in shown["n"].to_list())


def test_reconciliation_quarantine_is_not_read_minus_accepted() -> None:
    per_file = pl.DataFrame({
        "centre_id": ["c1", "c1", "c2"], "file": ["a.csv", "b.csv", "x.csv"], "sheet": [None, None, None],
        "records_read": [40, 30, 50], "accepted": [37, 30, 45], "quarantined": [3, 0, 5], "merged": [0, 0, 0]},
        schema_overrides={"sheet": pl.String})
    raw = {"reconciliation": _with_centre_totals(per_file)}
    shown = disclose(raw, K).tables["reconciliation"]
    assert "<5" in shown["quarantined"].to_list()
    assert recoverable_cells(raw, {"reconciliation": shown}, K) == []


def test_shareable_curves_are_at_risk_numbers_at_fixed_times_only() -> None:
    time = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 6.5, 7.0, 9.0, 12.5]
    n_risk = [20, 19, 17, 15, 12, 10, 8, 6, 4, 2]
    curves = pl.DataFrame({"endpoint": "os", "group_var": "overall", "group": "all", "time": time,
                           "n_risk": n_risk, "n_event": 1, "n_censor": 0,
                           "survival": [1 - (i + 1) / 21 for i in range(10)], "se": 0.05,
                           "lower": 0.1, "upper": 0.9})
    out = shareable_curves(curves, K, times=[0, 3, 6, 9, 12])
    assert "n_event" not in out.columns and "n_censor" not in out.columns
    assert out["time"].to_list() == [0.0, 3.0, 6.0]  # at 9 only 4 remain at risk: the curve stops
    assert out["n_risk"].to_list() == [20, 10, 8]
    assert out["survival"].to_list()[0] == 1.0 and out["survival"].to_list()[1] == pytest.approx(1 - 5 / 21)


def test_shareable_curves_of_two_analyses_are_read_apart() -> None:
    # two competing-risks analyses with the same cause and group: one curve each, never one merged,
    # in the protocol's order (not sorted by name)
    curve = {"endpoint": "death", "group_var": "arm", "group": "combination", "time": [1.0, 4.0, 7.0],
             "n_risk": [30, 20, 10], "se": 0.05, "lower": 0.0, "upper": 0.5}
    curves = pl.concat([pl.DataFrame({"analysis": "subsequent", **curve, "incidence": [0.1, 0.2, 0.3]}),
                        pl.DataFrame({"analysis": "progression", **curve, "incidence": [0.2, 0.4, 0.6]})])
    out = shareable_curves(curves, K, times=[0, 3, 6])
    assert out["analysis"].to_list() == ["subsequent"] * 3 + ["progression"] * 3
    assert out["incidence"].to_list() == pytest.approx([0.0, 0.1, 0.2, 0.0, 0.2, 0.4])


def test_a_curve_table_the_run_did_not_make_stays_empty() -> None:
    # a combined (federated) result has no patient-level tables: they are frames without columns
    disclosed = disclose({"competing_curves": pl.DataFrame(), "adjusted_km": pl.DataFrame()}, K)
    assert disclosed.tables["competing_curves"].shape == (0, 0) and disclosed.tables["adjusted_km"].shape == (0, 0)


def test_every_table_the_analysis_writes_is_declared() -> None:
    spec = results_spec()
    assert set(TABLE_NAMES) <= set(spec.tables), set(TABLE_NAMES) - set(spec.tables)


def test_undeclared_columns_and_tables_leave_nothing() -> None:
    raw = {"response": _response({"a": [6, 28, 32, 139, 7]}).with_columns(patient_id=pl.lit("P-001")),
           "secret": pl.DataFrame({"patient_id": ["P-001"]})}
    disclosed = disclose(raw, K)
    assert "patient_id" not in disclosed.tables["response"].columns
    assert disclosed.tables["secret"].height == 0
    assert set(disclosed.undeclared) == {"response.patient_id", "secret.patient_id"}


@pytest.fixture(scope="module")
def shareable_run(synthetic_study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shareable") / "report"
    result = pipeline.run_study(protocol_ref="goldinger2022", data_dir=synthetic_study, out_dir=out,
                                shareable=True)
    raw = {name: result.analysis[name] for name in TABLE_NAMES}
    return out, raw


def test_the_flagship_shareable_report_hides_every_small_count(shareable_run: tuple[Path, dict]) -> None:
    out, _ = shareable_run
    spec = results_spec()
    for name in TABLE_NAMES:
        frame = pl.read_csv(out / "tables" / f"{name}.csv", infer_schema_length=None)
        for column in spec.counts(name):
            if column in frame.columns:
                values = frame[column].cast(pl.String).drop_nulls().to_list()
                assert not any(v in {"1", "2", "3", "4"} for v in values), (name, column)
    curves = pl.read_csv(out / "tables" / "survival_curves.csv")
    assert "n_event" not in curves.columns and "n_censor" not in curves.columns
    assert curves["n_risk"].min() >= K
    table1 = pl.read_csv(out / "tables" / "table1.csv", infer_schema_length=None)
    assert "minimum" not in table1.columns or table1["minimum"].drop_nulls().len() == 0
    # a published figure read from a withheld cell is withheld too (the paper's 2 complete responses)
    published = pl.read_csv(out / "tables" / "published.csv", infer_schema_length=None)
    cr = published.filter(pl.col("key").str.contains("cr_n"))
    assert cr.height and cr["reproduced_value"].drop_nulls().len() == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "&lt;5" in html


def test_no_withheld_count_of_the_flagship_is_recoverable(shareable_run: tuple[Path, dict]) -> None:
    _, raw = shareable_run
    raw = {**raw, "reconciliation": _with_centre_totals(raw["reconciliation"])}
    disclosed = disclose(raw, K)
    assert disclosed.undeclared == ()
    assert len(disclosed.withheld) > 0
    assert recoverable_cells(raw, disclosed.tables, K) == []
