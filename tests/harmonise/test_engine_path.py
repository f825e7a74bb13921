"""The centre files harmonised inside the engine give exactly what the per-row Python path gave:
the canonical tables, the quarantine, the reconciliation, the merges and the column map, on the
hand-written fixture study, the synthetic flagship study and the Liu 2019 cohort (issue 12 item 2).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study

from liu_study import ATTRIBUTES, CBIO, CBIO_UNITS, TSV, TSV_UNITS, liu_study
from oncorwe import harmonise, protocol
from oncorwe.model import CanonicalModel

TABLES = ("patients", "drug_exposures", "assessments", "events", "person", "conditions", "observations",
          "quarantine", "reconciliation", "merges", "column_map")

def _same(rows: CanonicalModel, engine: CanonicalModel) -> None:
    for name in TABLES:
        old, new = getattr(rows, name), getattr(engine, name)
        assert old.schema == new.schema, name
        old, new = old.sort(pl.all(), nulls_last=True), new.sort(pl.all(), nulls_last=True)
        assert old.equals(new), (name, old.join(new, on=old.columns, how="anti", nulls_equal=True).head(5),
                                 new.join(old, on=old.columns, how="anti", nulls_equal=True).head(5))
    assert sorted(rows.problems) == sorted(engine.problems)


def test_fixture_study_is_the_same_in_the_engine(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    _same(harmonise.run(study, files_path="rows"), harmonise.run(study, files_path="engine"))


def test_synthetic_study_is_the_same_in_the_engine(synthetic_study: Path) -> None:
    scope = protocol.load("goldinger2022").scope()
    _same(harmonise.run(synthetic_study, scope=scope, files_path="rows"),
          harmonise.run(synthetic_study, scope=scope, files_path="engine"))


@pytest.mark.parametrize("encoding", ["tsv", "cbioportal"])
def test_liu2019_is_the_same_in_the_engine(liu2019_dir: Path, tmp_path: Path, encoding: str) -> None:
    files, units = ([TSV], TSV_UNITS) if encoding == "tsv" else ([CBIO, ATTRIBUTES], CBIO_UNITS)
    study = liu_study(tmp_path / encoding, liu2019_dir, files, units)
    _same(harmonise.run(study, files_path="rows"), harmonise.run(study, files_path="engine"))
