"""Binomial proportions: confidence intervals and a test of equal rates across k groups.

``binomial_ci`` gives the Clopper-Pearson exact interval (R's ``binom.test``) or the Wilson score
interval (R's ``prop.test(correct = FALSE)``). ``compare_rates`` tests whether k response rates
differ: the Fisher-Freeman-Halton exact test on the k x 2 table (R's ``fisher.test``) when the table
is small, otherwise Pearson's chi-square (R's ``chisq.test(correct = FALSE)``).

References
----------
Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the
binomial. Biometrika 1934;26:404-13.
Wilson EB. Probable inference, the law of succession, and statistical inference. J Am Stat Assoc
1927;22:209-12.
Freeman GH, Halton JH. Note on an exact treatment of contingency, goodness of fit and other
problems of significance. Biometrika 1951;38:141-9.
Cochran WG. Some methods for strengthening the common chi-square tests. Biometrics 1954;10:417-51.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import betaincinv, gammaln
from scipy.stats import chi2

from oncorwe.errors import InputError
from oncorwe.stats._types import Estimate
from oncorwe.stats._validate import as_float_array, describe_positions, z_for_conf_level

__all__ = ["RateComparison", "binomial_ci", "compare_rates"]

#: Tables whose probability is within this relative margin of the observed one count as "as
#: extreme" (R's fisher.test: relErr = 1 + 1e-7), so ties survive rounding.
_RELATIVE_ERROR = 1 + 1e-7
#: Above this many tables with the observed margins, exact enumeration is refused (too slow).
_MAX_TABLES = 5_000_000
#: Cochran's rule: the chi-square approximation is trusted when every expected count is >= 5.
_MIN_EXPECTED = 5.0

FISHER_K2 = "Fisher exact"
FISHER_KXN = "Fisher-Freeman-Halton exact"
CHI_SQUARE = "Pearson chi-square"


def _count(value: Any, name: str) -> int:
    """A non-negative whole number (int, or float with no fractional part)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: must be a whole number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float) or as_float != math.floor(as_float) or as_float < 0:
        raise InputError(f"{name}: must be a whole number >= 0, got {value!r}")
    return int(as_float)


def _z(conf_level: Any) -> float:
    return z_for_conf_level(conf_level)


def binomial_ci(
    successes: int,
    n: int,
    *,
    method: Literal["exact", "wilson"] = "exact",
    conf_level: float = 0.95,
) -> Estimate:
    """A proportion ``successes / n`` with its confidence interval.

    Parameters
    ----------
    successes, n : int
        Number of successes (e.g. responders) and trials; 0 <= successes <= n, n >= 1.
    method : {"exact", "wilson"}
        "exact": Clopper-Pearson, the beta quantiles B(a/2; x, n-x+1) and B(1-a/2; x+1, n-x)
        (R's ``binom.test``). "wilson": the score interval without continuity correction
        (R's ``prop.test(x, n, correct = FALSE)``).
    conf_level : float
        Confidence level.

    Returns
    -------
    Estimate
        The proportion and its interval.

    Raises
    ------
    InputError
        Counts that are not whole numbers, successes > n, n = 0, unknown method.
    """
    x = _count(successes, "successes")
    trials = _count(n, "n")
    if trials == 0:
        raise InputError("n: must be >= 1 (a proportion of zero trials is undefined)")
    if x > trials:
        raise InputError(f"successes: {x} exceeds n = {trials}")
    z = _z(conf_level)
    alpha = 1 - conf_level
    estimate = x / trials
    if method == "exact":
        lower = 0.0 if x == 0 else float(betaincinv(x, trials - x + 1, alpha / 2))
        upper = 1.0 if x == trials else float(betaincinv(x + 1, trials - x, 1 - alpha / 2))
        return Estimate(estimate, lower, upper)
    if method == "wilson":
        z22n = z * z / (2 * trials)
        spread = z * math.sqrt(estimate * (1 - estimate) / trials + z22n / (2 * trials))
        lower = 0.0 if estimate <= 0 else (estimate + z22n - spread) / (1 + 2 * z22n)
        upper = 1.0 if estimate >= 1 else (estimate + z22n + spread) / (1 + 2 * z22n)
        return Estimate(estimate, lower, upper)
    raise InputError(f"method: must be 'exact' or 'wilson', got {method!r}")


def _log_choose(n: npt.ArrayLike, k: npt.ArrayLike) -> npt.NDArray[np.float64]:
    n_arr, k_arr = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    return np.asarray(gammaln(n_arr + 1) - gammaln(k_arr + 1) - gammaln(n_arr - k_arr + 1))


def _n_tables(totals: npt.NDArray[np.int64], total_successes: int) -> int:
    """How many k x 2 tables share these margins: the coefficient of x^S in prod (1 + ... + x^n_i)."""
    ways = np.zeros(total_successes + 1, dtype=object)
    ways[0] = 1
    for n_i in totals.tolist():
        cumulative = np.cumsum(ways)
        shifted = np.concatenate((np.zeros(n_i + 1, dtype=object), cumulative))[: ways.size]
        ways = cumulative - shifted
    return int(ways[total_successes])


def _fisher_p_value(successes: npt.NDArray[np.int64], totals: npt.NDArray[np.int64]) -> float:
    """Exact conditional p-value for a k x 2 table (Freeman-Halton; Fisher when k = 2).

    Enumerates every table with the observed margins, each with probability
    prod C(n_i, s_i) / C(N, S), and sums those no more likely than the observed table.
    """
    total_successes = int(successes.sum())
    capacity_after = np.concatenate((np.cumsum(totals[::-1])[::-1][1:], [0]))
    partial_sum = np.zeros(1, dtype=np.int64)
    partial_log = np.zeros(1)
    for n_i, remaining in zip(totals.tolist(), capacity_after.tolist(), strict=True):
        # only the choices that can still complete the margin: never more states than tables
        low = np.maximum(0, total_successes - partial_sum - remaining)
        high = np.minimum(n_i, total_successes - partial_sum)
        counts = np.maximum(high - low + 1, 0)
        parent = np.repeat(np.arange(partial_sum.size), counts)
        starts = np.cumsum(counts) - counts
        choice = np.arange(parent.size) - starts[parent] + low[parent]
        partial_sum = partial_sum[parent] + choice
        partial_log = partial_log[parent] + _log_choose(n_i, choice)
    normaliser = float(_log_choose(int(totals.sum()), total_successes))
    log_prob = partial_log - normaliser
    observed = float(_log_choose(totals, successes).sum()) - normaliser
    as_extreme = log_prob <= observed + math.log(_RELATIVE_ERROR)
    return float(min(1.0, np.exp(log_prob[as_extreme]).sum()))


@dataclass(frozen=True)
class RateComparison:
    """A test of equal rates across k groups.

    Attributes
    ----------
    method : str
        The test used: "Fisher exact" (k = 2), "Fisher-Freeman-Halton exact" (k > 2) or
        "Pearson chi-square".
    statistic : float or None
        The chi-square statistic (None for the exact tests, which have none).
    df : int or None
        Chi-square degrees of freedom, k - 1 (None for the exact tests).
    p_value : float
    groups : tuple of str
        Group names, in the order given.
    successes, totals : tuple of int
        The k x 2 table as successes and group sizes.
    """

    method: str
    statistic: float | None
    df: int | None
    p_value: float
    groups: tuple[str, ...]
    successes: tuple[int, ...]
    totals: tuple[int, ...]

    @property
    def table(self) -> npt.NDArray[np.int64]:
        """The k x 2 table: column 0 successes, column 1 failures."""
        successes = np.array(self.successes, dtype=np.int64)
        return np.column_stack((successes, np.array(self.totals, dtype=np.int64) - successes))

    def to_frame(self) -> pl.DataFrame:
        """One row per group: group, successes, failures, total, rate."""
        successes = np.array(self.successes, dtype=np.int64)
        totals = np.array(self.totals, dtype=np.int64)
        return pl.DataFrame(
            {
                "group": list(self.groups),
                "successes": successes,
                "failures": totals - successes,
                "total": totals,
                "rate": successes / totals,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, suitable for JSON."""
        return {
            "method": self.method,
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "groups": list(self.groups),
            "successes": list(self.successes),
            "totals": list(self.totals),
        }

    def __repr__(self) -> str:
        groups = ", ".join(
            f"{group}: {s}/{n}"
            for group, s, n in zip(self.groups, self.successes, self.totals, strict=True)
        )
        statistic = (
            "" if self.statistic is None else f"statistic={self.statistic:.6g}, df={self.df}, "
        )
        return f"RateComparison(method={self.method!r}, {statistic}p_value={self.p_value:.4g}, {groups})"


def compare_rates(
    successes: Any,
    totals: Any,
    *,
    groups: Any = None,
    method: Literal["auto", "fisher", "chisq"] = "auto",
) -> RateComparison:
    """Test whether k proportions (e.g. response rates) differ.

    Parameters
    ----------
    successes, totals : array-like of int, shape (k,)
        Successes and group sizes, k >= 2, every group size >= 1.
    groups : sequence of str, optional
        Group names (default "1", ..., "k").
    method : {"auto", "fisher", "chisq"}
        "fisher": exact test conditional on the margins (Fisher for k = 2, Freeman-Halton for
        k > 2; R's ``fisher.test``). "chisq": Pearson's chi-square on k - 1 df without continuity
        correction (R's ``chisq.test(correct = FALSE)``). "auto": Fisher when any expected count is
        below 5 (Cochran 1954), chi-square otherwise; also chi-square when the exact enumeration
        would exceed 5 million tables. The result's ``method`` says which was used.

    Raises
    ------
    InputError
        Fewer than two groups, counts not whole numbers, successes > totals, an empty group,
        group names of the wrong length, chi-square requested with an empty column, or an exact test
        requested on a table too large to enumerate.
    """
    success_arr = as_float_array(successes, "successes")
    total_arr = as_float_array(totals, "totals")
    if success_arr.size != total_arr.size:
        raise InputError(
            f"length mismatch: successes has {success_arr.size}, totals has {total_arr.size} values"
        )
    k = success_arr.size
    if k < 2:
        raise InputError(f"successes: at least two groups are needed to compare rates, got {k}")
    for name, arr in (("successes", success_arr), ("totals", total_arr)):
        bad = (arr < 0) | (arr != np.floor(arr))
        if bad.any():
            raise InputError(
                f"{name}: must be whole numbers >= 0; bad values at {describe_positions(bad)}"
            )
    if (total_arr == 0).any():
        raise InputError(f"totals: empty groups at {describe_positions(total_arr == 0)}")
    if (success_arr > total_arr).any():
        raise InputError(
            f"successes: exceed totals at {describe_positions(success_arr > total_arr)}"
        )
    if groups is None:
        group_names = tuple(str(i + 1) for i in range(k))
    else:
        group_names = tuple(str(group) for group in groups)
        if len(group_names) != k:
            raise InputError(f"groups: {len(group_names)} names given for {k} groups")
        if len(set(group_names)) != k:
            raise InputError(f"groups: must be distinct, got {list(group_names)}")
    if method not in ("auto", "fisher", "chisq"):
        raise InputError(f"method: must be 'auto', 'fisher' or 'chisq', got {method!r}")

    success_int = success_arr.astype(np.int64)
    total_int = total_arr.astype(np.int64)
    table = np.column_stack((success_int, total_int - success_int)).astype(np.float64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if method == "auto":
        if (expected == 0).any():
            method = "fisher"  # one column empty: a single table, p = 1 exactly
        elif (expected < _MIN_EXPECTED).any():
            fits = _n_tables(total_int, int(success_int.sum())) <= _MAX_TABLES
            method = "fisher" if fits else "chisq"
        else:
            method = "chisq"
    common = {
        "groups": group_names,
        "successes": tuple(int(v) for v in success_int),
        "totals": tuple(int(v) for v in total_int),
    }
    if method == "fisher":
        n_tables = _n_tables(total_int, int(success_int.sum()))
        if n_tables > _MAX_TABLES:
            raise InputError(
                f"method: the exact test would enumerate {n_tables} tables (limit {_MAX_TABLES}); "
                "use method='chisq'"
            )
        return RateComparison(
            method=FISHER_K2 if k == 2 else FISHER_KXN,
            statistic=None,
            df=None,
            p_value=_fisher_p_value(success_int, total_int),
            **common,  # type: ignore[arg-type]
        )
    if (expected == 0).any():
        raise InputError(
            "successes: no group has a success, or none a failure; the chi-square test is undefined"
        )
    statistic = float(((table - expected) ** 2 / expected).sum())
    return RateComparison(
        method=CHI_SQUARE,
        statistic=statistic,
        df=k - 1,
        p_value=float(chi2.sf(statistic, k - 1)),
        **common,  # type: ignore[arg-type]
    )
