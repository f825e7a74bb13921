"""Defects in an OMOP CDM database are quarantined by table and primary key, like file rows."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl

from oncorwe import harmonise
from oncorwe.protocol import load as _load_protocol
from oncorwe.sources import detect_kind

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()


def test_omop_defects_are_quarantined_by_table_and_key(synthetic_study: Path, tmp_path: Path) -> None:
    source = next(p for p in sorted(synthetic_study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb")
    path = tmp_path / "cdm.duckdb"
    shutil.copy(source, path)
    con = duckdb.connect(str(path))
    key = con.execute("select min(drug_exposure_id) from drug_exposure").fetchone()[0]  # type: ignore[index]
    copy = "insert into drug_exposure select * replace ({}) from drug_exposure where drug_exposure_id = " + str(key)
    con.execute(copy.format("900001 as drug_exposure_id"))  # a duplicated record
    con.execute(copy.format("900002 as drug_exposure_id, 0 as drug_concept_id, 'Prüfsubstanz ABX' as drug_source_value"))
    con.execute(f"update drug_exposure set drug_exposure_end_date = drug_exposure_start_date - 30 where drug_exposure_id = {key + 1}")
    response = con.execute("select min(measurement_id) from measurement where measurement_source_value = 'RECIST'").fetchone()[0]  # type: ignore[index]
    con.execute(f"update measurement set value_source_value = 'mixed response' where measurement_id = {response}")
    con.close()
    model = harmonise.run(None, omop=[f"xx-cdm={path}"], scope=FLAGSHIP_SCOPE)
    found = {(q["sheet"], q["row"]): (q["field"], q["action"]) for q in model.quarantine.to_dicts()}
    assert found == {
        ("drug_exposure", 900001): ("(row)", "rejected"),
        ("drug_exposure", 900002): ("drug_source_value", "rejected"),
        ("drug_exposure", key + 1): ("drug_exposure_end_date", "rejected"),
        ("measurement", response): ("value_source_value", "rejected"),
    }
    assert model.quarantine.filter(pl.col("row") == 900002)["raw_value"].to_list() == ["Prüfsubstanz ABX"]
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    assert rec.filter(pl.col("sheet") == "drug_exposure")["quarantined"].to_list() == [3]


def test_implausible_omop_dates_are_quarantined_like_a_file_s(synthetic_study: Path, tmp_path: Path) -> None:
    source = next(p for p in sorted(synthetic_study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb")
    path = tmp_path / "cdm.duckdb"
    shutil.copy(source, path)
    con = duckdb.connect(str(path))
    first, second, third = (r[0] for r in con.execute(
        "select drug_exposure_id from drug_exposure order by drug_exposure_id limit 3").fetchall())
    con.execute(f"update drug_exposure set drug_exposure_start_date = date '1800-05-03' where drug_exposure_id = {first}")
    con.execute(f"update drug_exposure set drug_exposure_end_date = date '2090-01-01' where drug_exposure_id = {second}")
    con.execute(f"update drug_exposure set drug_exposure_start_date = date '2090-01-01', "
                f"drug_exposure_end_date = date '2090-02-01' where drug_exposure_id = {third}")
    response = con.execute("select min(measurement_id) from measurement where measurement_source_value = 'RECIST'").fetchone()[0]  # type: ignore[index]
    con.execute(f"update measurement set measurement_date = date '0001-01-01' where measurement_id = {response}")
    con.close()
    today = dt.date.today().isoformat()
    model = harmonise.run(None, omop=[f"xx-cdm={path}"], scope=FLAGSHIP_SCOPE)
    found = {(q["sheet"], q["row"]): (q["field"], q["raw_value"], q["reason"], q["action"])
             for q in model.quarantine.to_dicts()}
    assert found == {
        ("drug_exposure", first): ("drug_exposure_start_date", "1800-05-03",
                                   "implausible date 1800-05-03: before 1900-01-01", "rejected"),
        ("drug_exposure", second): ("drug_exposure_end_date", "2090-01-01",
                                    f"implausible date 2090-01-01: after the day of the run {today} "
                                    "(no data_cut in centres.toml)", "value_nulled"),
        ("drug_exposure", third): ("drug_exposure_start_date", "2090-01-01",
                                   f"implausible date 2090-01-01: after the day of the run {today} "
                                   "(no data_cut in centres.toml)", "rejected"),
        ("measurement", response): ("measurement_date", "0001-01-01",
                                    "implausible date 0001-01-01: before 1900-01-01", "rejected"),
    }
    kept = model.drug_exposures.filter(pl.col("source").str.ends_with(f"#drug_exposure:{second}"))
    assert kept["end_date"].to_list() == [None]  # the course is kept, its end date nulled
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    assert rec.filter(pl.col("sheet") == "drug_exposure")["quarantined"].to_list() == [2]
