"""Kaplan-Meier summaries of PFS and OS: medians with 95% CIs, rates at fixed times, log-rank tests,
the curves themselves (for the figures), median follow-up by reverse Kaplan-Meier.

Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. Reverse Kaplan-Meier follow-up: Schemper M,
Smith TL. Control Clin Trials 1996;17:343-346. Patients with a missing time or status are left out
of that endpoint and counted in ``n_missing`` (never silently).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import (
    OVERALL,
    group_labels,
    level_codes,
    require_columns,
    split_groups,
)
from oncorwe.errors import InputError

__all__ = [
    "CURVE_SCHEMA",
    "ENDPOINTS",
    "LOGRANK_SCHEMA",
    "RATE_SCHEMA",
    "SUMMARY_SCHEMA",
    "followup",
    "survival_analyses",
]

#: endpoint name -> (time column, event column, label).
ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "pfs": ("pfs_months", "pfs_event", "Progression-free survival"),
    "os": ("os_months", "os_event", "Overall survival"),
}

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "group_var": pl.String(),
    "group": pl.String(),
    "n": pl.Int64(),
    "events": pl.Int64(),
    "n_missing": pl.Int64(),  # patients of the group without a usable time/status
    "median": pl.Float64(),
    "median_lower": pl.Float64(),
    "median_upper": pl.Float64(),
}

RATE_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "group_var": pl.String(),
    "group": pl.String(),
    "months": pl.Float64(),
    "rate": pl.Float64(),  # percent
    "lower": pl.Float64(),
    "upper": pl.Float64(),
}

CURVE_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "group_var": pl.String(),
    "group": pl.String(),
    "time": pl.Float64(),
    "n_risk": pl.Int64(),
    "n_event": pl.Int64(),
    "n_censor": pl.Int64(),
    "survival": pl.Float64(),
    "se": pl.Float64(),
    "lower": pl.Float64(),
    "upper": pl.Float64(),
}

LOGRANK_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "group_var": pl.String(),
    "n_groups": pl.Int64(),
    "statistic": pl.Float64(),
    "df": pl.Float64(),
    "p_value": pl.Float64(),
}


def _usable(frame: pl.DataFrame, time: str, event: str) -> pl.DataFrame:
    return frame.filter(
        pl.col(time).is_not_null() & pl.col(time).is_not_nan() & pl.col(event).is_not_null()
    )


def survival_analyses(
    view: Callable[[Sequence[str]], pl.DataFrame], *, splits: Sequence[str], rate_months: Sequence[float]
) -> dict[str, pl.DataFrame]:
    """Kaplan-Meier overall and per level of each split, for every endpoint.

    ``view(columns)`` gives the analysis table's columns ``(time, event)`` or ``(time, event, split)``
    (``analysis._views``). Returns frames ``survival_summary`` (:data:`SUMMARY_SCHEMA`),
    ``survival_rates``, ``survival_curves`` and ``logrank``.
    """
    summary, rates, curves, tests = [], [], [], []
    for endpoint, (time, event, _label) in ENDPOINTS.items():
        strata: list[tuple[str, str, pl.DataFrame]] = [(*OVERALL, view([time, event]))]
        by_split = {column: view([time, event, column]) for column in splits}
        for column in splits:
            require_columns(by_split[column], [time, event, column], what=f"survival ({endpoint})")
            strata.extend((column, value, sub) for value, sub in split_groups(by_split[column], column))
        for group_var, group, sub in strata:
            usable = _usable(sub, time, event)
            t = usable[time].cast(pl.Float64).to_numpy()
            e = usable[event].cast(pl.Int64).to_numpy()
            key = {"endpoint": endpoint, "group_var": group_var, "group": group}
            if t.size == 0:
                summary.append({**key, "n": 0, "events": 0, "n_missing": sub.height})
                continue
            km = stats.kaplan_meier(t, e)
            median = km.median
            summary.append({
                **key, "n": int(t.size), "events": int(e.sum()), "n_missing": sub.height - usable.height,
                "median": _finite(median.value), "median_lower": _finite(median.lower),
                "median_upper": _finite(median.upper),
            })
            for months in rate_months:
                at = _rate(km, float(months))
                rates.append({**key, "months": float(months), "rate": _pct(at.value),
                              "lower": _pct(at.lower), "upper": _pct(at.upper)})
            curve = km.to_frame().select(list(CURVE_SCHEMA)[3:])
            curves.append(curve.with_columns(
                pl.lit(endpoint).alias("endpoint"), pl.lit(group_var).alias("group_var"), pl.lit(group).alias("group")
            ).select(list(CURVE_SCHEMA)).cast(CURVE_SCHEMA))  # type: ignore[arg-type]
        for column in splits:
            tests.append(_logrank(by_split[column], endpoint, time, event, column))
    return {
        "survival_summary": pl.DataFrame(summary, schema=SUMMARY_SCHEMA),
        "survival_rates": pl.DataFrame(rates, schema=RATE_SCHEMA),
        "survival_curves": pl.concat(curves) if curves else pl.DataFrame(schema=CURVE_SCHEMA),
        "logrank": pl.DataFrame(tests, schema=LOGRANK_SCHEMA),
    }


def _logrank(frame: pl.DataFrame, endpoint: str, time: str, event: str, column: str) -> dict[str, object]:
    usable = _usable(frame.select(time, event, column), time, event).filter(pl.col(column).is_not_null())
    labels = group_labels(usable[column])
    levels = sorted(labels.unique().to_list())
    row: dict[str, object] = {"endpoint": endpoint, "group_var": column, "n_groups": len(levels)}
    if len(levels) < 2:
        return row  # one group: nothing to compare; statistics stay null and the report says so
    try:
        result = stats.logrank_test(
            usable[time].cast(pl.Float64).to_numpy(), usable[event].cast(pl.Int64).to_numpy(),
            level_codes(labels, levels),
        )
    except InputError:
        return row  # undefined (e.g. no events in two groups' risk sets): statistics stay null
    row.update(statistic=float(result.statistic), df=float(result.df), p_value=float(result.p_value))
    return row


def _rate(km: Any, months: float) -> stats.Estimate:
    """S(months) with its CI; NaN (reported as null, "not estimable") past the last observed time,
    where R's ``summary(fit, times=)`` gives no row."""
    try:
        return km.survival_at(months)  # type: ignore[no-any-return]
    except InputError:
        return stats.Estimate(float("nan"), float("nan"), float("nan"))


def followup(frame: pl.DataFrame) -> dict[str, object]:
    """Median follow-up (months) by reverse Kaplan-Meier of OS, with its 95% CI."""
    time, event, _ = ENDPOINTS["os"]
    usable = _usable(frame, time, event)
    estimate = stats.reverse_km_followup(
        usable[time].cast(pl.Float64).to_numpy(), usable[event].cast(pl.Int64).to_numpy()
    )
    estimate = getattr(estimate, "median", estimate)
    return {
        "measure": "median_followup_months", "n": usable.height,
        "value": _finite(estimate.value), "lower": _finite(estimate.lower), "upper": _finite(estimate.upper),
        "minimum": None, "maximum": None,
    }


def _finite(value: float) -> float | None:
    """NaN (R's NA: a median or bound not reached) becomes null in the tables, never a silent NaN."""
    return None if value is None or np.isnan(value) else float(value)


def _pct(value: float) -> float | None:
    v = _finite(value)
    return None if v is None else 100.0 * v
