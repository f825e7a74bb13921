"""A header row repeated inside a centre's file (a paste error, two exports concatenated) is
quarantined naming the file and row, is no patient, and the reconciliation adds up."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from oncorwe import harmonise


def test_a_repeated_header_row_is_quarantined_and_not_a_patient(tmp_path: Path) -> None:
    (tmp_path / "centres.toml").write_text(
        '[centres.xx-paste]\ncountry = "CH"\nfiles = ["patients.csv"]\n\n'
        '[centres.xx-paste.overrides]\ndate_order = "YMD"\n', encoding="utf-8")
    (tmp_path / "xx-paste").mkdir()
    (tmp_path / "xx-paste" / "patients.csv").write_text(
        "patient_id,sex,birth_year,diagnosis_date,stage\n"
        "P1,m,1950,2012-05-06,IV\n"
        "patient_id,sex,birth_year,diagnosis_date,stage\n"
        "P2,f,1962,2013-01-02,IV\n", encoding="utf-8")
    model = harmonise.run(tmp_path)
    assert sorted(model.patients["patient_id"].to_list()) == ["xx-paste:P1", "xx-paste:P2"]
    rows = model.quarantine.filter(pl.col("file") == "patients.csv").to_dicts()
    assert [(q["row"], q["field"], q["action"]) for q in rows] == [(2, "(row)", "rejected")]
    assert "repeats the header row" in rows[0]["reason"]
    rec = model.reconciliation.to_dicts()
    assert [(r["records_read"], r["accepted"], r["quarantined"], r["merged"]) for r in rec] == [(3, 2, 1, 0)]
