"""Propensity weights and balance against R (binomial glm, nnet::multinom, hand-coded cobalt SMDs),
Rubin's rules against mice::pool.scalar, E-values against the published worked examples."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats import CovariateWarning, balance, e_value, pool_rubin, propensity_weights
from rsupport import run_r
from stats.rdata import assert_close, r_dataset

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@functools.cache
def cases() -> dict[str, tuple[pl.DataFrame, str, list[str]]]:
    """(frame, treatment, covariates): 2 levels (glm) and 3 levels (multinom) on real data."""
    colon = (
        r_dataset("colon").filter(pl.col("etype") == 2)
        .select("rx", "age", "sex", "nodes", pl.col("differ").cast(pl.String), "obstruct").drop_nulls()
    )
    rotterdam = r_dataset("rotterdam").select(
        pl.col("chemo").cast(pl.String), "age", "meno", "size", "grade", "nodes", "pgr", "er"
    )
    melanoma = r_dataset("Melanoma").select(pl.col("ulcer").cast(pl.String), "age", "thickness", "sex")
    mgus2 = r_dataset("mgus2").select("sex", "age", "hgb", "creat").drop_nulls()
    return {
        "colon": (colon, "rx", ["age", "sex", "nodes", "differ", "obstruct"]),
        "rotterdam": (rotterdam, "chemo", ["age", "meno", "size", "grade", "nodes", "pgr", "er"]),
        "Melanoma": (melanoma, "ulcer", ["age", "thickness", "sex"]),
        "mgus2": (mgus2, "sex", ["age", "hgb", "creat"]),
    }


@functools.cache
def r_propensity() -> dict[str, pl.DataFrame]:
    lines = ["suppressPackageStartupMessages(library(nnet))"]
    inputs = {}
    for name, (frame, treatment, covariates) in cases().items():
        inputs[name] = frame
        formula = f"{treatment} ~ {' + '.join(covariates)}"
        factors = "".join(
            f"{name}${c} <- factor({name}${c})\n" for c in [treatment, *covariates] if frame[c].dtype == pl.String
        )
        lines.append(factors)
        if frame[treatment].n_unique() == 2:
            lines.append(
                f"m <- glm({formula}, data = {name}, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))\n"
                f"p2 <- fitted(m); p <- cbind(1 - p2, p2)"
            )
        else:
            # multinom's quasi-Newton search is stopped close to the maximum with tight tolerances
            lines.append(
                f"m <- multinom({formula}, data = {name}, trace = FALSE, maxit = 10000, reltol = 1e-15, abstol = 1e-300)\n"
                f"p <- fitted(m)"
            )
        lines.append(
            f"a <- as.integer({name}${treatment}); own <- p[cbind(seq_along(a), a)]\n"
            f"put('{name}', data.frame(p = p, ate = 1 / own, att = p[, 1] / own,"
            f" overlap = (1 / own) / rowSums(1 / p)))"
        )
    return run_r("\n".join(lines), inputs, outputs=tuple(cases()))


@pytest.mark.parametrize("name", list(cases()))
def test_propensity_scores_and_weights_equal_r(name: str) -> None:
    frame, treatment, covariates = cases()[name]
    theirs = r_propensity()[name]
    k = frame[treatment].n_unique()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CovariateWarning)
        # real data hold patients almost never given their treatment: no cap here
        ate = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="ATE", max_weight=None)
        first = ate.levels[0]
        att = propensity_weights(
            frame, treatment=treatment, covariates=covariates, estimand="ATT", reference=first, max_weight=None
        )
        overlap = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="overlap")
    tolerance = 1e-6
    assert_close(ate.propensity, theirs.select(pl.all().exclude("ate", "att", "overlap")).to_numpy()[:, :k],
                 rtol=tolerance, what="propensity")
    assert_close(ate.weights, theirs["ate"], rtol=tolerance, what="ATE")
    assert_close(att.weights, theirs["att"], rtol=tolerance, what="ATT")
    assert_close(overlap.weights, theirs["overlap"], rtol=tolerance, what="overlap")
    assert ate.weights.size == frame.height and ate.kept.all()


def test_hand_worked_two_arm_weights() -> None:
    """One binary covariate, saturated model: p(treated | x) is the observed share in each stratum."""
    frame = pl.DataFrame({"arm": ["a", "a", "a", "b", "a", "b", "b", "b"], "x": [0, 0, 0, 0, 1, 1, 1, 1]})
    fit = propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATE")
    # x = 0: p(b) = 1/4; x = 1: p(b) = 3/4
    assert np.allclose(fit.propensity[:, 1], [0.25] * 4 + [0.75] * 4)
    assert np.allclose(fit.weights, [4 / 3, 4 / 3, 4 / 3, 4, 4, 4 / 3, 4 / 3, 4 / 3])
    overlap = propensity_weights(frame, treatment="arm", covariates=["x"], estimand="overlap")
    assert np.allclose(overlap.weights, [0.25, 0.25, 0.25, 0.75, 0.75, 0.25, 0.25, 0.25])  # 1 - p_own
    att = propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATT", reference="b")
    assert np.allclose(att.weights, [1 / 3, 1 / 3, 1 / 3, 1, 3, 1, 1, 1])
    stable = propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATE", stabilize=True)
    assert np.allclose(stable.weights, fit.weights * 0.5)
    assert fit.effective_sample_size()["a"] == pytest.approx((4 / 3 * 3 + 4) ** 2 / (3 * 16 / 9 + 16))


def test_trimming_refits_and_truncation_caps() -> None:
    frame, treatment, covariates = cases()["rotterdam"]
    fit = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="ATE", trim=0.05, max_weight=None)
    assert fit.n_trimmed > 0
    assert np.all(fit.weights[~fit.kept] == 0) and np.all(np.isnan(fit.propensity[~fit.kept]))
    assert np.all(fit.weights[fit.kept] > 0)
    capped = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="ATE", truncate=0.95, max_weight=None)
    assert capped.truncated_at is not None
    assert capped.weights.max() == pytest.approx(capped.truncated_at)
    assert np.sum(capped.weights == capped.truncated_at) >= 0.05 * frame.height - 1


def test_bad_input_is_named() -> None:
    separated = pl.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "dose": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]})
    with pytest.raises(ConvergenceError, match=r"separate the treatments.*dose"):
        propensity_weights(separated, treatment="arm", covariates=["dose"], estimand="ATE")
    rng = np.random.default_rng(5)
    x = rng.normal(size=200)
    arm = np.where(rng.random(200) < 1 / (1 + np.exp(-4 * x)), "b", "a")
    frame = pl.DataFrame({"arm": arm, "x": x})
    with pytest.raises(InputError, match="exceed max_weight=5"):
        propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATE", max_weight=5)
    with pytest.raises(InputError, match=r"no patient of treatment arm '[ac]' is left after trimming at 0\.3"):
        tiny = pl.concat([frame, pl.DataFrame({"arm": ["c"] * 12, "x": np.linspace(-3, 3, 12)})])
        propensity_weights(tiny, treatment="arm", covariates=["x"], estimand="ATE", trim=0.3)
    with pytest.warns(CovariateWarning, match=r"covariate 'flag' is constant .* in treatment arm 'a'"):
        flagged = frame.with_columns(flag=pl.Series(np.where((arm == "b") & (np.arange(200) % 3 == 0), 1, 0)))
        with pytest.raises(ConvergenceError, match="flag"):
            propensity_weights(flagged, treatment="arm", covariates=["x", "flag"], estimand="ATE")
    with pytest.raises(InputError, match="reference: the ATT needs"):
        propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATT")
    with pytest.raises(InputError, match="column 'x' has missing"):
        propensity_weights(frame.with_columns(x=pl.when(pl.col("x") > 2).then(None).otherwise(pl.col("x"))),
                           treatment="arm", covariates=["x"], estimand="ATE")
    with pytest.raises(InputError, match="estimand"):
        propensity_weights(frame, treatment="arm", covariates=["x"], estimand="ATC")  # type: ignore[arg-type]


@functools.cache
def r_balance() -> dict[str, pl.DataFrame]:
    """SMDs written out in R: weighted means, unweighted pooled SD (p(1-p) for 0/1 columns)."""
    frame, treatment, covariates = cases()["colon"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CovariateWarning)
        w = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="overlap").weights
    data = frame.with_columns(w=pl.Series(w), one=pl.lit(1.0))
    script = """
    X <- cbind(age = colon$age, sex = colon$sex, nodes = colon$nodes,
               `differ=1` = colon$differ == "1", `differ=2` = colon$differ == "2", `differ=3` = colon$differ == "3",
               obstruct = colon$obstruct)
    lev <- sort(unique(colon$rx))
    out <- NULL
    for (wname in c("one", "w")) {
      w <- colon[[wname]]
      for (j in colnames(X)) {
        x <- X[, j]; bin <- all(x %in% c(0, 1))
        v <- sapply(lev, function(l) { y <- x[colon$rx == l]; if (bin) mean(y) * (1 - mean(y)) else var(y) })
        m <- sapply(lev, function(l) weighted.mean(x[colon$rx == l], w[colon$rx == l]))
        for (a in 1:2) for (b in (a + 1):3)
          out <- rbind(out, data.frame(weights = wname, covariate = j, level_a = lev[a], level_b = lev[b],
                                       smd = (m[a] - m[b]) / sqrt(mean(v))))
      }
      for (l in lev) out <- rbind(out, data.frame(weights = wname, covariate = "ESS", level_a = l, level_b = l,
                                  smd = sum(w[colon$rx == l])^2 / sum(w[colon$rx == l]^2)))
    }
    put("out", out)
    """
    return {"data": data, **run_r(script, {"colon": data})}


def test_balance_equals_r_before_and_after_weighting() -> None:
    _, treatment, covariates = cases()["colon"]
    result = r_balance()
    data, theirs = result["data"], result["out"]
    for wname in ("one", "w"):
        ours = balance(data, treatment=treatment, covariates=covariates, weights=None if wname == "one" else "w")
        expected = theirs.filter((pl.col("weights") == wname) & (pl.col("covariate") != "ESS"))
        table = ours.to_frame()
        assert table.columns == ["covariate", "level_a", "level_b", "mean_a", "mean_b", "smd"]
        assert table["covariate"].to_list() == expected["covariate"].to_list()
        assert table["level_b"].to_list() == expected["level_b"].to_list()
        assert_close(table["smd"], expected["smd"], what=f"smd {wname}")
        ess = theirs.filter((pl.col("weights") == wname) & (pl.col("covariate") == "ESS"))
        assert_close([ours.effective_sample_size[level] for level in ess["level_a"]], ess["smd"], what="ESS")
    unweighted = balance(data, treatment=treatment, covariates=covariates)
    weighted = balance(data, treatment=treatment, covariates=covariates, weights="w")
    assert weighted.max_abs_smd() < 0.1 < unweighted.max_abs_smd()


def test_two_arm_overlap_weights_balance_exactly() -> None:
    """With a logistic model, overlap weights make every covariate mean equal (Li, Morgan &
    Zaslavsky 2018)."""
    frame, treatment, covariates = cases()["Melanoma"]
    fit = propensity_weights(frame, treatment=treatment, covariates=covariates, estimand="overlap")
    result = balance(frame, treatment=treatment, covariates=covariates, weights=fit.weights)
    assert result.max_abs_smd() < 1e-8
    assert balance(frame, treatment=treatment, covariates=covariates).max_abs_smd() > 0.1


def test_balance_bad_input() -> None:
    frame = pl.DataFrame({"arm": ["a", "a", "b", "b"], "x": [1.0, 1, 1, 1], "y": [1.0, 1, 2, 3]})
    with pytest.raises(InputError, match=r"\['x'\] constant in every arm"), pytest.warns(CovariateWarning):
        balance(frame, treatment="arm", covariates=["x", "y"])
    with pytest.warns(CovariateWarning, match="'y' is constant"):
        balance(frame, treatment="arm", covariates=["y"])
    with pytest.raises(InputError, match="weights"):
        balance(frame, treatment="arm", covariates=["y"], weights=[1, 1, -1, 1])


@SETTINGS
@given(st.integers(0, 10_000))
def test_overlap_weights_are_bounded_and_balance_is_antisymmetric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    x = rng.normal(size=n)
    arm = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    frame = pl.DataFrame({"arm": arm, "x": x, "z": rng.integers(0, 2, n)})
    if frame["arm"].n_unique() < 3:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CovariateWarning)
            fit = propensity_weights(frame, treatment="arm", covariates=["x", "z"], estimand="overlap")
    except ConvergenceError:
        return
    assert np.all((fit.weights > 0) & (fit.weights < 1))
    assert np.allclose(fit.propensity.sum(axis=1), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CovariateWarning)
        table = balance(frame, treatment="arm", covariates=["x"], weights=fit.weights).to_frame()
    reversed_arms = frame.with_columns(arm=pl.col("arm").replace({"a": "c", "c": "a"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CovariateWarning)
        mirrored = balance(reversed_arms, treatment="arm", covariates=["x"], weights=fit.weights).to_frame()
    ac = table.filter((pl.col("level_a") == "a") & (pl.col("level_b") == "c"))["smd"][0]
    ca = mirrored.filter((pl.col("level_a") == "a") & (pl.col("level_b") == "c"))["smd"][0]
    assert ac == pytest.approx(-ca, abs=1e-12)


def test_pool_rubin_equals_mice() -> None:
    rng = np.random.default_rng(11)
    grid = []
    for m in (2, 5, 20):
        for n in (None, 30, 500):
            q = rng.normal(0.4, 0.1, m)
            u = rng.uniform(0.005, 0.03, m)
            grid.append((m, n, q, u))
    lines = ["suppressPackageStartupMessages(library(mice))", "out <- NULL"]
    for i, (_, n, q, u) in enumerate(grid):
        lines.append(
            f"r <- pool.scalar(c({', '.join(map(repr, q.tolist()))}), c({', '.join(map(repr, u.tolist()))}),"
            f" n = {'Inf' if n is None else n}, k = 2)\n"
            f"out <- rbind(out, data.frame(i = {i}, qbar = r$qbar, ubar = r$ubar, b = r$b, t = r$t, df = r$df,"
            f" r = r$r, fmi = r$fmi))"
        )
    lines.append("put('out', out)")
    theirs = run_r("\n".join(lines))["out"]
    for i, (_, n, q, u) in enumerate(grid):
        ours = pool_rubin(q, u, n=n, k=2)
        row = theirs.row(i, named=True)
        assert_close(
            [ours.estimate, ours.within, ours.between, ours.variance, ours.df, ours.riv, ours.fmi],
            [row["qbar"], row["ubar"], row["b"], row["t"], row["df"], row["r"], row["fmi"]],
            what=f"case {i}",
        )
        half = ours.upper - ours.estimate
        from scipy import stats as scipy_stats

        assert half == pytest.approx(scipy_stats.t.ppf(0.975, ours.df) * math.sqrt(ours.variance))


def test_pool_rubin_hand_worked_and_errors() -> None:
    # m = 3: qbar = 2, b = 1, ubar = 0.5, t = 0.5 + 4/3; lambda = (4/3) / t; df = 2 / lambda^2
    ours = pool_rubin([1.0, 2.0, 3.0], [0.4, 0.5, 0.6])
    t = 0.5 + 4 / 3
    assert ours.estimate == 2 and ours.variance == pytest.approx(t)
    assert ours.df == pytest.approx(2 / ((4 / 3) / t) ** 2)
    with pytest.raises(InputError, match="at least 2 imputations"):
        pool_rubin([1.0], [0.1])
    with pytest.raises(InputError, match="negative"):
        pool_rubin([1.0, 2.0], [0.1, -0.1])


def test_e_values_of_the_published_examples() -> None:
    # VanderWeele & Ding 2017: RR 3.9 (1.8, 8.7) -> E-values 7.26 and 3.02
    result = e_value(3.9, lower=1.8, upper=8.7, measure="RR")
    assert result.estimate == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert round(result.estimate, 2) == 7.26 and round(result.ci, 2) == 3.0
    # protective: RR 0.8 (0.71, 0.91) -> 1/0.8 = 1.25 -> 1.81; CI limit 0.91 -> 1.43
    protective = e_value(0.8, lower=0.71, upper=0.91, measure="RR")
    assert round(protective.estimate, 2) == 1.81 and round(protective.ci, 2) == 1.43
    # an interval containing 1 has a CI E-value of 1
    assert e_value(1.3, lower=0.9, upper=1.8).ci == 1.0
    # common-outcome HR: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))
    hr = e_value(2.0, measure="HR")
    rr = (1 - 0.5 ** math.sqrt(2)) / (1 - 0.5 ** math.sqrt(0.5))
    assert hr.risk_ratio[0] == pytest.approx(rr) and hr.estimate == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    assert e_value(2.0, measure="HR", rare=True).estimate == pytest.approx(2 + math.sqrt(2))
    assert e_value(4.0, measure="OR").risk_ratio[0] == pytest.approx(2.0)
    assert math.isnan(e_value(2.0).ci)
    with pytest.raises(InputError, match="lower"):
        e_value(2.0, lower=2.5)
    with pytest.raises(InputError, match="estimate"):
        e_value(-1.0)


@SETTINGS
@given(st.floats(0.05, 20.0), st.sampled_from(["RR", "HR", "OR"]), st.booleans())
def test_e_value_is_symmetric_in_the_direction_of_the_effect(ratio: float, measure: str, rare: bool) -> None:
    up = e_value(ratio, measure=measure, rare=rare)  # type: ignore[arg-type]
    down = e_value(1 / ratio, measure=measure, rare=rare)  # type: ignore[arg-type]
    assert up.estimate == pytest.approx(down.estimate, rel=1e-9)
    assert up.estimate >= 1
