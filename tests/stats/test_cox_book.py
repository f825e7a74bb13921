"""Hand-worked Cox model answers, transcribed from survival's tests/book1.R (Breslow) and book2.R
(Efron): Therneau & Grambsch (2000), appendix, data set 1 - seven rows, unsorted times, a tie of two
deaths at t = 6, a death and a censoring tied at t = 1, one missing status.

With r = exp(beta):
  Breslow: loglik = 2 beta - (log(3r + 3) + 2 log(r + 3)),  U = (6 + 3r - r^2) / ((r + 1)(r + 3)),
           I = r/(r + 1)^2 + 6r/(r + 3)^2; the MLE solves r^2 - 3r - 6 = 0.
  Efron:   loglik = 2 beta - (log(3r + 3) + log((r + 5)/2) + log(r + 3)),
           U = (30 + 23r - r^3) / ((r + 1)(r + 3)(r + 5)), I = sum of q - q^2 for
           q = r/(r + 1), r/(r + 5), r/(r + 3); MLE beta = log(2 sqrt(23/3) cos(acos(45/23 sqrt(3/23))/3)).
Score residuals at beta = 0 are listed in the book files too; they give the robust variance.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from oncorwe.stats import cox_ph

BOOK = pl.DataFrame(
    {
        "time": [9.0, 3.0, 1.0, 1.0, 6.0, 6.0, 8.0],
        "status": [1, None, 1, 0, 1, 1, 0],
        "x": [0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0],
    }
)


def breslow_by_hand(beta: float) -> tuple[float, float, float]:
    r = math.exp(beta)
    loglik = 2 * beta - (math.log(3 * r + 3) + 2 * math.log(r + 3))
    score = (6 + 3 * r - r**2) / ((r + 1) * (r + 3))
    information = r / (r + 1) ** 2 + 6 * r / (r + 3) ** 2
    return loglik, score, information


def efron_by_hand(beta: float) -> tuple[float, float, float]:
    r = math.exp(beta)
    loglik = 2 * beta - (math.log(3 * r + 3) + math.log((r + 5) / 2) + math.log(r + 3))
    score = (30 + 23 * r - r**3) / ((r + 1) * (r + 3) * (r + 5))
    information = sum(q - q * q for q in (r / (r + 1), r / (r + 5), r / (r + 3)))
    return loglik, score, information


def _fit(ties: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return cox_ph(BOOK, time="time", event="status", covariates=["x"], ties=ties, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ties", "by_hand"), [("breslow", breslow_by_hand), ("efron", efron_by_hand)])
def test_at_beta_zero(ties: str, by_hand) -> None:  # type: ignore[no-untyped-def]
    fit = _fit(ties, max_iter=0)
    loglik, score, information = by_hand(0.0)
    assert fit.n == 6 and fit.n_dropped == 1 and fit.n_events == 4
    assert fit.coef == (0.0,)
    assert fit.loglik[0] == pytest.approx(loglik, rel=1e-12)
    assert fit.se[0] == pytest.approx(math.sqrt(1 / information), rel=1e-12)
    assert fit.score_test.statistic == pytest.approx(score**2 / information, rel=1e-12)


def test_breslow_beta_zero_closed_forms() -> None:
    # by hand: loglik(0) = -log 6 - 2 log 4, U(0) = 1, I(0) = 1/4 + 6/16 = 5/8, score test 8/5
    fit = _fit("breslow", max_iter=0)
    assert fit.loglik[0] == pytest.approx(-math.log(6) - 2 * math.log(4), rel=1e-14)
    assert fit.score_test.statistic == pytest.approx(8 / 5, rel=1e-14)
    # robust variance = V^2 * sum of squared score residuals (5/24, 5/12, -1/12, 7/24, -1/24, 5/24)
    robust = _fit("breslow", max_iter=0, robust=True)
    squares = sum(v * v for v in (5 / 24, 5 / 12, -1 / 12, 7 / 24, -1 / 24, 5 / 24))
    assert robust.robust_se[0] == pytest.approx((8 / 5) * math.sqrt(squares), rel=1e-12)  # type: ignore[index]


def test_efron_beta_zero_robust_variance_from_book_score_residuals() -> None:
    r = 1.0
    a, b, d = r + 1, r + 3, r + 5
    tied = 2 * r * (177 + r * (282 + r * (182 + r * (50 + 5 * r)))) / (3 * (a * b * d) ** 2)
    score_residuals = [
        (2 * r + 3) / (3 * a**2),
        -r / (3 * a**2),
        (675 + r * (1305 + r * (756 + r * (-4 + r * (-79 - 13 * r))))) / (3 * (a * b * d) ** 2),
        r * (1 / (3 * a**2) - a / (2 * b**2) - b / (2 * d**2)),
        tied,
        tied,
    ]
    _, _, information = efron_by_hand(0.0)
    expected = math.sqrt(sum(v * v for v in score_residuals)) / information
    fit = _fit("efron", max_iter=0, robust=True)
    assert fit.robust_se[0] == pytest.approx(expected, rel=1e-12)  # type: ignore[index]


def test_breslow_converged() -> None:
    fit = _fit("breslow")
    beta = math.log((3 + math.sqrt(33)) / 2)  # root of r^2 - 3r - 6 = 0
    assert fit.coef[0] == pytest.approx(beta, rel=1e-8)
    assert round(fit.coef[0], 7) == 1.4752849  # the value book1.R checks
    loglik, _, information = breslow_by_hand(fit.coef[0])
    assert fit.loglik[1] == pytest.approx(loglik, rel=1e-12)
    assert fit.se[0] == pytest.approx(math.sqrt(1 / information), rel=1e-8)
    loglik0, _, _ = breslow_by_hand(0.0)
    assert fit.lr_test.statistic == pytest.approx(2 * (loglik - loglik0), rel=1e-10)
    assert fit.wald_test.statistic == pytest.approx(fit.coef[0] ** 2 * information, rel=1e-8)


def test_efron_converged() -> None:
    fit = _fit("efron")
    beta = math.log(math.cos(math.acos((45 / 23) * math.sqrt(3 / 23)) / 3) * 2 * math.sqrt(23 / 3))
    assert fit.coef[0] == pytest.approx(beta, rel=1e-8)
    assert round(fit.coef[0], 6) == 1.676857  # the value book2.R checks
    loglik, score, information = efron_by_hand(fit.coef[0])
    assert abs(score) < 1e-8
    assert fit.loglik[1] == pytest.approx(loglik, rel=1e-12)
    assert fit.se[0] == pytest.approx(math.sqrt(1 / information), rel=1e-8)


def test_concordance_by_hand() -> None:
    # rows used (time, status, x): (9,1,0) (1,1,1) (1,0,1) (6,1,1) (6,1,0) (8,0,0); beta > 0.
    # death at 1 (x=1) vs (1,cens,1) tie, (6,1) tie, (6,0) (8,0) (9,0) concordant;
    # death at 6 x=1 vs (8,0) (9,0) concordant; death at 6 x=0 vs (8,0) (9,0) tied;
    # the two deaths at 6 are not comparable. 5 concordant, 0 discordant, 4 tied: (5 + 4/2) / 9.
    fit = _fit("efron")
    assert fit.concordance.value == pytest.approx(7 / 9, rel=1e-14)
