"""Landmark restriction: who is kept, time reset, responder status known only by the landmark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.stats import kaplan_meier, landmark, logrank_test

#             0    1    2    3    4    5     6
TIME = [1.0, 3.0, 3.0, 6.0, 8.0, 10.0, 12.0]
EVENT = [1, 1, 0, 0, 1, 0, 1]
RESPONSE = [None, 2.0, np.nan, 3.0, 5.0, 2.5, None]


def test_keeps_only_patients_followed_beyond_the_landmark_and_resets_time() -> None:
    data = landmark(TIME, EVENT, 3.0)
    # positions 0 (died at 1), 1 (died at 3: not alive after the landmark) and 2 (censored at 3)
    assert data.positions.tolist() == [3, 4, 5, 6]
    assert data.kept.tolist() == [False, False, False, True, True, True, True]
    assert data.n_excluded == 3 and data.n == 4
    assert data.time.tolist() == [3.0, 5.0, 7.0, 9.0]
    assert data.event.tolist() == [0, 1, 0, 1]
    assert data.responder is None and data.covariates is None


def test_response_after_the_landmark_counts_as_non_response() -> None:
    data = landmark(TIME, EVENT, 3.0, response_time=RESPONSE)
    # kept 3..6: responded at 3 (on the landmark: yes), 5 (after: no), 2.5 (yes), never (no)
    assert data.responder is not None
    assert data.responder.tolist() == [True, False, True, False]
    assert data.to_dict() == {
        "landmark_time": 3.0,
        "n_kept": 4,
        "n_excluded": 3,
        "n_events": 2,
        "n_responders": 2,
    }


def test_covariates_are_restricted_in_every_accepted_form() -> None:
    ages = [50, 61, 72, 43, 55, 66, 70]
    sexes = ["f", "m", "f", "m", "f", "m", "f"]
    expected = pl.DataFrame({"age": [43, 55, 66, 70], "sex": ["m", "f", "m", "f"]})
    for covariates in (
        {"age": np.array(ages), "sex": sexes},
        pl.DataFrame({"age": ages, "sex": sexes}),
        pd.DataFrame({"age": ages, "sex": sexes}),
    ):
        data = landmark(TIME, EVENT, 3.0, covariates=covariates)
        assert data.covariates is not None
        assert data.covariates.equals(expected)
    frame = landmark(TIME, EVENT, 3.0, response_time=RESPONSE, covariates={"age": ages}).to_frame()
    assert frame.columns == ["position", "time", "event", "responder", "age"]


def test_landmark_then_logrank_equals_manual_subset() -> None:
    rng = np.random.default_rng(11)
    time = rng.exponential(12, 200).round(1)
    event = (rng.random(200) < 0.7).astype(int)
    response = np.where(rng.random(200) < 0.4, rng.uniform(0, 10, 200), np.nan)
    response = np.where(response > time, np.nan, response)
    data = landmark(time, event, 6.0, response_time=response)
    keep = time > 6.0
    manual_group = ~np.isnan(response[keep]) & (response[keep] <= 6.0)
    ours = logrank_test(data.time, data.event, data.responder)
    manual = logrank_test(time[keep] - 6.0, event[keep], manual_group)
    assert ours.statistic == manual.statistic and ours.observed == manual.observed
    assert (
        kaplan_meier(data.time, data.event)
        .to_frame()
        .equals(kaplan_meier(time[keep] - 6.0, event[keep]).to_frame())
    )


def test_landmark_zero_keeps_everyone_with_positive_time() -> None:
    data = landmark([0.0, 1.0, 2.0], [1, 0, 1], 0)
    assert data.positions.tolist() == [1, 2] and data.time.tolist() == [1.0, 2.0]


def test_result_is_immutable() -> None:
    data = landmark(TIME, EVENT, 3.0)
    with pytest.raises(ValueError):
        data.time[0] = 0.0
    with pytest.raises(AttributeError):
        data.n_excluded = 0  # type: ignore[misc]
    assert repr(data) == "LandmarkData(landmark_time=3, kept=4, excluded=3, events=2)"


def test_bad_input() -> None:
    with pytest.raises(InputError, match="landmark_time: must be a finite time >= 0"):
        landmark(TIME, EVENT, -1)
    with pytest.raises(InputError, match="landmark_time: no patient is in follow-up beyond 12"):
        landmark(TIME, EVENT, 12)
    with pytest.raises(
        InputError, match=r"response_time: response after the end of follow-up at positions \[0\]"
    ):
        landmark(TIME, EVENT, 3.0, response_time=[2.0, None, None, None, None, None, None])
    with pytest.raises(InputError, match="length mismatch: time has 7, response_time has 2"):
        landmark(TIME, EVENT, 3.0, response_time=[1.0, 2.0])
    with pytest.raises(InputError, match="length mismatch: time has 7, covariates have 2 rows"):
        landmark(TIME, EVENT, 3.0, covariates={"age": [1, 2]})
    with pytest.raises(InputError, match="reserved"):
        landmark(TIME, EVENT, 3.0, covariates={"time": TIME})
    with pytest.raises(InputError, match="covariates: must be a dict"):
        landmark(TIME, EVENT, 3.0, covariates=[1, 2, 3])
