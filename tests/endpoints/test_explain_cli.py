"""``oncorwe explain PATIENT_ID``: the records behind a patient's values, from saved results."""

from __future__ import annotations

from pathlib import Path

import pytest
from canonical_builder import DEFAULT_INDEX, Study, days, run_study

from cli_runner import oncorwe


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    s = Study()
    s.eligible("x:in")
    s.scan("x:in", days(DEFAULT_INDEX, 50), "PR")
    s.event("x:in", "death", days(DEFAULT_INDEX, 300))
    s.patient("x:out", stage="II")
    cohort_result, endpoints_result = run_study(s)
    folder = tmp_path_factory.mktemp("results")
    cohort_result.write(folder / "cohort")
    endpoints_result.write(folder / "endpoints")
    return folder


def test_explain_prints_the_records_behind_index_regimen_response_pfs_and_os(
    saved: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert oncorwe(monkeypatch, "explain", "x:in", "--results", str(saved)) == 0
    out = capsys.readouterr().out
    assert "index date 2014-01-01" in out
    assert "regimen dacarbazine" in out and "x/treatments.csv" in out  # the drug records
    assert "best response PR" in out and "x/assessments.csv" in out  # the scans
    assert "PFS" in out and "OS 9.86 months, death on 2014-10-28" in out and "x/followup.csv" in out


def test_explain_says_why_a_patient_is_excluded_or_unknown(
    saved: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert oncorwe(monkeypatch, "explain", "x:out", "--results", str(saved)) == 0
    assert "excluded: not_stage_iv_unresectable" in capsys.readouterr().out
    assert oncorwe(monkeypatch, "explain", "x:nobody", "--results", str(saved)) == 2
    assert "patient_id 'x:nobody': not found" in capsys.readouterr().err
    assert oncorwe(monkeypatch, "explain", "x:in", "--results", str(saved / "nothing")) == 2
    assert "no cohort.json" in capsys.readouterr().err
