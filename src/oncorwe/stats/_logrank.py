"""The log-rank test for k groups, optionally stratified, as R's ``survival::survdiff`` (rho = 0).

At each distinct event time t with n_t at risk and d_t events, group g (n_gt at risk) contributes

    expected  E_g  += d_t n_gt / n_t
    variance  V_gh += d_t (n_t - d_t) / (n_t - 1) * (n_gt / n_t) * (delta_gh - n_ht / n_t)

Stratified: O, E and V are summed over strata. The statistic is (O - E)' V^- (O - E) over the
groups with E > 0, dropping the first, on (number of such groups - 1) degrees of freedom.

References
----------
Mantel N. Evaluation of survival data and two new rank order statistics arising in its
consideration. Cancer Chemother Rep 1966;50:163-70.
Peto R, Peto J. Asymptotically efficient rank invariant test procedures. J R Stat Soc A 1972;135:185-207.
Therneau TM. survival: R package, ``survdiff`` / ``survdiff.fit`` (version 3.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.stats import chi2

from oncorwe.errors import InputError
from oncorwe.stats._types import Test
from oncorwe.stats._validate import (
    as_label_array,
    check_lengths,
    check_time_event,
    near_tie_cuts,
    snap_to_cuts,
)

__all__ = ["LogRankResult", "logrank_test"]

FloatArray = npt.NDArray[np.float64]
Label = Any  # a group label as the caller gave it (str, int, float or bool)


def _sorted_by_group(
    time: FloatArray, event: npt.NDArray[np.int8], group: npt.NDArray[np.intp], n_groups: int
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Each group's times and event times, sorted (one sort per group, no loop over rows)."""
    event_mask = event == 1
    group_times, group_event_times = [], []
    for g in range(n_groups):
        in_group = group == g
        times_g = time[in_group]  # a fresh array: sort it in place, no second copy
        times_g.sort()
        event_times_g = time[in_group & event_mask]
        event_times_g.sort()
        group_times.append(times_g)
        group_event_times.append(event_times_g)
    return group_times, group_event_times


def _distinct_of_sorted_runs(runs: list[FloatArray]) -> FloatArray:
    """Distinct values of several sorted arrays: a stable sort merges the runs cheaply."""
    merged = np.concatenate(runs)
    merged.sort(kind="stable")
    is_new = np.empty(merged.size, dtype=bool)
    is_new[:1] = True
    np.not_equal(merged[1:], merged[:-1], out=is_new[1:])
    return merged[is_new]


def _stratum_sums(
    group_times: list[FloatArray], group_event_times: list[FloatArray]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Observed and expected events per group and the k x k variance within one stratum.

    Vectorised over distinct event times: each group's sorted times are counted at the event
    times with ``searchsorted``.
    """
    n_groups = len(group_times)
    event_times = _distinct_of_sorted_runs(group_event_times)
    n_times = event_times.size
    at_risk = np.empty((n_times, n_groups))
    events = np.empty((n_times, n_groups))
    observed = np.empty(n_groups)
    for g in range(n_groups):
        at_risk[:, g] = group_times[g].size - np.searchsorted(
            group_times[g], event_times, side="left"
        )
        # every group event time is one of event_times, so counts are steps of one searchsorted
        events[:, g] = np.diff(
            np.searchsorted(group_event_times[g], event_times, side="right"), prepend=0
        )
        observed[g] = group_event_times[g].size
    n_risk = at_risk.sum(axis=1)
    n_event = events.sum(axis=1)
    share = at_risk / n_risk[:, None]
    expected = (n_event[:, None] * share).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(n_risk > 1, n_event * (n_risk - n_event) / (n_risk - 1), 0.0)
    weighted_share = share * weight[:, None]
    variance = np.diag(weighted_share.sum(axis=0)) - weighted_share.T @ share
    return observed, expected, variance


def _declared_levels(values: Any) -> list[Label] | None:
    """The level order of a pandas categorical or polars Enum column (R: a factor's levels)."""
    dtype: Any = getattr(values, "dtype", None)
    if type(dtype).__name__ == "Enum" and hasattr(dtype, "categories"):  # polars Enum
        return list(dtype.categories)
    if getattr(dtype, "name", None) == "category" and hasattr(dtype, "categories"):  # pandas
        return list(dtype.categories)
    return None


def _reorder(
    levels: list[Label], codes: npt.NDArray[np.intp], declared: list[Label] | None
) -> tuple[list[Label], npt.NDArray[np.intp]]:
    """Put the observed levels in the declared order (unused declared levels dropped, as strata())."""
    if declared is None:
        return levels, codes
    rank = {level: i for i, level in enumerate(declared)}
    order = sorted(range(len(levels)), key=lambda i: rank.get(levels[i], len(declared)))
    new_position = np.empty(len(levels), dtype=np.intp)
    new_position[order] = np.arange(len(levels))
    return [levels[i] for i in order], new_position[codes]


def _codes(labels: np.ndarray) -> tuple[list[Label], npt.NDArray[np.intp]]:
    """Sorted distinct labels (as R sorts factor levels) and each row's index into them."""
    if labels.dtype.kind in "biu" and labels.size:
        # integer labels: a bincount over the range avoids sorting every row
        as_int = labels.astype(np.int64, copy=False)
        low = int(as_int.min())
        span = int(as_int.max()) - low + 1
        if span <= 4 * labels.size + 1024:
            shifted = as_int - low if low else as_int
            present = np.flatnonzero(np.bincount(shifted, minlength=span))
            lookup = np.full(span, -1, dtype=np.intp)
            lookup[present] = np.arange(present.size)
            values = present + low
            int_levels: list[Label] = (
                [bool(v) for v in values] if labels.dtype.kind == "b" else [int(v) for v in values]
            )
            codes = shifted if present.size == span else lookup[shifted]
            return int_levels, codes
    try:
        distinct, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:  # incomparable label types
        raise InputError(f"labels cannot be sorted: {exc}") from exc
    levels = [v.item() if isinstance(v, np.generic) else v for v in distinct.tolist()]
    return levels, codes.reshape(-1)


@dataclass(frozen=True, eq=False)
class LogRankResult:
    """A log-rank test: chi-square, df, p-value, and observed / expected events per group.

    Attributes
    ----------
    groups : tuple
        Group labels, sorted as R sorts factor levels.
    n : Mapping (read-only), group -> int
        Number of observations per group.
    observed, expected : Mapping (read-only), group -> float
        Events observed and expected under the null, per group (summed over strata).
    variance : numpy.ndarray (read-only), shape (k, k)
        Variance-covariance matrix of O - E (R's ``survdiff(...)$var``).
    statistic, df, p_value : the test.
    n_strata : number of strata (1 when unstratified).
    """

    groups: tuple[Label, ...]
    n: Mapping[Label, int]
    observed: Mapping[Label, float]
    expected: Mapping[Label, float]
    variance: FloatArray
    statistic: float
    df: int
    p_value: float
    n_strata: int

    @property
    def test(self) -> Test:
        """The test as a `Test` (statistic, df, p_value)."""
        return Test(self.statistic, float(self.df), self.p_value)

    def to_frame(self) -> pl.DataFrame:
        """One row per group: group, n, observed, expected, (O-E)^2/E, (O-E)^2/V, as R prints."""
        observed = np.array([self.observed[g] for g in self.groups])
        expected = np.array([self.expected[g] for g in self.groups])
        with np.errstate(divide="ignore", invalid="ignore"):
            per_e = (observed - expected) ** 2 / expected
            per_v = (observed - expected) ** 2 / np.diag(self.variance)
        return pl.DataFrame(
            {
                "group": [str(g) for g in self.groups],
                "n": [self.n[g] for g in self.groups],
                "observed": observed,
                "expected": expected,
                "oe2_over_e": per_e,
                "oe2_over_v": per_v,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (group labels as strings), suitable for JSON."""
        return {
            "groups": [str(g) for g in self.groups],
            "n": {str(g): self.n[g] for g in self.groups},
            "observed": {str(g): self.observed[g] for g in self.groups},
            "expected": {str(g): self.expected[g] for g in self.groups},
            "variance": self.variance.tolist(),
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "n_strata": self.n_strata,
        }

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{g!r}: {self.observed[g]:g}/{self.expected[g]:.4g}" for g in self.groups
        )
        strata = f", strata={self.n_strata}" if self.n_strata > 1 else ""
        return (
            f"LogRankResult(statistic={self.statistic:.6g}, df={self.df}, p_value={self.p_value:.4g}, "
            f"observed/expected={{{counts}}}{strata})"
        )


def logrank_test(time: Any, event: Any, group: Any, *, strata: Any = None) -> LogRankResult:
    """Log-rank test of equal survival across k groups (R's ``survdiff``, rho = 0).

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times >= 0.
    event : array-like, shape (n,)
        1/True = event, 0/False = censored.
    group : array-like, shape (n,)
        Group labels (any sortable type; no missing values). A group may have one member.
        Groups are reported sorted (numbers numerically, strings by code point), or in the
        declared order of a pandas categorical / polars Enum column, as R orders factor levels.
    strata : array-like, shape (n,), optional
        Stratum labels: as ``survdiff(Surv(time, event) ~ group + strata(strata))``.

    Returns
    -------
    LogRankResult

    Raises
    ------
    InputError
        Invalid times/events/labels (naming positions), a single group overall, or no events
        in at least two groups' risk sets (the test is then undefined).

    References
    ----------
    Mantel 1966; Peto & Peto 1972; R survival ``survdiff``.
    """
    time_arr, event_arr = check_time_event(time, event)
    group_arr = as_label_array(group, "group")
    arrays = {"time": time_arr, "group": group_arr}
    strata_arr = None
    if strata is not None:
        strata_arr = as_label_array(strata, "strata")
        arrays["strata"] = strata_arr
    check_lengths(arrays)
    levels, codes = _reorder(*_codes(group_arr), _declared_levels(group))
    if len(levels) < 2:
        raise InputError(
            f"group: all {time_arr.size} observations are in one group ({levels[0]!r}); "
            "the log-rank test needs at least two groups"
        )
    k = len(levels)
    if strata_arr is None:
        stratum_codes = np.zeros(time_arr.size, dtype=np.intp)
        n_strata = 1
    else:
        stratum_levels, stratum_codes = _codes(strata_arr)
        n_strata = len(stratum_levels)

    def sort_strata(times: FloatArray) -> list[tuple[list[FloatArray], list[FloatArray]]]:
        parts = []
        for s in range(n_strata):
            rows = stratum_codes == s if n_strata > 1 else slice(None)
            parts.append(_sorted_by_group(times[rows], event_arr[rows], codes[rows], k))
        return parts

    sorted_parts = sort_strata(time_arr)
    # near-equal times are one time, as R's survdiff (timefix = TRUE)
    cuts = near_tie_cuts(
        _distinct_of_sorted_runs([run for runs, _ in sorted_parts for run in runs])
    )
    if cuts is not None:
        sorted_parts = sort_strata(snap_to_cuts(time_arr, cuts))

    observed = np.zeros(k)
    expected = np.zeros(k)
    variance = np.zeros((k, k))
    for group_times, group_event_times in sorted_parts:
        o, e, v = _stratum_sums(group_times, group_event_times)
        observed += o
        expected += e
        variance += v

    informative = expected > 0
    if informative.sum() < 2:
        raise InputError(
            "event: fewer than two groups have anyone at risk at an event time (events: "
            f"{int(event_arr.sum())}); the log-rank test is undefined"
        )
    diff = (observed - expected)[informative][1:]
    reduced = variance[np.ix_(informative, informative)][1:, 1:]
    try:
        statistic = float(diff @ np.linalg.solve(reduced, diff))
    except np.linalg.LinAlgError as exc:
        raise InputError(
            "group: the variance matrix of O - E is singular; the groups cannot be compared"
        ) from exc
    df = int(informative.sum()) - 1
    counts = np.bincount(codes, minlength=k)
    return LogRankResult(
        groups=tuple(levels),
        n=MappingProxyType({g: int(c) for g, c in zip(levels, counts, strict=True)}),
        observed=MappingProxyType({g: float(o) for g, o in zip(levels, observed, strict=True)}),
        expected=MappingProxyType({g: float(e) for g, e in zip(levels, expected, strict=True)}),
        variance=_read_only(variance),
        statistic=statistic,
        df=df,
        p_value=float(chi2.sf(statistic, df)),
        n_strata=n_strata,
    )


def _read_only(arr: FloatArray) -> FloatArray:
    arr.setflags(write=False)
    return arr
