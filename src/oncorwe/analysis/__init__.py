"""oncorwe.analysis: the protocol's analyses on the per-patient analysis table.

``run(analysis_table, protocol) -> AnalysisResult``: Table 1, response (ORR, DCR with exact CIs and
tests), Kaplan-Meier PFS/OS (medians, rates, log-rank, curves), median follow-up (reverse
Kaplan-Meier), duration of chemotherapy, responder OS naive and landmark, Cox models with the
proportional-hazards test, subsequent therapies, the published-vs-reproduced comparison, and with the
protocol's optional sections the propensity-weighted comparison (with multiple imputation) and
competing risks (``analysis._adjusted``, ``analysis._competing_risks``, docs/adjusted.md).
Everything is computed from the analysis table (and the cohort's attrition / the harmonisation's
reconciliation passed in); nothing reads raw data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.analysis._adjusted import adjusted_analyses, adjusted_methods
from oncorwe.analysis._common import require_columns
from oncorwe.analysis._competing_risks import competing_analyses
from oncorwe.analysis._cox import cox_models
from oncorwe.analysis._landmark import GUARANTEE_TIME_NOTE, responder_landmark
from oncorwe.analysis._methods import methods_text
from oncorwe.analysis._published import (
    PublishedFigure,
    PublishedFigures,
    agreement_counts,
    compare_published,
    load_published,
)
from oncorwe.analysis._response import response_table, response_tests
from oncorwe.analysis._result import PATIENT_LEVEL_TABLES, TABLE_NAMES, AnalysisResult
from oncorwe.analysis._settings import (
    published_path,
    require_protocol,
    settings_record,
    subsequent_classes,
    table1_variables,
)
from oncorwe.analysis._subsequent import (
    DESCRIPTIVE_SCHEMA,
    chemo_duration,
    regimens,
    subsequent_therapy,
)
from oncorwe.analysis._survival import ENDPOINTS, followup, survival_analyses
from oncorwe.analysis._table1 import smd_table, table1
from oncorwe.analysis._toxicity import toxicity_table
from oncorwe.analysis._views import (
    TIME_COLUMN_DAYS as TIME_COLUMNS,
)
from oncorwe.analysis._views import (
    CountViews,
    TableViews,
    Views,
    count_rows,
    derived_columns,
    landmark_key,
    response_groups,
    sum_counts,
    view_keys,
)
from oncorwe.errors import InputError
from oncorwe.protocol import PriorTherapy, Protocol

__all__ = [
    "GUARANTEE_TIME_NOTE",
    "PATIENT_LEVEL_TABLES",
    "TABLE_NAMES",
    "TIME_COLUMNS",
    "AnalysisResult",
    "CountViews",
    "PublishedFigure",
    "PublishedFigures",
    "TableViews",
    "Views",
    "agreement_counts",
    "compare_published",
    "count_rows",
    "from_views",
    "load_published",
    "methods_text",
    "run",
    "smd_table",
    "sum_counts",
    "table1_continuous",
    "view_keys",
]


def run(
    analysis_table: pl.DataFrame,
    protocol: Protocol,
    *,
    attrition: pl.DataFrame | None = None,
    reconciliation: pl.DataFrame | None = None,
    quarantine_summary: pl.DataFrame | None = None,
    published: PublishedFigures | str | Path | None = None,
) -> AnalysisResult:
    """Run every analysis the protocol names on the per-patient analysis table.

    Parameters
    ----------
    analysis_table : one row per patient of the analysis set (``protocol.analysis_schema()``).
    protocol : a loaded protocol (``oncorwe.protocol.load``); its ``analysis`` section, covariates
        and subsequent-therapy classes are used.
    attrition, reconciliation, quarantine_summary : passed through to the report (aggregate only).
    published : published figures (loaded, or a TOML path); by default the file the protocol's
        ``reference.published`` names among the shipped studies, when there is one.

    Raises
    ------
    InputError : the analysis table is empty or lacks a column an analysis needs.
    ProtocolError : the published figures are invalid.
    """
    protocol = require_protocol(protocol)
    spec = protocol.analysis
    if not isinstance(analysis_table, pl.DataFrame):
        raise InputError(f"analysis_table: expected a polars DataFrame, got {type(analysis_table).__name__}")
    if analysis_table.height == 0:
        raise InputError("analysis_table: no patients in the analysis set")
    require_columns(analysis_table, ["centre_id", "best_response", "pfs_months", "os_months"], what="analysis")
    if "patient_id" in analysis_table.columns and analysis_table["patient_id"].n_unique() != analysis_table.height:
        raise InputError("analysis_table: patient_id is not unique (one row per patient expected)")

    views = TableViews(analysis_table, derived_columns(protocol))
    cox_columns = [c for time, event, _label in ENDPOINTS.values() for c in (time, event)]
    cox = cox_models(views.frame([*cox_columns, *spec.cox_covariates]), covariates=list(spec.cox_covariates),
                     reference=dict(spec.cox_reference))
    result = from_views(views, protocol, cox=cox, attrition=attrition, reconciliation=reconciliation,
                        quarantine_summary=quarantine_summary, published=published,
                        info={"methods": [*methods_text(protocol), *adjusted_methods(protocol)],
                              "column_labels": {**_column_labels(protocol), **_arm_labels(protocol)}})
    # the adjusted comparison, competing risks and imputation need the patient rows (issue 15)
    extra = {**adjusted_analyses(analysis_table, protocol), **competing_analyses(analysis_table, protocol),
             **_toxicity(analysis_table, protocol)}
    if not extra:
        return result
    return AnalysisResult(info=result.info, tables={**result.tables, **extra})


def from_views(
    views: Views,
    protocol: Protocol,
    *,
    cox: Mapping[str, pl.DataFrame],
    attrition: pl.DataFrame | None = None,
    reconciliation: pl.DataFrame | None = None,
    quarantine_summary: pl.DataFrame | None = None,
    published: PublishedFigures | str | Path | None = None,
    info: Mapping[str, Any] | None = None,
) -> AnalysisResult:
    """Every analysis of the protocol on the views of an analysis table (``analysis._views``), with
    the Cox tables made elsewhere (``cox``: ``cox_models``, ``cox``, ``cox_ph_test``).

    :func:`run` calls it on the pooled table; ``oncorwe combine`` on the centres' counted rows,
    with the Cox model fitted by distributed Newton-Raphson. ``info`` adds to the result's info.
    """
    protocol = require_protocol(protocol)
    spec = protocol.analysis
    by = spec.table1_by
    variables = table1_variables(protocol)
    keys = set(view_keys(protocol))

    def view(columns: Sequence[str]) -> pl.DataFrame:
        if tuple(columns) not in keys:  # the site package counts exactly view_keys: keep them one list
            raise AssertionError(f"analysis view ({', '.join(columns)}) is not in view_keys")
        return views.frame(columns)

    def table1_view(column: str) -> pl.DataFrame:
        return view([column] if by is None or column == by else [by, column])

    tables: dict[str, pl.DataFrame] = {}
    tables["table1"] = pl.concat([table1(table1_view(v.column), by=by, variables=[v]) for v in variables])
    if by:
        tables["table1_smd"] = pl.concat(
            [smd_table(table1_view(v.column), by=by, variables=[v]) for v in variables if v.column != by]
            or [smd_table(view([by]), by=by, variables=[])])
    groups = response_groups(protocol)
    tables["response"] = pl.concat([
        response_table(view(["best_response"]), by=[]),
        *(response_table(view([g, "best_response"]), by=[g], overall=False) for g in groups),
    ])
    tables["response_tests"] = pl.concat(
        [response_tests(view([g, "best_response"]), by=[g]) for g in spec.response_by]
        or [response_tests(view(["best_response"]), by=[])])
    tables.update(survival_analyses(
        view, splits=list(spec.km_splits), rate_months=[float(m) for m in spec.survival_rates_months]
    ))
    tables["descriptives"] = pl.DataFrame(
        [followup(view(["os_months", "os_event"])), chemo_duration(view(["chemo_duration_weeks"]))],
        schema=DESCRIPTIVE_SCHEMA,
    )
    tables["landmark"] = responder_landmark(view(list(landmark_key())), landmark_weeks=float(spec.landmark_weeks))
    tables.update(cox)
    tables["subsequent"] = subsequent_therapy(
        view(["subsequent_therapy", "subsequent_therapy_class", "subsequent_responder"]),
        classes=subsequent_classes(protocol), groups=protocol.subsequent_therapy.groups)
    tables["regimens"] = regimens(view(["regimen_class", "regimen_ingredients"]))
    for name, frame in (("attrition", attrition), ("reconciliation", reconciliation),
                        ("quarantine_summary", quarantine_summary)):
        if frame is not None:
            tables[name] = frame

    figures = _published(published, protocol)
    if figures is not None:
        tables["published"] = compare_published(figures, tables)

    centres = view(["centre_id"])["centre_id"]
    result_info = {
        "study": protocol.name,
        "title": protocol.title,
        "reference": _reference(protocol, figures),
        "n_patients": centres.len(),
        "n_centres": centres.n_unique(),
        "settings": settings_record(protocol),
        "guarantee_time_note": GUARANTEE_TIME_NOTE,
        "criterion_labels": {c.id: c.label for c in protocol.criteria},
        "column_labels": _column_labels(protocol),
        "methods": methods_text(protocol),
        **({"toxicity_label": protocol.adverse_events.label} if protocol.adverse_events is not None else {}),
        **dict(info or {}),
    }
    return AnalysisResult(info=result_info, tables=tables)


def _toxicity(analysis_table: pl.DataFrame, protocol: Protocol) -> dict[str, pl.DataFrame]:
    """The toxicity table when the protocol has ``[adverse_events]`` (it needs the patients' terms,
    so only an analysis of the patient rows makes it)."""
    rules = protocol.adverse_events
    if rules is None:
        return {}
    return {"toxicity": toxicity_table(analysis_table, classes=protocol.regimen_class_names, top_terms=rules.top_terms)}


def table1_continuous(protocol: Protocol) -> list[Any]:
    """The protocol's continuous Table 1 variables (what value binning applies to)."""
    return [v for v in table1_variables(require_protocol(protocol)) if v.continuous]


def _column_labels(protocol: Protocol) -> dict[str, str]:
    """How the report words the analysis-table columns, classes and levels the protocol defines."""
    labels = {column: protocol.column_label(column) for column in protocol.analysis_schema()
              if column in protocol.analysis.labels or column in protocol.covariates}
    labels.update({f"regimen_class={c.name}": c.label for c in protocol.regimen_classes})
    labels.update({f"subsequent_therapy_class={c.name}": c.label for c in protocol.subsequent_therapy.classes})
    labels[f"subsequent_therapy_class={protocol.subsequent_therapy.otherwise}"] = protocol.subsequent_therapy.otherwise_label
    for name, spec in protocol.covariates.items():
        if isinstance(spec, PriorTherapy):
            labels.update({f"{name}={level.name}": level.label for level in spec.levels if level.label})
            if spec.otherwise_label:
                labels[f"{name}={spec.otherwise}"] = spec.otherwise_label
    return labels


def _arm_labels(protocol: Protocol) -> dict[str, str]:
    """How the report words the adjusted comparison's arms (``arm=<name>``)."""
    if protocol.adjusted is None:
        return {}
    return {"arm": "Arm", **{f"arm={arm}": label for arm, label in protocol.adjusted.arm_labels.items()}}


def _published(published: PublishedFigures | str | Path | None, protocol: Protocol) -> PublishedFigures | None:
    if isinstance(published, PublishedFigures):
        return published
    if published is not None:
        return load_published(published)
    path = published_path(protocol)
    return load_published(path) if path is not None and path.is_file() else None


def _reference(protocol: Any, figures: PublishedFigures | None) -> dict[str, str]:
    reference = getattr(protocol, "reference", None)
    out = {"citation": "", "doi": ""}
    if figures is not None:
        out.update(citation=figures.reference, doi=figures.doi)
    if reference is not None:
        for key in ("citation", "doi"):
            value = reference.get(key) if isinstance(reference, dict) else getattr(reference, key, None)
            if value:
                out[key] = str(value)
    return out
