"""The synthetic study's 24 centres, each run alone (``pipeline.site_derive``) with the coordinator's
linkage of cross-centre duplicates: shared by the federation tests (one derivation per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oncorwe import pipeline, protocol
from oncorwe.sources import load_study_config

KEY = b"a shared key of the network, 32 bytes"


@pytest.fixture(scope="session")
def flagship() -> protocol.Protocol:
    return protocol.load("goldinger2022")


@pytest.fixture(scope="session")
def centres(synthetic_study: Path) -> list[str]:
    return [c.id for c in load_study_config(synthetic_study).centres]


@pytest.fixture(scope="session")
def linkage(synthetic_study: Path, flagship: protocol.Protocol, centres: list[str]) -> dict[str, Any]:
    tokens = [(c, pipeline.linkage_tokens(flagship, synthetic_study, c, KEY)) for c in centres]
    return pipeline.link(tokens)


@pytest.fixture(scope="session")
def sites(synthetic_study: Path, flagship: protocol.Protocol, centres: list[str],
          linkage: dict[str, Any]) -> dict[str, pipeline.Derived]:
    return {c: pipeline.site_derive(flagship, synthetic_study, c, linkage=linkage) for c in centres}
