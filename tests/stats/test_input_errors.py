"""Bad input ends as one InputError naming the argument and the offending positions, never a NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.stats import kaplan_meier, logrank_test, reverse_km_followup


@pytest.mark.parametrize(
    ("time", "event", "message"),
    [
        (
            [1.0, -2.0, 3.0],
            [1, 0, 1],
            r"time: values must be >= 0; negative values \(e.g. -2\) at positions \[1\]",
        ),
        (
            [1.0, np.nan, 3.0, np.nan],
            [1, 0, 1, 0],
            r"time: missing or NaN values at positions \[1, 3\] \(2 in all\)",
        ),
        ([1.0, np.inf], [1, 0], r"time: infinite values at positions \[1\]"),
        (
            [1.0, 2.0],
            [1, 2],
            r"event: events must be 0/1 \(or False/True\); other values \(e.g. 2\) at positions \[1\]",
        ),
        ([1.0, 2.0], [1, np.nan], r"event: .* at positions \[1\]"),
        ([1.0, 2.0], ["yes", "no"], r"event: .*'yes'.* at positions \[0, 1\]"),
        ([1.0, 2.0, 3.0], [1, 0], r"length mismatch: time has 3, event has 2 values"),
        ([], [], r"time: is empty"),
        (
            ["a", 2.0],
            [1, 0],
            r"time: values must be numbers; non-numeric values \(e.g. 'a'\) at positions \[0\]",
        ),
        (
            [[1.0, 2.0], [3.0, 4.0]],
            [1, 0],
            r"time: a 1-D array of values is required, got shape \(2, 2\)",
        ),
        (5.0, 1, r"time: a 1-D array of values is required, got a scalar"),
        (None, [1], r"time: a 1-D array of values is required, got None"),
    ],
)
def test_kaplan_meier_rejects(time: object, event: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        kaplan_meier(time, event)
    with pytest.raises(InputError, match=message):
        reverse_km_followup(time, event)


def test_many_offending_positions_are_abbreviated() -> None:
    time = -np.arange(1.0, 11.0)
    with pytest.raises(InputError, match=r"positions \[0, 1, 2, 3, 4, \.\.\.\] \(10 in all\)"):
        kaplan_meier(time, np.ones(10))


def test_missing_values_in_frames_are_named() -> None:
    with pytest.raises(InputError, match=r"time: missing or NaN values at positions \[1\]"):
        kaplan_meier(pl.Series([1, None, 3]), [1, 1, 1])
    with pytest.raises(InputError, match=r"time: missing or NaN values at positions \[2\]"):
        kaplan_meier(pd.Series([1, 2, None], dtype="Int64"), [1, 1, 1])
    with pytest.raises(InputError, match=r"event: .* at positions \[0\]"):
        kaplan_meier([1, 2], pl.Series([None, 1]))


def test_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        kaplan_meier([-1], [1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"conf_type": "logit"},
            r"conf_type: must be one of 'log', 'log-log', 'plain', got 'logit'",
        ),
        ({"conf_level": 95}, r"conf_level: must be a number strictly between 0 and 1, got 95"),
        ({"conf_level": 1.0}, r"conf_level"),
    ],
)
def test_kaplan_meier_rejects_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        kaplan_meier([1, 2], [1, 0], **kwargs)  # type: ignore[arg-type]


def test_kaplan_meier_method_arguments() -> None:
    fit = kaplan_meier([1, 2, 3], [1, 0, 1])
    with pytest.raises(InputError, match=r"p: must be a probability in \[0, 1\], got 1.5"):
        fit.quantile(1.5)
    with pytest.raises(InputError, match=r"t: 4 is beyond the last observed time 3"):
        fit.survival_at(4)
    with pytest.raises(InputError, match=r"t: must be a finite time >= 0"):
        fit.survival_at(-1)
    with pytest.raises(InputError, match=r"tau: must be a finite time > 0"):
        fit.restricted_mean(0)


def test_logrank_rejects_bad_groups() -> None:
    time, event = [1, 2, 3, 4], [1, 0, 1, 1]
    with pytest.raises(
        InputError, match=r"group: missing labels \(None/NaN/null\) at positions \[2\]"
    ):
        logrank_test(time, event, [1.0, 2.0, np.nan, 1.0])
    with pytest.raises(InputError, match=r"group: missing labels .* at positions \[0, 3\]"):
        logrank_test(time, event, [None, "b", "b", None])
    with pytest.raises(InputError, match=r"group: missing labels .* at positions \[1\]"):
        logrank_test(time, event, pl.Series(["a", None, "b", "a"]))
    with pytest.raises(InputError, match=r"strata: missing labels .* at positions \[3\]"):
        logrank_test(time, event, ["a", "b", "a", "b"], strata=[1, 1, 2, None])
    with pytest.raises(InputError, match=r"group: all 4 observations are in one group \('a'\)"):
        logrank_test(time, event, ["a"] * 4)
    with pytest.raises(InputError, match=r"length mismatch: time has 4, group has 3"):
        logrank_test(time, event, ["a", "b", "a"])
    with pytest.raises(InputError, match=r"event: fewer than two groups have anyone at risk"):
        logrank_test(time, [0, 0, 0, 0], ["a", "b", "a", "b"])
    with pytest.raises(InputError, match=r"group: labels mix types"):
        logrank_test(time, event, ["a", 1, "a", 1])


def test_logrank_single_member_group_is_fine() -> None:
    result = logrank_test([1, 2, 3, 4, 5], [1, 0, 1, 1, 1], ["a", "a", "a", "a", "b"])
    assert result.n == {"a": 4, "b": 1}
    assert np.isfinite(result.statistic) and 0 <= result.p_value <= 1
