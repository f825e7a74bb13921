"""The real Liu et al. 2019 cohort (Nat Med; 144 patients) in its two public encodings: the
supplementary TSV (times in days, coded columns with legends in the header) and the cBioPortal
clinical file (times in months of 30 days, words). Both must give identical patients, times to the
day and responses.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from liu_study import ATTRIBUTES, CBIO, CBIO_UNITS, TSV, TSV_UNITS, liu_study
from oncorwe import harmonise
from oncorwe.errors import DataError
from oncorwe.model import CanonicalModel


@pytest.fixture(scope="module")
def both(liu2019_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[CanonicalModel, CanonicalModel]:
    root = tmp_path_factory.mktemp("liu")
    tsv = liu_study(root / "tsv", liu2019_dir, [TSV], TSV_UNITS)
    cbio = liu_study(root / "cbio", liu2019_dir, [CBIO, ATTRIBUTES], CBIO_UNITS)
    return harmonise.run(tsv), harmonise.run(cbio)


def test_every_row_is_accepted_and_reconciled(both: tuple[CanonicalModel, CanonicalModel]) -> None:
    for model in both:
        rec = model.reconciliation.to_dicts()
        assert len(rec) == 1
        assert (rec[0]["records_read"], rec[0]["accepted"], rec[0]["quarantined"], rec[0]["merged"]) == (144, 144, 0, 0)
        assert model.quarantine.height == 0
        assert model.patients.height == 144


def test_both_encodings_give_identical_patients(both: tuple[CanonicalModel, CanonicalModel]) -> None:
    tsv, cbio = both
    # the cBioPortal patient file holds neither age nor primary type: compare what both hold
    shared = [c for c in tsv.patients.columns if c not in ("source", "reported_age_years", "primary_site")]
    assert tsv.patients.select(shared).equals(cbio.patients.select(shared))
    assert tsv.patients["sex"].value_counts().sort("sex").rows() == [("female", 60), ("male", 84)]


def test_both_encodings_give_identical_times_and_responses(both: tuple[CanonicalModel, CanonicalModel]) -> None:
    tsv, cbio = both
    for name in ("assessments", "events"):
        assert tsv.tables()[name].drop("source").equals(cbio.tables()[name].drop("source")), name
    exposures = [c for c in tsv.drug_exposures.columns if c not in ("source", "source_text")]
    assert tsv.drug_exposures.select(exposures).equals(cbio.drug_exposures.select(exposures))


def test_durations_are_laid_out_from_the_nominal_index_date(both: tuple[CanonicalModel, CanonicalModel]) -> None:
    tsv, _ = both
    # Patient1: PD at 93 days (progressed), OS 283 days (dead), time to best response 93 days
    index = dt.date(2000, 1, 1)
    events = tsv.events.filter(pl.col("patient_id") == "DFCI:Patient1").sort("event_type")
    assert events.select("event_type", "event_date").rows() == [
        ("death", index + dt.timedelta(days=283)),
        ("last_contact", index + dt.timedelta(days=283)),
        ("progression", index + dt.timedelta(days=93)),
    ]
    best = tsv.assessments.filter(pl.col("patient_id") == "DFCI:Patient1").to_dicts()
    assert [(b["kind"], b["response"], b["assessment_date"]) for b in best] == [
        ("best_overall", "PD", index + dt.timedelta(days=93))]
    counts = dict(tsv.assessments["response"].value_counts().rows())
    assert sum(counts.values()) == 144


def test_a_duration_without_a_unit_stops_with_a_clear_error(liu2019_dir: Path, tmp_path: Path) -> None:
    root = liu_study(tmp_path / "tsv", liu2019_dir, [TSV], 'time_units = { PFS = "days", OS = "days" }')
    with pytest.raises(DataError) as caught:
        harmonise.run(root)
    [line] = caught.value.problems
    assert "centre DFCI" in line and TSV in line and "'TimeToBR'" in line and "time_units" in line


def test_ldh_flag_and_prior_anti_ctla4_are_carried(both: tuple[CanonicalModel, CanonicalModel],
                                                   liu2019_dir: Path) -> None:
    tsv, cbio = both
    raw = pl.read_csv(liu2019_dir / TSV, separator="\t", infer_schema_length=0)
    flags = dict(zip(raw["Sample ID"].to_list(), raw["LDH_Elevated"].to_list(), strict=True))
    prior = {s for s, p in zip(raw["Sample ID"].to_list(), raw["priorCTLA4"].to_list(), strict=True) if p == "1"}
    for model in both:
        got = dict(model.patients.select("patient_id", "ldh_elevated").rows())
        assert got == {f"DFCI:{s}": {"1": True, "0": False}.get(f) for s, f in flags.items()}
        # the patients' own LDH values stay as measured, without an upper limit of normal
        assert model.patients["ldh_uln"].null_count() == 144
        ipi = model.drug_exposures.filter(pl.col("ingredient") == "ipilimumab")
        assert set(ipi["patient_id"].to_list()) == {f"DFCI:{s}" for s in prior} and ipi.height == len(prior) == 60
        # undated in the source: laid out 180 days before the nominal index date, said so in the text
        assert set(ipi["start_date"].to_list()) == {dt.date(2000, 1, 1) - dt.timedelta(days=180)}
        assert all("nominal date" in text for text in ipi["source_text"].to_list())
        assert ipi["drug_class"].unique().to_list() == ["anti_ctla4"]
    assert tsv.patients["ldh_elevated"].equals(cbio.patients["ldh_elevated"])
