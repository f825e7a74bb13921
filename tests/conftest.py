"""Shared fixtures: where the shared folder is, the synthetic study (generated once per session),
the PostgreSQL server that .ci/run starts, and the Chromium that report tests drive."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/rsupport.py importable

#: ../shared beside the checkout (the CI layout); override with ONCORWE_SHARED.
SHARED = Path(os.environ.get("ONCORWE_SHARED", ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"shared folder not found at {SHARED}; set ONCORWE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def liu2019_dir(shared_dir: Path) -> Path:
    return shared_dir / "external" / "liu2019"


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
