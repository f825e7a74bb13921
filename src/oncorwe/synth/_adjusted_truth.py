"""The true effect of the regimen that the confounding-adjusted comparison estimates (issue 15).

The synthetic study assigns regimens by indication (sicker patients more often get a single agent;
``unpublished.indication`` of the targets file), so its unadjusted hazard ratio is confounded. What
the propensity-weighted (ATE) analysis estimates is the marginal hazard ratio the same generator
gives when the regimen is assigned at random (the arms, reference and outcomes are the protocol's
``[adjusted]`` section's): the same kind of patients (covariates, prognostic
score), the same responders per regimen class, the same outcome and censoring model (the
calibrated knobs of this study's own time model), no indication. It is computed here, for each
outcome, as the Cox (Efron) hazard ratio of each arm against the reference arm in a large cohort
(``unpublished.adjusted_truth.patients`` eligible patients) drawn from a seed of its own, so none of
the study's other draws moves and its files stay byte-identical.

The generator's hazards are not proportional in the arm (the regimen acts through the responders
per class and piecewise hazards), so this marginal hazard ratio is an average over the follow-up
the study's censoring allows, as the estimates it is compared with are. Its Monte Carlo standard
error (the Cox standard error of the large cohort) is written beside it.

The regimen acts through the responders of its class, drawn as exact counts among the class's own
patients preferring a good prognosis: a patient responds when the key log(prognosis weight) +
Gumbel noise clears the class's threshold, and that threshold depends on who else got the class.
Under the indication the combination class holds the healthier patients, so its threshold is
higher (a given patient less likely to respond) and the single agents' lower than with the regimen
assigned at random. The randomised cohort therefore responds by the thresholds a cohort of the
same size drawn with the indication gives (``Cohort.response_thresholds``): one response model per
class in both worlds, the potential outcomes the weighted analysis of the study estimates. With the
randomised thresholds instead, the truth sat about 0.03 (PFS) and 0.02 (OS) below the weighted
estimate of 100,000 patients with the exact (saturated) propensity (docs/synthetic-data.md).
"""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.model.schema import DAYS_PER_MONTH
from oncorwe.protocol import AdjustedComparison
from oncorwe.synth._baseline import draw_cohort, stream
from oncorwe.synth._times import Calibration, times_for_knobs

__all__ = ["EFFECT_COLUMNS", "TrueEffect", "true_effects", "write_effects"]

EFFECT_COLUMNS = (
    "endpoint", "estimand", "arm", "reference", "hazard_ratio", "log_hazard_ratio", "monte_carlo_se",
    "patients", "events",
)
_ESTIMAND = "ATE"  # the marginal effect over the whole population: regimen assigned at random


@dataclass(frozen=True)
class TrueEffect:
    """One row of ``_truth/effects.csv``: the true marginal hazard ratio of ``arm`` against
    ``reference`` for ``endpoint`` ("pfs" or "os"), with its Monte Carlo standard error (log scale)
    from ``patients`` randomised patients of whom ``events`` had the event."""

    endpoint: str
    estimand: str
    arm: str
    reference: str
    hazard_ratio: float
    log_hazard_ratio: float
    monte_carlo_se: float
    patients: int
    events: int


def _truth_seed(seed: int) -> int:
    """The seed of the large randomised cohort: from a stream of its own, never the study's seed."""
    return int(stream(seed, "adjusted_truth").integers(2**31 - 1))


def _indicated_seed(seed: int) -> int:
    """The seed of the large cohort drawn with the indication that gives the response thresholds."""
    return int(stream(seed, "adjusted_truth_indicated").integers(2**31 - 1))


def true_effects(targets: dict[str, Any], seed: int, calibration: Calibration,
                 adjusted: AdjustedComparison | None) -> tuple[TrueEffect, ...]:
    """The true marginal hazard ratios of the protocol's adjusted comparison (``adjusted``: its
    arms, reference arm and outcomes), from ``unpublished.adjusted_truth.patients`` randomised
    patients (none without that table or without the comparison); ``calibration`` is this study's
    (its knobs are the outcome model).
    """
    unpublished = targets.get("unpublished", {})
    spec = unpublished.get("adjusted_truth")
    if not spec or adjusted is None:
        return ()
    if "indication" not in unpublished:
        raise ValueError("synth targets: unpublished.adjusted_truth needs unpublished.indication")
    arms = {str(a): [str(x) for x in levels] for a, levels in adjusted.arms.items()}
    reference = adjusted.reference
    if not calibration.knobs:
        raise ValueError("synth: the calibration carries no knobs (the outcome model) for the true effect")
    randomised = copy.deepcopy(targets)
    randomised["unpublished"]["indication"]["strength"] = 0.0
    n = int(spec["patients"])
    truth_seed = _truth_seed(seed)
    # each class's response threshold as the study's indication makes it (the exact responders of
    # a class are drawn among its own patients, so who else gets the class moves the threshold):
    # the randomised patients respond by these, the response model the weighted analysis sees
    indicated = draw_cohort(targets, n, {}, _indicated_seed(seed))
    cohort = draw_cohort(randomised, n, {}, truth_seed, response_thresholds=indicated.response_thresholds)
    times = times_for_knobs(cohort, targets, truth_seed, calibration.knobs)
    arm_of = {level: arm for arm, levels in arms.items() for level in levels}
    arm = np.array([arm_of.get(str(c)) for c in cohort.regimen_class], dtype=object)
    keep = arm != None  # noqa: E711 (elementwise on an object array)
    out = []
    for endpoint in adjusted.outcomes:
        frame = pl.DataFrame({
            "months": times[endpoint][keep] / DAYS_PER_MONTH,
            "event": times[f"{endpoint}_event"][keep].astype(np.int8),
            "arm": arm[keep].astype(str),
        })
        fit = stats.cox_ph(frame, time="months", event="event", covariates=["arm"], reference={"arm": reference})
        for row in fit.to_frame().iter_rows(named=True):
            out.append(TrueEffect(
                endpoint=str(endpoint), estimand=_ESTIMAND, arm=str(row["term"]).partition("=")[2], reference=reference,
                hazard_ratio=float(row["hazard_ratio"]), log_hazard_ratio=float(row["coef"]),
                monte_carlo_se=float(row["se"]), patients=frame.height, events=int(frame["event"].sum())))
    return tuple(out)


def write_effects(path: Path, effects: tuple[TrueEffect, ...]) -> None:
    """``_truth/effects.csv``: one row per effect (floats by repr), nothing when there is none."""
    if not effects:
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EFFECT_COLUMNS)
    for e in effects:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in (getattr(e, c) for c in EFFECT_COLUMNS)])
    path.write_text(buf.getvalue(), encoding="utf-8")
