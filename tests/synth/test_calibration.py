"""Kaplan-Meier estimates from the generated dates round to the published figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from published_medians import PUBLISHED_MEDIANS, km_median, subset

from oncorwe.model.schema import DAYS_PER_MONTH
from oncorwe.stats import kaplan_meier, reverse_km_followup


@pytest.mark.parametrize(("name", "time", "published"), PUBLISHED_MEDIANS)
def test_truth_medians_round_to_published(eligible: pl.DataFrame, name: str | None, time: str, published: float) -> None:
    assert round(km_median(subset(eligible, name), f"{time}_months", f"{time}_event"), 1) == published


def test_truth_rates_and_follow_up(eligible: pl.DataFrame) -> None:
    km = kaplan_meier(eligible["pfs_months"].to_numpy(), eligible["pfs_event"].to_numpy())
    assert round(100 * float(km.survival_at(12.0).value)) == 12
    follow_up = reverse_km_followup(eligible["os_months"].to_numpy(), eligible["os_event"].to_numpy())
    assert round(float(follow_up.value)) == 23
    # the published 95% CIs (log-log/log differ little at this size) are close
    pfs = km.median
    assert 2.0 <= pfs.lower <= 2.6 <= pfs.upper <= 3.2
    os_km = kaplan_meier(eligible["os_months"].to_numpy(), eligible["os_event"].to_numpy()).median
    assert 6.0 <= os_km.lower <= 7.1 <= os_km.upper <= 8.5


def test_responders_live_longer_and_risk_factors_shorten_survival(eligible: pl.DataFrame) -> None:
    def os_median(expr: pl.Expr) -> float:
        return km_median(eligible.filter(expr), "os_months", "os_event")

    assert os_median(pl.col("responder")) > 2 * os_median(~pl.col("responder"))
    assert os_median(pl.col("brain_metastases")) < os_median(~pl.col("brain_metastases"))
    assert os_median(pl.col("ecog") >= 2) < os_median(pl.col("ecog") <= 1)
    assert os_median(pl.col("ldh_elevated") == True) < os_median(pl.col("ldh_elevated") == False)  # noqa: E712


def raw_times(eligible: pl.DataFrame, raw: dict) -> pl.DataFrame:
    """PFS and OS recomputed from the raw files' dates by the rules of docs/definitions.md."""
    rows = []
    for pid, index_text in eligible.select("patient_id", "index_date").iter_rows():
        rp = raw[pid]
        index = dt.date.fromisoformat(index_text)
        assert index in rp.treatment_starts, f"{pid}: no treatment starts on the index date"
        after = sorted((d, r) for d, r in rp.assessments if d > index)
        events = [d for d, r in after if r == "PD"][:1] + [d for d in rp.progression_dates if d > index]
        if rp.death is not None:
            events.append(rp.death)
        if events:
            pfs_day, pfs_event = min(events), 1
        else:
            evaluable = [d for d, r in after if r == "EVAL"]
            pfs_day, pfs_event = (max(evaluable) if evaluable else index), 0
        os_day = rp.death or rp.last_contact
        rows.append((pid, (pfs_day - index).days / DAYS_PER_MONTH, pfs_event, (os_day - index).days / DAYS_PER_MONTH, int(rp.death is not None)))
    return pl.DataFrame(rows, schema=["patient_id", "pfs_raw", "pfs_event_raw", "os_raw", "os_event_raw"], orient="row")


def test_raw_files_give_the_truth_for_every_patient(eligible: pl.DataFrame, raw_study: dict) -> None:
    raw = raw_times(eligible, raw_study).join(eligible, on="patient_id")
    assert raw.height == 463
    assert np.allclose(raw["pfs_raw"], raw["pfs_months"]) and (raw["pfs_event_raw"] == raw["pfs_event"]).all()
    assert np.allclose(raw["os_raw"], raw["os_months"]) and (raw["os_event_raw"] == raw["os_event"]).all()
    assert round(km_median(raw, "pfs_raw", "pfs_event_raw"), 1) == 2.6
    assert round(km_median(raw, "os_raw", "os_event_raw"), 1) == 7.1
    responders = raw.filter(pl.col("responder"))
    assert round(km_median(responders, "pfs_raw", "pfs_event_raw"), 1) == 8.7
