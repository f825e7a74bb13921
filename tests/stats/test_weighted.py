"""Case-weighted Kaplan-Meier and Cox models against R (``survfit``/``coxph`` with ``weights``) on
real data sets, plus hand-worked and property checks."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.errors import InputError
from oncorwe.stats import cox_ph, kaplan_meier, proportional_hazards_test
from rsupport import run_r
from stats.rdata import assert_close, r_dataset

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@functools.cache
def sets() -> dict[str, pl.DataFrame]:
    """Real data sets as (time, event, covariates..., w_frac, w_int), complete cases."""
    rng = np.random.default_rng(151)
    colon = r_dataset("colon").filter(pl.col("etype") == 2).select(
        "time", pl.col("status").alias("event"), "rx", "age", "sex", "nodes"
    )
    mgus2 = r_dataset("mgus2").select(
        pl.col("futime").alias("time"), pl.col("death").alias("event"), "age", "sex", "hgb"
    )
    rotterdam = r_dataset("rotterdam").select(
        pl.col("dtime").alias("time"), pl.col("death").alias("event"), "age", "meno", "nodes", "chemo"
    )
    melanoma = r_dataset("Melanoma").select(
        "time", (pl.col("status") == 1).cast(pl.Int64).alias("event"), "age", "thickness", "ulcer", "sex"
    )
    out = {}
    for name, frame in {"colon": colon, "mgus2": mgus2, "rotterdam": rotterdam, "Melanoma": melanoma}.items():
        frame = frame.drop_nulls()
        out[name] = frame.with_columns(
            w_frac=pl.Series(np.round(rng.uniform(0.2, 4.0, frame.height), 6)),
            w_int=pl.Series(rng.integers(1, 4, frame.height)),
        )
    return out


COVARIATES = {
    "colon": ["rx", "age", "sex", "nodes"],
    "mgus2": ["age", "sex", "hgb"],
    "rotterdam": ["age", "meno", "nodes", "chemo"],
    "Melanoma": ["age", "thickness", "ulcer", "sex"],
}
WEIGHTS = ("w_frac", "w_int")
CONF_TYPES = ("log", "log-log", "plain")


@functools.cache
def r_km() -> dict[str, pl.DataFrame]:
    inputs = {name: frame for name, frame in sets().items()}
    lines = []
    outputs = []
    for name in inputs:
        for w in WEIGHTS:
            for conf in CONF_TYPES:
                key = f"{name}_{w}_{conf.replace('-', '')}"
                outputs.append(key)
                lines.append(
                    f"f <- survfit(Surv(time, event) ~ 1, data = {name}, weights = {w}, conf.type = '{conf}')\n"
                    f"put('{key}', data.frame(time = f$time, n_risk = f$n.risk, n_event = f$n.event,"
                    f" surv = f$surv, std_err = f$std.err, lower = f$lower, upper = f$upper,"
                    f" median = unname(summary(f)$table['median']), median_lower = unname(summary(f)$table['0.95LCL']),"
                    f" median_upper = unname(summary(f)$table['0.95UCL'])))"
                )
    return run_r("\n".join(lines), inputs, outputs=tuple(outputs))


@pytest.mark.parametrize("conf", CONF_TYPES)
@pytest.mark.parametrize("w", WEIGHTS)
@pytest.mark.parametrize("name", list(COVARIATES))
def test_weighted_kaplan_meier_equals_r_survfit(name: str, w: str, conf: str) -> None:
    frame = sets()[name]
    theirs = r_km()[f"{name}_{w}_{conf.replace('-', '')}"]
    fit = kaplan_meier(frame["time"], frame["event"], weights=frame[w], conf_type=conf)  # type: ignore[arg-type]
    assert fit.weighted
    assert fit.variance == ("jackknife" if w == "w_frac" else "greenwood")
    for column in ("time", "n_risk", "n_event"):
        assert_close(getattr(fit, column), theirs[column], what=f"{name} {w} {column}")
    assert_close(fit.survival, theirs["surv"], what="survival")
    # R keeps se(S) itself for a jackknife curve (logse = FALSE), se(log S) for Greenwood
    positive = fit.survival > 0
    ours_se = np.where(positive, fit.se * np.where(positive, fit.survival, 1.0), 0.0) if w == "w_frac" else fit.se
    assert_close(ours_se[positive], theirs["std_err"].to_numpy()[positive], what="std_err")
    assert_close(fit.lower, theirs["lower"], what="lower")
    assert_close(fit.upper, theirs["upper"], what="upper")
    median = fit.median
    assert_close(
        [median.value, median.lower, median.upper],
        [theirs["median"][0], theirs["median_lower"][0], theirs["median_upper"][0]],
        what="median",
    )


@functools.cache
def r_cox() -> dict[str, pl.DataFrame]:
    lines = []
    outputs = []
    for name, covariates in COVARIATES.items():
        for ties in ("efron", "breslow"):
            key = f"{name}_{ties}"
            outputs.append(key)
            lines.append(
                f"f <- coxph(Surv(time, event) ~ {' + '.join(covariates)}, data = {name}, weights = w_frac,"
                f" robust = TRUE, ties = '{ties}')\n"
                f"put('{key}', data.frame(coef = coef(f), se = sqrt(diag(f$naive.var)), robust_se = sqrt(diag(f$var)),"
                f" loglik0 = f$loglik[1], loglik1 = f$loglik[2], wald = unname(f$wald.test), n = f$n, nevent = f$nevent))"
            )
    return run_r("\n".join(lines), dict(sets()), outputs=tuple(outputs))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("name", list(COVARIATES))
def test_weighted_robust_cox_equals_r_coxph(name: str, ties: str) -> None:
    theirs = r_cox()[f"{name}_{ties}"]
    fit = cox_ph(
        sets()[name], time="time", event="event", covariates=COVARIATES[name],
        weights="w_frac", robust=True, ties=ties,  # type: ignore[arg-type]
    )
    assert_close(fit.coef, theirs["coef"], what="coef")
    assert_close(fit.se, theirs["se"], what="se")
    assert fit.robust_se is not None
    assert_close(fit.robust_se, theirs["robust_se"], what="robust se")
    assert_close(fit.loglik, [theirs["loglik0"][0], theirs["loglik1"][0]], what="loglik")
    assert_close(fit.wald_test.statistic, theirs["wald"][0], what="wald")
    assert (fit.n, fit.n_events) == (theirs["n"][0], theirs["nevent"][0])
    frame = fit.to_frame()
    assert_close(frame["lower"], np.exp(np.array(fit.coef) - 1.959963984540054 * np.array(fit.robust_se)))
    assert fit.to_dict()["weights"] == "w_frac" and fit.to_dict()["concordance"] is None


def test_hand_worked_weighted_kaplan_meier() -> None:
    """Times 1, 2, 2+, 3 with weights 2, 1, 3, 1: risk sets 7, 5, 1; S = 5/7, 5/7 * 4/5, 0."""
    fit = kaplan_meier([1, 2, 2, 3], [1, 1, 0, 1], weights=[2, 1, 3, 1])
    assert fit.variance == "greenwood"  # whole-number weights are frequencies
    assert fit.n_risk.tolist() == [7, 5, 1]
    assert fit.n_event.tolist() == [2, 1, 1]
    assert fit.n_censor.tolist() == [0, 3, 0]
    assert np.allclose(fit.survival, [5 / 7, 4 / 7, 0])
    assert np.allclose(fit.se[:2] ** 2, [2 / (7 * 5), 2 / (7 * 5) + 1 / (5 * 4)])
    assert fit.n_events == 3


def test_integer_weights_equal_replicated_rows() -> None:
    frame = sets()["Melanoma"]
    reps = frame["w_int"].to_numpy()
    long = frame.select(pl.all().repeat_by(pl.col("w_int")).explode())
    weighted = kaplan_meier(frame["time"], frame["event"], weights=reps)
    replicated = kaplan_meier(long["time"], long["event"])
    assert_close(weighted.survival, replicated.survival)
    assert_close(weighted.se, replicated.se)
    # Breslow: replicated rows tie with each other, which Efron's rule (unlike weights) splits
    cw = cox_ph(frame, time="time", event="event", covariates=["age", "thickness"], weights="w_int", ties="breslow")
    cr = cox_ph(long, time="time", event="event", covariates=["age", "thickness"], ties="breslow")
    assert_close(cw.coef, cr.coef, rtol=1e-8)
    assert_close(cw.se, cr.se, rtol=1e-8)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 1), st.floats(0.1, 5.0)), min_size=2, max_size=50)
)
def test_weighted_curve_is_a_survival_curve_and_scale_free(rows: list[tuple[int, int, float]]) -> None:
    time = np.array([r[0] for r in rows], dtype=float)
    event = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows])
    fit = kaplan_meier(time, event, weights=w, robust=True)
    scaled = kaplan_meier(time, event, weights=w * 3.7, robust=True)
    assert np.all(np.diff(fit.survival) <= 1e-12)
    assert np.all((fit.survival >= 0) & (fit.survival <= 1))
    # the estimate and its jackknife variance do not depend on the scale of the weights
    assert np.allclose(fit.survival, scaled.survival)
    finite = np.isfinite(fit.se)
    assert np.allclose(fit.se[finite], scaled.se[finite])
    assert not np.isnan(fit.se).any()


def test_bad_weights_are_named() -> None:
    with pytest.raises(InputError, match="weights: must be > 0"):
        kaplan_meier([1, 2], [1, 0], weights=[1, 0])
    with pytest.raises(InputError, match="length mismatch"):
        kaplan_meier([1, 2], [1, 0], weights=[1])
    with pytest.raises(InputError, match="missing or NaN"):
        kaplan_meier([1, 2], [1, 0], weights=[1, float("nan")])
    frame = pl.DataFrame(
        {"t": [1.0, 2, 3, 4, 5, 6], "e": [1, 0, 1, 1, 1, 0], "x": [0, 1, 1, 0, 1, 0], "w": [1.0, -1, 1, 1, 2, 1]}
    )
    with pytest.raises(InputError, match="weights column 'w'"):
        cox_ph(frame, time="t", event="e", covariates=["x"], weights="w")
    fit = cox_ph(frame.with_columns(w=pl.lit(1.5)), time="t", event="e", covariates=["x"], weights="w")
    with pytest.raises(InputError, match="weighted Cox fit"):
        proportional_hazards_test(fit)
    with pytest.raises(InputError, match="weighted Cox fit"):
        _ = fit.concordance
