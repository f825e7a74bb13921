"""The real Liu et al. 2019 cohort (144 patients, anti-PD-1) in its two public encodings (the
supplementary TSV and the cBioPortal clinical file): cohort and endpoints derived from either are
identical, and the response counts equal the raw table's."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from liu_study import ATTRIBUTES, CBIO, CBIO_UNITS, TSV, TSV_UNITS, liu_study
from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.endpoints import EndpointsResult
from oncorwe.model import store

#: What the cBioPortal patient file does not hold (no age, no primary type).
NOT_IN_CBIOPORTAL = ("age_years",)  # (nor a primary type, which the Liu protocol does not use)


def _endpoints(folder: Path) -> EndpointsResult:
    proto = protocol.load("liu2019")
    model = harmonise.run(folder)
    con = store.connect(None)
    store.write_model(con, model)
    cohort_result = cohort.run(con, proto, merges=model.merges)
    return endpoints.run(con, cohort_result, proto)


@pytest.fixture(scope="module")
def both(liu2019_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[EndpointsResult, EndpointsResult]:
    root = tmp_path_factory.mktemp("liu_endpoints")
    tsv = liu_study(root / "tsv", liu2019_dir, [TSV], TSV_UNITS)
    cbio = liu_study(root / "cbio", liu2019_dir, [CBIO, ATTRIBUTES], CBIO_UNITS)
    return _endpoints(tsv), _endpoints(cbio)


def test_both_encodings_give_identical_endpoints(both: tuple[EndpointsResult, EndpointsResult]) -> None:
    tsv, cbio = both
    assert tsv.analysis_table.height == 144
    assert tsv.analysis_table.drop(NOT_IN_CBIOPORTAL).equals(cbio.analysis_table.drop(NOT_IN_CBIOPORTAL))


def test_reported_best_responses_equal_the_raw_table(both: tuple[EndpointsResult, EndpointsResult],
                                                     liu2019_dir: Path) -> None:
    raw = pl.read_csv(liu2019_dir / TSV, separator="\t", infer_schema_length=0)
    expected = raw["BR"].replace({"MR": "SD"}).value_counts().sort("BR").rows()
    table = both[0].analysis_table
    assert table["best_response"].value_counts().sort("best_response").rows() == expected
    assert set(table["best_response_source"]) == {"reported"}
    assert int(table["responder"].sum()) == int(raw["BR"].is_in(["CR", "PR"]).sum())
    assert set(table["regimen_class"]) <= {"pembrolizumab", "nivolumab", "other"}
