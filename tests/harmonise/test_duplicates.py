"""Cross-centre duplicates (harmonise._duplicates): the rule as written in docs/definitions.md,
checked against its literal reading (every pair of records of different centres sharing sex,
birth year and diagnosis date, then those of the pairs that share a drug start), and the engine's
version (in_engine._merges, the pairs found by one join in the engine) against the frames'."""

from __future__ import annotations

import datetime as dt

import ibis
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.harmonise import in_engine
from oncorwe.harmonise._duplicates import RULE, find_duplicates, merges_of_pairs

_DAY = dt.date(2020, 1, 1)


def _literal(patients: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """The rule read literally: pairs on the three keys first, then a shared drug start."""
    keys = ["sex", "birth_year", "diagnosis_date"]
    known = patients.drop_nulls(keys)
    pairs = known.join(known, on=keys, suffix="_b").filter(
        (pl.col("centre_id") != pl.col("centre_id_b")) & (pl.col("patient_id") < pl.col("patient_id_b")))
    starts = exposures.select("patient_id", "ingredient", "start_date").unique()
    shared = (pairs.join(starts, on="patient_id")
              .join(starts.rename({"patient_id": "patient_id_b"}), on=["patient_id_b", "ingredient", "start_date"])
              .select("patient_id", "patient_id_b").unique())
    return merges_of_pairs(shared, known)


@st.composite
def _records(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(1, 14))
    rows = [{"patient_id": f"{centre}:{i}", "centre_id": centre,
             "sex": draw(st.sampled_from(["female", "male", None])),
             "birth_year": draw(st.sampled_from([1950, 1951, None])),
             "diagnosis_date": draw(st.sampled_from([_DAY, _DAY + dt.timedelta(days=1), None]))}
            for i in range(n) for centre in [draw(st.sampled_from(["a", "b", "c"]))]]
    drugs = [{"patient_id": r["patient_id"], "ingredient": draw(st.sampled_from(["dacarbazine", "paclitaxel"])),
              "start_date": _DAY + dt.timedelta(days=draw(st.integers(30, 32)))}
             for r in rows for _ in range(draw(st.integers(0, 3)))]
    patients = pl.DataFrame(rows, schema={"patient_id": pl.String(), "centre_id": pl.String(), "sex": pl.String(),
                                          "birth_year": pl.Int32(), "diagnosis_date": pl.Date()})
    exposures = pl.DataFrame(drugs, schema={"patient_id": pl.String(), "ingredient": pl.String(),
                                            "start_date": pl.Date()})
    return patients, exposures


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_records())
def test_the_five_key_join_is_the_rule_read_literally(records: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    patients, exposures = records
    assert find_duplicates(patients, exposures).equals(_literal(patients, exposures))


def test_a_referral_is_merged_into_the_earlier_diagnosis_and_chance_alikes_are_not() -> None:
    patients = pl.DataFrame({
        "patient_id": ["a:1", "b:7", "c:3", "a:2"], "centre_id": ["a", "b", "c", "a"],
        "sex": ["female"] * 4, "birth_year": [1950] * 4, "diagnosis_date": [_DAY] * 4,
    }, schema={"patient_id": pl.String(), "centre_id": pl.String(), "sex": pl.String(),
               "birth_year": pl.Int32(), "diagnosis_date": pl.Date()})
    start = _DAY + dt.timedelta(days=40)
    later = start + dt.timedelta(days=1)
    exposures = pl.DataFrame({"patient_id": ["a:1", "a:1", "b:7", "c:3", "a:2"],
                              "ingredient": ["dacarbazine", "dacarbazine", "dacarbazine", "paclitaxel", "dacarbazine"],
                              "start_date": [start, later, start, start, later]})
    merges = find_duplicates(patients, exposures)
    # a:1 and b:7 share a drug start; c:3 shares only the keys; a:2 shares one with a:1 only, of its
    # own centre (a pair is of two centres; a group grows through pairs: a:2 and b:7 share none)
    assert merges.rows() == [("a:1", "b:7", RULE)]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_records())
def test_the_engine_finds_the_same_merges(records: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    patients, exposures = records
    con = ibis.duckdb.connect()
    centres = {c: i for i, c in enumerate(sorted(set(patients["centre_id"])))}
    person = con.create_table("person", patients.select(
        pl.col("patient_id").replace_strict(
            dict(zip(patients["patient_id"], patients["centre_id"], strict=True))).replace_strict(centres)
        .cast(pl.Int32()).alias("_centre"), "patient_id", "centre_id", "sex", "birth_year"))
    conditions = con.create_table("conditions", patients.select(
        "patient_id", start_date=pl.col("diagnosis_date")))
    drugs = con.create_table("drugs", exposures.with_columns(end_date=pl.lit(None, pl.Date())))
    window = in_engine._Window(dt.date(2030, 1, 1), False)
    found = in_engine._merges(person, conditions, drugs, window, in_engine._Scratch(con))
    assert found.equals(find_duplicates(patients, exposures))
