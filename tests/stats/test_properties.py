"""Properties that must hold for any data (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oncorwe.stats import binomial_ci, compare_rates, kaplan_meier, landmark, logrank_test

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def survival_data(
    draw: st.DrawFn, min_size: int = 1, max_size: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_size, max_size))
    # few distinct values: heavy ties and zeros are the interesting cases
    time = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    event = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return np.array(time, dtype=float), np.array(event)


@st.composite
def grouped_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time, event = draw(survival_data(min_size=4))
    k = draw(st.integers(2, 4))
    group = np.array(draw(st.lists(st.integers(0, k - 1), min_size=time.size, max_size=time.size)))
    return time, event, group


@SETTINGS
@given(survival_data(), st.sampled_from(["log", "log-log", "plain"]))
def test_survival_is_non_increasing_in_unit_interval_and_inside_its_band(
    data: tuple[np.ndarray, np.ndarray], conf_type: str
) -> None:
    time, event = data
    fit = kaplan_meier(time, event, conf_type=conf_type)  # type: ignore[arg-type]
    assert np.all(np.diff(fit.survival) <= 0)
    assert np.all((fit.survival >= 0) & (fit.survival <= 1))
    assert np.all(np.diff(fit.se) >= 0)
    defined = ~np.isnan(fit.lower)
    assert np.all(fit.lower[defined] <= fit.survival[defined] + 1e-12)
    assert np.all(fit.upper[defined] >= fit.survival[defined] - 1e-12)
    assert np.all((fit.lower[defined] >= 0) & (fit.upper[defined] <= 1))
    assert fit.n_risk[0] == time.size
    assert fit.n_event.sum() == event.sum()
    assert fit.n_event.sum() + fit.n_censor.sum() == time.size


@SETTINGS
@given(survival_data(), st.randoms(use_true_random=False))
def test_permuting_rows_changes_nothing(data: tuple[np.ndarray, np.ndarray], rnd: object) -> None:
    time, event = data
    order = np.random.default_rng(rnd.getrandbits(32)).permutation(time.size)  # type: ignore[attr-defined]
    assert (
        kaplan_meier(time, event)
        .to_frame()
        .equals(kaplan_meier(time[order], event[order]).to_frame())
    )


@SETTINGS
@given(survival_data(), st.sampled_from([0.5, 2.0, 4.0, 30.4375]))
def test_scaling_times_scales_medians_quantiles_and_restricted_means(
    data: tuple[np.ndarray, np.ndarray], factor: float
) -> None:
    time, event = data
    fit, scaled = kaplan_meier(time, event), kaplan_meier(time * factor, event)
    for ours, theirs in ((fit.median, scaled.median), (fit.quantile(0.25), scaled.quantile(0.25))):
        for a, b in zip(ours, theirs, strict=True):
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a * factor, b, rel_tol=1e-12)
    tau = float(time.max()) or 1.0
    mean, scaled_mean = fit.restricted_mean(tau), scaled.restricted_mean(tau * factor)
    assert math.isclose(mean.value * factor, scaled_mean.value, rel_tol=1e-12)
    assert math.isclose(mean.se * factor, scaled_mean.se, rel_tol=1e-9, abs_tol=1e-12)


@SETTINGS
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(1, 20), min_size=n, max_size=n))
    )
)
def test_without_censoring_km_is_the_empirical_survival_function(
    data: tuple[int, list[int]],
) -> None:
    _, times = data
    time = np.array(times, dtype=float)
    fit = kaplan_meier(time, np.ones(time.size))
    empirical = np.array([(time > t).mean() for t in fit.time])
    assert np.allclose(fit.survival, empirical, rtol=0, atol=1e-12)


@SETTINGS
@given(grouped_data(), st.permutations(["x", "y", "z", "w"]))
def test_logrank_invariant_to_relabelling_and_row_order(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], names: list[str]
) -> None:
    time, event, group = data
    assume(np.unique(group).size >= 2 and event.sum() > 0)
    try:
        base = logrank_test(time, event, group)
    except ValueError:  # fewer than two groups at risk at an event time: undefined either way
        assume(False)
        raise
    relabelled = logrank_test(time, event, np.array(names)[group])
    reversed_rows = logrank_test(time[::-1], event[::-1], group[::-1])
    assert math.isclose(base.statistic, relabelled.statistic, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(base.statistic, reversed_rows.statistic, rel_tol=1e-9, abs_tol=1e-12)
    assert base.df == relabelled.df and 0 <= base.p_value <= 1 and base.statistic >= -1e-12
    mapping = dict(zip(range(4), names, strict=True))
    for g in base.groups:
        assert math.isclose(base.expected[g], relabelled.expected[mapping[g]], rel_tol=1e-12)
    assert math.isclose(sum(base.observed.values()), sum(base.expected.values()), rel_tol=1e-9)


@SETTINGS
@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from(["exact", "wilson"]),
)
def test_binomial_interval_contains_the_estimate(data: tuple[int, int], method: str) -> None:
    successes, n = data
    estimate = binomial_ci(successes, n, method=method)  # type: ignore[arg-type]
    assert 0 <= estimate.lower <= estimate.value <= estimate.upper <= 1
    mirrored = binomial_ci(n - successes, n, method=method)  # type: ignore[arg-type]
    assert math.isclose(estimate.lower, 1 - mirrored.upper, abs_tol=1e-9)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 8)), min_size=2, max_size=4))
def test_fisher_p_is_a_probability_and_ignores_row_order(rows: list[tuple[int, int]]) -> None:
    successes = [min(s, n) for s, n in rows]
    totals = [n for _, n in rows]
    result = compare_rates(successes, totals, method="fisher")
    flipped = compare_rates(successes[::-1], totals[::-1], method="fisher")
    assert 0 < result.p_value <= 1
    assert math.isclose(result.p_value, flipped.p_value, rel_tol=1e-9)


@SETTINGS
@given(survival_data(min_size=2), st.integers(0, 14))
def test_landmark_keeps_exactly_those_followed_beyond(
    data: tuple[np.ndarray, np.ndarray], cut: int
) -> None:
    time, event = data
    assume((time > cut).any())
    kept = landmark(time, event, cut)
    assert kept.n + kept.n_excluded == time.size
    assert np.all(kept.time > 0)
    assert np.array_equal(kept.time + cut, time[kept.positions])
