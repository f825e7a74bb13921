"""Fixtures of the synth tests: the default study's truth and what its raw files say."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from synth_raw import RawPatient, read_study


@pytest.fixture(scope="session")
def truth(synthetic_study: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_study / "_truth" / "patients.csv", infer_schema_length=None)


@pytest.fixture(scope="session")
def eligible(truth: pl.DataFrame) -> pl.DataFrame:
    return truth.filter(pl.col("eligible"))


@pytest.fixture(scope="session")
def raw_study(synthetic_study: Path) -> dict[str, RawPatient]:
    return read_study(synthetic_study)
