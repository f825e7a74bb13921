"""Rubin's rules for combining estimates from multiply imputed data sets, as R's ``mice::pool``.

With m completed-data estimates Q_i and their variances U_i: pooled estimate qbar = mean Q_i;
within-imputation variance ubar = mean U_i; between-imputation variance b = var(Q_i) (divisor m - 1);
total variance t = ubar + (1 + 1/m) b. Inference uses a t distribution with the Barnard-Rubin (1999)
degrees of freedom: lambda = (1 + 1/m) b / t (bounded below by 1e-4, as mice), df_old = (m - 1) /
lambda^2, df_obs = (dfcom + 1) / (dfcom + 3) dfcom (1 - lambda), df = df_old df_obs / (df_old +
df_obs), with dfcom = n - k the complete-data degrees of freedom (df = df_old when n is None:
infinitely many). riv = (1 + 1/m) b / ubar; fmi = (riv + 2 / (df + 3)) / (riv + 1).

References
----------
Rubin DB (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
Barnard J, Rubin DB (1999). Small-sample degrees of freedom with multiple imputation. Biometrika
86:948-955. van Buuren S, Groothuis-Oudshoorn K. mice, R package (``pool``, ``pool.scalar``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from scipy import stats as scipy_stats

from oncorwe.errors import InputError
from oncorwe.stats._validate import as_float_array, check_lengths, z_for_conf_level

__all__ = ["RubinPooled", "pool_rubin"]


class RubinPooled(NamedTuple):
    """A pooled estimate: ``estimate`` (qbar), ``variance`` (t), ``se`` = sqrt(t), ``within``
    (ubar), ``between`` (b), ``df``, ``riv``, ``lambda_``, ``fmi``, the t-based interval ``lower``,
    ``upper`` at ``conf_level``, ``statistic`` = qbar / sqrt(t), its two-sided ``p_value``, ``m``."""

    estimate: float
    variance: float
    se: float
    within: float
    between: float
    df: float
    riv: float
    lambda_: float
    fmi: float
    lower: float
    upper: float
    statistic: float
    p_value: float
    m: int
    conf_level: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, suitable for JSON."""
        return dict(self._asdict())


def pool_rubin(
    estimates: Any,
    variances: Any,
    *,
    n: float | None = None,
    k: int = 1,
    conf_level: float = 0.95,
) -> RubinPooled:
    """Pool one parameter's estimates over m >= 2 imputations by Rubin's rules (module text).

    Parameters
    ----------
    estimates, variances : array-like, shape (m,)
        Each imputed data set's estimate and its squared standard error.
    n : float, optional
        Sample size; with ``k`` it sets the complete-data degrees of freedom n - k, as
        ``mice::pool.scalar(Q, U, n, k)``. None means large-sample (dfcom infinite).
    k : int
        Number of parameters of the complete-data model.
    conf_level : float

    Raises
    ------
    InputError
        Fewer than 2 imputations, negative variances, mismatched lengths, n - k < 1.
    """
    q = as_float_array(estimates, "estimates")
    u = as_float_array(variances, "variances", non_negative=True)
    m = check_lengths({"estimates": q, "variances": u})
    if m < 2:
        raise InputError(f"estimates: Rubin's rules need at least 2 imputations, got {m}")
    z_for_conf_level(conf_level)
    if n is None:
        dfcom = math.inf
    else:
        if not isinstance(n, (int, float)) or isinstance(n, bool) or not (n - k >= 1):
            raise InputError(f"n: the complete-data degrees of freedom n - k must be >= 1, got n={n!r}, k={k!r}")
        dfcom = float(n - k)
    qbar = float(q.mean())
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    t = ubar + (1 + 1 / m) * b
    if t <= 0:
        raise InputError("variances: all zero and the estimates identical: the pooled variance is 0")
    lam = max((1 + 1 / m) * b / t, 1e-4)
    df_old = (m - 1) / lam**2
    if math.isinf(dfcom):
        df = df_old
    else:
        df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
        df = df_old * df_obs / (df_old + df_obs)
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else math.inf
    fmi = (riv + 2 / (df + 3)) / (riv + 1) if math.isfinite(riv) else 1.0
    se = math.sqrt(t)
    quantile = float(scipy_stats.t.ppf(1 - (1 - conf_level) / 2, df))
    statistic = qbar / se
    p_value = float(2 * scipy_stats.t.sf(abs(statistic), df))
    return RubinPooled(
        estimate=qbar, variance=t, se=se, within=ubar, between=b, df=float(df), riv=riv,
        lambda_=(1 + 1 / m) * b / t, fmi=fmi, lower=qbar - quantile * se, upper=qbar + quantile * se,
        statistic=statistic, p_value=p_value, m=m, conf_level=float(conf_level),
    )

