"""Large studies (OMOP form, streamed by worker processes): determinism, proportions, calibration.

The million-patient run itself is a benchmark (``benchmarks/bench_synth.py``), not a test; here a
study at the size where the OMOP-only form starts, and one of 50,000 records, stand for it.
"""

from __future__ import annotations

import filecmp
import tomllib
from pathlib import Path

import duckdb
import polars as pl
import pytest
from published_medians import PUBLISHED_MEDIANS, km_median, subset

from oncorwe.stats import kaplan_meier, reverse_km_followup
from oncorwe.synth import LARGE_STUDY, generate_study

PUBLISHED_ELIGIBLE = 463
DEFAULT_RECORDS = 556  # 463 eligible + 93 excluded at the default size


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_large_study_same_seed_same_bytes(tmp_path: Path) -> None:
    first = generate_study("goldinger2022", tmp_path / "a", patients=LARGE_STUDY, seed=11)
    again = generate_study("goldinger2022", tmp_path / "b", patients=LARGE_STUDY, seed=11)
    files = all_files(first)
    assert files == all_files(again)
    assert sum(name.endswith("omop.duckdb") for name in files) == 24  # every centre in OMOP form
    assert not [name for name in files if name.endswith((".csv", ".xlsx", ".tsv")) and not name.startswith("_truth")]
    _, mismatch, errors = filecmp.cmpfiles(first, again, files, shallow=False)
    assert mismatch == [] and errors == []
    manifest = tomllib.loads((first / "centres.toml").read_text(encoding="utf-8"))
    assert all(centre["files"] == ["omop.duckdb"] for centre in manifest["centre"])


@pytest.fixture(scope="module")
def study_50k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_study("goldinger2022", tmp_path_factory.mktemp("scale") / "s50k", patients=50_000)


@pytest.fixture(scope="module")
def truth_50k(study_50k: Path) -> pl.DataFrame:
    return pl.read_csv(study_50k / "_truth" / "patients.csv", infer_schema_length=None)


def test_50k_records_scale_the_published_counts(study_50k: Path, truth_50k: pl.DataFrame) -> None:
    eligible = truth_50k.filter(pl.col("eligible"))
    n = round(50_000 * PUBLISHED_ELIGIBLE / DEFAULT_RECORDS)
    assert eligible.height == n
    scale = n / PUBLISHED_ELIGIBLE
    assert eligible.filter(pl.col("sex") == "male").height == round(278 * scale)
    assert eligible.filter(pl.col("braf_v600") == True).height == round(69 * scale)  # noqa: E712
    assert eligible.filter(pl.col("brain_metastases")).height == round(134 * scale)
    assert eligible.filter(pl.col("prior_anti_pd1")).height == round(259 * scale)
    # the published percentages of the eligible set, at their published precision
    assert round(100 * float(eligible["responder"].mean()), 1) == 12.5  # type: ignore[arg-type]
    pd1 = eligible.filter(pl.col("prior_anti_pd1"))
    assert round(100 * float(pd1["responder"].mean())) == 11  # type: ignore[arg-type]
    # large studies carry no duplicate referrals: every record is a person in some centre's CDM
    assert truth_50k.filter(pl.col("exclusion_reason") == "duplicate_referral").height == 0
    persons = 0
    for path in sorted(study_50k.glob("*/omop.duckdb")):
        con = duckdb.connect(str(path), read_only=True)
        persons += con.execute("SELECT count(*) FROM person").fetchone()[0]  # type: ignore[index]
        con.close()
    assert persons == truth_50k.height


@pytest.mark.parametrize(("name", "time", "published"), PUBLISHED_MEDIANS)
def test_50k_truth_medians_round_to_published(truth_50k: pl.DataFrame, name: str | None, time: str, published: float) -> None:
    eligible = truth_50k.filter(pl.col("eligible"))
    assert round(km_median(subset(eligible, name), f"{time}_months", f"{time}_event"), 1) == published


def test_50k_truth_rates_follow_up_and_duration(study_50k: Path, truth_50k: pl.DataFrame) -> None:
    eligible = truth_50k.filter(pl.col("eligible"))
    km = kaplan_meier(eligible["pfs_months"].to_numpy(), eligible["pfs_event"].to_numpy())
    assert round(100 * float(km.survival_at(12.0).value)) == 12
    follow_up = reverse_km_followup(eligible["os_months"].to_numpy(), eligible["os_event"].to_numpy())
    assert round(float(follow_up.value)) == 23
    weeks = eligible["chemo_duration_weeks"]
    assert round(float(weeks.median()), 1) == 7.9  # type: ignore[arg-type]
    assert (round(float(weeks.min())), round(float(weeks.max()))) == (0, 108)  # type: ignore[arg-type]
    calibration = pl.read_csv(study_50k / "_truth" / "calibration.csv", infer_schema_length=None)
    assert calibration.filter(pl.col("figure") == "converged")["generated"].item() == "true"
