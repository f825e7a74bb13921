"""Acceptance (issue 12): the second bundled study runs with no line of code that names it.

`oncorwe synth --study nsclc_docetaxel` writes six OMOP CDM centres (the study's patients among a
background population twenty times larger); `oncorwe run --protocol nsclc_docetaxel --data <it>`
must reproduce the synthetic truth: the attrition by criterion, the counts and responders by
regimen, and per patient the best response, PFS and OS.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from oncorwe.synth import generate_study


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("second")
    data = generate_study("nsclc_docetaxel", root / "data")
    out = root / "report"
    proc = subprocess.run([sys.executable, "-m", "oncorwe", "run", "--protocol", "nsclc_docetaxel", "--data", str(data),
                           "--out", str(out)], capture_output=True, text=True, timeout=1200, check=False)
    return data, out, proc


def test_cli_run_writes_the_report(second: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    _, out, proc = second
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.html").is_file()


def test_run_reproduces_the_truth(second: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    from oncorwe.pipeline import run_study

    data = second[0]
    result = run_study(protocol_ref="nsclc_docetaxel", data_dir=data, out_dir=tmp_path / "report")
    truth = pl.read_csv(data / "_truth" / "patients.csv", infer_schema_length=None)
    eligible = truth.filter(pl.col("eligible"))
    table = result.analysis_table
    assert table.height == eligible.height
    got = table.select("patient_id", "regimen_class", "best_response", "pfs_months", "pfs_event", "os_months", "os_event",
                       "ecog", "pdl1_category", "histology").sort("patient_id")
    want = eligible.select(got.columns).sort("patient_id")
    assert got["patient_id"].to_list() == want["patient_id"].to_list()
    for column in ("regimen_class", "best_response", "pfs_event", "os_event", "pdl1_category", "histology"):
        assert got[column].cast(pl.String).to_list() == want[column].cast(pl.String).to_list(), column
    for column in ("pfs_months", "os_months"):
        assert (got[column] - want[column]).abs().max() < 1e-9, column
    assert got["ecog"].cast(pl.Float64).to_list() == want["ecog"].cast(pl.Float64).to_list()
    # background persons are out of scope: the first box counts only persons with the condition
    attrition = pl.read_csv(next((tmp_path / "report").rglob("attrition*.csv")), infer_schema_length=None)
    overall = attrition.filter(pl.col("centre_id").is_null())
    assert overall.filter(pl.col("step") == 0)["n_after"].item() == truth.height
    for reason in truth.filter(~pl.col("eligible"))["exclusion_reason"].unique().to_list():
        expected = truth.filter(pl.col("exclusion_reason") == reason).height
        assert overall.filter(pl.col("criterion") == reason)["n_excluded"].item() == expected, reason
