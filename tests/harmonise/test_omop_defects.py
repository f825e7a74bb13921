"""Defects in an OMOP CDM database are quarantined by table and primary key, like file rows."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

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


def _with_implausible_dates(synthetic_study: Path, path: Path) -> dict[str, Any]:
    """A copy of the synthetic study's first CDM at ``path`` with implausible dates: two condition
    records (1850, 2090), a death in 2090, a condition record 61 days after a death and an
    observation period ending 100 days after one. Returns the keys and dates changed."""
    source = next(p for p in sorted(synthetic_study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb")
    shutil.copy(source, path)
    con = duckdb.connect(str(path))
    old, late = (r[0] for r in con.execute(  # two records of the study's condition (the first one's concept)
        "select condition_occurrence_id from condition_occurrence where condition_concept_id = (select "
        "condition_concept_id from condition_occurrence order by condition_occurrence_id limit 1) "
        "order by condition_occurrence_id limit 2").fetchall())
    con.execute(f"update condition_occurrence set condition_start_date = date '1850-01-01' "
                f"where condition_occurrence_id = {old}")
    con.execute(f"update condition_occurrence set condition_start_date = date '2090-01-01' "
                f"where condition_occurrence_id = {late}")
    # three dead persons with a condition record and an observation period: one dies in 2090, one
    # has a condition record 61 days after the death, one an observation period ending 100 days after
    future, recorded, followed = (r[0] for r in con.execute(
        "select d.person_id from death d where d.person_id in (select person_id from condition_occurrence) "
        "and d.person_id not in (select person_id from condition_occurrence "
        f"where condition_occurrence_id in ({old}, {late})) and d.person_id in "
        "(select person_id from observation_period) order by d.person_id limit 3").fetchall())
    con.execute(f"update death set death_date = date '2090-01-01' where person_id = {future}")
    after_death = con.execute(
        f"select min(condition_occurrence_id) from condition_occurrence where person_id = {recorded}").fetchone()[0]  # type: ignore[index]
    assert len({old, late, after_death}) == 3
    died = con.execute(f"select death_date from death where person_id = {recorded}").fetchone()[0]  # type: ignore[index]
    con.execute(f"update condition_occurrence set condition_start_date = death_date + 61 from death "
                f"where death.person_id = condition_occurrence.person_id and condition_occurrence_id = {after_death}")
    period = con.execute(
        f"select min(observation_period_id) from observation_period where person_id = {followed}").fetchone()[0]  # type: ignore[index]
    followed_death = con.execute(f"select death_date from death where person_id = {followed}").fetchone()[0]  # type: ignore[index]
    con.execute(f"update observation_period set observation_period_end_date = date '{followed_death}' + 100 "
                f"where observation_period_id = {period}")
    con.close()
    return {"old": old, "late": late, "future": future, "after_death": after_death, "died": died,
            "period": period, "followed_death": followed_death}


def test_implausible_condition_death_and_observation_period_dates_are_quarantined(
    synthetic_study: Path, tmp_path: Path
) -> None:
    """Issue 13: a condition record, a death or an observation period's end before 1900 or after
    the last plausible day, and a condition record or observation period ending more than 60 days
    after the death, are rejected with a reason (as a file's implausible dates are), not analysed."""
    path = tmp_path / "cdm.duckdb"
    changed = _with_implausible_dates(synthetic_study, path)
    old, late, future, after_death, period = (changed[k] for k in ("old", "late", "future", "after_death", "period"))
    died, followed_death = changed["died"], changed["followed_death"]
    cut = dt.date(2030, 1, 1)
    study = tmp_path / "study"
    study.mkdir()
    (study / "centres.toml").write_text(
        f'data_cut = "{cut.isoformat()}"\n\n[centres.xx-cdm]\ncountry = "CH"\nfiles = ["cdm.duckdb"]\n', encoding="utf-8")
    (study / "xx-cdm").mkdir()
    shutil.move(path, study / "xx-cdm" / "cdm.duckdb")
    model = harmonise.run(study, scope=FLAGSHIP_SCOPE)
    found = {(q["sheet"], q["row"]): (q["field"], q["raw_value"], q["reason"], q["action"])
             for q in model.quarantine.to_dicts()}
    after_cut = f"after the data cut {cut.isoformat()}"
    shown = (died + dt.timedelta(days=61)).isoformat()
    ended = (followed_death + dt.timedelta(days=100)).isoformat()
    assert found == {
        ("condition_occurrence", old): ("condition_start_date", "1850-01-01",
                                        "implausible date 1850-01-01: before 1900-01-01", "rejected"),
        ("condition_occurrence", late): ("condition_start_date", "2090-01-01",
                                         f"implausible date 2090-01-01: {after_cut}", "rejected"),
        ("death", future): ("death_date", "2090-01-01", f"implausible date 2090-01-01: {after_cut}", "rejected"),
        ("condition_occurrence", after_death): (
            "condition_start_date", shown,
            f"implausible date {shown}: more than 60 days after the death on {died.isoformat()}", "rejected"),
        ("observation_period", period): (
            "observation_period_end_date", ended,
            f"implausible date {ended}: more than 60 days after the death on {followed_death.isoformat()}",
            "rejected"),
    }
    assert model.conditions.filter(pl.col("source").str.ends_with(f"#condition_occurrence:{old}")).height == 0
    dead = model.events.filter(pl.col("event_type") == "death")
    assert dead.filter(pl.col("source").str.ends_with(f"#death:{future}")).height == 0  # not analysed as a death
    assert model.events.filter(pl.col("source").str.ends_with(f"#observation_period:{period}")).height == 0
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    quarantined = {r["sheet"]: r["quarantined"] for r in rec.to_dicts()}
    assert (quarantined["condition_occurrence"], quarantined["death"], quarantined["observation_period"]) == (3, 1, 1)


def test_the_date_checks_quarantine_the_same_records_on_postgresql(
    synthetic_study: Path, tmp_path: Path, postgres_uri: str
) -> None:
    """The date checks are engine queries: the damaged CDM loaded into PostgreSQL gives DuckDB's
    quarantine and reconciliation."""
    from oncorwe.model.store import connect

    path = tmp_path / "cdm.duckdb"
    changed = _with_implausible_dates(synthetic_study, path)
    pg = connect(postgres_uri)
    schema = f"omop_dates_{uuid.uuid4().hex[:10]}"
    pg.raw_sql(f"CREATE SCHEMA {schema}")
    try:
        duck = connect(str(path))
        for name in duck.list_tables():
            pg.create_table(name, duck.table(name).to_pyarrow(), database=schema)
        duck.disconnect()
        from_pg = harmonise.run(None, omop=[f"xx-cdm={postgres_uri}#{schema}"], scope=FLAGSHIP_SCOPE)
    finally:
        pg.raw_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        pg.disconnect()
    from_duck = harmonise.run(None, omop=[f"xx-cdm={path}"], scope=FLAGSHIP_SCOPE)
    keys = ["sheet", "row", "field", "raw_value", "reason", "action"]
    assert from_pg.quarantine.select(keys).sort(keys).equals(from_duck.quarantine.select(keys).sort(keys))
    assert {(q["sheet"], q["row"]) for q in from_pg.quarantine.to_dicts()} == {
        ("condition_occurrence", changed["old"]), ("condition_occurrence", changed["late"]),
        ("condition_occurrence", changed["after_death"]), ("death", changed["future"]),
        ("observation_period", changed["period"])}
    assert from_pg.reconciliation.drop("file").equals(from_duck.reconciliation.drop("file"))
