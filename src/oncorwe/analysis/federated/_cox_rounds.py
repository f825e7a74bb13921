"""The protocol's Cox models by distributed Newton-Raphson: what a centre answers, what the
coordinator asks.

The coordinator never sees a patient's covariates. It asks every centre, through ``ask`` (the
vantage6 algorithm's partial tasks, or any transport that returns the centres' JSON answers):

1. ``{"round": "design"}``: per endpoint, the centre's complete cases (patients, events, left out for
   a missing value), the levels each categorical covariate takes, its patients per model term (the
   forest plot's n; summed by the coordinator) and its distinct event times;
2. ``{"round": "sums", "endpoint", "terms", "beta", "event_times"}`` once per Newton-Raphson
   iteration: the centre's risk-set sums at ``beta`` for every global event time
   (``stats.cox_site_sums``: S0, S1, S2 and the tied deaths' sums, exact for Efron ties).

From them it fits the model exactly as ``stats.cox_ph`` on the pooled complete cases
(``stats.cox_federated``) and tests proportional hazards from the last round's sums
(``stats.proportional_hazards_test_federated``). The rows are made by the same code as the pooled
analysis's (``analysis._cox.fit_rows``), so the tables are the same.

With ``time_bin_days`` the centres bin their times as in their packages before any sum, so no
exact event time leaves a centre. The sums of a risk set of one patient are still that patient's
covariates (S1/S0): the rounds are aggregates, not anonymous (docs/federation.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._cox import ModelFit, complete_cases, model_tables, term_counts
from oncorwe.analysis._survival import ENDPOINTS
from oncorwe.analysis._views import TIME_COLUMN_DAYS
from oncorwe.errors import ConvergenceError, InputError
from oncorwe.protocol import Protocol

__all__ = ["Ask", "cox_site_answer", "federated_cox_tables"]

#: the coordinator's channel: a request -> every centre's answer (JSON-plain), in centre order
Ask = Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]]


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Enum, pl.Categorical))


def cox_site_answer(analysis_table: pl.DataFrame, protocol: Protocol, request: Mapping[str, Any]) -> dict[str, Any]:
    """A centre's answer to one request of the coordinator (see the module docstring)."""
    covariates = list(protocol.analysis.cox_covariates)
    kind = request.get("round")
    bin_days = int(request.get("time_bin_days", 0) or 0)
    if bin_days < 0:
        raise InputError("Cox round: time_bin_days is 0 or more")
    if bin_days:  # the same event-time binning as the site package's, applied before any sum
        width = bin_days / TIME_COLUMN_DAYS["os_months"]
        analysis_table = analysis_table.with_columns(
            [((pl.col(t) / width).ceil() * width).alias(t) for t, _e, _l in ENDPOINTS.values()])
    if kind == "design":
        out: dict[str, Any] = {}
        for endpoint, (time, event, _label) in ENDPOINTS.items():
            data, complete = complete_cases(analysis_table, time, event, covariates)
            levels = {c: sorted(set(complete[c].cast(pl.String).to_list()))
                      for c in covariates if _is_categorical(complete[c].dtype)}
            deaths = complete.filter(pl.col(event).cast(pl.Int64) == 1)[time].cast(pl.Float64)
            boolean = {c for c in covariates if analysis_table[c].dtype == pl.Boolean}
            out[endpoint] = {"n": complete.height, "events": int(complete[event].cast(pl.Int64).sum()),
                             "n_missing": data.height - complete.height, "levels": levels,
                             "term_n": term_counts(complete, covariates, boolean=boolean),
                             "event_times": sorted(set(deaths.to_list()))}
        return out
    if kind == "sums":
        endpoint = str(request["endpoint"])
        if endpoint not in ENDPOINTS:
            raise InputError(f"Cox round: unknown endpoint {endpoint!r}")
        time, event, _label = ENDPOINTS[endpoint]
        _data, complete = complete_cases(analysis_table, time, event, covariates)
        x = _design(complete, [tuple(t) for t in request["terms"]])
        sums = stats.cox_site_sums(
            complete[time].cast(pl.Float64).to_numpy(), complete[event].cast(pl.Int64).to_numpy(), x,
            beta=np.asarray(request["beta"], dtype=np.float64),
            event_times=np.asarray(request["event_times"], dtype=np.float64))
        return sums.to_json()
    raise InputError(f"Cox round: unknown request {kind!r}")


def _design(complete: pl.DataFrame, terms: Sequence[tuple[str, str | None]]) -> np.ndarray:
    """The model matrix for the coordinator's terms: (column, level) is a 0/1 dummy, (column, None)
    the column's value."""
    if not terms:
        return np.empty((complete.height, 0))
    columns = []
    for column, level in terms:
        values = complete[column]
        if level is None:
            columns.append(values.cast(pl.Float64).to_numpy())
        else:
            columns.append((values.cast(pl.String) == level).cast(pl.Float64).to_numpy())
    return np.column_stack(columns)


def federated_cox_tables(ask: Ask, protocol: Protocol, *, schema: Mapping[str, pl.DataType],
                         time_bin_days: int = 0) -> dict[str, pl.DataFrame]:
    """The ``cox_models``, ``cox`` and ``cox_ph_test`` tables, fitted by distributed Newton-Raphson.

    ``time_bin_days``: the centres round their times up to this bin first (as their packages'), so
    that no exact event time leaves a centre; 0 gives the exact fit.
    """
    covariates = list(protocol.analysis.cox_covariates)
    reference = {k: v for k, v in protocol.analysis.cox_reference.items() if k in covariates}
    designs = ask({"round": "design", "time_bin_days": time_bin_days})
    models: list[tuple[dict[str, object], ModelFit]] = []
    for endpoint in ENDPOINTS:
        parts = [d[endpoint] for d in designs]
        n, n_events = sum(int(p["n"]) for p in parts), sum(int(p["events"]) for p in parts)
        term_n: dict[str, int] = {}
        for part in parts:  # the patients per term, summed over the centres
            for term, count in part.get("term_n", {}).items():
                term_n[term] = term_n.get(term, 0) + int(count)
        model: dict[str, object] = {"endpoint": endpoint, "covariates": ", ".join(covariates), "n": n,
                                    "events": n_events, "n_missing": sum(int(p["n_missing"]) for p in parts),
                                    "term_n": term_n}

        def fit_model(endpoint: str = endpoint, parts: Any = parts, n: int = n,
                      n_events: int = n_events) -> tuple[stats.CoxResult, stats.ProportionalHazardsTest]:
            terms, term_columns, references = _terms(covariates, parts, reference, schema)
            event_times = sorted({float(t) for p in parts for t in p["event_times"]})
            if n == 0:
                raise ConvergenceError("no complete cases at any centre")

            def round_sums(beta: np.ndarray) -> list[stats.CoxSiteSums]:
                answers = ask({"round": "sums", "endpoint": endpoint, "terms": [list(t) for t in terms],
                               "beta": [float(b) for b in beta], "event_times": event_times,
                               "time_bin_days": time_bin_days})
                return [stats.CoxSiteSums.from_json(a) for a in answers]

            names = [column if level is None else f"{column}={level}" for column, level in terms]
            fit = stats.cox_federated(round_sums, terms=names, event_times=np.asarray(event_times), ties="efron",
                                      n=n, n_events=n_events, covariates=covariates, term_columns=term_columns,
                                      reference_levels=references)
            return fit, stats.proportional_hazards_test_federated(fit)

        models.append((model, fit_model))
    return model_tables(models, covariates)


def _terms(covariates: Sequence[str], parts: Sequence[Mapping[str, Any]], reference: Mapping[str, str],
           schema: Mapping[str, pl.DataType]) -> tuple[list[tuple[str, str | None]], list[list[int]], dict[str, str]]:
    """The model columns as ``stats.cox_ph`` builds them on the pooled rows: a categorical covariate's
    levels in sorted order, a dummy for each but the reference (the protocol's, else the first)."""
    terms: list[tuple[str, str | None]] = []
    term_columns: list[list[int]] = []
    references: dict[str, str] = {}
    for column in covariates:
        start = len(terms)
        if _is_categorical(schema.get(column, pl.Float64())):
            levels = sorted({str(level) for p in parts for level in p["levels"].get(column, [])})
            ref = reference.get(column, levels[0] if levels else None)
            if ref is not None and ref not in levels:
                raise InputError(f"cox_reference: level {ref!r} of {column!r} does not occur in the rows used; "
                                 f"levels are {levels}")
            if len(levels) < 2:
                raise ConvergenceError(f"covariates: column {column!r} has a single level in the rows used; "
                                       "a constant covariate cannot be estimated")
            references[column] = str(ref)
            terms.extend((column, level) for level in levels if level != ref)
        else:
            terms.append((column, None))
        term_columns.append(list(range(start, len(terms))))
    return terms, term_columns, references
