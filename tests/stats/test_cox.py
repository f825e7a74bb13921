"""cox_ph and proportional_hazards_test against R's coxph / concordance / cox.zph on the same data.

R runs once per module: it fits every case below on its own data sets (lung, veteran, ovarian, colon,
pbc) and on random data with heavy ties and times of zero generated here, and returns the data it
used with the results, in long format (case, what, term, value). Terms are compared by position
(R names dummies ``celltypelarge``, we name them ``celltype=large``).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats import cox_ph, proportional_hazards_test
from rsupport import run_r

REL = 1e-6
#: p-values below 1e-10 are compared to 1e-4 relative (they come from distribution tails)
REL_TINY_P = 1e-4


def _random_ties(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], size=n)
    hazard = np.exp(0.5 * x1 + np.where(group == "b", 0.4, 0.0))
    time = np.floor(rng.exponential(1 / hazard) * 4)  # integers 0..~20: heavy ties, many zeros
    return pl.DataFrame(
        {
            "time": time,
            "event": (rng.random(n) < 0.7).astype(np.int64),
            "x1": x1,
            "x2": rng.integers(0, 2, size=n),
            "group": group,
            "site": rng.choice(["s1", "s2"], size=n),
            "id": rng.integers(0, n // 5, size=n),
        }
    )


#: case -> (data set, R formula right-hand side, R extra arguments, our keyword arguments)
CASES: dict[str, tuple[str, str, str, dict[str, object]]] = {
    "lung_efron": ("lung", "age + sex + ph.ecog + wt.loss", "",
                   {"time": "time", "event": "dead", "covariates": ["age", "sex", "ph.ecog", "wt.loss"]}),
    "lung_breslow": ("lung", "age + sex + ph.ecog + wt.loss", ", ties='breslow'",
                     {"time": "time", "event": "dead", "covariates": ["age", "sex", "ph.ecog", "wt.loss"],
                      "ties": "breslow"}),
    "lung_robust": ("lung", "age + sex + ph.ecog", ", robust=TRUE",
                    {"time": "time", "event": "dead", "covariates": ["age", "sex", "ph.ecog"], "robust": True}),
    "lung_strata_cluster": ("lung", "age + sex + strata(inst)", ", cluster=inst, ties='breslow'",
                            {"time": "time", "event": "dead", "covariates": ["age", "sex"], "strata": "inst",
                             "cluster": "inst", "ties": "breslow"}),
    "veteran_factor": ("veteran", "trt + celltype + karno + age", "",
                       {"time": "time", "event": "status", "covariates": ["trt", "celltype", "karno", "age"]}),
    "veteran_breslow": ("veteran", "celltype + karno", ", ties='breslow'",
                        {"time": "time", "event": "status", "covariates": ["celltype", "karno"], "ties": "breslow"}),
    "ovarian_strata": ("ovarian", "age + rx + strata(ecog.ps)", "",
                       {"time": "futime", "event": "fustat", "covariates": ["age", "rx"], "strata": "ecog.ps"}),
    "colon_cluster": ("colon", "rx + sex + age + nodes + strata(etype)", ", cluster=id",
                      {"time": "time", "event": "status", "covariates": ["rx", "sex", "age", "nodes"],
                       "strata": "etype", "cluster": "id"}),
    "pbc_efron": ("pbc", "age + edema + logbili + albumin + logprotime + sex", "",
                  {"time": "time", "event": "dead", "covariates": ["age", "edema", "logbili", "albumin",
                                                                      "logprotime", "sex"]}),
    "ties_efron": ("ties", "x1 + x2 + group", "",
                   {"time": "time", "event": "event", "covariates": ["x1", "x2", "group"]}),
    "ties_breslow": ("ties", "x1 + x2 + group", ", ties='breslow'",
                     {"time": "time", "event": "event", "covariates": ["x1", "x2", "group"], "ties": "breslow"}),
    "ties_strata_cluster": ("ties", "x1 + group + strata(site)", ", cluster=id",
                            {"time": "time", "event": "event", "covariates": ["x1", "group"], "strata": "site",
                             "cluster": "id"}),
    "ties_robust_breslow": ("ties", "x1 + x2", ", robust=TRUE, ties='breslow'",
                            {"time": "time", "event": "event", "covariates": ["x1", "x2"], "robust": True,
                             "ties": "breslow"}),
}

R_SCRIPT = """
# R keeps declared factor levels; we use sorted levels: give R the same reference levels
sorted_levels <- function(d) { for (v in names(d)) if (is.factor(d[[v]])) d[[v]] <- factor(as.character(d[[v]])); d }
veteran <- sorted_levels(veteran); colon <- sorted_levels(colon); pbc <- sorted_levels(pbc)
lung$dead <- lung$status - 1
pbc <- pbc[!is.na(pbc$status), ]
pbc$dead <- as.integer(pbc$status == 2)
pbc$logbili <- log(pbc$bili)
pbc$logprotime <- log(pbc$protime)
rows <- list()
add <- function(case, what, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, what = what, term = as.character(term), value = as.numeric(value))
}
record <- function(case, fit) {
  b <- coef(fit)
  add(case, "coef", names(b), b)
  naive <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  add(case, "se", names(b), sqrt(diag(naive)))
  if (!is.null(fit$naive.var)) add(case, "robust_se", names(b), sqrt(diag(fit$var)))
  s <- summary(fit)$coefficients
  add(case, "z", names(b), s[, "z"])
  add(case, "p", names(b), s[, ncol(s)])
  ci <- summary(fit)$conf.int
  add(case, "lower", names(b), ci[, "lower .95"])
  add(case, "upper", names(b), ci[, "upper .95"])
  add(case, "loglik", c("initial", "final"), fit$loglik)
  add(case, "lr", c("stat", "p"), c(2 * diff(fit$loglik), pchisq(2 * diff(fit$loglik), length(b), lower.tail = FALSE)))
  add(case, "wald", c("stat", "p"), c(fit$wald.test, pchisq(fit$wald.test, length(b), lower.tail = FALSE)))
  add(case, "score", c("stat", "p"), c(fit$score, pchisq(fit$score, length(b), lower.tail = FALSE)))
  cc <- concordance(fit)
  add(case, "concordance", c("value", "se"), c(cc$concordance, sqrt(cc$var)))
  add(case, "count", c("n", "nevent", "dropped"), c(fit$n, fit$nevent, length(fit$na.action)))
  z <- cox.zph(fit)$table
  add(case, "zph_chisq", rownames(z), z[, 1])
  add(case, "zph_df", rownames(z), z[, 2])
  add(case, "zph_p", rownames(z), z[, 3])
}
"""


def _r_call(name: str, case: tuple[str, str, str, dict[str, object]]) -> str:
    data, rhs, extra, kwargs = case
    lhs = f"Surv({kwargs['time']}, {kwargs['event']})"
    return f"record('{name}', coxph({lhs} ~ {rhs}, data = {data}{extra}))\n"


@pytest.fixture(scope="module")
def r_results() -> dict[str, pl.DataFrame]:
    script = R_SCRIPT + "".join(_r_call(name, case) for name, case in CASES.items())
    script += "put('out', do.call(rbind, rows))\n"
    script += "".join(f"put('{d}', {d})\n" for d in ("lung", "veteran", "ovarian", "colon", "pbc"))
    outputs = ("out", "lung", "veteran", "ovarian", "colon", "pbc")
    return run_r(script, inputs={"ties": _random_ties(20261126, 300)}, outputs=outputs)


def _data(r_results: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    if name == "ties":
        return _random_ties(20261126, 300)
    return r_results[name]


def _r_values(r_results: dict[str, pl.DataFrame], case: str, what: str) -> list[float]:
    out = r_results["out"]
    return out.filter((pl.col("case") == case) & (pl.col("what") == what)).get_column("value").to_list()


def _close(ours: float, theirs: float, what: str, p_value: bool = False) -> None:
    rel = REL_TINY_P if p_value and abs(theirs) < 1e-10 else REL
    assert ours == pytest.approx(theirs, rel=rel, abs=1e-300), f"{what}: ours {ours!r} vs R {theirs!r}"


@pytest.mark.parametrize("case", list(CASES))
def test_coefficients_and_standard_errors_equal_r(r_results: dict[str, pl.DataFrame], case: str) -> None:
    data_name, _, _, kwargs = CASES[case]
    fit = cox_ph(_data(r_results, data_name), **kwargs)  # type: ignore[arg-type]
    frame = fit.to_frame()
    for column, what in (("coef", "coef"), ("se", "se"), ("z", "z"), ("lower", "lower"), ("upper", "upper")):
        r_vals = _r_values(r_results, case, what)
        assert len(r_vals) == frame.height
        for ours, theirs in zip(frame.get_column(column).to_list(), r_vals, strict=True):
            _close(ours, theirs, f"{case} {column}")
    for ours, theirs in zip(frame.get_column("p_value").to_list(), _r_values(r_results, case, "p"), strict=True):
        _close(ours, theirs, f"{case} p_value", p_value=True)
    r_robust = _r_values(r_results, case, "robust_se")
    if r_robust:
        for ours, theirs in zip(frame.get_column("robust_se").to_list(), r_robust, strict=True):
            _close(ours, theirs, f"{case} robust_se")
    else:
        assert frame.get_column("robust_se").is_nan().all()
        assert fit.robust_se is None


@pytest.mark.parametrize("case", list(CASES))
def test_loglik_tests_concordance_counts_equal_r(r_results: dict[str, pl.DataFrame], case: str) -> None:
    data_name, _, _, kwargs = CASES[case]
    fit = cox_ph(_data(r_results, data_name), **kwargs)  # type: ignore[arg-type]
    loglik = _r_values(r_results, case, "loglik")
    _close(fit.loglik[0], loglik[0], f"{case} loglik initial")
    _close(fit.loglik[1], loglik[1], f"{case} loglik final")
    for test, what in ((fit.lr_test, "lr"), (fit.wald_test, "wald"), (fit.score_test, "score")):
        stat, p = _r_values(r_results, case, what)
        _close(test.statistic, stat, f"{case} {what} statistic")
        _close(test.p_value, p, f"{case} {what} p", p_value=True)
        assert test.df == len(fit.coef)
    value, se = _r_values(r_results, case, "concordance")
    _close(fit.concordance.value, value, f"{case} concordance")
    _close(fit.concordance_se, se, f"{case} concordance se")
    n, nevent, dropped = _r_values(r_results, case, "count")
    assert (fit.n, fit.n_events, fit.n_dropped) == (int(n), int(nevent), int(dropped))


@pytest.mark.parametrize("case", list(CASES))
def test_proportional_hazards_test_equals_r_cox_zph(r_results: dict[str, pl.DataFrame], case: str) -> None:
    data_name, _, _, kwargs = CASES[case]
    fit = cox_ph(_data(r_results, data_name), **kwargs)  # type: ignore[arg-type]
    table = proportional_hazards_test(fit).to_frame()
    assert table.columns == ["term", "statistic", "df", "p_value"]
    assert table.get_column("term").to_list() == [*fit.covariates, "GLOBAL"]
    r_chisq = _r_values(r_results, case, "zph_chisq")
    r_df = _r_values(r_results, case, "zph_df")
    r_p = _r_values(r_results, case, "zph_p")
    assert table.height == len(r_chisq)
    for row, chisq, df, p in zip(table.iter_rows(named=True), r_chisq, r_df, r_p, strict=True):
        _close(row["statistic"], chisq, f"{case} zph chisq {row['term']}")
        assert row["df"] == df
        _close(row["p_value"], p, f"{case} zph p {row['term']}", p_value=True)


def test_pandas_frame_gives_the_same_fit_as_polars(r_results: dict[str, pl.DataFrame]) -> None:
    data = r_results["veteran"]
    kwargs = CASES["veteran_factor"][3]
    from_polars = cox_ph(data, **kwargs)  # type: ignore[arg-type]
    from_pandas = cox_ph(data.to_pandas(), **kwargs)  # type: ignore[arg-type]
    assert from_pandas.to_frame().equals(from_polars.to_frame())
    assert from_pandas.loglik == from_polars.loglik


def test_result_shape_dict_and_repr(r_results: dict[str, pl.DataFrame]) -> None:
    fit = cox_ph(r_results["veteran"], time="time", event="status", covariates=["celltype", "karno"],
                 reference={"celltype": "squamous"})
    frame = fit.to_frame()
    assert frame.columns == ["term", "coef", "se", "robust_se", "hazard_ratio", "lower", "upper", "z", "p_value"]
    assert frame.get_column("term").to_list() == ["celltype=adeno", "celltype=large", "celltype=smallcell", "karno"]
    assert fit.reference_levels == {"celltype": "squamous"}
    hr = frame.get_column("hazard_ratio").to_list()
    assert all(math.isclose(h, math.exp(b)) for h, b in zip(hr, fit.coef, strict=True))
    summary = fit.to_dict()
    assert summary["n"] == 137 and summary["n_events"] == 128 and summary["n_dropped"] == 0
    assert [row["term"] for row in summary["coefficients"]] == frame.get_column("term").to_list()
    text = repr(fit)
    assert "celltype=adeno" in text and "n=137" in text
    with pytest.raises(AttributeError):
        fit.n = 3  # type: ignore[misc]
    zph = proportional_hazards_test(fit)
    assert zph.test("GLOBAL") == zph.global_test
    assert zph.to_dict()["transform"] == "km"
    assert "GLOBAL" in repr(zph)


def test_changing_reference_level_reparametrises_but_keeps_the_likelihood(r_results: dict[str, pl.DataFrame]) -> None:
    data = r_results["veteran"]
    default = cox_ph(data, time="time", event="status", covariates=["celltype", "karno"])
    other = cox_ph(data, time="time", event="status", covariates=["celltype", "karno"],
                   reference={"celltype": "squamous"})
    assert default.reference_levels == {"celltype": "adeno"}
    assert other.loglik[1] == pytest.approx(default.loglik[1], rel=1e-12)
    # adeno vs squamous: the negated squamous coefficient of the default parametrisation
    assert other.coef[0] == pytest.approx(-default.coef[2], rel=1e-8)


# --- properties -------------------------------------------------------------------------------



@st.composite
def survival_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=25, max_value=60))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 3, size=n).astype(np.float64)
    time = np.floor(rng.exponential(np.exp(-0.3 * x1)) * draw(st.sampled_from([3, 10, 100])))
    event = (rng.random(n) < 0.7).astype(np.int64)
    assume(event.sum() >= 5)
    return pl.DataFrame({"time": time, "event": event, "x1": x1, "x2": x2})


def _fit_or_reject(frame: pl.DataFrame, ties: str = "efron"):  # type: ignore[no-untyped-def]
    try:
        return cox_ph(frame, time="time", event="event", covariates=["x1", "x2"], ties=ties)  # type: ignore[arg-type]
    except ConvergenceError:
        assume(False)
        raise


PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(frame=survival_frames(), shift=st.floats(min_value=-50, max_value=50), ties=st.sampled_from(["efron", "breslow"]))
def test_shifting_a_covariate_changes_nothing(frame: pl.DataFrame, shift: float, ties: str) -> None:
    base = _fit_or_reject(frame, ties)
    shifted = _fit_or_reject(frame.with_columns(pl.col("x1") + shift), ties)
    assert shifted.coef == pytest.approx(base.coef, rel=1e-6, abs=1e-9)
    assert shifted.se == pytest.approx(base.se, rel=1e-6)
    assert shifted.loglik == pytest.approx(base.loglik, rel=1e-9)
    assert shifted.concordance.value == pytest.approx(base.concordance.value, rel=1e-12)


@PROPERTY_SETTINGS
@given(frame=survival_frames(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_permuting_rows_changes_nothing(frame: pl.DataFrame, seed: int) -> None:
    base = _fit_or_reject(frame)
    permutation = np.random.default_rng(seed).permutation(frame.height)
    permuted = _fit_or_reject(frame[permutation.tolist()])
    assert permuted.coef == pytest.approx(base.coef, rel=1e-9, abs=1e-12)
    assert permuted.se == pytest.approx(base.se, rel=1e-9)
    assert permuted.loglik == pytest.approx(base.loglik, rel=1e-12)
    assert permuted.concordance_se == pytest.approx(base.concordance_se, rel=1e-9)
    zph_base = proportional_hazards_test(base)
    zph_perm = proportional_hazards_test(permuted)
    assert zph_perm.statistic == pytest.approx(zph_base.statistic, rel=1e-8)


@PROPERTY_SETTINGS
@given(frame=survival_frames(), scale=st.floats(min_value=0.01, max_value=100).filter(lambda c: abs(c - 1) > 1e-3))
def test_scaling_a_covariate_divides_its_coefficient(frame: pl.DataFrame, scale: float) -> None:
    base = _fit_or_reject(frame)
    scaled = _fit_or_reject(frame.with_columns(pl.col("x1") * scale))
    assert scaled.coef[0] == pytest.approx(base.coef[0] / scale, rel=1e-6, abs=1e-9)
    assert scaled.se[0] == pytest.approx(base.se[0] / scale, rel=1e-6)
    assert scaled.coef[1] == pytest.approx(base.coef[1], rel=1e-6, abs=1e-9)
    assert scaled.loglik[1] == pytest.approx(base.loglik[1], rel=1e-9)


# --- errors -----------------------------------------------------------------------------------

def _small() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "time": [5.0, 3.0, 8.0, 1.0, 9.0, 4.0, 7.0, 2.0],
            "event": [1, 0, 1, 1, 0, 1, 1, 1],
            "age": [60.0, 52.0, 71.0, 44.0, 66.0, 58.0, 49.0, 63.0],
            "arm": ["a", "b", "a", "b", "a", "b", "b", "a"],
        }
    )


def test_constant_covariate_is_named() -> None:
    frame = _small().with_columns(const=pl.lit(1.0))
    with pytest.raises(ConvergenceError, match=r"'const'.*constant"):
        cox_ph(frame, time="time", event="event", covariates=["age", "const"])


def test_collinear_covariate_is_named() -> None:
    frame = _small().with_columns(age2=pl.col("age") * 2 + 1)
    with pytest.raises(ConvergenceError, match=r"'age2'.*linear combination"):
        cox_ph(frame, time="time", event="event", covariates=["age", "age2"])


def test_complete_separation_raises_naming_the_column() -> None:
    # every death in arm b happens before any arm-a subject leaves: the coefficient diverges
    frame = pl.DataFrame(
        {
            "time": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "event": [1, 1, 1, 1, 0, 0, 0, 0],
            "arm": ["b", "b", "b", "b", "a", "a", "a", "a"],
        }
    )
    with pytest.raises(ConvergenceError, match=r"'arm=b'.*infinite"):
        cox_ph(frame, time="time", event="event", covariates=["arm"])


def test_unknown_column_is_named() -> None:
    with pytest.raises(InputError, match="covariates: column 'weight' not found"):
        cox_ph(_small(), time="time", event="event", covariates=["age", "weight"])
    with pytest.raises(InputError, match="time: column 'days' not found"):
        cox_ph(_small(), time="days", event="event", covariates=["age"])
    with pytest.raises(InputError, match="strata: column 'centre' not found"):
        cox_ph(_small(), time="time", event="event", covariates=["age"], strata="centre")


def test_no_events_is_an_input_error() -> None:
    frame = _small().with_columns(event=pl.lit(0))
    with pytest.raises(InputError, match="no events"):
        cox_ph(frame, time="time", event="event", covariates=["age"])


def test_non_finite_values_are_errors_with_positions() -> None:
    frame = _small().with_columns(age=pl.Series([60.0, float("nan"), 71.0, 44.0, float("inf"), 58.0, 49.0, 63.0]))
    with pytest.raises(InputError, match=r"column 'age': non-finite values .*positions \[1, 4\]"):
        cox_ph(frame, time="time", event="event", covariates=["age"])
    pandas_frame = _small().to_pandas()
    pandas_frame.loc[2, "time"] = float("inf")
    with pytest.raises(InputError, match=r"'time'.*positions \[2\]"):
        cox_ph(pandas_frame, time="time", event="event", covariates=["age"])


def test_bad_event_and_negative_time_are_named() -> None:
    with pytest.raises(InputError, match=r"event column 'event'.*0/1.*positions \[0\]"):
        cox_ph(_small().with_columns(event=pl.Series([2, 0, 1, 1, 0, 1, 1, 1])), time="time", event="event",
               covariates=["age"])
    with pytest.raises(InputError, match=r"time column 'time'.*negative.*positions \[3\]"):
        cox_ph(_small().with_columns(time=pl.Series([5.0, 3.0, 8.0, -1.0, 9.0, 4.0, 7.0, 2.0])), time="time",
               event="event", covariates=["age"])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InputError, match="ties"):
        cox_ph(_small(), time="time", event="event", covariates=["age"], ties="exact")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="covariates: a list"):
        cox_ph(_small(), time="time", event="event", covariates="age")
    with pytest.raises(InputError, match="data: a polars or pandas DataFrame"):
        cox_ph({"time": [1]}, time="time", event="event", covariates=["age"])
    with pytest.raises(InputError, match="reference: level 'c' of column 'arm'"):
        cox_ph(_small(), time="time", event="event", covariates=["arm"], reference={"arm": "c"})
    with pytest.raises(InputError, match=r"proportional|CoxResult"):
        proportional_hazards_test("not a fit")  # type: ignore[arg-type]


def test_missing_values_drop_rows_and_are_counted() -> None:
    frame = _small().with_columns(
        age=pl.Series([60.0, None, 71.0, 44.0, 66.0, 58.0, 49.0, 63.0]),
        arm=pl.Series(["a", "b", None, "b", "a", "b", "b", "a"]),
    )
    fit = cox_ph(frame, time="time", event="event", covariates=["age", "arm"])
    complete = cox_ph(frame.drop_nulls(), time="time", event="event", covariates=["age", "arm"])
    assert (fit.n, fit.n_dropped, complete.n_dropped) == (6, 2, 0)
    assert fit.coef == complete.coef
    pandas_fit = cox_ph(frame.to_pandas(), time="time", event="event", covariates=["age", "arm"])
    assert pandas_fit.n_dropped == 2 and pandas_fit.coef == pytest.approx(fit.coef, rel=1e-12)


def test_too_few_clusters_for_a_robust_variance_is_named() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "time": rng.exponential(size=40),
            "event": rng.integers(0, 2, size=40),
            "a": rng.normal(size=40),
            "b": rng.normal(size=40),
            "c": rng.normal(size=40),
            "centre": np.repeat(["x", "y"], 20),
        }
    )
    with pytest.raises(ConvergenceError, match=r"robust variance is singular \(2 clusters for 3"):
        cox_ph(frame, time="time", event="event", covariates=["a", "b", "c"], cluster="centre")


def test_single_level_categorical_is_a_constant_covariate() -> None:
    frame = _small().with_columns(arm=pl.lit("a"))
    with pytest.raises(ConvergenceError, match=r"column 'arm' has a single level 'a'"):
        cox_ph(frame, time="time", event="event", covariates=["age", "arm"])


def test_same_input_gives_identical_results() -> None:
    frame = _random_ties(7, 400)
    kwargs = {"time": "time", "event": "event", "covariates": ["x1", "x2", "group"], "strata": "site",
              "cluster": "id"}
    first = cox_ph(frame, **kwargs)  # type: ignore[arg-type]
    second = cox_ph(frame.clone(), **kwargs)  # type: ignore[arg-type]
    assert first.to_dict() == second.to_dict()
    assert first.to_frame().equals(second.to_frame())
    assert proportional_hazards_test(first) == proportional_hazards_test(second)
