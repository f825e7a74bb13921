"""Competing risks against R: Aalen-Johansen curves (survfit with a factor status), Gray's test
(cmprsk::cuminc) and the Fine-Gray model (finegray + coxph), on mgus2, rotterdam and Melanoma."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.errors import InputError
from oncorwe.stats import cumulative_incidence, fine_gray, gray_test, kaplan_meier
from rsupport import run_r
from stats.rdata import assert_close, r_dataset

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@functools.cache
def sets() -> dict[str, tuple[pl.DataFrame, list[str]]]:
    """(time, event 0/1/2, group, covariates) per data set, with the covariates of the models."""
    mgus2 = r_dataset("mgus2").with_columns(
        time=pl.when(pl.col("pstat") == 0).then(pl.col("futime")).otherwise(pl.col("ptime")),
        event=pl.when(pl.col("pstat") == 0).then(2 * pl.col("death")).otherwise(1),
        group=pl.col("sex"),
    ).select("time", "event", "group", "age", "sex", "hgb").drop_nulls()
    # rotterdam: recurrence, with death before recurrence as the competing event
    rotterdam = r_dataset("rotterdam").with_columns(
        time=pl.when(pl.col("recur") == 1).then(pl.col("rtime")).otherwise(pl.col("dtime")),
        event=pl.when(pl.col("recur") == 1).then(1).otherwise(2 * pl.col("death")),
        group=pl.col("grade").cast(pl.String),
    ).select("time", "event", "group", "age", "meno", "nodes", "chemo")
    # Melanoma: 1 died of melanoma, 2 alive (censored), 3 died of another cause
    melanoma = r_dataset("Melanoma").with_columns(
        event=pl.col("status").replace_strict({1: 1, 2: 0, 3: 2}),
        group=pl.when(pl.col("thickness") < 2).then(pl.lit("thin"))
        .when(pl.col("thickness") < 5).then(pl.lit("medium")).otherwise(pl.lit("thick")),
    ).select("time", "event", "group", "age", "thickness", "ulcer", "sex")
    return {
        "mgus2": (mgus2, ["age", "sex", "hgb"]),
        "rotterdam": (rotterdam, ["age", "meno", "nodes", "chemo"]),
        "Melanoma": (melanoma, ["age", "thickness", "ulcer", "sex"]),
    }


@functools.cache
def r_results() -> dict[str, pl.DataFrame]:
    lines = ["suppressPackageStartupMessages(library(cmprsk))"]
    outputs = []
    for name, (_, covariates) in sets().items():
        outputs += [f"{name}_aj", f"{name}_gray"]
        lines.append(
            f"d <- {name}; d$ev <- factor(d$event, 0:2)\n"
            "f <- survfit(Surv(time, ev) ~ 1, data = d)\n"
            f"put('{name}_aj', data.frame(time = f$time, n_risk = f$n.risk[, 1], p1 = f$pstate[, 2],"
            " p2 = f$pstate[, 3], se1 = f$std.err[, 2], se2 = f$std.err[, 3], lo1 = f$lower[, 2], up1 = f$upper[, 2]))\n"
            "g <- cuminc(d$time, d$event, d$group, cencode = 0)\n"
            f"put('{name}_gray', data.frame(stat = g$Tests[, 'stat'], df = g$Tests[, 'df']))"
        )
        for cause in (1, 2):
            for ties in ("efron", "breslow"):
                key = f"{name}_fg{cause}_{ties}"
                outputs.append(key)
                lines.append(
                    f"fg <- finegray(Surv(time, ev) ~ {' + '.join(covariates)}, data = d, etype = '{cause}')\n"
                    f"fit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ {' + '.join(covariates)}, weights = fgwt,"
                    f" data = fg, ties = '{ties}')\n"
                    f"nv <- if (is.null(fit$naive.var)) fit$var else fit$naive.var\n"
                    f"put('{key}', data.frame(coef = coef(fit), se = sqrt(diag(nv)), ll0 = fit$loglik[1], ll1 = fit$loglik[2]))"
                )
    inputs = {name: frame for name, (frame, _) in sets().items()}
    return run_r("\n".join(lines), inputs, outputs=tuple(outputs))


@pytest.mark.parametrize("name", list(sets()))
def test_aalen_johansen_equals_r_survfit(name: str) -> None:
    frame, _ = sets()[name]
    theirs = r_results()[f"{name}_aj"]
    ours = cumulative_incidence(frame["time"], frame["event"])
    assert ours.causes == (1, 2)
    for cause in (1, 2):
        curve = ours.curve(cause)
        assert_close(curve["time"], theirs["time"], what="time")
        assert_close(curve["n_risk"], theirs["n_risk"], what="n_risk")
        assert_close(curve["estimate"], theirs[f"p{cause}"], what=f"pstate {cause}")
        assert_close(curve["se"], theirs[f"se{cause}"], what=f"std.err {cause}")
    one = ours.curve(1)
    assert_close(one["lower"], theirs["lo1"], what="lower")
    assert_close(one["upper"], theirs["up1"], what="upper")


@pytest.mark.parametrize("name", list(sets()))
def test_gray_test_equals_cmprsk_cuminc(name: str) -> None:
    frame, _ = sets()[name]
    theirs = r_results()[f"{name}_gray"]
    ours = gray_test(frame["time"], frame["event"], frame["group"])
    assert_close([ours[1].statistic, ours[2].statistic], theirs["stat"], what="Gray statistic")
    assert [ours[1].df, ours[2].df] == theirs["df"].to_list()
    grouped = cumulative_incidence(frame["time"], frame["event"], group=frame["group"])
    assert grouped.gray_tests == ours
    assert set(grouped.groups) == set(frame["group"].unique().to_list())


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("cause", [1, 2])
@pytest.mark.parametrize("name", list(sets()))
def test_fine_gray_equals_r_finegray_coxph(name: str, cause: int, ties: str) -> None:
    frame, covariates = sets()[name]
    theirs = r_results()[f"{name}_fg{cause}_{ties}"]
    fit = fine_gray(frame, time="time", event="event", cause=cause, covariates=covariates, ties=ties)  # type: ignore[arg-type]
    assert_close(fit.coef, theirs["coef"], what="coef")
    assert_close(fit.se, theirs["se"], what="se")
    assert_close(fit.loglik, [theirs["ll0"][0], theirs["ll1"][0]], what="loglik")
    assert fit.n_events == int((frame["event"] == cause).sum())
    assert [term.split("=")[0] for term in fit.to_frame()["term"].to_list()] == covariates


def test_hand_worked_aalen_johansen() -> None:
    """Times 1(c1) 2(c2) 2(cens) 3(c1) 3(c1) 4(cens): S = 1, 5/6, 4/6, 4/6 * 1/3."""
    ours = cumulative_incidence([1, 2, 2, 3, 3, 4], [1, 2, 0, 1, 1, 0])
    one, two = ours.curve(1), ours.curve(2)
    assert np.allclose(one["estimate"], [1 / 6, 1 / 6, 1 / 6 + (4 / 6) * (2 / 3), 1 / 6 + (4 / 6) * (2 / 3)])
    assert np.allclose(two["estimate"], [0, 1 / 6, 1 / 6, 1 / 6])
    assert ours.at(2.5, 1).value == pytest.approx(1 / 6)
    assert ours.at(0.5, 1).value == 0


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 3)), min_size=2, max_size=60))
def test_incidences_and_survival_add_to_one(rows: list[tuple[int, int]]) -> None:
    time = np.array([r[0] for r in rows], dtype=float)
    event = np.array([r[1] for r in rows])
    if not (event > 0).any():
        with pytest.raises(InputError, match="no event"):
            cumulative_incidence(time, event)
        return
    ours = cumulative_incidence(time, event)
    km = kaplan_meier(time, (event > 0).astype(int))
    total = sum(ours.curve(c)["estimate"].to_numpy() for c in ours.causes)
    assert np.allclose(total + km.survival, 1)
    for c in ours.causes:
        estimate = ours.curve(c)["estimate"].to_numpy()
        assert np.all(np.diff(estimate) >= -1e-12)
        assert np.all(np.isfinite(ours.curve(c)["se"].to_numpy()))


def test_bad_input() -> None:
    with pytest.raises(InputError, match="whole numbers"):
        cumulative_incidence([1, 2], [1, 1.5])
    with pytest.raises(InputError, match="at least two groups"):
        gray_test([1, 2], [1, 0], ["a", "a"])
    frame = pl.DataFrame({"t": [1.0, 2, 3], "e": [0, 2, 0], "x": [1.0, 2, 3]})
    with pytest.raises(InputError, match="no event with code 1"):
        fine_gray(frame, time="t", event="e", cause=1, covariates=["x"])
