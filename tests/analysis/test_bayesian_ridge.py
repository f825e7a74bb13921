"""``GramBayesianRidge`` equals scikit-learn's ``BayesianRidge`` (the estimator of the chained
equations), and ``IterativeImputer`` gives the same imputed sets with either."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.linear_model import BayesianRidge

from oncorwe.analysis._bayesian_ridge import GramBayesianRidge


def _data(seed: int, n: int, p: int, *, binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, size=p) + rng.normal(size=p) * 3
    x[:, 0] = rng.integers(0, 2, size=n)  # an indicator, as the design's category columns
    y = x @ rng.normal(size=p) + rng.normal(size=n) * rng.uniform(0.2, 3)
    return x, ((y > np.median(y)).astype(float) if binary else y)


def _same(ours: GramBayesianRidge, theirs: BayesianRidge, x_new: np.ndarray) -> None:
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-8, atol=1e-12)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-8, abs=1e-12)
    assert ours.alpha_ == pytest.approx(float(theirs.alpha_), rel=1e-8)
    assert ours.lambda_ == pytest.approx(float(theirs.lambda_), rel=1e-8)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.sigma_, theirs.sigma_, rtol=1e-7, atol=1e-14)
    mean, std = ours.predict(x_new, return_std=True)
    their_mean, their_std = theirs.predict(x_new, return_std=True)
    np.testing.assert_allclose(mean, their_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std, their_std, rtol=1e-8)


@pytest.mark.parametrize(("n", "p", "binary"), [(50, 3, False), (2000, 8, True), (20000, 12, False), (5, 8, False)])
def test_equals_bayesian_ridge(n: int, p: int, binary: bool) -> None:
    x, y = _data(n + p, n, p, binary=binary)
    x_new, _ = _data(99, 30, p)
    _same(GramBayesianRidge().fit(x, y), BayesianRidge().fit(x, y), x_new)


def test_a_constant_column_as_bayesian_ridge() -> None:
    x, y = _data(3, 400, 4)
    x[:, 2] = 1.5  # a covariate constant in a small study: X'X singular, as the SVD's zero singular value
    _same(GramBayesianRidge().fit(x, y), BayesianRidge().fit(x, y), _data(4, 10, 4)[0])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 600), p=st.integers(1, 7))
def test_equals_bayesian_ridge_on_random_designs(seed: int, n: int, p: int) -> None:
    x, y = _data(seed, n, p)
    _same(GramBayesianRidge().fit(x, y), BayesianRidge().fit(x, y), x[:5])


def test_the_imputed_sets_are_the_same() -> None:
    rng = np.random.default_rng(11)
    x, _ = _data(12, 3000, 6)
    x[:, 1] = np.rint(np.clip(x[:, 1], 0, 3))
    holes = x.copy()
    holes[rng.random(3000) < 0.2, 1] = np.nan
    holes[rng.random(3000) < 0.15, 0] = np.nan
    kwargs = {"sample_posterior": True, "max_iter": 10, "random_state": 5, "skip_complete": True}
    ours = IterativeImputer(estimator=GramBayesianRidge(), **kwargs).fit_transform(holes)
    theirs = IterativeImputer(**kwargs).fit_transform(holes)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)
