"""A report of two competing-risks analyses (issue 15): progression with death competing and time
to subsequent therapy with death competing, by different groupings. Each has its own section,
figure (files named after the analysis) and tables, titled apart; the CSV tables hold both under
their names; the shareable version reads both analyses' curves at fixed times."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from report_helpers import attrition_for, hostile_table, protocol_with_splits

import oncorwe.analysis as analysis
import oncorwe.report as report

NAMES = ("subsequent_therapy_by_arm", "progression_by_ldh")
TITLES = ("Competing risks: Subsequent therapy and death before subsequent therapy, by arm",
          "Competing risks: Progression and death without progression, by LDH above upper limit of normal")


def _two_analyses_result() -> analysis.AnalysisResult:
    # 40 patients die without progression (PFS = OS, both events), so that death competes with progression
    table = hostile_table()
    first = pl.int_range(pl.len()) < 40
    table = table.with_columns(
        os_months=pl.when(first).then(pl.col("pfs_months")).otherwise(pl.col("os_months")),
        os_event=pl.when(first).then(pl.lit(1, dtype=pl.Int8)).otherwise(pl.col("os_event")),
        pfs_event=pl.when(first).then(pl.lit(1, dtype=pl.Int8)).otherwise(pl.col("pfs_event")))
    data = protocol_with_splits().to_dict()
    data["competing_risks"].append({"name": "progression_by_ldh", "event": "progression", "competing_event": "death",
                                    "by": "ldh_elevated", "times_months": [6, 12]})
    from oncorwe import protocol

    return analysis.run(table, protocol.from_data(data), attrition=attrition_for(table))


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    result = _two_analyses_result()
    folder = tmp_path_factory.mktemp("competing")
    full = report.run(result, folder / "full", provenance={"seed": 7}, workers=1).parent
    shareable = report.run(result, folder / "shareable", shareable=True, provenance={"seed": 7}, workers=1).parent
    return full, shareable


def _section(html: str, key: str) -> str:
    match = re.search(f'<section id="{key}">(.*?)</section>', html, flags=re.S)
    assert match is not None, key
    return match.group(1)


@pytest.mark.parametrize("which", [0, 1])
def test_each_analysis_has_its_section_figure_and_tables(two_reports: tuple[Path, Path], which: int) -> None:
    for folder in two_reports:
        html = (folder / "report.html").read_text(encoding="utf-8")
        sections = re.findall(r'<section id="(competing_[a-z_]+)">', html)
        assert sections == [f"competing_{n}" for n in NAMES]  # in the protocol's order
        name = NAMES[which]
        section = _section(html, f"competing_{name}")
        assert f"<h2>{TITLES[which]}</h2>" in section
        assert section.count(f'id="figure-competing_incidence_{name}"') == 1
        for table in ("competing_incidence", "competing_tests", "competing_fine_gray"):
            assert section.count(f'id="table-{table}_{name}"') == 1, (folder.name, table)
        for ext in ("png", "svg", "pdf"):
            assert (folder / "figures" / f"competing_incidence_{name}.{ext}").stat().st_size > 5_000


def test_every_caption_and_title_is_distinct(two_reports: tuple[Path, Path]) -> None:
    for folder in two_reports:
        html = (folder / "report.html").read_text(encoding="utf-8")
        captions = [re.sub(r"<span.*?</span>", "", c).strip()
                    for c in re.findall(r"<figcaption>(.*?)</figcaption>", html, flags=re.S)]
        competing = [c for c in captions if "ncidence" in c or "Gray" in c or "Fine-Gray" in c]
        assert len(competing) == 8  # per analysis: a figure and three tables
        assert len(set(competing)) == len(competing), competing
        ids = re.findall(r' id="([^"]+)"', html)
        assert len(set(ids)) == len(ids)
        assert html.count("<p>Competing risks: the cumulative incidence of") == 2  # Methods: a sentence each


def test_the_csv_tables_hold_both_analyses(two_reports: tuple[Path, Path]) -> None:
    for folder in two_reports:
        for table in ("competing_curves", "competing_incidence", "competing_tests", "competing_fine_gray"):
            frame = pl.read_csv(folder / "tables" / f"{table}.csv", infer_schema_length=None)
            assert frame.columns[0] == "analysis", table
            assert frame["analysis"].unique(maintain_order=True).to_list() == list(NAMES), (folder.name, table)
    curves = pl.read_csv(two_reports[1] / "tables" / "competing_curves.csv")
    assert curves["n_risk"].min() >= 5 and "n_event" not in curves.columns
    per_analysis = curves.group_by("analysis", "endpoint", "group").agg(pl.col("time").is_duplicated().any())
    assert not per_analysis["time"].any()  # one reading per time for each curve of each analysis
