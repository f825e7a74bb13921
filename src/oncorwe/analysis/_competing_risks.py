"""Competing risks (``[competing_risks]``): cumulative incidence of progression with death without
progression as the competing event, by group, with Gray's test.

The causes come from the PFS and OS columns (PFS counting deaths): a PFS event at the time of an OS
event is a death without progression (cause 2), any other PFS event a progression (cause 1), a
censored PFS is censored. The curves are Aalen-Johansen estimates (``stats.cumulative_incidence``,
R's ``survfit(Surv(t, factor(cause)) ~ group)``), with log-transformed pointwise intervals; Gray's
test (1988) compares the groups' subdistributions per cause (``cmprsk::cuminc``). The complement of
a Kaplan-Meier curve that censors the competing deaths would overstate the incidence of progression.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._adjusted import ARM
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = ["CAUSES", "COMPETING_TABLES", "competing_analyses"]

#: cause code -> its name in the tables
CAUSES = {1: "progression", 2: "death"}
COMPETING_TABLES = ("competing_curves", "competing_incidence", "competing_tests")

CURVES_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(), "group_var": pl.String(), "group": pl.String(), "time": pl.Float64(),
    "n_risk": pl.Int64(), "incidence": pl.Float64(), "se": pl.Float64(), "lower": pl.Float64(),
    "upper": pl.Float64(),
}
INCIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "cause": pl.String(), "group_var": pl.String(), "group": pl.String(), "n": pl.Int64(),
    "events": pl.Int64(), "months": pl.Float64(), "incidence": pl.Float64(), "lower": pl.Float64(),
    "upper": pl.Float64(),
}
TESTS_SCHEMA: dict[str, pl.DataType] = {
    "cause": pl.String(), "group_var": pl.String(), "statistic": pl.Float64(), "df": pl.Float64(),
    "p_value": pl.Float64(),
}


def cause_codes(frame: pl.DataFrame) -> pl.Series:
    """0 censored, 1 progression, 2 death without progression (see the module text)."""
    death_first = (pl.col("pfs_event") == 1) & (pl.col("os_event") == 1) & (pl.col("os_months") == pl.col("pfs_months"))
    return frame.select(
        pl.when(pl.col("pfs_event") != 1).then(0).when(death_first).then(2).otherwise(1).cast(pl.Int64).alias("cause")
    )["cause"]


def competing_analyses(table: pl.DataFrame, protocol: Protocol) -> dict[str, pl.DataFrame]:
    """The tables of :data:`COMPETING_TABLES` for the protocol's ``[competing_risks]`` (none without it)."""
    spec = protocol.competing_risks
    if spec is None:
        return {}
    frame = table.select("pfs_months", "pfs_event", "os_months", "os_event",
                         *([protocol.adjusted.treatment] if spec.by == "arm" and protocol.adjusted else []),
                         *([spec.by] if spec.by != "arm" else []))
    if spec.by == "arm":
        adjusted = protocol.adjusted
        assert adjusted is not None  # the protocol checks it
        arm_of = {level: arm for arm, levels in adjusted.arms.items() for level in levels}
        group = frame[adjusted.treatment].cast(pl.String).replace_strict(arm_of, default=None, return_dtype=pl.String)
        group_var = ARM
    else:
        column = frame[spec.by]
        group = (column.replace_strict({True: "yes", False: "no"}, return_dtype=pl.String)
                 if column.dtype == pl.Boolean else column.cast(pl.String))
        group_var = spec.by
    frame = frame.with_columns(group.alias("__group")).drop_nulls(["pfs_months", "pfs_event", "os_months", "os_event", "__group"])
    if frame.height == 0:
        raise InputError("competing_risks: no patient with known PFS, OS and group")
    cause = cause_codes(frame).to_numpy()
    time = frame["pfs_months"].cast(pl.Float64).to_numpy()
    labels = frame["__group"].to_numpy().astype(str)
    result = stats.cumulative_incidence(time, cause, group=labels if np.unique(labels).size > 1 else None)
    curves, fixed = [], []
    for g in result.groups:
        in_group = labels == g if np.unique(labels).size > 1 else np.ones(labels.size, dtype=bool)
        for code in result.causes:
            curve = result.curve(code, g)
            name = CAUSES.get(code, str(code))
            curves.append(pl.DataFrame({
                "endpoint": name, "group_var": group_var, "group": g, "time": curve["time"],
                "n_risk": curve["n_risk"].round().cast(pl.Int64), "incidence": curve["estimate"], "se": curve["se"],
                "lower": curve["lower"], "upper": curve["upper"]}, schema=CURVES_SCHEMA))
            for months in spec.times_months:
                at = result.at(float(months), code, g)
                fixed.append({"cause": name, "group_var": group_var, "group": g, "n": int(in_group.sum()),
                              "events": int((cause[in_group] == code).sum()), "months": float(months),
                              "incidence": at.value, "lower": at.lower, "upper": at.upper})
    tests: list[dict[str, Any]] = [
        {"cause": CAUSES.get(code, str(code)), "group_var": group_var, "statistic": test.statistic,
         "df": float(test.df), "p_value": test.p_value}
        for code, test in sorted(result.gray_tests.items())]
    return {
        "competing_curves": pl.concat(curves),
        "competing_incidence": pl.DataFrame(fixed, schema=INCIDENCE_SCHEMA),
        "competing_tests": pl.DataFrame(tests, schema=TESTS_SCHEMA),
    }
