"""Acceptance on the synthetic Goldinger study: synthetic files -> harmonise -> cohort -> endpoints
equals the generator's truth (cohort, exclusion reasons, every per-patient value), the regimen and
response counts equal the published ones, and PostgreSQL gives exactly what DuckDB gives."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.model import store
from oncorwe.model.schema import CanonicalModel
from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()

#: Published allocation (Goldinger et al. 2022, "By regimen") and responses (n = 463).
PUBLISHED_REGIMENS = {
    "carboplatin_paclitaxel": 147, "dacarbazine": 118, "temozolomide": 71, "taxane": 40,
    "fotemustine": 29, "other": 58,
}
PUBLISHED_RESPONDERS_BY_REGIMEN = {
    "carboplatin_paclitaxel": 21, "dacarbazine": 12, "temozolomide": 2, "taxane": 10, "fotemustine": 3, "other": 10,
}


@pytest.fixture(scope="module")
def model(synthetic_study: Path) -> CanonicalModel:
    return harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE)


@pytest.fixture(scope="module")
def truth(synthetic_study: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_study / "_truth" / "patients.csv", infer_schema_length=None)


@pytest.fixture(scope="module")
def duckdb_run(model: CanonicalModel) -> tuple[cohort.CohortResult, endpoints.EndpointsResult]:
    proto = protocol.load("goldinger2022")
    con = store.connect(None)
    store.write_model(con, model)
    cohort_result = cohort.run(con, proto, merges=model.merges)
    return cohort_result, endpoints.run(con, cohort_result, proto)


def test_cohort_is_exactly_the_eligible_patients_each_excluded_for_the_planted_reason(
    duckdb_run: Any, truth: pl.DataFrame
) -> None:
    cohort_result, _ = duckdb_run
    eligible = set(truth.filter(pl.col("eligible"))["patient_id"])
    assert set(cohort_result.index["patient_id"]) == eligible
    assert len(eligible) == 463
    planted = dict(truth.filter(~pl.col("eligible")).select("patient_id", "exclusion_reason").iter_rows())
    assert dict(cohort_result.exclusions.select("patient_id", "reason").iter_rows()) == planted
    final = cohort_result.attrition.filter(pl.col("centre_id").is_null()).sort("step")
    assert final["n_before"][0] == truth.height and final["n_after"][-1] == 463


def test_regimen_and_response_counts_equal_the_published_counts(duckdb_run: Any) -> None:
    table = duckdb_run[1].analysis_table
    assert dict(table["regimen_class"].value_counts().iter_rows()) == PUBLISHED_REGIMENS
    responders = dict(table.filter(pl.col("responder"))["regimen_class"].value_counts().iter_rows())
    assert responders == PUBLISHED_RESPONDERS_BY_REGIMEN
    responses = dict(table["best_response"].value_counts().iter_rows())
    assert (responses["CR"], responses["PR"], responses["SD"]) == (2, 56, 96)
    assert responses["PD"] + responses.get("NE", 0) == 309
    assert int(table["subsequent_therapy"].sum()) == 221
    classes = dict(table["subsequent_therapy_class"].value_counts().iter_rows())
    assert (classes["pd1_with_or_without_ipilimumab"], classes["ipilimumab_alone"], classes["ici_after_other"]) == (
        110, 12, 23)


def test_every_per_patient_endpoint_equals_the_truth(duckdb_run: Any, truth: pl.DataFrame) -> None:
    table = duckdb_run[1].analysis_table
    flagship = protocol.load("goldinger2022")
    # the toxicity columns are checked against the adverse events' own truth file (below)
    schema = {c: t for c, t in flagship.analysis_schema().items() if c not in flagship.adverse_event_schema()}
    expected = (
        truth.filter(pl.col("eligible"))
        .with_columns(pl.col("index_date").str.to_date())
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort("patient_id")
    )
    assert table["patient_id"].to_list() == expected["patient_id"].to_list()
    mismatches = {}
    for column, dtype in schema.items():
        got, want = table[column], expected[column]
        if dtype == pl.Float64():
            same = ((got - want).abs() < 1e-9) | (got.is_null() & want.is_null())
            same = same.fill_null(False)
        else:
            same = (got == want).fill_null(False) | (got.is_null() & want.is_null())
        if not same.all():
            mismatches[column] = int((~same).sum())
    assert mismatches == {}


def test_the_toxicity_columns_equal_the_generated_adverse_events(duckdb_run: Any, synthetic_study: Path) -> None:
    """Every generated event lies within its index course, so each grade >= 3 one is attributed;
    patients of the centres that write no adverse events (the OMOP centres) are not reported (null)."""
    table = duckdb_run[1].analysis_table
    events = pl.read_csv(synthetic_study / "_truth" / "adverse_events.csv")
    severe = events.filter(pl.col("grade") >= 3).group_by("patient_id").agg(
        pl.col("ctcae_term").unique().sort().str.join("; ").alias("terms"))
    # the CSV centres (a file of their own), the workbooks (a sheet), the REDCap exports (an instrument)
    reporting = {p.name for p in synthetic_study.iterdir() if p.is_dir() and not (p / "omop.duckdb").exists()} - {"_truth"}
    assert {p.parent.name for p in synthetic_study.glob("*/adverse_events.*")} - {"_truth"} < reporting
    got = table.select("patient_id", "centre_id", "severe_adverse_event", "severe_adverse_event_terms").join(
        severe, on="patient_id", how="left")
    for row in got.iter_rows(named=True):
        if row["centre_id"] not in reporting:
            assert (row["severe_adverse_event"], row["severe_adverse_event_terms"]) == (None, None), row
        else:
            assert row["severe_adverse_event"] is (row["terms"] is not None), row
            assert row["severe_adverse_event_terms"] == row["terms"], row
    # only the OMOP centres' patients are not reported (85 of 463 in the default study; more than
    # 100 before the workbook and REDCap centres wrote their adverse events)
    unreported = got.filter(~pl.col("centre_id").is_in(sorted(reporting))).height
    assert got["severe_adverse_event"].sum() > 50 and got["severe_adverse_event"].null_count() == unreported > 0


def test_postgresql_gives_exactly_what_duckdb_gives(model: CanonicalModel, duckdb_run: Any, postgres_uri: str) -> None:
    proto = protocol.load("goldinger2022")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    con = store.connect(postgres_uri)
    try:
        store.write_model(con, model, prefix=prefix)
        cohort_pg = cohort.run(con, proto, prefix=prefix, merges=model.merges)
        endpoints_pg = endpoints.run(con, cohort_pg, proto, prefix=prefix)
    finally:
        for name in con.list_tables():
            if name.startswith(prefix):
                con.drop_table(name)
        con.disconnect()
    cohort_duck, endpoints_duck = duckdb_run
    for name in ("attrition", "exclusions", "lines", "index"):
        assert getattr(cohort_pg, name).equals(getattr(cohort_duck, name)), name
    assert endpoints_pg.analysis_table.equals(endpoints_duck.analysis_table)
    assert endpoints_pg.trace.equals(endpoints_duck.trace)
