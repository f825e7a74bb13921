"""Competing risks (``[[competing_risks]]``): per analysis of the list, the cumulative incidence of
its event of interest with death before it as the competing event, by group, with Gray's test and
the Fine-Gray model. The analyses share four tables; their ``analysis`` column is the entry's
``name``, and the rows follow the protocol's order.

Two events of interest (``event`` of an entry):

- ``"progression"``: the causes come from the PFS and OS columns (PFS counting deaths): a PFS event
  at the time of an OS event is a death without progression (cause 2), any other PFS event a
  progression (cause 1), a censored PFS is censored; the time is PFS.
- ``"subsequent_therapy"``: the start of the next line (``subsequent_therapy_months``) is cause 1;
  without one, a death is cause 2 at the OS time, else censored at the OS time (the last contact).
  A next line recorded after the death is a data error: the death comes first.

The curves are Aalen-Johansen estimates (``stats.cumulative_incidence``, R's
``survfit(Surv(t, factor(cause)) ~ group)``), with log-transformed pointwise intervals; Gray's test
(1988) compares the groups' subdistributions per cause (``cmprsk::cuminc``); the Fine-Gray model
(1999) gives each group's subdistribution hazard ratio against the reference group per cause
(``finegray`` + ``coxph``, model-based variance). The complement of a Kaplan-Meier curve that
censors the competing deaths would overstate the incidence of the event of interest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._adjusted import ARM
from oncorwe.errors import ConvergenceError, InputError
from oncorwe.protocol import CompetingRisks, Protocol

__all__ = ["CAUSES", "COMPETING_TABLES", "competing_analyses", "competing_events"]

#: per event of interest: cause code -> its name in the tables
CAUSES = {"progression": {1: "progression", 2: "death"}, "subsequent_therapy": {1: "subsequent_therapy", 2: "death"}}
COMPETING_TABLES = ("competing_curves", "competing_incidence", "competing_tests", "competing_fine_gray")

CURVES_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "endpoint": pl.String(), "group_var": pl.String(), "group": pl.String(), "time": pl.Float64(),
    "n_risk": pl.Int64(), "incidence": pl.Float64(), "se": pl.Float64(), "lower": pl.Float64(),
    "upper": pl.Float64(),
}
INCIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "cause": pl.String(), "group_var": pl.String(), "group": pl.String(), "n": pl.Int64(),
    "events": pl.Int64(), "months": pl.Float64(), "incidence": pl.Float64(), "lower": pl.Float64(),
    "upper": pl.Float64(),
}
TESTS_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "cause": pl.String(), "group_var": pl.String(), "statistic": pl.Float64(), "df": pl.Float64(),
    "p_value": pl.Float64(),
}
FINE_GRAY_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "cause": pl.String(), "group_var": pl.String(), "group": pl.String(), "reference": pl.String(),
    "n": pl.Int64(), "events": pl.Int64(), "competing_events": pl.Int64(), "hazard_ratio": pl.Float64(),
    "lower": pl.Float64(), "upper": pl.Float64(), "p_value": pl.Float64(), "status": pl.String(),
    "message": pl.String(),
}


#: the analysis-table columns each event of interest is made from
_COLUMNS = {"progression": ("pfs_months", "pfs_event", "os_months", "os_event"),
            "subsequent_therapy": ("subsequent_therapy", "subsequent_therapy_months", "os_months", "os_event")}


def cause_codes(frame: pl.DataFrame) -> pl.Series:
    """0 censored, 1 progression, 2 death without progression (see the module text)."""
    death_first = (pl.col("pfs_event") == 1) & (pl.col("os_event") == 1) & (pl.col("os_months") == pl.col("pfs_months"))
    return frame.select(
        pl.when(pl.col("pfs_event") != 1).then(0).when(death_first).then(2).otherwise(1).cast(pl.Int64).alias("cause")
    )["cause"]


def competing_events(frame: pl.DataFrame, event: str) -> pl.DataFrame:
    """``frame`` with the columns ``time`` (months) and ``cause`` (0 censored, 1 ``event``, 2 death
    before it) added, as the module text defines them; rows lacking a value the definition needs are
    dropped."""
    if event == "progression":
        rows = frame.drop_nulls(list(_COLUMNS[event]))
        return rows.with_columns(time=pl.col("pfs_months").cast(pl.Float64), cause=cause_codes(rows))
    started = pl.col("subsequent_therapy").fill_null(False) & pl.col("subsequent_therapy_months").is_not_null()
    after_death = ((pl.col("os_event") == 1) & (pl.col("subsequent_therapy_months") > pl.col("os_months"))).fill_null(False)
    therapy = started & ~after_death
    rows = frame.filter(pl.col("os_months").is_not_null() & pl.col("os_event").is_not_null())
    return rows.with_columns(
        time=pl.when(therapy).then(pl.col("subsequent_therapy_months")).otherwise(pl.col("os_months")).cast(pl.Float64),
        cause=pl.when(therapy).then(1).when(pl.col("os_event") == 1).then(2).otherwise(0).cast(pl.Int64),
    )


def competing_analyses(table: pl.DataFrame, protocol: Protocol) -> dict[str, pl.DataFrame]:
    """The tables of :data:`COMPETING_TABLES` for the protocol's ``[[competing_risks]]``, every
    analysis's rows in the protocol's order (none without the section)."""
    if not protocol.competing_risks:
        return {}
    parts = [_one_analysis(table, protocol, spec) for spec in protocol.competing_risks]
    return {name: pl.concat([part[name] for part in parts]) for name in COMPETING_TABLES}


def _one_analysis(table: pl.DataFrame, protocol: Protocol, spec: CompetingRisks) -> dict[str, pl.DataFrame]:
    """The four tables of one entry, each row's ``analysis`` its name."""
    names = CAUSES[spec.event]
    frame = table.select(*_COLUMNS[spec.event],
                         *([protocol.adjusted.treatment] if spec.by == "arm" and protocol.adjusted else []),
                         *([spec.by] if spec.by != "arm" and spec.by not in _COLUMNS[spec.event] else []))
    if spec.by == "arm":
        adjusted = protocol.adjusted
        assert adjusted is not None  # the protocol checks it
        arm_of = {level: arm for arm, levels in adjusted.arms.items() for level in levels}
        group = frame[adjusted.treatment].cast(pl.String).replace_strict(arm_of, default=None, return_dtype=pl.String)
        group_var = ARM
        reference: str | None = adjusted.reference
    else:
        column = frame[spec.by]
        group = (column.replace_strict({True: "yes", False: "no"}, return_dtype=pl.String)
                 if column.dtype == pl.Boolean else column.cast(pl.String))
        group_var = spec.by
        reference = None
    frame = competing_events(frame.with_columns(group.alias("__group")).drop_nulls(["__group"]), spec.event)
    if frame.height == 0:
        needed = ", ".join(c for c in _COLUMNS[spec.event] if c != "subsequent_therapy")
        raise InputError(f"competing_risks {spec.name}: no patient with known {needed} and group")
    cause = frame["cause"].to_numpy()
    time = frame["time"].to_numpy()
    labels = frame["__group"].to_numpy().astype(str)
    several = np.unique(labels).size > 1
    result = stats.cumulative_incidence(time, cause, group=labels if several else None)
    curves, fixed = [], []
    for g in result.groups:
        in_group = labels == g if several else np.ones(labels.size, dtype=bool)
        for code in result.causes:
            curve = result.curve(code, g)
            name = names.get(code, str(code))
            curves.append(pl.DataFrame({
                "analysis": spec.name, "endpoint": name, "group_var": group_var, "group": g, "time": curve["time"],
                "n_risk": curve["n_risk"].round().cast(pl.Int64), "incidence": curve["estimate"], "se": curve["se"],
                "lower": curve["lower"], "upper": curve["upper"]}, schema=CURVES_SCHEMA))
            for months in spec.times_months:
                at = result.at(float(months), code, g)
                fixed.append({"analysis": spec.name, "cause": name, "group_var": group_var, "group": g,
                              "n": int(in_group.sum()), "events": int((cause[in_group] == code).sum()),
                              "months": float(months), "incidence": at.value, "lower": at.lower, "upper": at.upper})
    tests: list[dict[str, Any]] = [
        {"analysis": spec.name, "cause": names.get(code, str(code)), "group_var": group_var,
         "statistic": test.statistic, "df": float(test.df), "p_value": test.p_value}
        for code, test in sorted(result.gray_tests.items())]
    fine_gray = (_fine_gray_rows(frame.select("time", "cause", "__group"), names, group_var, reference)
                 if several else [])
    return {
        "competing_curves": pl.concat(curves),
        "competing_incidence": pl.DataFrame(fixed, schema=INCIDENCE_SCHEMA),
        "competing_tests": pl.DataFrame(tests, schema=TESTS_SCHEMA),
        "competing_fine_gray": pl.DataFrame([{"analysis": spec.name, **row} for row in fine_gray],
                                            schema=FINE_GRAY_SCHEMA),
    }


def _fine_gray_rows(frame: pl.DataFrame, names: dict[int, str], group_var: str, reference: str | None) -> list[dict[str, Any]]:
    """Per cause, the Fine-Gray subdistribution hazard ratio of every group against ``reference``
    (default: the first group in sorted order), the group alone in the model (Efron ties). A model
    that cannot be fitted is a row "not computed" naming why, never a silent NaN."""
    groups = sorted(frame["__group"].unique().to_list())
    reference = reference if reference in groups else groups[0]
    others = [g for g in groups if g != reference]
    # one 0/1 column per non-reference group, so that the reference is the protocol's
    design = frame.with_columns(**{f"__is_{i}": (pl.col("__group") == g).cast(pl.Int8) for i, g in enumerate(others)})
    rows: list[dict[str, Any]] = []
    for code in sorted(c for c in names if c in set(frame["cause"].to_list())):
        base = {"cause": names[code], "group_var": group_var, "reference": reference, "n": frame.height,
                "events": int((frame["cause"] == code).sum()),
                "competing_events": int(((frame["cause"] > 0) & (frame["cause"] != code)).sum())}
        try:
            fit = stats.fine_gray(design, time="time", event="cause", cause=code,
                                  covariates=[f"__is_{i}" for i in range(len(others))]).to_frame()
        except (InputError, ConvergenceError) as exc:
            rows.extend({**base, "group": g, "hazard_ratio": None, "lower": None, "upper": None, "p_value": None,
                         "status": "not computed", "message": str(exc)} for g in others)
            continue
        for g, r in zip(others, fit.iter_rows(named=True), strict=True):
            rows.append({**base, "group": g, "hazard_ratio": r["hazard_ratio"], "lower": r["lower"],
                         "upper": r["upper"], "p_value": r["p_value"], "status": "computed", "message": ""})
    return rows
