"""The default synthetic study carries exactly the published counts (Goldinger et al. 2022)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl

from oncorwe import protocol

EXCLUSION_REASONS = tuple(c.id for c in protocol.load("goldinger2022").criteria)


def count(frame: pl.DataFrame, expr: pl.Expr) -> int:
    return frame.filter(expr).height


def test_463_eligible_and_about_a_fifth_excluded(truth: pl.DataFrame, eligible: pl.DataFrame) -> None:
    assert eligible.height == 463
    excluded = truth.filter(~pl.col("eligible"))
    assert 0.15 * 463 <= excluded.height <= 0.25 * 463
    assert set(excluded["exclusion_reason"].unique()) == set(EXCLUSION_REASONS)
    assert eligible["exclusion_reason"].null_count() == 463
    assert truth["patient_id"].n_unique() == truth.height
    assert (truth["patient_id"] == truth["centre_id"] + ":" + truth["source_patient_id"].cast(pl.String)).all()


def test_duplicates_point_to_an_eligible_record_at_another_centre(truth: pl.DataFrame) -> None:
    dups = truth.filter(pl.col("exclusion_reason") == "duplicate_referral")
    assert dups.height > 0
    kept = truth.select(pl.col("patient_id").alias("duplicate_of"), pl.col("centre_id").alias("kept_centre"), "eligible")
    joined = dups.join(kept, on="duplicate_of", how="left", suffix="_kept")
    assert joined["eligible_kept"].all()
    # the kept record sits at the alphabetically first centre (diagnosis dates are equal)
    assert (joined["kept_centre"] < joined["centre_id"]).all()


def test_baseline_counts(eligible: pl.DataFrame) -> None:
    assert count(eligible, pl.col("sex") == "male") == 278
    assert count(eligible, pl.col("braf_v600")) == 69
    assert count(eligible, pl.col("m1c_or_worse")) == 398
    assert count(eligible, pl.col("brain_metastases")) == 134
    assert 26 <= count(eligible, pl.col("combined_with_targeted_or_immuno")) <= 30
    assert 257 <= count(eligible, pl.col("prior_anti_pd1")) <= 261
    assert round(float(eligible["age_years"].median())) == 59
    # brain metastases are M1c (AJCC 7) or M1d (AJCC 8)
    assert count(eligible, pl.col("brain_metastases") & ~pl.col("m1c_or_worse")) == 0


def test_best_response_counts(eligible: pl.DataFrame) -> None:
    bor = dict(eligible.group_by("best_response").len().iter_rows())
    assert bor["CR"] == 2 and bor["PR"] == 56 and bor["SD"] == 96
    assert bor["PD"] + bor["NE"] == 309 and bor["NE"] > 0
    assert count(eligible, pl.col("responder")) == 58
    assert count(eligible, pl.col("disease_control")) == 154
    pd1 = eligible.filter(pl.col("prior_anti_pd1"))
    assert round(100 * pd1["responder"].sum() / pd1.height) == 11


def test_regimens_and_their_responders(eligible: pl.DataFrame) -> None:
    expected = {
        "carboplatin_paclitaxel": (147, 21), "dacarbazine": (118, 12), "temozolomide": (71, 2),
        "taxane": (40, 10), "fotemustine": (29, 3), "other": (58, 10),
    }
    got = {
        row[0]: (row[1], row[2])
        for row in eligible.group_by("regimen_class").agg(pl.len(), pl.col("responder").sum()).iter_rows()
    }
    assert got == expected


def test_subsequent_therapy_counts(eligible: pl.DataFrame) -> None:
    sub = eligible.filter(pl.col("subsequent_therapy"))
    assert sub.height == 221
    classes = dict(sub.group_by("subsequent_therapy_class").len().iter_rows())
    assert classes["pd1_with_or_without_ipilimumab"] == 110
    assert classes["ipilimumab_alone"] == 12
    assert classes["ici_after_other"] == 23
    assert classes["targeted"] + classes["other"] == 221 - 145
    assert sub["subsequent_responder"].sum() == 29
    assert count(sub, pl.col("subsequent_responder") & (pl.col("subsequent_therapy_class") == "pd1_with_or_without_ipilimumab")) == 19
    ici = sub.filter(pl.col("subsequent_therapy_class").is_in(["pd1_with_or_without_ipilimumab", "ipilimumab_alone", "ici_after_other"]))
    assert ici.height == 145 and round(100 * ici["subsequent_responder"].sum() / ici.height) == 16


def test_chemotherapy_duration(eligible: pl.DataFrame) -> None:
    weeks = eligible["chemo_duration_weeks"]
    assert round(float(weeks.median()), 1) == 7.9
    assert float(weeks.min()) == 0.0 and float(weeks.max()) == 108.0


def test_centres_manifest_lists_only_ids_countries_and_files(synthetic_study: Path) -> None:
    manifest = tomllib.loads((synthetic_study / "centres.toml").read_text(encoding="utf-8"))
    centres = manifest["centre"]
    assert len(centres) == 24
    assert {c["country"] for c in centres} == {"CH", "AU", "DE", "US", "IT", "NL", "AT", "FR"}
    for c in centres:
        assert set(c) == {"id", "country", "files"}
        for name in c["files"]:
            assert (synthetic_study / c["id"] / name).is_file()
    folders = {p.name for p in synthetic_study.iterdir() if p.is_dir()}
    assert folders == {c["id"] for c in centres} | {"_truth"}
