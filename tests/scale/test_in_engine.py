"""The OMOP path at scale: the CDM is mapped to the canonical tables inside the engine (tables
created from queries, nothing but counts and a few candidate rows read into Python), and gives the
same canonical tables, quarantine and merges as the in-Python harmonisation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from oncorwe import harmonise
from oncorwe.errors import InputError, SourceError
from oncorwe.harmonise.in_engine import OmopInEngine, attach_duckdb, omop_into_engine
from oncorwe.model.schema import CANONICAL_TABLES, QUARANTINE_SCHEMA
from oncorwe.model.store import STAGE_TABLES, connect, read_tables, to_polars
from oncorwe.protocol import load as _load_protocol
from oncorwe.sources import detect_kind

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()


def _omop_files(study: Path) -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.all(), nulls_last=True)


def _in_engine(files: list[tuple[str, Path]], prefix: str = "m_") -> tuple[Any, Any]:
    con = connect(None)
    sources = [OmopInEngine(c, p.name, attach_duckdb(con, str(p), f"cdm_{i}")) for i, (c, p) in enumerate(files)]
    return con, omop_into_engine(con, sources, scope=FLAGSHIP_SCOPE, prefix=prefix)


def _same_as_python(files: list[tuple[str, Path]]) -> None:
    # first: DuckDB refuses a second open of a file attached read-only in the same process
    in_python = harmonise.run(None, omop=[f"{c}={p}" for c, p in files], scope=FLAGSHIP_SCOPE)
    assert in_python.problems == ()
    con, result = _in_engine(files)
    tables = read_tables(con, prefix="m_")
    for name in STAGE_TABLES:  # a CDM lands in the generic tables only
        schema = CANONICAL_TABLES[name]
        got = to_polars(tables[name]).select(list(schema))
        assert got.schema == pl.Schema(schema), name
        assert _sorted(got).equals(_sorted(in_python.tables()[name])), name
        # the flagship's protocol names no concept hierarchy (no condition categories)
        assert result.row_counts[name] == got.height, name
        assert got.height > 0 or name == "concept_ancestor", name
    quarantine = to_polars(con.table("m_quarantine")).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
    assert _sorted(quarantine).equals(_sorted(in_python.quarantine)), quarantine
    assert result.merges.equals(in_python.merges)
    # only the canonical tables and the quarantine stay behind
    assert sorted(t for t in con.list_tables() if t.startswith("m_")) == sorted(
        [f"m_{n}" for n in STAGE_TABLES] + ["m_quarantine"])


def test_the_synthetic_omop_centres_map_the_same_in_the_engine(synthetic_study: Path) -> None:
    files = _omop_files(synthetic_study)
    assert len(files) >= 2
    _same_as_python(files)


def _defective_copy(path: Path, out: Path) -> Path:
    """The centre's CDM with an unknown drug, a backwards exposure, an odd stop reason, an accented
    known stop reason and an unreadable response, so every record rule fires."""
    copy = out / path.name
    copy.write_bytes(path.read_bytes())
    db = duckdb.connect(str(copy))
    ids = [r[0] for r in db.execute("SELECT drug_exposure_id FROM drug_exposure ORDER BY 1 LIMIT 4").fetchall()]
    db.execute("UPDATE drug_exposure SET drug_concept_id = 0, drug_source_value = 'zzz-unknown' "
               "WHERE drug_exposure_id = ?", [ids[0]])
    db.execute("UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - 30 "
               "WHERE drug_exposure_id = ?", [ids[1]])
    db.execute("UPDATE drug_exposure SET stop_reason = 'weather' WHERE drug_exposure_id = ?", [ids[2]])
    db.execute("UPDATE drug_exposure SET stop_reason = ' Toxicité ' WHERE drug_exposure_id = ?", [ids[3]])
    mid = db.execute("SELECT min(measurement_id) FROM measurement WHERE lower(measurement_source_value) "
                       "LIKE '%recist%' OR lower(measurement_source_value) LIKE '%response%'").fetchone()[0]  # type: ignore[index]
    db.execute("UPDATE measurement SET value_source_value = 'maybe better' WHERE measurement_id = ?", [mid])
    db.close()
    return copy


def test_every_record_rule_fires_the_same_in_the_engine(synthetic_study: Path, tmp_path: Path) -> None:
    centre, path = _omop_files(synthetic_study)[0]
    copy = _defective_copy(path, tmp_path)
    _same_as_python([(centre, copy)])
    con, result = _in_engine([(centre, copy)])
    summary = result.quarantine_summary
    assert summary["n"].sum() == 4, summary
    assert set(summary["action"]) == {"rejected", "value_nulled"}
    toxic = to_polars(con.table("m_drug_exposures").filter(lambda t: t.reason_stopped == "toxicity"))
    assert toxic.height >= 1


def test_bad_sources_are_named() -> None:
    con = connect(None)
    with pytest.raises(InputError, match="at least one"):
        omop_into_engine(con, [], scope=FLAGSHIP_SCOPE)
    with pytest.raises(InputError, match="unique"):
        omop_into_engine(con, [OmopInEngine("a", "x"), OmopInEngine("a", "y")], scope=FLAGSHIP_SCOPE)
    con.create_table("unrelated", pl.DataFrame({"d": [dt.date(2020, 1, 1)]}).to_arrow())
    with pytest.raises(SourceError, match="no person table"):
        omop_into_engine(con, [OmopInEngine("a", "x")], scope=FLAGSHIP_SCOPE)


def _without(path: Path, out: Path, drop: str) -> Path:
    """A copy of the centre's CDM with ``drop`` run on it (a table or a column removed)."""
    copy = out / path.name
    copy.write_bytes(path.read_bytes())
    db = duckdb.connect(str(copy))
    db.execute(drop)
    db.close()
    return copy


def test_centres_with_different_tables_map_together_as_each_alone(synthetic_study: Path, tmp_path: Path) -> None:
    # one CDM without measurement and concept tables (its brain metastases are unknown, not
    # absent; its local drug concepts have no names) stacked with complete ones
    (first, path), *others = _omop_files(synthetic_study)
    (tmp_path / "a").mkdir()
    copy = _without(path, tmp_path / "a", "DROP TABLE measurement; DROP TABLE concept")
    _same_as_python([(first, copy), *others])
    con, _ = _in_engine([(first, copy), *others])
    person = to_polars(con.table("m_person"))
    brain = to_polars(con.table("m_observations").filter(lambda t: t.variable == "brain_metastases"))
    mine = person.filter(pl.col("centre_id") == first)["patient_id"]
    assert mine.len() > 0 and not brain["patient_id"].is_in(mine.implode()).any()
    theirs = person.filter(pl.col("centre_id") != first)["patient_id"]
    assert theirs.is_in(brain["patient_id"].implode()).all()


def test_a_cdm_table_without_a_column_names_the_centre(synthetic_study: Path, tmp_path: Path) -> None:
    (first, path), (second, other) = _omop_files(synthetic_study)[:2]
    copy = _without(other, tmp_path, "ALTER TABLE drug_exposure DROP COLUMN stop_reason")
    con = connect(None)
    sources = [OmopInEngine(first, path.name, attach_duckdb(con, str(path), "cdm_a")),
               OmopInEngine(second, copy.name, attach_duckdb(con, str(copy), "cdm_b"))]
    with pytest.raises(SourceError, match=f"centre {second} .*drug_exposure has no column stop_reason"):
        omop_into_engine(con, sources, scope=FLAGSHIP_SCOPE, prefix="m_")
    assert not [t for t in con.list_tables() if t.startswith(("m_", "oncorwe_tmp_"))]
