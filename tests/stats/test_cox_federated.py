"""The distributed Cox model (issue 14) equals the pooled fit: cox_ph, R's coxph and cox.zph.

The rows of a data set are split into "sites"; each site computes only its per-event-time sums
(through their JSON form, as they would travel), the coordinator runs Newton-Raphson on the
totals. Data: a seeded synthetic frame with tied times, a categorical and a continuous covariate,
five sites of which one has no event and one a single patient; and R's lung data in four sites.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.errors import ConvergenceError, InputError
from oncorwe.stats import (
    CoxResidualRequest,
    CoxResidualSums,
    CoxResult,
    CoxSiteSums,
    FederatedCoxResult,
    cox_federated,
    cox_ph,
    cox_residual_request,
    cox_site_residual_sums,
    cox_site_sums,
    proportional_hazards_test,
    proportional_hazards_test_federated,
    robust_variance_federated,
)
from oncorwe.stats._cox_input import build_design
from rsupport import run_r
from stats.rdata import r_dataset

COVARIATES = ["age", "grp"]


def synthetic_frame(seed: int = 14, n: int = 240) -> pl.DataFrame:
    """Tied integer times, a 3-level factor and a continuous covariate; sites A-E where D has
    no event and E is a single patient."""
    rng = np.random.default_rng(seed)
    grp = rng.choice(["a", "b", "c"], size=n)
    age = rng.normal(62.0, 9.0, size=n).round(1)
    hazard = 0.02 * np.exp(0.03 * (age - 62.0) + np.select([grp == "b", grp == "c"], [0.5, -0.4], 0.0))
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.uniform(5.0, 120.0, size=n)
    time = np.ceil(np.minimum(event_time, censor_time) / 3.0) * 3.0  # coarse: many ties
    event = (event_time <= censor_time).astype(np.int64)
    site = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2]).astype(object)
    site[-12:-1] = "D"
    event[-12:-1] = 0
    site[-1] = "E"
    event[-1] = 1
    return pl.DataFrame({"time": time, "event": event, "age": age, "grp": grp, "site": site.astype(str)})


def lung_frame() -> pl.DataFrame:
    lung = r_dataset("lung").drop_nulls(["age", "sex", "ph.ecog"])
    return lung.with_columns(
        event=pl.col("status") - 1,
        ecog=pl.col("ph.ecog").cast(pl.Int64).cast(pl.String),
        site=(pl.int_range(pl.len()) % 4).cast(pl.String),
    ).select("time", "event", "age", "sex", "ecog", "site")


DATA = {
    "synthetic": (synthetic_frame, COVARIATES),
    "lung": (lung_frame, ["age", "sex", "ecog"]),
}


def event_times_of(time: np.ndarray, event: np.ndarray, strata: np.ndarray | None) -> Any:
    if strata is None:
        return np.unique(time[event == 1])
    return {s: np.unique(time[(event == 1) & (strata == s)]) for s in sorted(set(strata.tolist()))}


def federated_fit(
    frame: pl.DataFrame,
    covariates: Sequence[str],
    *,
    ties: str = "efron",
    stratified: bool = False,
    sites: np.ndarray | None = None,
) -> tuple[FederatedCoxResult, Any]:
    """Fit by sites: each site's sums cross a JSON boundary every round. Returns the fit and a
    function giving the sites' unstratified sums (for the pooled Kaplan-Meier of the zph test)."""
    design = build_design(frame, time="time", event="event", covariates=covariates, strata=None,
                          cluster=None, reference=None, weights=None)
    site_of_row = frame["site"].to_numpy().astype(str) if sites is None else sites.astype(str)
    labels = sorted(set(site_of_row.tolist()))
    time, event, x = design.time, design.event, design.x
    center = x.mean(axis=0)  # the global means, from the sites' Table 1 sums in practice
    times = event_times_of(time, event, site_of_row if stratified else None)

    def round_sums(beta: np.ndarray) -> list[CoxSiteSums]:
        answers = []
        for label in labels:
            rows = site_of_row == label
            sums = cox_site_sums(
                time[rows], event[rows], x[rows], beta=beta, event_times=times,
                strata=site_of_row[rows] if stratified else None, center=center,
            )
            answers.append(CoxSiteSums.from_json(json.loads(json.dumps(sums.to_json()))))
        return answers

    def km_sums() -> list[CoxSiteSums]:
        all_times = np.unique(time[event == 1])
        return [
            cox_site_sums(time[site_of_row == s], event[site_of_row == s], x[site_of_row == s],
                          beta=np.zeros(x.shape[1]), event_times=all_times, center=center)
            for s in labels
        ]

    fit = cox_federated(
        round_sums, terms=design.column_names, event_times=times, ties=ties,  # type: ignore[arg-type]
        n=int(time.size), n_events=int(event.sum()), center=center,
        covariates=design.term_names, term_columns=design.term_columns,
        reference_levels=design.reference_levels, strata=("site",) if stratified else (),
    )
    return fit, km_sums


def assert_same_fit(ours: CoxResult, theirs: CoxResult, rel: float = 1e-9) -> None:
    assert ours.terms == theirs.terms
    assert ours.coef == pytest.approx(theirs.coef, rel=rel, abs=1e-12)
    assert ours.se == pytest.approx(theirs.se, rel=rel)
    assert ours.loglik == pytest.approx(theirs.loglik, rel=rel)
    for test in ("lr_test", "wald_test", "score_test"):
        assert getattr(ours, test).statistic == pytest.approx(getattr(theirs, test).statistic, rel=rel)
        assert getattr(ours, test).df == getattr(theirs, test).df
    assert np.allclose(ours.variance, theirs.variance, rtol=rel, atol=0)
    assert (ours.n, ours.n_events, ours.iterations) == (theirs.n, theirs.n_events, theirs.iterations)
    assert ours.covariates == theirs.covariates and ours.term_columns == theirs.term_columns


CASES = [(data, ties, stratified) for data in DATA for ties in ("efron", "breslow")
         for stratified in (False, True)]


@pytest.mark.parametrize(("data", "ties", "stratified"), CASES)
def test_equals_cox_ph_on_the_pooled_rows(data: str, ties: str, stratified: bool) -> None:
    make, covariates = DATA[data]
    frame = make()
    fit, _ = federated_fit(frame, covariates, ties=ties, stratified=stratified)
    pooled = cox_ph(frame, time="time", event="event", covariates=covariates, ties=ties,  # type: ignore[arg-type]
                    strata="site" if stratified else None)
    assert_same_fit(fit, pooled)
    assert fit.strata == pooled.strata
    assert fit.n_sites == len(set(frame["site"].to_list()))
    assert fit.robust_se is None


@pytest.fixture(scope="module")
def r_fits() -> pl.DataFrame:
    frame = synthetic_frame()
    lines = ["rows <- list()", "data$grp <- factor(data$grp)"]
    for ties in ("efron", "breslow"):
        for stratified in (False, True):
            rhs = "age + grp" + (" + strata(site)" if stratified else "")
            lines += [
                f"f <- coxph(Surv(time, event) ~ {rhs}, data = data, ties = '{ties}')",
                "z <- cox.zph(f)$table",
                f"rows[[length(rows) + 1]] <- data.frame(ties = '{ties}', stratified = {str(stratified).upper()},"
                " what = c(rep('coef', 3), rep('se', 3), 'loglik0', 'loglik1', rep('zph', nrow(z))),"
                " value = c(coef(f), sqrt(diag(vcov(f))), f$loglik, z[, 1]))",
            ]
    lines.append("put('out', do.call(rbind, rows))")
    return run_r("\n".join(lines), {"data": frame})["out"]


@pytest.mark.parametrize(("ties", "stratified"), [(t, s) for t in ("efron", "breslow") for s in (False, True)])
def test_equals_r_coxph_and_cox_zph(r_fits: pl.DataFrame, ties: str, stratified: bool) -> None:
    frame = synthetic_frame()
    fit, km_sums = federated_fit(frame, COVARIATES, ties=ties, stratified=stratified)
    zph = proportional_hazards_test_federated(fit, km_sums=km_sums() if stratified else None)
    r = r_fits.filter((pl.col("ties") == ties) & (pl.col("stratified") == stratified))

    def values(what: str) -> list[float]:
        return r.filter(pl.col("what") == what)["value"].to_list()

    assert list(fit.coef) == pytest.approx(values("coef"), rel=1e-9)
    assert list(fit.se) == pytest.approx(values("se"), rel=1e-9)
    assert list(fit.loglik) == pytest.approx(values("loglik0") + values("loglik1"), rel=1e-12)
    assert list(zph.statistic) == pytest.approx(values("zph"), rel=1e-9)


@pytest.mark.parametrize("transform", ["km", "identity", "log"])
@pytest.mark.parametrize(("data", "ties", "stratified"), CASES)
def test_proportional_hazards_test_equals_the_pooled_one(
    data: str, ties: str, stratified: bool, transform: str
) -> None:
    make, covariates = DATA[data]
    frame = make()
    fit, km_sums = federated_fit(frame, covariates, ties=ties, stratified=stratified)
    pooled = cox_ph(frame, time="time", event="event", covariates=covariates, ties=ties,  # type: ignore[arg-type]
                    strata="site" if stratified else None)
    ours = proportional_hazards_test_federated(
        fit, km_sums=km_sums() if stratified else None, transform=transform,  # type: ignore[arg-type]
    )
    theirs = proportional_hazards_test(pooled, transform=transform)  # type: ignore[arg-type]
    assert ours.terms == theirs.terms and ours.df == theirs.df
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-7, abs=1e-300)


def test_json_round_trip_is_exact_and_plain() -> None:
    frame = synthetic_frame()
    fit, _ = federated_fit(frame, COVARIATES, stratified=True)
    for sums in fit.final_sums:
        payload = sums.to_json()
        text = json.dumps(payload, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
        back = CoxSiteSums.from_json(json.loads(text))
        assert back.to_json() == payload
        assert json.dumps(back.to_json(), allow_nan=False) == text
        assert np.array_equal(back.beta, sums.beta) and np.array_equal(back.center, sums.center)
        for a, b in zip(back.strata, sums.strata, strict=True):
            for name in ("time", "n_at_risk", "n_deaths", "s0", "s1", "s2", "death_x_sum", "d0", "d1", "d2"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
                assert getattr(a, name).dtype == getattr(b, name).dtype, name


def test_an_overflowing_step_crosses_json_and_is_halved_as_cox_ph_does() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([1, 1, 0, 1])
    x = np.array([[800.0], [0.0], [1.0], [2.0]])
    sums = cox_site_sums(time, event, x, beta=np.array([1.0]), event_times=np.array([1.0, 2.0, 4.0]))
    payload = sums.to_json()
    assert payload["strata"][0]["s0"][0] == "inf"
    json.dumps(payload, allow_nan=False)
    back = CoxSiteSums.from_json(payload)
    assert back.strata[0].s0[0] == math.inf
    with pytest.raises(InputError, match="expected a number, got the string 'big'"):
        CoxSiteSums.from_json({**payload, "beta": ["big"]})


def test_site_payload_holds_no_per_patient_value() -> None:
    frame = synthetic_frame()
    design = build_design(frame, time="time", event="event", covariates=COVARIATES, strata=None,
                          cluster=None, reference=None, weights=None)
    sites = frame["site"].to_numpy()
    global_times = np.unique(design.time[design.event == 1])
    beta = np.array([0.03, 0.5, -0.4])
    payloads = {}
    for label in ("A", "D", "E"):
        rows = sites == label
        payloads[label] = cox_site_sums(design.time[rows], design.event[rows], design.x[rows],
                                        beta=beta, event_times=global_times).to_json()
    expected_keys = {"stratum", "time", "n_at_risk", "n_deaths", "s0", "s1", "s2", "death_x_sum",
                     "d0", "d1", "d2"}
    for label, payload in payloads.items():
        assert set(payload) == {"schema", "beta", "center", "stratified", "strata"}
        (stratum,) = payload["strata"]
        assert set(stratum) == expected_keys
        assert stratum["time"] == global_times.tolist()  # the coordinator's times, nothing else
        for name in expected_keys - {"stratum"}:
            assert len(stratum[name]) == global_times.size, (label, name)
        # the same shape for a site of one patient, of eleven without events, of the many
        assert [np.shape(stratum[k]) for k in sorted(expected_keys - {"stratum"})] == [
            np.shape(payloads["A"]["strata"][0][k]) for k in sorted(expected_keys - {"stratum"})
        ]
        # the only times listed are the coordinator's: none of the site's own censoring times
        rows = sites == label
        own_censored = set(design.time[rows & (design.event == 0)].tolist()) - set(global_times.tolist())
        assert not own_censored & set(stratum["time"])
    assert len(set(design.time[(sites == "A") & (design.event == 0)].tolist()) - set(global_times.tolist())) > 0
    # the site without events reports zero deaths everywhere
    assert sum(payloads["D"]["strata"][0]["n_deaths"]) == 0
    assert sum(payloads["D"]["strata"][0]["d0"]) == 0.0


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    assignment=st.lists(st.integers(min_value=0, max_value=4), min_size=80, max_size=80),
    ties=st.sampled_from(["efron", "breslow"]),
)
def test_any_split_into_sites_gives_the_pooled_fit(assignment: list[int], ties: str) -> None:
    frame = synthetic_frame(seed=3, n=80)
    sites = np.array([f"s{k}" for k in assignment])
    fit, _ = federated_fit(frame, COVARIATES, ties=ties, sites=sites)
    pooled = cox_ph(frame, time="time", event="event", covariates=COVARIATES, ties=ties)  # type: ignore[arg-type]
    assert_same_fit(fit, pooled)


def test_centring_changes_nothing_but_overflow() -> None:
    frame = synthetic_frame()
    design = build_design(frame, time="time", event="event", covariates=COVARIATES, strata=None,
                          cluster=None, reference=None, weights=None)
    times = np.unique(design.time[design.event == 1])

    def fit(center: np.ndarray | None) -> FederatedCoxResult:
        return cox_federated(
            lambda beta: [cox_site_sums(design.time, design.event, design.x, beta=beta,
                                        event_times=times, center=center)],
            terms=design.column_names, event_times=times, n=int(design.time.size),
            n_events=int(design.event.sum()), center=center,
            covariates=design.term_names, term_columns=design.term_columns,
        )

    plain, centred = fit(None), fit(design.x.mean(axis=0))
    assert_same_fit(plain, centred)


def test_what_aggregates_cannot_give_is_refused_by_name() -> None:
    fit, _ = federated_fit(synthetic_frame(), COVARIATES)
    with pytest.raises(InputError, match="concordance: not available from a federated Cox fit"):
        _ = fit.concordance
    with pytest.raises(InputError, match="concordance_se: not available"):
        _ = fit.concordance_se
    with pytest.raises(InputError, match="not available from a federated Cox fit"):
        proportional_hazards_test(fit)
    with pytest.raises(InputError, match="'rank' is not available from site aggregates"):
        proportional_hazards_test_federated(fit, transform="rank")  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(fit)).coef == fit.coef  # copies work; data access does not
    assert copy.deepcopy(fit).se == fit.se
    summary = fit.to_dict()
    assert summary["federated"] is True and summary["concordance"] is None and summary["robust"] is False
    json.dumps(summary)
    assert "FederatedCoxResult(ties='efron'" in repr(fit)
    assert fit.to_frame()["robust_se"].is_nan().all()


def test_stratified_zph_needs_the_pooled_risk_table() -> None:
    fit, _ = federated_fit(synthetic_frame(), COVARIATES, stratified=True)
    with pytest.raises(InputError, match="km_sums: a stratified fit needs"):
        proportional_hazards_test_federated(fit)
    assert proportional_hazards_test_federated(fit, transform="identity").terms == ("age", "grp", "GLOBAL")


def test_inconsistent_sums_are_refused() -> None:
    frame = synthetic_frame()
    design = build_design(frame, time="time", event="event", covariates=COVARIATES, strata=None,
                          cluster=None, reference=None, weights=None)
    t, e, x = design.time, design.event, design.x
    times = np.unique(t[e == 1])
    with pytest.raises(InputError, match="not among the global event times"):
        cox_site_sums(t, e, x, beta=np.zeros(3), event_times=times[1:])
    with pytest.raises(InputError, match="sorted and distinct"):
        cox_site_sums(t, e, x, beta=np.zeros(3), event_times=times[::-1])
    with pytest.raises(InputError, match="beta: expected 3 values"):
        cox_site_sums(t, e, x, beta=np.zeros(2), event_times=times)
    with pytest.raises(InputError, match="give a mapping stratum -> times together with strata"):
        cox_site_sums(t, e, x, beta=np.zeros(3), event_times=times, strata=frame["site"].to_numpy())
    with pytest.raises(InputError, match="deaths in stratum 'C', which is not among the strata"):
        cox_site_sums(t, e, x, beta=np.zeros(3), event_times={"A": times},
                      strata=frame["site"].to_numpy())
    kwargs: dict[str, Any] = {"terms": design.column_names, "event_times": times, "n": int(t.size)}
    with pytest.raises(InputError, match="n_events: 5 given, but the sites report"):
        cox_federated(lambda b: [cox_site_sums(t, e, x, beta=b, event_times=times)], n_events=5, **kwargs)
    with pytest.raises(InputError, match="computed at beta"):
        cox_federated(lambda b: [cox_site_sums(t, e, x, beta=b + 1, event_times=times)],
                      n_events=int(e.sum()), **kwargs)
    with pytest.raises(InputError, match="centred at"):
        cox_federated(lambda b: [cox_site_sums(t, e, x, beta=b, event_times=times, center=x.mean(0))],
                      n_events=int(e.sum()), **kwargs)
    with pytest.raises(InputError, match="the times of stratum None differ from the global event times"):
        cox_federated(lambda b: [cox_site_sums(t, e, x, beta=b, event_times=np.append(times, 1e6))],
                      n_events=int(e.sum()), **kwargs)


def robust_federated(
    frame: pl.DataFrame, covariates: Sequence[str], fit: FederatedCoxResult, *, stratified: bool,
    cluster: str | None,
) -> FederatedCoxResult:
    """The robust round: the request and every site's answer cross JSON, as they would travel."""
    design = build_design(frame, time="time", event="event", covariates=covariates, strata=None,
                          cluster=None, reference=None, weights=None)
    request = CoxResidualRequest.from_json(json.loads(json.dumps(cox_residual_request(fit).to_json(),
                                                                 allow_nan=False)))
    sites = frame["site"].to_numpy().astype(str)
    answers = []
    for label in sorted(set(sites.tolist())):
        rows = sites == label
        labels = None if cluster in (None, "site") else frame[cluster].to_numpy()[rows]
        sums = cox_site_residual_sums(design.time[rows], design.event[rows], design.x[rows], request=request,
                                      strata=sites[rows] if stratified else None, cluster=labels)
        answers.append(CoxResidualSums.from_json(json.loads(json.dumps(sums.to_json()))))
    return robust_variance_federated(fit, answers, cluster=cluster, cluster_is_site=cluster == "site")


ROBUST_CASES = [(data, ties, stratified, cluster) for data in DATA for ties in ("efron", "breslow")
                for stratified in (False, True) for cluster in (None, "unit", "site")
                # cluster = site needs more sites than coefficients and no strata by site (else
                # the variance is singular: refused alike, tested below); lung: 4 sites, 5 columns
                if not (cluster == "site" and (stratified or data == "lung"))]


@pytest.mark.parametrize(("data", "ties", "stratified", "cluster"), ROBUST_CASES)
def test_robust_variance_equals_cox_ph(data: str, ties: str, stratified: bool, cluster: str | None) -> None:
    make, covariates = DATA[data]
    # "unit": clusters nested within sites (e.g. wards of a centre)
    frame = make().with_columns(unit=pl.col("site") + "-" + (pl.int_range(pl.len()) % 3).cast(pl.String))
    fit, _ = federated_fit(frame, covariates, ties=ties, stratified=stratified)
    ours = robust_federated(frame, covariates, fit, stratified=stratified, cluster=cluster)
    theirs = cox_ph(frame, time="time", event="event", covariates=covariates, ties=ties,  # type: ignore[arg-type]
                    strata="site" if stratified else None, robust=cluster is None, cluster=cluster)
    assert theirs.robust_se is not None and ours.robust_se is not None
    assert ours.robust_se == pytest.approx(theirs.robust_se, rel=1e-9)
    assert np.allclose(ours.variance, theirs.variance, rtol=1e-9, atol=0)
    assert ours.wald_test.statistic == pytest.approx(theirs.wald_test.statistic, rel=1e-9)
    assert ours.se == pytest.approx(theirs.se, rel=1e-9) and ours.cluster == theirs.cluster
    assert ours.to_frame()["robust_se"].to_list() == pytest.approx(theirs.to_frame()["robust_se"].to_list(), rel=1e-9)
    assert ours.to_dict()["robust"] is True


def test_a_robust_variance_with_too_few_clusters_is_refused_as_cox_ph_does() -> None:
    frame = synthetic_frame()
    fit, _ = federated_fit(frame, COVARIATES, stratified=True)
    with pytest.raises(ConvergenceError, match="robust variance is singular"):
        cox_ph(frame, time="time", event="event", covariates=COVARIATES, strata="site", cluster="site")
    with pytest.raises(ConvergenceError, match="robust variance is singular"):
        robust_federated(frame, COVARIATES, fit, stratified=True, cluster="site")


def test_robust_round_payloads_are_aggregates() -> None:
    frame = synthetic_frame()
    fit, _ = federated_fit(frame, COVARIATES)
    request = cox_residual_request(fit).to_json()
    (stratum,) = request["strata"]
    n_times = int(np.unique(frame.filter(pl.col("event") == 1)["time"].to_numpy()).size)
    assert {len(v) for k, v in stratum.items() if k != "stratum"} == {n_times}
    design = build_design(frame, time="time", event="event", covariates=COVARIATES, strata=None,
                          cluster=None, reference=None, weights=None)
    answer = cox_site_residual_sums(design.time, design.event, design.x,
                                    request=CoxResidualRequest.from_json(request)).to_json()
    assert set(answer) == {"schema", "cross", "total", "n_clusters"}
    assert np.shape(answer["cross"]) == (3, 3) and np.shape(answer["total"]) == (3,)


def test_max_iter_zero_and_a_constant_column_behave_as_cox_ph() -> None:
    frame = synthetic_frame()
    fit, _ = federated_fit(frame, COVARIATES)
    design = build_design(frame, time="time", event="event", covariates=COVARIATES, strata=None,
                          cluster=None, reference=None, weights=None)
    t, e, x = design.time, design.event, design.x
    times = np.unique(t[e == 1])
    at_zero = cox_federated(lambda b: [cox_site_sums(t, e, x, beta=b, event_times=times)],
                            terms=design.column_names, event_times=times, n=int(t.size),
                            n_events=int(e.sum()), max_iter=0)
    pooled = cox_ph(frame, time="time", event="event", covariates=COVARIATES, max_iter=0)
    assert at_zero.coef == (0.0, 0.0, 0.0) and at_zero.iterations == 0
    assert at_zero.se == pytest.approx(pooled.se, rel=1e-12)
    assert at_zero.score_test.statistic == pytest.approx(fit.score_test.statistic, rel=1e-12)
    constant = np.column_stack([x, np.ones(t.size)])
    with pytest.raises(ConvergenceError, match="'flag' carry no information"):
        cox_federated(lambda b: [cox_site_sums(t, e, constant, beta=b, event_times=times)],
                      terms=[*design.column_names, "flag"], event_times=times, n=int(t.size),
                      n_events=int(e.sum()))


def test_a_diverging_coefficient_is_refused_as_cox_ph_does() -> None:
    # every death in group b: complete separation, the coefficient runs to infinity
    time = np.arange(1.0, 21.0)
    group = np.tile([0.0, 1.0], 10)
    event = group.astype(np.int64)
    frame = pl.DataFrame({"time": time, "event": event, "g": group})
    with pytest.raises(ConvergenceError, match="infinite") as pooled:
        cox_ph(frame, time="time", event="event", covariates=["g"])
    times = np.unique(time[event == 1])
    with pytest.raises(ConvergenceError, match="infinite") as ours:
        cox_federated(
            lambda b: [cox_site_sums(time[:10], event[:10], group[:10, None], beta=b, event_times=times),
                       cox_site_sums(time[10:], event[10:], group[10:, None], beta=b, event_times=times)],
            terms=["g"], event_times=times, n=20, n_events=10,
        )
    assert str(ours.value) == str(pooled.value)
