"""Multivariable Cox models for PFS and OS with the protocol's covariates, and the
proportional-hazards test.

Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187-220 (Efron ties).
Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted residuals.
Biometrika 1994;81:515-526 (R's cox.zph). Complete-case analysis: patients with a missing covariate
are left out of the model and counted in ``n_missing``; a model that cannot be fitted is recorded with
its reason in ``cox_models`` (status "failed") instead of stopping the other analyses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import require_columns
from oncorwe.analysis._survival import ENDPOINTS
from oncorwe.errors import ConvergenceError

__all__ = [
    "COX_MODEL_SCHEMA", "COX_SCHEMA", "PH_SCHEMA", "complete_cases", "cox_frames", "cox_models", "fit_rows",
    "model_tables", "term_counts",
]

COX_MODEL_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "covariates": pl.String(),  # ", "-joined, in protocol order
    "n": pl.Int64(),
    "events": pl.Int64(),
    "n_missing": pl.Int64(),  # left out for a missing covariate, time or status
    "status": pl.String(),  # "fitted" | "failed"
    "message": pl.String(),
}

COX_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "term": pl.String(),
    "variable": pl.String(),
    "coef": pl.Float64(),
    "se": pl.Float64(),
    "hazard_ratio": pl.Float64(),
    "lower": pl.Float64(),
    "upper": pl.Float64(),
    "z": pl.Float64(),
    "p_value": pl.Float64(),
    # the model's patients (complete cases) the term describes: a level's or a yes's patients,
    # every model patient for a numeric covariate (the n column of journal forest plots)
    "n": pl.Int64(),
}

PH_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(),
    "term": pl.String(),
    "statistic": pl.Float64(),
    "df": pl.Float64(),
    "p_value": pl.Float64(),
}


def cox_models(
    frame: pl.DataFrame, *, covariates: Sequence[str], reference: Mapping[str, str]
) -> dict[str, pl.DataFrame]:
    """Fit one Cox model per endpoint; frames ``cox_models``, ``cox`` and ``cox_ph_test``."""
    models: list[tuple[dict[str, object], ModelFit]] = []
    levels_ref = {k: v for k, v in reference.items() if k in covariates}
    for endpoint, (time, event, _label) in ENDPOINTS.items():
        require_columns(frame, [time, event, *covariates], what=f"Cox model ({endpoint})")
        data, complete = complete_cases(frame, time, event, covariates)
        model: dict[str, object] = {
            "endpoint": endpoint, "covariates": ", ".join(covariates), "n": complete.height,
            "events": int(complete[event].sum()), "n_missing": data.height - complete.height,
            "term_n": term_counts(complete, covariates, boolean={c for c in covariates if frame[c].dtype == pl.Boolean}),
        }

        def fit_model(complete: pl.DataFrame = complete, time: str = time,
                      event: str = event) -> tuple[stats.CoxResult, stats.ProportionalHazardsTest]:
            fit = stats.cox_ph(
                complete.with_columns(pl.col(event).cast(pl.Int64)), time=time, event=event,
                covariates=list(covariates), ties="efron", reference=levels_ref,
            )
            return fit, stats.proportional_hazards_test(fit)

        models.append((model, fit_model))
    return model_tables(models, covariates)


#: fits one model: its coefficients and its proportional-hazards test (ConvergenceError: not fitted)
ModelFit = Callable[[], tuple[stats.CoxResult, stats.ProportionalHazardsTest]]


def model_tables(models: Sequence[tuple[Mapping[str, object], ModelFit]],
                 covariates: Sequence[str]) -> dict[str, pl.DataFrame]:
    """The three Cox tables from each endpoint's counts and fit, pooled or federated: a fit that
    raises :class:`ConvergenceError` is recorded as "failed" with its reason, the others go on."""
    rows, terms, ph = [], [], []
    for model_with_counts, fit_model in models:
        model = {k: v for k, v in model_with_counts.items() if k != "term_n"}
        term_n: Mapping[str, int] = model_with_counts.get("term_n", {})  # type: ignore[assignment]
        try:
            fit, zph = fit_model()
        except ConvergenceError as exc:
            rows.append({**model, "status": "failed", "message": str(exc)})
            continue
        rows.append({**model, "status": "fitted", "message": None})
        fit_terms, fit_ph = fit_rows(str(model["endpoint"]), fit, zph, covariates, term_n)
        terms.extend(fit_terms)
        ph.extend(fit_ph)
    return cox_frames(rows, terms, ph)


def fit_rows(endpoint: str, fit: stats.CoxResult, zph: stats.ProportionalHazardsTest,
             covariates: Sequence[str], term_n: Mapping[str, int] | None = None,
             ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The rows of the ``cox`` and ``cox_ph_test`` tables for one fitted model (pooled or federated);
    ``term_n`` the patients per term (:func:`term_counts`, summed over centres when federated)."""
    terms, ph = [], []
    for row in fit.to_frame().iter_rows(named=True):
        terms.append({
            "endpoint": endpoint, "term": row["term"], "variable": _variable(row["term"], covariates),
            **{k: _num(row.get(k)) for k in ("coef", "se", "hazard_ratio", "lower", "upper", "z", "p_value")},
            "n": (term_n or {}).get(row["term"]),
        })
    for row in zph.to_frame().iter_rows(named=True):
        ph.append({"endpoint": endpoint, "term": row["term"],
                   **{k: _num(row.get(k)) for k in ("statistic", "df", "p_value")}})
    return terms, ph


def cox_frames(models: list[dict[str, object]], terms: list[dict[str, object]],
               ph: list[dict[str, object]]) -> dict[str, pl.DataFrame]:
    """The three Cox tables from their rows."""
    return {
        "cox_models": pl.DataFrame(models, schema=COX_MODEL_SCHEMA),
        "cox": pl.DataFrame(terms, schema=COX_SCHEMA),
        "cox_ph_test": pl.DataFrame(ph, schema=PH_SCHEMA),
    }


def complete_cases(frame: pl.DataFrame, time: str, event: str,
                   covariates: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The model's columns (booleans as 0/1) and its complete cases (no missing value, time not NaN)."""
    data = frame.select([time, event, *covariates]).with_columns(
        [pl.col(c).cast(pl.Int64) for c in covariates if frame[c].dtype == pl.Boolean]
    )
    return data, data.drop_nulls().filter(pl.col(time).is_not_nan())


def term_counts(complete: pl.DataFrame, covariates: Sequence[str], *, boolean: set[str]) -> dict[str, int]:
    """Patients per model term, named as ``stats.cox_ph`` names them: ``column=level`` for each
    level of a categorical covariate, ``column`` for a yes/no one (its yes patients) and for a
    numeric one (every patient of the model)."""
    counts: dict[str, int] = {}
    for column in covariates:
        values = complete[column]
        if values.dtype in (pl.String, pl.Categorical) or isinstance(values.dtype, (pl.Enum, pl.Categorical)):
            for level, n in values.cast(pl.String).value_counts().iter_rows():
                counts[f"{column}={level}"] = int(n)
        elif column in boolean:
            counts[column] = int((values.cast(pl.Int64) == 1).sum())
        else:
            counts[column] = complete.height
    return counts


def _variable(term: str, covariates: Sequence[str]) -> str:
    """The covariate a model term belongs to (the longest covariate name the term starts with)."""
    matches = [c for c in covariates if term.startswith(c)]
    return max(matches, key=len) if matches else term


def _num(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if number != number else number  # NaN -> null, R's NA
