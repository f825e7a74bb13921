"""The second bundled study (OMOP centres only, from its targets file): exact counts, calibrated
medians, real-CDM-like databases (background, vocabulary subset, clinical drugs, source concepts,
episodes) and byte-identical files for the same seed."""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from oncorwe.synth import generate_study

STUDY = "nsclc_docetaxel"


@pytest.fixture(scope="module")
def targets() -> dict:
    with resources.files("oncorwe.synth.data").joinpath(f"{STUDY}_targets.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_study(STUDY, tmp_path_factory.mktemp("nsclc") / "study")


@pytest.fixture(scope="module")
def truth(study: Path) -> pl.DataFrame:
    return pl.read_csv(study / "_truth" / "patients.csv", infer_schema_length=None)


def km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median as R's survival prints it (hand-written here, independent of synth)."""
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    surv, at_risk, k = 1.0, len(t), 0
    points = []
    while k < len(t):
        j = k
        while j < len(t) and t[j] == t[k]:
            j += 1
        deaths = int(e[k:j].sum())
        if deaths:
            surv *= 1 - deaths / at_risk
            points.append((t[k], surv))
        at_risk -= j - k
        k = j
    for n, (when, s) in enumerate(points):
        if abs(s - 0.5) < 1e-12 and n + 1 < len(points):
            return float((when + points[n + 1][0]) / 2)
        if s < 0.5:
            return float(when)
    return float("nan")


def test_counts_by_regimen_and_exclusion_are_exact(truth: pl.DataFrame, targets: dict) -> None:
    eligible = truth.filter(pl.col("eligible"))
    assert eligible.height == targets["study"]["eligible"]
    for name, spec in targets["regimens"].items():
        group = eligible.filter(pl.col("regimen_class") == name)
        assert group.height == spec["patients"], name
        assert int(group["responder"].sum()) == spec["responders"], name
    for reason, count in targets["excluded"].values():
        assert truth.filter(pl.col("exclusion_reason") == reason).height == count, reason
    for bor in ("CR", "SD", "PD", "NE"):
        assert eligible.filter(pl.col("best_response") == bor).height == targets["best_response"][bor], bor
    nintedanib = eligible.filter(pl.col("regimen_class") == "docetaxel_nintedanib")
    assert set(nintedanib["histology"]) == set(targets["regimens"]["docetaxel_nintedanib"]["histology"])


def test_median_pfs_and_os_round_to_the_targets(truth: pl.DataFrame, targets: dict) -> None:
    eligible = truth.filter(pl.col("eligible"))
    for name, spec in targets["regimens"].items():
        group = eligible.filter(pl.col("regimen_class") == name)
        pfs = km_median(group["pfs_months"].to_numpy(), group["pfs_event"].to_numpy().astype(bool))
        os_ = km_median(group["os_months"].to_numpy(), group["os_event"].to_numpy().astype(bool))
        assert round(pfs, 1) == spec["pfs_median"], name
        assert round(os_, 1) == spec["os_median"], name


def test_summary_holds_what_the_truth_says(study: Path, truth: pl.DataFrame) -> None:
    summary = {r["figure"]: r for r in pl.read_csv(study / "_truth" / "summary.csv", infer_schema_length=0).to_dicts()}
    eligible = truth.filter(pl.col("eligible"))
    assert float(summary["orr_all"]["generated"]) == pytest.approx(eligible["responder"].mean())
    assert int(summary["patients_all"]["generated"]) == eligible.height


def test_centres_are_real_cdm_like(study: Path, truth: pl.DataFrame, targets: dict) -> None:
    scope = pl.read_csv(study / "_truth" / "scope.csv")
    multiple = targets["study"]["background_multiple"]
    assert (scope["background_persons"] == scope["study_persons"] * multiple).all()
    docetaxel = 1315942
    episodes_seen = clinical_seen = source_seen = 0
    for centre in targets["centre"]:
        con = duckdb.connect(str(study / centre["id"] / "omop.duckdb"), read_only=True)
        persons = con.execute("SELECT count(*) FROM person").fetchone()[0]
        in_truth = truth.filter(pl.col("centre_id") == centre["id"]).height
        assert persons == in_truth * (1 + multiple)
        # every drug concept reaches its ingredient through concept_ancestor
        unreached = con.execute("""SELECT count(*) FROM (SELECT DISTINCT drug_concept_id FROM drug_exposure) d
            WHERE NOT EXISTS (SELECT 1 FROM concept_ancestor a JOIN concept c ON c.concept_id = a.ancestor_concept_id
                              WHERE a.descendant_concept_id = d.drug_concept_id AND c.concept_class_id = 'Ingredient')""").fetchone()[0]
        assert unreached == 0
        # every condition concept is standard or maps to one
        unmapped = con.execute("""SELECT count(*) FROM (SELECT DISTINCT condition_concept_id FROM condition_occurrence) x
            JOIN concept c ON c.concept_id = x.condition_concept_id
            WHERE c.standard_concept IS NULL AND NOT EXISTS (SELECT 1 FROM concept_relationship r
                  WHERE r.concept_id_1 = x.condition_concept_id AND r.relationship_id = 'Maps to')""").fetchone()[0]
        assert unmapped == 0
        # docetaxel is also given to background persons (another disease): out of scope by condition
        background_docetaxel = con.execute("""SELECT count(DISTINCT e.person_id) FROM drug_exposure e
            JOIN concept_ancestor a ON a.descendant_concept_id = e.drug_concept_id
            WHERE a.ancestor_concept_id = ? AND e.person_id >= 50000000""", [docetaxel]).fetchone()[0]
        assert background_docetaxel > 0
        clinical_seen += con.execute("""SELECT count(*) FROM drug_exposure e JOIN concept c ON c.concept_id = e.drug_concept_id
            WHERE c.concept_class_id = 'Clinical Drug' AND e.person_id < 50000000""").fetchone()[0]
        source_seen += con.execute("""SELECT count(*) FROM condition_occurrence o JOIN concept c ON c.concept_id = o.condition_concept_id
            WHERE c.standard_concept IS NULL""").fetchone()[0]
        n_episodes = con.execute("SELECT count(*) FROM episode").fetchone()[0]
        assert (n_episodes > 0) == bool(centre["episodes"])
        episodes_seen += n_episodes
        con.close()
    assert clinical_seen and source_seen and episodes_seen


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}

    first = generate_study(STUDY, tmp_path / "a", seed=5, background=2)
    again = generate_study(STUDY, tmp_path / "b", seed=5, background=2)
    assert digest(first) == digest(again)


def test_flagship_omop_centres_take_a_background(tmp_path: Path) -> None:
    out = generate_study("goldinger2022", tmp_path / "g", patients=300, omop_only=True, background=3)
    truth = pl.read_csv(out / "_truth" / "patients.csv", infer_schema_length=None)
    persons = 0
    for folder in sorted(p for p in out.iterdir() if (p / "omop.duckdb").exists()):
        con = duckdb.connect(str(folder / "omop.duckdb"), read_only=True)
        persons += con.execute("SELECT count(*) FROM person").fetchone()[0]
        assert con.execute("SELECT count(*) FROM concept_ancestor").fetchone()[0] > 0
        con.close()
    assert persons == truth.height * 4
