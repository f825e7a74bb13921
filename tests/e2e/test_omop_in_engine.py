"""CDMs given alone (``oncorwe run --omop``) are mapped inside the engine by the one orchestration,
and give what harmonising them first gives: the same analysis table, attrition, reconciliation and
quarantine, down to the last value."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tests.cli_runner import oncorwe

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.model import store
from oncorwe.pipeline import derive
from oncorwe.sources import detect_kind

FLAGSHIP = protocol.load("goldinger2022")


def _cdm_specs(study: Path) -> list[str]:
    found = [f"{p.parent.name}={p}" for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]
    assert len(found) == 2, found
    return found


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.all(), nulls_last=True)


def test_cdms_alone_are_mapped_in_the_engine_as_harmonise_maps_them(synthetic_study: Path) -> None:
    specs = _cdm_specs(synthetic_study)
    # harmonised first: DuckDB refuses a second open of a file this process has attached
    model = harmonise.run(None, omop=specs, scope=FLAGSHIP.scope())
    con = store.connect(None)
    store.write_model(con, model, prefix="h_")
    selected = cohort.run(con, FLAGSHIP, prefix="h_", merges=model.merges)
    expected = endpoints.run(con, selected, FLAGSHIP, prefix="h_")

    in_engine = derive(FLAGSHIP, store.connect(None), omop=specs)
    assert in_engine.in_engine
    got = in_engine.endpoints.analysis_table
    assert got.height > 50
    assert got.equals(expected.analysis_table)
    assert in_engine.cohort.attrition.equals(selected.attrition)
    assert _sorted(in_engine.quarantine).equals(_sorted(model.quarantine))
    assert in_engine.merges.equals(model.merges)
    rec = in_engine.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    assert rec.select(pl.col("records_read", "accepted", "quarantined", "merged").sum()).equals(
        model.reconciliation.select(pl.col("records_read", "accepted", "quarantined", "merged").sum()))


def test_cli_run_with_cdms_alone_writes_the_report(
        synthetic_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [a for spec in _cdm_specs(synthetic_study) for a in ("--omop", spec)]
    out = tmp_path / "report"
    assert oncorwe(monkeypatch, "run", *args, "--out", str(out)) == 0
    assert (out / "report.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert len([i for i in manifest["provenance"]["inputs"] if "omop" in i]) == 2


def test_an_unreadable_cdm_is_exit_2_naming_the_centre(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "omop.duckdb"
    broken.write_bytes(b"not a database at all" * 100)
    code = oncorwe(monkeypatch, "run", "--omop", f"xx-broken={broken}", "--out", str(tmp_path / "r"))
    captured = capsys.readouterr()
    assert code == 2
    assert "xx-broken" in captured.err + captured.out and "Traceback" not in captured.err
    assert not (tmp_path / "r").exists()
