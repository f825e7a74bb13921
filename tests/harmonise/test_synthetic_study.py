"""The synthetic Goldinger study: all 24 centres load, every injected defect is caught, no clean
record is quarantined, duplicate referrals are merged, and baseline values equal the truth.

Only tests read ``_truth/``; the pipeline never does.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from oncorwe import harmonise
from oncorwe.model import CanonicalModel
from oncorwe.model.schema import CANONICAL_TABLES
from oncorwe.model.store import generic_tables
from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()


@pytest.fixture(scope="module")
def model(synthetic_study: Path) -> CanonicalModel:
    return harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE)


@pytest.fixture(scope="module")
def truth(synthetic_study: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_study / "_truth" / "patients.csv", infer_schema_length=0)


@pytest.fixture(scope="module")
def defects(synthetic_study: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_study / "_truth" / "defects.csv", infer_schema_length=0)


def _place(centre: str, file: str, sheet: str | None, row: int) -> tuple[str, str, str, int]:
    return centre, file, sheet or "", int(row)


def test_every_centre_loads_without_problems(model: CanonicalModel, synthetic_study: Path) -> None:
    assert model.problems == ()
    folders = {p.name for p in synthetic_study.iterdir() if p.is_dir() and p.name != "_truth"}
    assert len(folders) == 24
    assert set(model.reconciliation["centre_id"]) == folders
    assert model.reconciliation["records_read"].min() > 0
    for name, schema in CANONICAL_TABLES.items():
        assert dict(model.tables()[name].schema) == schema


def test_reconciliation_adds_up_for_every_centre_and_file(model: CanonicalModel) -> None:
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()


def test_every_injected_defect_is_caught(model: CanonicalModel, defects: pl.DataFrame) -> None:
    caught = {
        _place(q["centre_id"], q["file"], q["sheet"], q["row"]): q for q in model.quarantine.to_dicts()
    }
    missed = []
    for d in defects.to_dicts():
        entry = caught.get(_place(d["centre_id"], d["file"], d["sheet"], d["row"]))
        expected_action = "value_nulled" if d["consequence"] == "null_value" else "rejected"
        if entry is None or entry["action"] != expected_action:
            missed.append((d, entry))
        elif d["consequence"] == "null_value":
            assert entry["field"] == d["field"], d
    assert missed == []


def test_no_clean_record_is_quarantined(model: CanonicalModel, defects: pl.DataFrame) -> None:
    planted = {_place(d["centre_id"], d["file"], d["sheet"], d["row"]) for d in defects.to_dicts()}
    clean_but_quarantined = [
        q for q in model.quarantine.to_dicts()
        if _place(q["centre_id"], q["file"], q["sheet"], q["row"]) not in planted
    ]
    assert clean_but_quarantined == []


def test_duplicate_referrals_are_merged_into_the_kept_record(model: CanonicalModel, truth: pl.DataFrame) -> None:
    expected = set(
        truth.filter(pl.col("exclusion_reason") == "duplicate_referral").select("duplicate_of", "patient_id").rows()
    )
    assert set(model.merges.select("kept_patient_id", "merged_patient_id").rows()) == expected
    merged = set(model.merges["merged_patient_id"])
    kept = set(generic_tables(model)["person"]["patient_id"])
    assert not merged & kept
    assert kept == set(truth["patient_id"]) - merged


def test_baseline_values_equal_the_truth(model: CanonicalModel, truth: pl.DataFrame) -> None:
    """The CRF centres' wide rows hold the truth's baseline values (the CDM centres' values are
    observations, checked against the truth by the endpoint acceptance test)."""
    crf_centres = set(model.patients["centre_id"])
    eligible = truth.filter((pl.col("eligible") == "true") & pl.col("centre_id").is_in(crf_centres))
    assert eligible.height > 300
    joined = eligible.join(model.patients, on="patient_id", how="left", suffix="_model")
    assert joined["centre_id_model"].null_count() == 0
    for column in ("sex", "primary_site", "m_stage"):
        expected = joined[column].replace("", None)
        assert (joined[f"{column}_model"].fill_null("?") == expected.fill_null("?")).all(), column
    for column in ("brain_metastases", "braf_v600"):
        expected = joined[column].replace("", None).replace_strict({"true": True, "false": False}, default=None)
        assert (joined[f"{column}_model"].cast(pl.String).fill_null("?") == expected.cast(pl.String).fill_null("?")).all(), column
    ecog = joined["ecog"].replace("", None).cast(pl.Int8)
    assert (joined["ecog_model"].fill_null(-1) == ecog.fill_null(-1)).all()
    ratio = (joined["ldh_value"] / joined["ldh_uln"]).round(2)
    expected_ratio = joined["ldh_ratio"].replace("", None).cast(pl.Float64).round(2)
    assert (ratio.fill_null(-1.0) == expected_ratio.fill_null(-1.0)).all()
