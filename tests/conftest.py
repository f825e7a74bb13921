"""Shared fixtures: the vendored test data (tests/data), the synthetic study (generated once per
session), the PostgreSQL server that .ci/run starts, and the Chromium that report tests drive.

Everything the tests read lives inside the checkout: no path outside it, no environment variable
naming a data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/rsupport.py importable

#: Public data vendored with the tests, each folder with a README naming source, licence and sha256.
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def liu2019_dir() -> Path:
    """The Liu 2019 cohort in its two published encodings (tests/data/liu2019/README.md)."""
    return DATA / "liu2019"


@pytest.fixture(scope="session")
def omop_vocab_dir() -> Path:
    """The curated OMOP concept list the synthetic OMOP centres are checked against."""
    return DATA / "omop_vocab"


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic Goldinger study (default seed and size), generated once per session."""
    from oncorwe.synth import generate_study

    out = tmp_path_factory.mktemp("synthetic") / "goldinger2022"
    generate_study("goldinger2022", out)
    return out


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """The PostgreSQL server .ci/run starts on loopback (override with ONCORWE_TEST_PG)."""
    return os.environ.get("ONCORWE_TEST_PG", "postgres://oncorwe:oncorwe@127.0.0.1:5432/oncorwe_test")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("ONCORWE_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        raise RuntimeError(f"Chromium not found at {path}: apt-get install -y chromium")
    return path
