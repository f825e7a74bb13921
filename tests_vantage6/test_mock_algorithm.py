"""The vantage6 algorithm (``oncorwe.vantage6``) with vantage6-algorithm-tools 4.15.2's
``MockAlgorithmClient``: each of the synthetic study's 24 centres is one mock organisation, whose
node database is the one-row table naming its data. The central function's tables equal the pooled
run's (and so ``oncorwe combine``'s, tests/federation) to 1e-9, the Cox models included.

Run in an environment with ``oncorwe[vantage6]`` (scripts/test.sh makes one: the algorithm tools
pin click, pandas and SQLAlchemy versions of their own).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from polars.testing import assert_frame_equal
from vantage6.algorithm.tools.mock_client import MockAlgorithmClient

from oncorwe import analysis, pipeline
from oncorwe.sources import load_study_config
from oncorwe.synth import generate_study


def _finite_or_null(frame: pl.DataFrame) -> pl.DataFrame:
    """R's NA and infinite bounds as null: what a JSON result can hold."""
    return frame.with_columns([
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c)
        for c, t in frame.schema.items() if t == pl.Float64])


def test_central_function_equals_the_pooled_run(tmp_path: Path) -> None:
    study = tmp_path / "goldinger2022"
    generate_study("goldinger2022", study)
    key = tmp_path / "linkage.key"
    key.write_bytes(b"the network's shared linkage key, kept at the nodes")
    centres = [c.id for c in load_study_config(study).centres]
    assert len(centres) == 24
    datasets = [[{"database": pd.DataFrame([{"data_dir": str(study), "centre_id": c,
                                             "linkage_key_file": str(key)}])}] for c in centres]
    client = MockAlgorithmClient(datasets=datasets, module="oncorwe.vantage6")
    task = client.task.create(input_={"method": "central", "kwargs": {"exact": True}}, organizations=[0])
    result: dict[str, Any] = client.wait_for_results(task.get("id"))[0]
    json.dumps(result, allow_nan=False)  # JSON-plain, as vantage6 carries it

    pooled = pipeline.run_study(protocol_ref="goldinger2022", data_dir=study, out_dir=tmp_path / "pooled")
    assert result["info"]["federated"]["exact"] is True
    assert len(result["info"]["federated"]["centres"]) == 24
    for name in analysis.TABLE_NAMES:
        if name in analysis.PATIENT_LEVEL_TABLES:
            continue  # the adjusted comparison needs patient rows: a federated result leaves it empty
        expected = _finite_or_null(pooled.analysis.tables[name])
        rows = result["tables"][name]
        got = pl.DataFrame(rows, schema=expected.schema, orient="row") if rows else pl.DataFrame(schema=expected.schema)
        assert_frame_equal(expected, got, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    fitted = [m["status"] for m in result["tables"]["cox_models"]]
    assert fitted == ["fitted", "fitted"]
    assert all(math.isfinite(r["coef"]) for r in result["tables"]["cox"])


def test_central_function_with_secure_aggregation_equals_combine_of_masked_packages(tmp_path: Path) -> None:
    """``central(secure=True)``: a key round, then a masked-package round; its tables equal those
    ``combine`` computes from masked packages made with other keys (the masks cancel, whatever the
    keys), and only the network's totals were unmasked."""
    from oncorwe import protocol
    from oncorwe.analysis.federated import combine_secure, make_key_pair

    study = tmp_path / "goldinger2022"
    generate_study("goldinger2022", study)
    key = tmp_path / "linkage.key"
    key.write_bytes(b"the network's shared linkage key, kept at the nodes")
    centres = [c.id for c in load_study_config(study).centres]
    datasets = []
    for c in centres:
        secret = tmp_path / f"{c}.secret"
        secret.write_bytes(c.encode() * 8 + b" node secret of 32 bytes or more")
        datasets.append([{"database": pd.DataFrame([{"data_dir": str(study), "centre_id": c,
                                                     "linkage_key_file": str(key),
                                                     "secure_key_file": str(secret)}])}])
    client = MockAlgorithmClient(datasets=datasets, module="oncorwe.vantage6")
    task = client.task.create(input_={"method": "central", "kwargs": {"secure": True}}, organizations=[0])
    result: dict[str, Any] = client.wait_for_results(task.get("id"))[0]
    json.dumps(result, allow_nan=False)
    assert "secure_aggregation" in result["info"]["federated"]
    assert len(result["info"]["federated"]["centres"]) == 24

    flagship = protocol.load("goldinger2022")
    linkage = pipeline.link([(c, pipeline.linkage_tokens(flagship, study, c, key.read_bytes().strip()))
                             for c in centres])
    keys = {c: make_key_pair(c, flagship) for c in centres}
    peers = [(c, public) for c, (public, _private) in keys.items()]
    packages = [pipeline.site_export_secure(flagship, study, c, peers=peers, private_key=keys[c][1], linkage=linkage)
                for c in centres]
    expected = combine_secure(packages, flagship).result
    for name in analysis.TABLE_NAMES:
        if name in ("cox", "cox_models", "cox_ph_test"):
            continue
        want = _finite_or_null(expected.tables[name])
        rows = result["tables"][name]
        got = pl.DataFrame(rows, schema=want.schema, orient="row") if rows else pl.DataFrame(schema=want.schema)
        assert_frame_equal(want, got, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    assert [m["status"] for m in result["tables"]["cox_models"]] == ["fitted", "fitted"]
