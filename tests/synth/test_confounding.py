"""The synthetic flagship has confounding by indication and ECOG/LDH missing at random (issue 15):
over a few seeds the unadjusted hazard ratio of combination against single-agent chemotherapy is
biased, and the propensity-weighted one (complete cases, and pooled over imputations) recovers the
true effect the generator writes into its truth table (``_truth/effects.csv``: the hazard ratio the
same outcome model gives when the regimen is assigned at random, docs/synthetic-data.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from oncorwe import protocol
from oncorwe.analysis._adjusted import adjusted_analyses
from oncorwe.model.schema import DAYS_PER_MONTH
from oncorwe.synth import generate_study
from oncorwe.synth._adjusted_truth import EFFECT_COLUMNS, true_effects
from oncorwe.synth._allocate import scale_counts
from oncorwe.synth._baseline import draw_cohort
from oncorwe.synth._config import load_targets
from oncorwe.synth._times import draw_times

SEEDS = (1, 11, 2022)
PATIENTS = 5000  # records; about 4 200 eligible, 3 600 in the two arms


def _analysis_frame(targets: dict[str, Any], seed: int) -> tuple[pl.DataFrame, dict[str, float]]:
    """The eligible patients as the analysis table holds them (recorded ECOG and LDH only), and the
    true hazard ratio per endpoint as the truth table holds it."""
    n_eligible = round(PATIENTS * targets["study"]["eligible"] / (targets["study"]["eligible"] + sum(targets["excluded"].values())))
    excluded = scale_counts(dict(targets["excluded"]), PATIENTS - n_eligible)
    excluded.pop("duplicate_referral")
    cohort = draw_cohort(targets, n_eligible, excluded, seed)
    # the calibration to the published figures need not converge at 5 000 records for this test:
    # the truth is the same generator's effect with the regimen assigned at random
    times, calibration = draw_times(cohort, targets, seed)
    truth = {e.endpoint: e.hazard_ratio for e in true_effects(targets, seed, calibration, protocol.load("goldinger2022").adjusted)}
    e = cohort.eligible
    return pl.DataFrame({
        "regimen_class": cohort.regimen_class[e].astype(str),
        "ecog": pl.Series([None if v < 0 else int(v) for v in cohort.ecog[e]], dtype=pl.Int64),
        "ldh_elevated": pl.Series([None if np.isnan(v) else bool(v > 1) for v in cohort.ldh_ratio[e]], dtype=pl.Boolean),
        "brain_metastases": cohort.brain[e],
        "prior_anti_pd1": np.isin(cohort.prior[e], ["anti_pd1", "combined", "sequence"]),
        "os_months": times.os_days[e] / DAYS_PER_MONTH, "os_event": times.os_event[e].astype(np.int8),
        "pfs_months": times.pfs_days[e] / DAYS_PER_MONTH,
        "pfs_event": (times.pfs_kind[e] != "censored").astype(np.int8),
    }), truth


def _hazard_ratios(frame: pl.DataFrame, p: protocol.Protocol) -> dict[tuple[str, str], dict[str, Any]]:
    cox = adjusted_analyses(frame, p)["adjusted_cox"]
    return {(r["endpoint"], r["analysis"]): r for r in cox.iter_rows(named=True)}


@pytest.fixture(scope="module")
def flagship() -> protocol.Protocol:
    p = protocol.load("goldinger2022")
    assert p.imputation is not None
    return p.model_copy(update={"imputation": p.imputation.model_copy(update={"m": 5})})


def test_sicker_patients_more_often_get_a_single_agent_and_ecog_is_missing_at_random() -> None:
    frame, _truth = _analysis_frame(load_targets("goldinger2022"), 2022)
    combination = frame.filter(pl.col("regimen_class") == "carboplatin_paclitaxel")
    single = frame.filter(pl.col("regimen_class").is_in(["dacarbazine", "temozolomide", "taxane", "fotemustine"]))
    for column in ("brain_metastases", "ldh_elevated"):
        assert single[column].mean() > combination[column].mean() + 0.05, column  # type: ignore[operator]
    assert (single["ecog"] >= 2).mean() > (combination["ecog"] >= 2).mean() + 0.05  # type: ignore[operator]
    with_brain = frame.filter(pl.col("brain_metastases"))["ecog"].null_count() / frame["brain_metastases"].sum()
    without = frame.filter(~pl.col("brain_metastases"))["ecog"].null_count() / (~frame["brain_metastases"]).sum()
    assert with_brain > 1.5 * without


def test_weighting_recovers_the_true_effect_the_unadjusted_misses(flagship: protocol.Protocol) -> None:
    targets = load_targets("goldinger2022")
    for seed in SEEDS:
        frame, truth = _analysis_frame(targets, seed)
        rows = _hazard_ratios(frame, flagship)
        crude = rows["os", "unadjusted"]
        assert crude["upper"] < truth["os"], (seed, crude, truth)  # biased: the healthier get combinations
        for endpoint in ("pfs", "os"):
            for analysis in ("weighted_complete_case", "weighted_imputed"):
                row = rows[endpoint, analysis]
                assert row["lower"] <= truth[endpoint] <= row["upper"], (seed, endpoint, analysis, row, truth)


def test_a_class_responds_by_its_threshold_as_by_its_exact_count() -> None:
    """The response thresholds of a cohort, given back with the same draws, pick the same responders
    (the threshold lies between the k-th and the (k+1)-th key); the true effect's randomised cohort
    responds by the thresholds of a cohort drawn with the indication, which differ from the
    randomised ones (the combination class holds the healthier patients: its threshold is higher)."""
    targets = load_targets("goldinger2022")
    exact = draw_cohort(targets, 3000, {}, 4)
    again = draw_cohort(targets, 3000, {}, 4, response_thresholds=exact.response_thresholds)
    assert (again.bor == exact.bor).all() and (again.regimen_class == exact.regimen_class).all()
    randomised = {**targets, "unpublished": {**targets["unpublished"], "indication": {
        **targets["unpublished"]["indication"], "strength": 0.0}}}
    indicated, at_random = draw_cohort(targets, 100_000, {}, 8), draw_cohort(randomised, 100_000, {}, 8)
    combination, single = "carboplatin_paclitaxel", "dacarbazine"
    assert indicated.response_thresholds[combination] > at_random.response_thresholds[combination] + 0.05
    assert indicated.response_thresholds[single] < at_random.response_thresholds[single] - 0.02


def test_the_truth_table_holds_the_true_effect(tmp_path: Path) -> None:
    study = generate_study("goldinger2022", tmp_path / "study", seed=5)
    effects = pl.read_csv(study / "_truth" / "effects.csv")
    assert tuple(effects.columns) == EFFECT_COLUMNS
    assert effects.select("endpoint", "estimand", "arm", "reference").rows() == [
        ("pfs", "ATE", "combination", "single_agent"), ("os", "ATE", "combination", "single_agent")]
    # the randomised effect is near no effect (the regimen acts only through the responders per
    # class), known to a Monte Carlo error far below the study's own standard error (about 0.1)
    assert ((effects["hazard_ratio"] - 1).abs() < 0.1).all()
    assert (effects["monte_carlo_se"] < 0.01).all() and (effects["patients"] > 150_000).all()
    assert np.allclose(np.log(effects["hazard_ratio"].to_numpy()), effects["log_hazard_ratio"].to_numpy(), rtol=1e-12)
    again = generate_study("goldinger2022", tmp_path / "again", seed=5)
    assert (again / "_truth" / "effects.csv").read_bytes() == (study / "_truth" / "effects.csv").read_bytes()
