"""oncorwe.analysis: the protocol's analyses on the per-patient analysis table.

``run(analysis_table, protocol) -> AnalysisResult``: Table 1, response (ORR, DCR with exact CIs and
tests), Kaplan-Meier PFS/OS (medians, rates, log-rank, curves), median follow-up (reverse
Kaplan-Meier), duration of chemotherapy, responder OS naive and landmark, Cox models with the
proportional-hazards test, subsequent therapies, and the published-vs-reproduced comparison.
Everything is computed from the analysis table (and the cohort's attrition / the harmonisation's
reconciliation passed in); nothing reads raw data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.analysis._common import require_columns
from oncorwe.analysis._cox import cox_models
from oncorwe.analysis._landmark import GUARANTEE_TIME_NOTE, responder_landmark
from oncorwe.analysis._published import (
    PublishedFigure,
    PublishedFigures,
    compare_published,
    load_published,
)
from oncorwe.analysis._response import response_table, response_tests
from oncorwe.analysis._result import TABLE_NAMES, AnalysisResult
from oncorwe.analysis._settings import AnalysisSettings, published_path, settings_from_protocol
from oncorwe.analysis._subsequent import (
    DESCRIPTIVE_SCHEMA,
    chemo_duration,
    regimens,
    subsequent_therapy,
)
from oncorwe.analysis._survival import followup, survival_analyses
from oncorwe.analysis._table1 import smd_table, table1
from oncorwe.errors import InputError

__all__ = [
    "GUARANTEE_TIME_NOTE",
    "TABLE_NAMES",
    "AnalysisResult",
    "AnalysisSettings",
    "PublishedFigure",
    "PublishedFigures",
    "compare_published",
    "load_published",
    "run",
    "settings_from_protocol",
    "smd_table",
]


def run(
    analysis_table: pl.DataFrame,
    protocol: Any,
    *,
    attrition: pl.DataFrame | None = None,
    reconciliation: pl.DataFrame | None = None,
    quarantine_summary: pl.DataFrame | None = None,
    published: PublishedFigures | str | Path | None = None,
) -> AnalysisResult:
    """Run every analysis the protocol names on the per-patient analysis table.

    Parameters
    ----------
    analysis_table : one row per patient of the analysis set (``model.schema.ANALYSIS_SCHEMA``).
    protocol : a loaded protocol (``oncorwe.protocol.load``); its ``analysis`` section is used.
    attrition, reconciliation, quarantine_summary : passed through to the report (aggregate only).
    published : published figures (loaded, or a TOML path); by default the file the protocol's
        ``reference.published`` names, when there is one.

    Raises
    ------
    InputError : the analysis table is empty or lacks a column an analysis needs.
    ProtocolError : the protocol's analysis settings or the published figures are invalid.
    """
    settings = settings_from_protocol(protocol)
    if not isinstance(analysis_table, pl.DataFrame):
        raise InputError(f"analysis_table: expected a polars DataFrame, got {type(analysis_table).__name__}")
    if analysis_table.height == 0:
        raise InputError("analysis_table: no patients in the analysis set")
    require_columns(analysis_table, ["centre_id", "best_response", "pfs_months", "os_months"], what="analysis")
    if "patient_id" in analysis_table.columns and analysis_table["patient_id"].n_unique() != analysis_table.height:
        raise InputError("analysis_table: patient_id is not unique (one row per patient expected)")

    tables: dict[str, pl.DataFrame] = {}
    tables["table1"] = table1(analysis_table, by=settings.table1_by)
    if settings.table1_by:
        tables["table1_smd"] = smd_table(analysis_table, by=settings.table1_by)
    tables["response"] = response_table(analysis_table, by=_response_groups(settings))
    tables["response_tests"] = response_tests(analysis_table, by=settings.response_by)
    tables.update(survival_analyses(
        analysis_table, splits=settings.km_splits, rate_months=settings.survival_rates_months
    ))
    tables["descriptives"] = pl.DataFrame(
        [followup(analysis_table), chemo_duration(analysis_table)], schema=DESCRIPTIVE_SCHEMA
    )
    tables["landmark"] = responder_landmark(analysis_table, landmark_weeks=settings.landmark_weeks)
    tables.update(cox_models(analysis_table, covariates=settings.cox_covariates, reference=settings.cox_reference))
    tables["subsequent"] = subsequent_therapy(analysis_table)
    tables["regimens"] = regimens(analysis_table)
    for name, frame in (("attrition", attrition), ("reconciliation", reconciliation),
                        ("quarantine_summary", quarantine_summary)):
        if frame is not None:
            tables[name] = frame

    figures = _published(published, protocol)
    if figures is not None:
        tables["published"] = compare_published(figures, tables)

    info = {
        "study": str(getattr(protocol, "name", "")),
        "title": str(getattr(protocol, "title", "")),
        "reference": _reference(protocol, figures),
        "n_patients": analysis_table.height,
        "n_centres": analysis_table["centre_id"].n_unique(),
        "settings": settings.to_dict(),
        "guarantee_time_note": GUARANTEE_TIME_NOTE,
        "criterion_labels": _criterion_labels(protocol),
    }
    return AnalysisResult(info=info, tables=tables)


def _criterion_labels(protocol: Any) -> dict[str, str]:
    """The wording of the eligibility criteria in the flow diagram and the per-centre attrition
    table: the protocol's own labels (``eligibility.labels``), else for the calendar criterion a
    wording made from the index class and the calendar window."""
    eligibility = getattr(protocol, "eligibility", None)
    stated = {str(k): str(v) for k, v in dict(getattr(eligibility, "labels", None) or {}).items()}
    return {**_calendar_label(protocol), **stated}


def _calendar_label(protocol: Any) -> dict[str, str]:
    calendar = getattr(protocol, "calendar", None)
    exposure = getattr(protocol, "exposure", None)
    if calendar is None:
        return {}
    start, end = calendar.index_start, calendar.index_end
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31):
        window = f"{start.year}-{end.year}"
    else:
        window = f"{start.isoformat()} to {end.isoformat()}"
    index_class = str(getattr(exposure, "index_class", "index therapy")).replace("_", " ")
    what = "Chemotherapy" if index_class == "chemotherapy" else f"Index {index_class} line"
    return {"chemotherapy_outside_window": f"{what} started outside {window}"}


def _response_groups(settings: AnalysisSettings) -> list[str]:
    """The protocol's response groupings, then the survival splits that are not response-derived,
    so that a subgroup's ORR sits beside its Kaplan-Meier estimates (e.g. prior anti-PD-1)."""
    derived = {"responder", "disease_control", "best_response"}
    extra = [c for c in settings.km_splits if c not in settings.response_by and c not in derived]
    return [*settings.response_by, *extra]


def _published(published: PublishedFigures | str | Path | None, protocol: Any) -> PublishedFigures | None:
    if isinstance(published, PublishedFigures):
        return published
    if published is not None:
        return load_published(published)
    path = published_path(protocol)
    return load_published(path) if path is not None else None


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
