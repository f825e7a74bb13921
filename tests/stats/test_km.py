"""Kaplan-Meier against R's survfit (curves, std errors, CIs, medians, quantiles, survival at t,
restricted means, reverse-KM follow-up) and against a curve worked out by hand."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from oncorwe.stats import Estimate, kaplan_meier, reverse_km_followup
from rsupport import run_r
from stats.rdata import SURVIVAL_SETS, assert_close, survival_outcome

CONF_TYPES = ("log", "log-log", "plain")
PROBS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def _random_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20221)
    ties_time = rng.integers(0, 12, size=300).astype(float)  # heavy ties, zeros included
    ties_event = (rng.random(300) < 0.6).astype(int)
    # a median exactly on a flat step: S = 0.5 over [3, 5)
    flat_time = np.array([1.0, 2, 3, 4, 5, 6])
    flat_event = np.array([1, 1, 1, 0, 1, 1])
    ends_half_time = np.array([1.0, 2, 3, 4])  # the curve ends at exactly 0.5
    ends_half_event = np.array([1, 1, 0, 0])
    continuous_time = np.round(rng.exponential(10, size=150), 3)
    continuous_event = (rng.random(150) < 0.7).astype(int)
    return {
        "ties": (ties_time, ties_event),
        "flat_median": (flat_time, flat_event),
        "ends_at_half": (ends_half_time, ends_half_event),
        "continuous": (continuous_time, continuous_event),
        "all_censored": (np.array([2.0, 3, 3, 7]), np.array([0, 0, 0, 0])),
        "single_event": (np.array([5.0]), np.array([1])),
        "single_censored": (np.array([5.0]), np.array([0])),
        "zeros": (np.array([0.0, 0, 0, 1, 2, 2, 3, 5]), np.array([1, 0, 1, 1, 0, 1, 0, 1])),
        "all_die": (np.array([1.0, 1, 2, 3]), np.array([1, 1, 1, 1])),
        # floating-point near-ties (0.1 + 0.2 vs 0.3, ...): R's timefix makes them one time
        "near_ties": (
            np.array([0.1 + 0.2, 0.3, 0.9999999999, 1, 2, 2.000000001, 3, 3, 4]),
            np.array([1, 0, 1, 0, 1, 1, 0, 1, 1]),
        ),
    }


@functools.cache
def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {name: survival_outcome(name)[:2] for name in SURVIVAL_SETS}
    out.update(_random_cases())
    return {
        name: (np.asarray(t, dtype=float), np.asarray(e, dtype=int)) for name, (t, e) in out.items()
    }


def _tau(time: np.ndarray) -> float:
    return float(np.quantile(time, 0.6)) or 1.0


def _far_tau(time: np.ndarray) -> float:
    """A restriction time beyond the last follow-up (the curve is carried flat to it)."""
    return float(time.max()) * 1.25 + 1.0


def _probe_times(time: np.ndarray) -> list[float]:
    grid = [0.0, float(time.min()) / 2, float(np.median(time)), float(time.max())]
    return sorted({round(t, 6) for t in grid} | {float(time[0])})


@functools.cache
def r_results() -> dict[str, pl.DataFrame]:
    """One R run: every case x conf type -> curve, summary table, quantiles, survival at times."""
    rows = []
    for name, (time, event) in cases().items():
        rows.append(pl.DataFrame({"case": name, "time": time, "event": event}))
    data = pl.concat(rows)
    taus = pl.DataFrame(
        {
            "case": list(cases()),
            "tau": [_tau(t) for t, _ in cases().values()],
            "far": [_far_tau(t) for t, _ in cases().values()],
        }
    )
    probes = pl.concat(
        pl.DataFrame({"case": name, "t": _probe_times(t)}) for name, (t, _) in cases().items()
    )
    script = f"""
    curves <- list(); tables <- list(); quants <- list(); at <- list(); rev <- list()
    probs <- c({", ".join(map(str, PROBS))})
    for (name in unique(data$case)) {{
      d <- data[data$case == name, ]
      tau <- taus$tau[taus$case == name]
      far <- taus$far[taus$case == name]
      times <- probes$t[probes$case == name]
      for (ct in c("log", "log-log", "plain")) for (cl in c(0.95, 0.9)) {{
        f <- survfit(Surv(time, event) ~ 1, data = d, conf.type = ct, conf.int = cl)
        key <- data.frame(case = name, conf_type = ct, conf_level = cl)
        curves[[length(curves) + 1]] <- cbind(key, time = f$time, n_risk = f$n.risk,
          n_event = f$n.event, n_censor = f$n.censor, surv = f$surv,
          std_err = ifelse(is.infinite(f$std.err), -1, f$std.err),
          lower = f$lower, upper = f$upper)
        tb <- summary(f, rmean = tau)$table
        tf <- summary(f, rmean = far)$table
        tables[[length(tables) + 1]] <- cbind(key, median = tb[["median"]],
          lcl = tb[[paste0(cl, "LCL")]], ucl = tb[[paste0(cl, "UCL")]],
          rmean = tb[["rmean"]], se_rmean = tb[["se(rmean)"]],
          rmean_far = tf[["rmean"]], se_rmean_far = tf[["se(rmean)"]])
        q <- quantile(f, probs)
        quants[[length(quants) + 1]] <- cbind(key, p = probs, q = unname(q$quantile),
          lower = unname(q$lower), upper = unname(q$upper))
        s <- summary(f, times = times, extend = TRUE)
        at[[length(at) + 1]] <- cbind(key, t = s$time, surv = s$surv, lower = s$lower,
          upper = s$upper)
        r <- survfit(Surv(time, 1 - event) ~ 1, data = d, conf.type = ct, conf.int = cl)
        rt <- summary(r)$table
        rev[[length(rev) + 1]] <- cbind(key, median = rt[["median"]],
          lcl = rt[[paste0(cl, "LCL")]], ucl = rt[[paste0(cl, "UCL")]])
      }}
    }}
    put("curves", do.call(rbind, curves)); put("tables", do.call(rbind, tables))
    put("quants", do.call(rbind, quants)); put("at", do.call(rbind, at))
    put("rev", do.call(rbind, rev))
    """
    return run_r(
        script,
        inputs={"data": data, "taus": taus, "probes": probes},
        outputs=("curves", "tables", "quants", "at", "rev"),
    )


def _select(frame: pl.DataFrame, name: str, conf_type: str, conf_level: float) -> pl.DataFrame:
    return frame.filter(
        (pl.col("case") == name)
        & (pl.col("conf_type") == conf_type)
        & ((pl.col("conf_level") - conf_level).abs() < 1e-12)
    )


PARAMS = [
    (name, conf_type, level)
    for name in [*SURVIVAL_SETS, *_random_cases()]
    for conf_type in CONF_TYPES
    for level in (0.95, 0.9)
]


@pytest.mark.parametrize(("name", "conf_type", "level"), PARAMS)
def test_curve_matches_r(name: str, conf_type: str, level: float) -> None:
    time, event = cases()[name]
    fit = kaplan_meier(time, event, conf_type=conf_type, conf_level=level)  # type: ignore[arg-type]
    ours = fit.to_frame()
    theirs = _select(r_results()["curves"], name, conf_type, level)
    assert ours.height == theirs.height
    for column in ("time", "n_risk", "n_event", "n_censor"):
        assert_close(ours[column], theirs[column], rtol=0, what=column)
    assert_close(ours["survival"], theirs["surv"], what="survival")
    ours_se = ours["se"].to_numpy()
    assert_close(np.where(np.isinf(ours_se), -1.0, ours_se), theirs["std_err"], what="std_err")
    assert_close(ours["lower"], theirs["lower"].fill_null(np.nan), what="lower")
    assert_close(ours["upper"], theirs["upper"].fill_null(np.nan), what="upper")


@pytest.mark.parametrize(("name", "conf_type", "level"), PARAMS)
def test_median_quantiles_rmean_match_r(name: str, conf_type: str, level: float) -> None:
    time, event = cases()[name]
    fit = kaplan_meier(time, event, conf_type=conf_type, conf_level=level)  # type: ignore[arg-type]
    table = _select(r_results()["tables"], name, conf_type, level).fill_null(np.nan)
    assert_close(list(fit.median), table.select("median", "lcl", "ucl").row(0), what="median")
    rmean = fit.restricted_mean(_tau(time))
    assert_close(
        [rmean.value, rmean.se], table.select("rmean", "se_rmean").row(0), what="rmean"
    )
    far = fit.restricted_mean(_far_tau(time))
    assert_close(
        [far.value, far.se], table.select("rmean_far", "se_rmean_far").row(0), what="rmean far"
    )
    quants = _select(r_results()["quants"], name, conf_type, level).fill_null(np.nan)
    ours = np.array([list(fit.quantile(p)) for p in PROBS])
    assert_close(ours, quants.select("q", "lower", "upper").to_numpy(), what="quantiles")


@pytest.mark.parametrize(("name", "conf_type", "level"), PARAMS)
def test_survival_at_and_reverse_km_match_r(name: str, conf_type: str, level: float) -> None:
    time, event = cases()[name]
    fit = kaplan_meier(time, event, conf_type=conf_type, conf_level=level)  # type: ignore[arg-type]
    at = _select(r_results()["at"], name, conf_type, level).fill_null(np.nan)
    ours = np.array([list(fit.survival_at(t, extend=True)) for t in at["t"]])
    assert_close(ours, at.select("surv", "lower", "upper").to_numpy(), what="survival_at")
    rev = _select(r_results()["rev"], name, conf_type, level).fill_null(np.nan)
    followup = reverse_km_followup(time, event, conf_type=conf_type, conf_level=level)  # type: ignore[arg-type]
    assert_close(list(followup), rev.select("median", "lcl", "ucl").row(0), what="reverse KM")


def test_hand_worked_curve() -> None:
    """Unsorted times with ties, a censoring tied with a death, censored-only times, time zero.

    time  0  2  2  2  3  5  5  7  9
    event 0  1  1  0  0  1  0  1  0   (given in a shuffled order)

    t=0: n=9, d=0, c=1                       S = 1
    t=2: n=8, d=2, c=1  S = 6/8 = 0.75       G = 2/(8*6)  = 1/24
    t=3: n=5, d=0, c=1  S = 0.75
    t=5: n=4, d=1, c=1  S = 0.75*3/4         G += 1/(4*3) = 1/12
    t=7: n=2, d=1, c=0  S = 0.5625*1/2       G += 1/(2*1) = 1/2
    t=9: n=1, d=0, c=1
    """
    time = [5, 2, 9, 0, 2, 7, 3, 2, 5]
    event = [1, 0, 0, 0, 1, 1, 0, 1, 0]
    fit = kaplan_meier(time, event)
    frame = fit.to_frame()
    assert frame["time"].to_list() == [0, 2, 3, 5, 7, 9]
    assert frame["n_risk"].to_list() == [9, 8, 5, 4, 2, 1]
    assert frame["n_event"].to_list() == [0, 2, 0, 1, 1, 0]
    assert frame["n_censor"].to_list() == [1, 1, 1, 1, 0, 1]
    surv = [1, 0.75, 0.75, 0.5625, 0.28125, 0.28125]
    assert_close(frame["survival"], surv, rtol=1e-14)
    greenwood = np.cumsum([0, 1 / 24, 0, 1 / 12, 1 / 2, 0])
    assert_close(frame["se"], np.sqrt(greenwood), rtol=1e-14)
    z = 1.959963984540054
    assert_close(frame["lower"], np.array(surv) * np.exp(-z * np.sqrt(greenwood)), rtol=1e-12)
    assert_close(
        frame["upper"], np.minimum(np.array(surv) * np.exp(z * np.sqrt(greenwood)), 1), rtol=1e-12
    )
    # median: S first <= 0.5 at t=7; restricted mean to 8: 2*1 + 3*0.75 + 2*0.5625 + 1*0.28125
    assert fit.median.value == 7
    rmean = fit.restricted_mean(8)
    assert rmean.value == pytest.approx(2 + 2.25 + 1.125 + 0.28125, rel=1e-14)
    # se: sum over event times of (area after t)^2 * d / (n (n - d))
    area_after_2, area_after_5, area_after_7 = 2.25 + 1.125 + 0.28125, 1.125 + 0.28125, 0.28125
    variance = area_after_2**2 / 24 + area_after_5**2 / 12 + area_after_7**2 / 2
    assert rmean.se == pytest.approx(math.sqrt(variance), rel=1e-14)
    assert fit.survival_at(4) == Estimate(0.75, frame["lower"][1], frame["upper"][1])
    assert fit.survival_at(1.5) == Estimate(1.0, 1.0, 1.0)


def test_median_on_flat_step_takes_midpoint() -> None:
    # S = 5/6 * 4/5 * 3/4 = 0.5 on [3, 5) (a censoring at 4): R reports (3 + 5) / 2
    fit = kaplan_meier([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1])
    assert fit.survival_at(4).value == pytest.approx(0.5, rel=1e-14)
    assert fit.median.value == 4
    assert fit.quantile(0.5).value == 4
    # the curve ends at exactly 0.5: print(fit) says 2, quantile(fit, 0.5) says (2 + 4) / 2
    ends = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0])
    assert ends.median.value == 2
    assert ends.quantile(0.5).value == 3
    fit2 = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert fit2.median.value == 2.5
    assert fit2.quantile(0.5).value == 2.5
    assert fit2.quantile(0.25).value == 1.5


def test_accepts_lists_polars_and_pandas_columns() -> None:
    time, event = cases()["lung"]
    reference = kaplan_meier(time, event).to_frame()
    frame = pl.DataFrame({"t": time, "e": event})
    pandas_frame = pd.DataFrame({"t": time, "e": event.astype(bool)})
    for t, e in (
        (list(time), list(event)),
        (frame["t"], frame["e"]),
        (pandas_frame["t"], pandas_frame["e"]),
    ):
        assert kaplan_meier(t, e).to_frame().equals(reference)


def test_result_is_immutable_and_printable() -> None:
    fit = kaplan_meier([1, 2, 3], [1, 0, 1])
    with pytest.raises(ValueError):
        fit.survival[0] = 0.5
    with pytest.raises(AttributeError):
        fit.n = 5  # type: ignore[misc]
    assert repr(fit).startswith("KaplanMeier(n=3, events=2")
    summary = fit.to_dict()
    assert summary["n"] == 3 and summary["table"]["n_risk"] == [3, 2, 1]


def test_deterministic() -> None:
    time, event = cases()["ties"]
    first = kaplan_meier(time, event).to_frame()
    second = kaplan_meier(time.copy(), event.copy()).to_frame()
    assert first.equals(second)


def test_numpy_scalars_are_accepted_as_arguments() -> None:
    fit = kaplan_meier([1, 2, 3], [1, 0, 1], conf_level=np.float64(0.9))
    assert fit.survival_at(np.int64(2)) == fit.survival_at(2.0)
    assert fit.quantile(np.float32(0.5)) == fit.quantile(0.5)
    assert fit.restricted_mean(np.int64(3)) == fit.restricted_mean(3.0)


def _fuzz_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Many tiny data sets with heavy ties, zeros and few events: where edge cases live."""
    rng = np.random.default_rng(99)
    out = {}
    for i in range(40):
        n = int(rng.integers(1, 25))
        time = rng.integers(0, 7, n).astype(float)
        event = (rng.random(n) < rng.uniform(0.1, 1.0)).astype(int)
        out[f"fuzz{i}"] = (time, event)
    return out


@functools.cache
def r_fuzz() -> dict[str, pl.DataFrame]:
    data = pl.concat(
        pl.DataFrame({"case": name, "time": t, "event": e})
        for name, (t, e) in _fuzz_cases().items()
    )
    probs = ", ".join(map(str, PROBS))
    script = f"""
    curves <- list(); quants <- list(); tables <- list()
    for (name in unique(data$case)) for (ct in c("log", "log-log", "plain")) {{
      d <- data[data$case == name, ]
      f <- survfit(Surv(time, event) ~ 1, data = d, conf.type = ct)
      key <- data.frame(case = name, conf_type = ct)
      curves[[length(curves) + 1]] <- cbind(key, surv = f$surv, lower = f$lower, upper = f$upper)
      q <- quantile(f, c({probs}))
      quants[[length(quants) + 1]] <- cbind(key, q = unname(q$quantile),
        lower = unname(q$lower), upper = unname(q$upper))
      tb <- summary(f)$table
      tables[[length(tables) + 1]] <- cbind(key, median = tb[["median"]],
        lcl = tb[["0.95LCL"]], ucl = tb[["0.95UCL"]])
    }}
    put("curves", do.call(rbind, curves)); put("quants", do.call(rbind, quants))
    put("tables", do.call(rbind, tables))
    """
    return run_r(script, inputs={"data": data}, outputs=("curves", "quants", "tables"))


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_many_tiny_data_sets_match_r(conf_type: str) -> None:
    r = r_fuzz()
    for name, (time, event) in _fuzz_cases().items():
        fit = kaplan_meier(time, event, conf_type=conf_type)  # type: ignore[arg-type]
        where = (pl.col("case") == name) & (pl.col("conf_type") == conf_type)
        curve = r["curves"].filter(where).fill_null(np.nan)
        assert_close(fit.survival, curve["surv"], what=f"{name} survival")
        assert_close(fit.lower, curve["lower"], what=f"{name} lower")
        assert_close(fit.upper, curve["upper"], what=f"{name} upper")
        quants = r["quants"].filter(where).fill_null(np.nan)
        ours = np.array([list(fit.quantile(p)) for p in PROBS])
        assert_close(
            ours, quants.select("q", "lower", "upper").to_numpy(), what=f"{name} quantiles"
        )
        table = r["tables"].filter(where).fill_null(np.nan)
        assert_close(
            list(fit.median), table.select("median", "lcl", "ucl").row(0), what=f"{name} median"
        )
