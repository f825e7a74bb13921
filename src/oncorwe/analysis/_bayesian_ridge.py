"""Bayesian ridge regression from the Gram matrix: scikit-learn's ``BayesianRidge``, the same
estimates, in time independent of the number of rows after one pass over them.

``BayesianRidge.fit`` takes the singular value decomposition of the (centred) design, an
``n x p`` matrix, and recomputes the residual sum of squares over all ``n`` rows in every round of
its evidence maximisation (MacKay 1992). Every quantity it uses depends on the data only through
``X'X``, ``X'y`` and ``y'y``: the eigenvalues of ``X'X`` are the squared singular values and its
eigenvectors the right singular vectors, and ``SSE(b) = y'y - 2 b'X'y + b'X'X b``. So this
estimator forms those once (O(n p^2)) and runs the same iterations on ``p x p`` matrices. In the
chained-equation imputation of a 10^5 - 10^6-patient analysis table (``_imputation.impute``, where
scikit-learn's ``IterativeImputer`` refits one model per covariate per round per imputed set), the
fits were most of the analysis stage's time.

Equal to ``sklearn.linear_model.BayesianRidge`` (same defaults, ``compute_score=False``, no sample
weights) to rounding: ``tests/analysis/test_bayesian_ridge.py`` compares the coefficients, the
intercept, ``alpha_``, ``lambda_``, ``sigma_`` and the predictive mean and standard deviation, and
the imputed data sets of ``IterativeImputer`` with either estimator. With fewer rows than columns
the SVD path is kept (the Gram matrix would be rank-deficient by construction): ``BayesianRidge``
itself is fitted.

References
----------
MacKay DJC (1992). Bayesian interpolation. Neural Computation 4:415-447.
Tipping ME (2001). Sparse Bayesian learning and the relevance vector machine. JMLR 1:211-244.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import BayesianRidge

__all__ = ["GramBayesianRidge"]

FloatArray = npt.NDArray[np.float64]


class GramBayesianRidge(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """``BayesianRidge`` fitted from ``X'X`` (see the module text); the parameters are its own."""

    def __init__(self, *, max_iter: int = 300, tol: float = 1.0e-3, alpha_1: float = 1.0e-6,
                 alpha_2: float = 1.0e-6, lambda_1: float = 1.0e-6, lambda_2: float = 1.0e-6,
                 alpha_init: float | None = None, lambda_init: float | None = None) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2
        self.alpha_init = alpha_init
        self.lambda_init = lambda_init

    def fit(self, X: Any, y: Any) -> GramBayesianRidge:
        x = np.asarray(X, dtype=np.float64)
        target = np.asarray(y, dtype=np.float64).ravel()
        n_samples, n_features = x.shape
        if n_samples <= n_features:
            return self._fit_by_svd(x, target)
        x_offset = x.mean(axis=0)
        y_offset = float(target.mean())
        centred = x - x_offset
        y_centred = target - y_offset
        gram = centred.T @ centred
        xt_y = centred.T @ y_centred
        yt_y = float(y_centred @ y_centred)
        eigen_vals, vectors = np.linalg.eigh(gram)
        # X'X is positive semi-definite: a negative eigenvalue is rounding (an SVD gives 0)
        eigen_vals = np.clip(eigen_vals, 0.0, None)
        vt_xt_y = vectors.T @ xt_y

        eps = np.finfo(np.float64).eps
        alpha = 1.0 / (float(target.var()) + eps) if self.alpha_init is None else float(self.alpha_init)
        lambda_ = 1.0 if self.lambda_init is None else float(self.lambda_init)

        def update(alpha: float, lambda_: float) -> tuple[FloatArray, float]:
            coef = vectors @ (vt_xt_y / (eigen_vals + lambda_ / alpha))
            sse = max(yt_y - 2.0 * float(coef @ xt_y) + float(coef @ gram @ coef), 0.0)
            return coef, sse

        coef_old = None
        iteration = 0
        for iteration in range(self.max_iter):
            coef, sse = update(alpha, lambda_)
            gamma = float(np.sum((alpha * eigen_vals) / (lambda_ + alpha * eigen_vals)))
            lambda_ = (gamma + 2 * self.lambda_1) / (float(np.sum(coef**2)) + 2 * self.lambda_2)
            alpha = (n_samples - gamma + 2 * self.alpha_1) / (sse + 2 * self.alpha_2)
            if iteration != 0 and coef_old is not None and float(np.sum(np.abs(coef_old - coef))) < self.tol:
                break
            coef_old = coef.copy()
        self.n_iter_ = iteration + 1
        self.alpha_ = alpha
        self.lambda_ = lambda_
        self.coef_, _sse = update(alpha, lambda_)
        self.sigma_ = (vectors / (alpha * eigen_vals + lambda_)) @ vectors.T
        self.X_offset_ = x_offset
        self.intercept_ = y_offset - float(x_offset @ self.coef_)
        self.n_features_in_ = n_features
        return self

    def _fit_by_svd(self, x: FloatArray, target: FloatArray) -> GramBayesianRidge:
        model = BayesianRidge(max_iter=self.max_iter, tol=self.tol, alpha_1=self.alpha_1, alpha_2=self.alpha_2,
                              lambda_1=self.lambda_1, lambda_2=self.lambda_2, alpha_init=self.alpha_init,
                              lambda_init=self.lambda_init).fit(x, target)
        for name in ("n_iter_", "alpha_", "lambda_", "coef_", "sigma_", "X_offset_", "intercept_", "n_features_in_"):
            setattr(self, name, getattr(model, name))
        return self

    def predict(self, X: Any, return_std: bool = False) -> Any:
        x = np.asarray(X, dtype=np.float64)
        mean = x @ self.coef_ + self.intercept_
        if not return_std:
            return mean
        centred = x - self.X_offset_
        spread = ((centred @ self.sigma_) * centred).sum(axis=1)
        return mean, np.sqrt(spread + 1.0 / self.alpha_)
