"""Fixtures of the report tests: an analysis result of the fake 463-patient table, with a centre and
a drug whose names are HTML, and its report (made once per test run)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from once import produce_once
from report_helpers import PROGRESSION_LABEL, attrition_for, hostile_table, protocol_with_splits

import oncorwe.analysis as analysis
import oncorwe.report as report


@pytest.fixture(scope="session")
def report_table() -> pl.DataFrame:
    return hostile_table()


@pytest.fixture(scope="session")
def report_result(report_table: pl.DataFrame) -> analysis.AnalysisResult:
    return analysis.run(report_table,
                        protocol_with_splits("regimen_class", "responder",
                                             labels={"no_progression_on_ici": PROGRESSION_LABEL}),
                        attrition=attrition_for(report_table))


@pytest.fixture(scope="session")
def report_dir(report_result: analysis.AnalysisResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    def make(folder: Path) -> None:
        path = report.run(report_result, folder / "oncorwe-report", provenance={"seed": 7})
        assert path == folder / "oncorwe-report" / "report.html"

    return produce_once(tmp_path_factory, "report-fixture", make) / "oncorwe-report"
