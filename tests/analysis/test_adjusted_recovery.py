"""The adjusted comparison recovers a known effect under confounding by indication (issue 15).

Patients are simulated with sicker ones (higher ECOG, elevated LDH, brain metastases) more often given
a single agent, and a proportional-hazards effect of combination chemotherapy; ECOG is missing at
random (more often when LDH is elevated). The true marginal hazard ratio (the estimand of ATE
weighting) is that of the same patients with the regimen assigned at random, computed on a large
sample. Over a few seeds the unadjusted hazard ratio is biased (the truth lies outside its CI) and
the weighted one, complete-case and pooled over imputations, covers the truth (OS at every seed,
PFS at all but at most one: the CIs are 95% ones, the PFS estimates unbiased over 20 seeds).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from oncorwe import protocol, stats
from oncorwe.analysis._adjusted import adjusted_analyses

LOG_HR = float(np.log(0.7))  # conditional effect of combination chemotherapy on the hazard
SEEDS = (1, 2, 3, 4)


def _patients(rng: np.random.Generator, n: int, *, randomised: bool) -> pl.DataFrame:
    ecog = rng.choice(4, size=n, p=[0.35, 0.4, 0.18, 0.07])
    ldh = rng.random(n) < 0.5
    brain = rng.random(n) < 0.3
    pd1 = rng.random(n) < 0.55
    sick = 0.6 * ecog + 0.9 * ldh + 0.9 * brain  # linear in ECOG, as the protocol's propensity model
    p_combination = np.full(n, 0.5) if randomised else 1 / (1 + np.exp(-(1.2 - 1.4 * sick)))
    combination = rng.random(n) < p_combination
    hazard = 0.12 * np.exp(LOG_HR * combination + 0.8 * (ecog >= 2) + 0.5 * ldh + 0.6 * brain + 0.2 * pd1)
    death = rng.exponential(1 / hazard)
    censor = rng.uniform(6, 48, n)
    os = np.minimum(death, censor)
    progression = death * rng.uniform(0.3, 1.0, n)
    pfs = np.minimum(progression, censor)
    return pl.DataFrame({
        "regimen_class": np.where(combination, "carboplatin_paclitaxel", "dacarbazine"),
        "ecog": ecog.astype(np.int64), "ldh_elevated": ldh, "brain_metastases": brain, "prior_anti_pd1": pd1,
        "os_months": os, "os_event": (death <= censor).astype(np.int8),
        "pfs_months": pfs, "pfs_event": (progression <= censor).astype(np.int8),
    })


@pytest.fixture(scope="module")
def true_hrs() -> dict[str, float]:
    """The marginal hazard ratio per endpoint with the regimen assigned at random (200 000 patients)."""
    frame = _patients(np.random.default_rng(99), 200_000, randomised=True)
    out = {}
    for endpoint in ("os", "pfs"):
        fit = stats.cox_ph(frame, time=f"{endpoint}_months", event=f"{endpoint}_event", covariates=["regimen_class"],
                           reference={"regimen_class": "dacarbazine"})
        out[endpoint] = float(fit.to_frame()["hazard_ratio"][0])
    return out


def test_weighting_recovers_the_true_effect_that_the_unadjusted_misses(true_hrs: dict[str, float]) -> None:
    p = protocol.load("goldinger2022")
    assert p.imputation is not None
    p = p.model_copy(update={"imputation": p.imputation.model_copy(update={"m": 5})})
    unadjusted_misses = 0
    pfs_misses = {"weighted_complete_case": 0, "weighted_imputed": 0}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        table = _patients(rng, 1500, randomised=False)
        # ECOG missing at random: more often when LDH is elevated (observed)
        missing = rng.random(table.height) < np.where(table["ldh_elevated"].to_numpy(), 0.3, 0.1)
        table = table.with_columns(ecog=pl.when(pl.Series(missing)).then(None).otherwise(pl.col("ecog")))
        cox = adjusted_analyses(table, p)["adjusted_cox"]
        rows = {(r["endpoint"], r["analysis"]): r for r in cox.iter_rows(named=True)}
        true_hr = true_hrs["os"]
        crude = rows["os", "unadjusted"]
        assert crude["hazard_ratio"] < true_hr  # the healthier get combination: it looks better than it is
        unadjusted_misses += not (crude["lower"] <= true_hr <= crude["upper"])
        for analysis in ("weighted_complete_case", "weighted_imputed"):
            row = rows["os", analysis]
            assert row["lower"] <= true_hr <= row["upper"], (seed, analysis, row, true_hr)
            # PFS: 95% CIs, so a miss now and then is chance: over seeds 1-20 each weighted PFS CI
            # missed once (seed 3, upper 0.751 against 0.755), mean log HR -0.279 (complete cases)
            # and -0.292 (imputed) against -0.282; one seed of these may miss, not more
            row = rows["pfs", analysis]
            pfs_misses[analysis] += not (row["lower"] <= true_hrs["pfs"] <= row["upper"])
    assert unadjusted_misses >= len(SEEDS) - 1
    assert all(misses <= 1 for misses in pfs_misses.values()), pfs_misses
