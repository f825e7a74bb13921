"""Best overall response: CR, PR, SD, PD, NE counts, ORR and DCR with exact 95% CIs.

Denominators are all patients of the group (the paper's definition: ORR = (CR + PR) / all
patients, not only the evaluable ones). Intervals are Clopper-Pearson (Clopper CJ, Pearson ES.
Biometrika 1934;26:404-413). Rates are compared across groups with ``stats.compare_rates``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import OVERALL, require_columns, split_groups

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


def response_table(frame: pl.DataFrame, *, by: Sequence[str], overall: bool = True) -> pl.DataFrame:
    """Response counts overall (unless ``overall`` is False) and per level of each ``by`` column
    (:data:`RESPONSE_SCHEMA`).

    A null best response is counted as NE (not evaluable): the analysis table is expected to hold
    NE already, and counting it keeps every patient in the denominator.
    """
    require_columns(frame, ["best_response", *by], what="response table")
    rows: list[dict[str, object]] = []
    if overall:
        rows.extend(_rows(frame["best_response"], *OVERALL))
    for column in by:
        for value, sub in split_groups(frame.select("best_response", column), column):
            rows.extend(_rows(sub["best_response"], column, value))
    return pl.DataFrame(rows, schema=RESPONSE_SCHEMA, orient="row")


def _rows(best_response: pl.Series, group_var: str, group: str) -> list[dict[str, object]]:
    # patients per response once, then each category's sum of its members
    per_response = dict(best_response.fill_null("NE").value_counts(name="__n").rows())
    total = best_response.len()
    out = []
    for category, members in RESPONSE_CATEGORIES.items():
        n = sum(int(per_response.get(member, 0)) for member in members)
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
    for column in by:
        groups = split_groups(frame.select("best_response", column), column)
        levels = [level for level, _sub in groups]
        if len(levels) < 2:
            continue
        for measure in ("ORR", "DCR"):
            members = list(RESPONSE_CATEGORIES[measure])
            successes = [int(sub["best_response"].fill_null("NE").is_in(members).sum()) for _level, sub in groups]
            totals = [sub.height for _level, sub in groups]
            result = stats.compare_rates(successes, totals, groups=levels)
            rows.append({
                "group_var": column, "measure": measure, "method": str(result.method),
                "statistic": _float(result.statistic), "df": _float(result.df), "p_value": _float(result.p_value),
            })
    return pl.DataFrame(rows, schema=RESPONSE_TEST_SCHEMA, orient="row")


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
