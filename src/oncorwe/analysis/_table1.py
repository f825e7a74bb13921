"""Table 1: baseline characteristics overall and by a grouping variable, with missing counts and
standardised mean differences, laid out the way R's gtsummary / tableone print them.

Categorical variables: n and percent of the patients with a known value (gtsummary's default) plus
the percent of all patients (``percent_all``, the denominator journals use when they print "15% BRAF
V600" over the whole cohort); continuous variables: median, quartiles (type 7, R's default), range.

Standardised mean differences follow Yang D, Dalton JE. A unified approach to measuring the effect
size between two groups using SAS. SAS Global Forum 2012, paper 335 (the definition tableone uses);
with more than two groups the average over all pairs is reported, as tableone does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from oncorwe.analysis._common import OVERALL, group_labels, require_columns, split_groups

__all__ = ["TABLE1_SCHEMA", "Table1Variable", "smd_table", "table1"]


@dataclass(frozen=True)
class Table1Variable:
    """One row block of Table 1: the column, its label, and whether it is continuous."""

    column: str
    label: str
    continuous: bool = False


TABLE1_SCHEMA: dict[str, pl.DataType] = {
    "variable": pl.String(),
    "label": pl.String(),
    "row_kind": pl.String(),  # "level" | "continuous" | "missing"
    "level": pl.String(),  # the category (booleans: "yes"/"no"); null for continuous/missing rows
    "group_var": pl.String(),
    "group": pl.String(),
    "n": pl.Int64(),  # patients in the level (level rows), with a value (continuous), missing (missing)
    "denominator": pl.Int64(),  # patients with a known value in the group
    "group_n": pl.Int64(),  # all patients in the group
    "percent": pl.Float64(),  # n / denominator * 100
    "percent_all": pl.Float64(),  # n / group_n * 100
    "median": pl.Float64(),
    "q1": pl.Float64(),
    "q3": pl.Float64(),
    "minimum": pl.Float64(),
    "maximum": pl.Float64(),
    "mean": pl.Float64(),
    "sd": pl.Float64(),
}


def table1(frame: pl.DataFrame, *, by: str | None, variables: Sequence[Table1Variable]) -> pl.DataFrame:
    """Table 1 as a long frame (:data:`TABLE1_SCHEMA`): overall, then per level of ``by``.

    Parameters
    ----------
    frame : the per-patient analysis table.
    by : grouping column (e.g. ``"regimen_class"``) or None for the overall column only.
    variables : the rows, in print order (the protocol's ``analysis.table1``).
    """
    require_columns(frame, [v.column for v in variables], what="table1")
    if by is not None:
        require_columns(frame, [by], what="table1")
    # The grouping variable itself appears in the overall column only (its share of patients).
    narrow = frame.select([v.column for v in variables] + ([by] if by is not None and by not in
                                                           {v.column for v in variables} else []))
    groups: list[tuple[str, str, pl.DataFrame]] = [(OVERALL[0], OVERALL[1], narrow)]
    if by is not None:
        groups.extend((by, value, sub) for value, sub in split_groups(narrow, by))
    rows: list[dict[str, object]] = []
    for var in variables:
        for group_var, group, sub in groups:
            if var.column == by and group_var != OVERALL[0]:
                continue
            rows.extend(_variable_rows(var, sub, group_var, group))
    return pl.DataFrame(rows, schema=TABLE1_SCHEMA)


def _variable_rows(var: Table1Variable, sub: pl.DataFrame, group_var: str, group: str) -> list[dict[str, object]]:
    column = sub[var.column]
    group_n = sub.height
    n_missing = column.null_count()
    known = group_n - n_missing
    base: dict[str, object] = {name: None for name in TABLE1_SCHEMA}
    base.update(variable=var.column, label=var.label, group_var=group_var, group=group, group_n=group_n)
    rows: list[dict[str, object]] = []
    if var.continuous:
        values = column.drop_nulls().cast(pl.Float64).to_numpy()
        values = values[~np.isnan(values)]
        row = dict(base, row_kind="continuous", n=int(values.size), denominator=known)
        if values.size:
            q1, med, q3 = np.quantile(values, [0.25, 0.5, 0.75])
            row.update(
                median=float(med), q1=float(q1), q3=float(q3),
                minimum=float(values.min()), maximum=float(values.max()),
                mean=float(values.mean()), sd=float(values.std(ddof=1)) if values.size > 1 else None,
            )
        rows.append(row)
    else:
        counts = _level_counts(column)
        levels = _levels(var.column, counts)
        for level in levels:
            n = counts.get(level, 0)
            rows.append(dict(
                base, row_kind="level", level=level, n=n, denominator=known,
                percent=100.0 * n / known if known else None,
                percent_all=100.0 * n / group_n if group_n else None,
            ))
    rows.append(dict(base, row_kind="missing", n=n_missing, denominator=group_n,
                     percent=100.0 * n_missing / group_n if group_n else None,
                     percent_all=100.0 * n_missing / group_n if group_n else None))
    return rows


def _level_counts(column: pl.Series) -> dict[str, int]:
    """Patients per (string-labelled) value of ``column``, nulls left out; one pass over the rows."""
    if column.dtype == pl.Boolean:  # counted as booleans, then named: no string per patient
        names = {True: "yes", False: "no"}
        return {names[level]: int(n) for level, n in column.drop_nulls().value_counts(name="__n").rows()}
    labels = group_labels(column).drop_nulls()
    return {str(level): int(n) for level, n in labels.value_counts(name="__n").rows()}


def _levels(column: str, counts: dict[str, int]) -> list[str]:
    present = sorted(counts)
    if set(present) <= {"yes", "no"}:
        return ["yes", "no"]  # the event level first, as gtsummary prints dichotomous rows
    return present


def smd_table(frame: pl.DataFrame, *, by: str, variables: Sequence[Table1Variable]) -> pl.DataFrame:
    """Standardised mean difference of every Table 1 variable across the levels of ``by``.

    Returns columns variable, label, smd (average of the pairwise SMDs over all pairs of groups,
    computed on patients with a known value), n_groups.
    """
    require_columns(frame, [by], what="table1 SMD")
    variables = [v for v in variables if v.column != by]
    parts = [sub for _level, sub in split_groups(frame.select([by, *(v.column for v in variables)]), by)]
    pairs = list(itertools.combinations(range(len(parts)), 2))
    rows = []
    for var in variables:
        # what an SMD needs of each group, computed once per group rather than once per pair
        if var.continuous:
            moments = [_moments(part[var.column]) for part in parts]
            values = [_continuous_smd(moments[i], moments[j]) for i, j in pairs]
        else:
            counts = [_level_counts(part[var.column]) for part in parts]
            values = [_proportions_smd(counts[i], counts[j]) for i, j in pairs]
        finite = [v for v in values if not math.isnan(v)]
        rows.append({
            "variable": var.column, "label": var.label,
            "smd": float(np.mean(finite)) if finite else None, "n_groups": len(parts),
        })
    return pl.DataFrame(rows, schema={"variable": pl.String(), "label": pl.String(), "smd": pl.Float64(), "n_groups": pl.Int64()})


def _moments(values: pl.Series) -> tuple[int, float, float]:
    """Number, mean and variance (ddof=1) of the known values (NaN when fewer than two)."""
    x = values.drop_nulls().cast(pl.Float64).to_numpy()
    if x.size < 2:
        return int(x.size), math.nan, math.nan
    return int(x.size), float(x.mean()), float(x.var(ddof=1))


def _continuous_smd(a: tuple[int, float, float], b: tuple[int, float, float]) -> float:
    """|mean difference| / sqrt of the average variance (Yang & Dalton 2012)."""
    (n_x, mean_x, var_x), (n_y, mean_y, var_y) = a, b
    if n_x < 2 or n_y < 2:
        return math.nan
    pooled = math.sqrt((var_x + var_y) / 2)
    return abs(mean_x - mean_y) / pooled if pooled > 0 else 0.0


def _proportions_smd(a: dict[str, int], b: dict[str, int]) -> float:
    """The multinomial SMD of two groups' level counts (known values only)."""
    n_a, n_b = sum(a.values()), sum(b.values())
    if n_a == 0 or n_b == 0:
        return math.nan
    levels = sorted(set(a) | set(b))
    if len(levels) < 2:
        return 0.0
    return _categorical_smd(
        np.array([a.get(v, 0) / n_a for v in levels]),
        np.array([b.get(v, 0) / n_b for v in levels]),
    )


def _categorical_smd(p: np.ndarray, q: np.ndarray) -> float:
    """Yang & Dalton's multinomial SMD: sqrt((p-q)' S^-1 (p-q)) over all levels but the first."""
    t, c = p[1:], q[1:]
    k = t.size
    cov = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            if i == j:
                cov[i, j] = (t[i] * (1 - t[i]) + c[i] * (1 - c[i])) / 2
            else:
                cov[i, j] = -(t[i] * t[j] + c[i] * c[j]) / 2
    diff = t - c
    # A pseudo-inverse because a level absent from both groups makes S singular (tableone does the same).
    value = float(diff @ np.linalg.pinv(cov) @ diff)
    return math.sqrt(max(value, 0.0))

