"""Fixtures of the analysis tests: the fake analysis table and its analysis (made once per module)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_analysis_table import fake_analysis_table

import oncorwe.analysis as analysis
from oncorwe import protocol


@pytest.fixture(scope="session")
def goldinger_protocol() -> protocol.Protocol:
    return protocol.load("goldinger2022")


@pytest.fixture(scope="session")
def table() -> pl.DataFrame:
    return fake_analysis_table()


@pytest.fixture(scope="session")
def result(table: pl.DataFrame, goldinger_protocol: protocol.Protocol) -> analysis.AnalysisResult:
    return analysis.run(table, goldinger_protocol)
