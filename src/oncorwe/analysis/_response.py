"""Best overall response: CR, PR, SD, PD, NE counts, ORR and DCR with exact 95% CIs.

Denominators are all patients of the group (the paper's definition: ORR = (CR + PR) / all
patients, not only the evaluable ones). Intervals are Clopper-Pearson (Clopper CJ, Pearson ES.
Biometrika 1934;26:404-413). Rates are compared across groups with ``stats.compare_rates``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import OVERALL, group_labels, require_columns

__all__ = ["RESPONSE_CATEGORIES", "RESPONSE_SCHEMA", "RESPONSE_TEST_SCHEMA", "response_table", "response_tests"]

#: Rows of the response table, in print order. PD_NE is the paper's "PD (or not evaluable)".
RESPONSE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "CR": ("CR",),
    "PR": ("PR",),
    "SD": ("SD",),
    "PD": ("PD",),
    "NE": ("NE",),
    "PD_NE": ("PD", "NE"),
    "ORR": ("CR", "PR"),
    "DCR": ("CR", "PR", "SD"),
}

RESPONSE_SCHEMA: dict[str, pl.DataType] = {
    "group_var": pl.String(),
    "group": pl.String(),
    "category": pl.String(),
    "n": pl.Int64(),
    "denominator": pl.Int64(),
    "percent": pl.Float64(),
    "lower": pl.Float64(),  # exact 95% CI, percent
    "upper": pl.Float64(),
}

RESPONSE_TEST_SCHEMA: dict[str, pl.DataType] = {
    "group_var": pl.String(),
    "measure": pl.String(),
    "method": pl.String(),
    "statistic": pl.Float64(),
    "df": pl.Float64(),
    "p_value": pl.Float64(),
}


def response_table(frame: pl.DataFrame, *, by: Sequence[str]) -> pl.DataFrame:
    """Response counts overall and per level of each ``by`` column (:data:`RESPONSE_SCHEMA`).

    A null best response is counted as NE (not evaluable): the analysis table is expected to hold
    NE already, and counting it keeps every patient in the denominator.
    """
    require_columns(frame, ["best_response", *by], what="response table")
    rows: list[dict[str, object]] = []
    rows.extend(_rows(frame, *OVERALL))
    for column in by:
        labels = group_labels(frame[column])
        for value in sorted(v for v in labels.unique().to_list() if v is not None):
            rows.extend(_rows(frame.filter(labels == value), column, value))
    return pl.DataFrame(rows, schema=RESPONSE_SCHEMA, orient="row")


def _rows(sub: pl.DataFrame, group_var: str, group: str) -> list[dict[str, object]]:
    responses = sub["best_response"].fill_null("NE")
    total = sub.height
    out = []
    for category, members in RESPONSE_CATEGORIES.items():
        n = int(responses.is_in(list(members)).sum())
        ci = stats.binomial_ci(n, total) if total else None
        out.append({
            "group_var": group_var, "group": group, "category": category, "n": n, "denominator": total,
            "percent": 100.0 * n / total if total else None,
            "lower": 100.0 * ci.lower if ci else None,
            "upper": 100.0 * ci.upper if ci else None,
        })
    return out


def response_tests(frame: pl.DataFrame, *, by: Sequence[str]) -> pl.DataFrame:
    """ORR and DCR compared across the levels of each ``by`` column (:data:`RESPONSE_TEST_SCHEMA`)."""
    rows: list[dict[str, object]] = []
    responses = frame["best_response"].fill_null("NE")
    for column in by:
        labels = group_labels(frame[column])
        levels = sorted(v for v in labels.unique().to_list() if v is not None)
        if len(levels) < 2:
            continue
        for measure in ("ORR", "DCR"):
            hit = responses.is_in(list(RESPONSE_CATEGORIES[measure]))
            successes = [int((hit & (labels == level)).sum()) for level in levels]
            totals = [int((labels == level).sum()) for level in levels]
            result = stats.compare_rates(successes, totals, labels=levels)
            rows.append({
                "group_var": column, "measure": measure, "method": str(result.method),
                "statistic": _float(result.statistic), "df": _float(result.df), "p_value": _float(result.p_value),
            })
    return pl.DataFrame(rows, schema=RESPONSE_TEST_SCHEMA, orient="row")


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
