"""Eligibility criteria, the index line and the ICI failure, as portable Ibis expressions.

Definitions (``docs/definitions.md``, Eligibility and Index): criteria apply in protocol order and an
excluded patient's reason is the first criterion failed. A protocol without the
``no_progression_on_ici`` criterion (e.g. a first-line study) indexes on the first line holding the
protocol's ``exposure.index_class``. Progression on ICI is a PD time-point
assessment or a progression event dated from the ICI line's start up to ``progression_window_days``
after its end, and before the first chemotherapy line started after that ICI line; the index date is
the start of that chemotherapy line (the earliest such over the patient's ICI lines).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.protocol import Protocol

__all__ = ["ELIGIBILITY_COLUMNS", "evaluate"]

#: Columns of the per-patient eligibility table.
ELIGIBILITY_COLUMNS = (
    "patient_id",
    "centre_id",
    "reason",
    "index_date",
    "index_line",
    "ici_line",
    "ici_failure_date",
    "ici_failure_sources",
)


def _progression_evidence(assessments: ir.Table, events: ir.Table) -> ir.Table:
    """PD time-point assessments and progression events: (patient_id, evidence_date, source)."""
    pd_scans = assessments.filter(
        (assessments.kind == "timepoint") & (assessments.response == "PD") & assessments.assessment_date.notnull()
    ).select(patient_id="patient_id", evidence_date="assessment_date", source="source")
    progression = events.filter(
        (events.event_type == "progression") & events.event_date.notnull()
    ).select(patient_id="patient_id", evidence_date="event_date", source="source")
    return pd_scans.union(progression)


def _index_lines(lines: ir.Table, assessments: ir.Table, events: ir.Table, protocol: Protocol) -> ir.Table:
    """Per patient with an ICI failure: the index line, the failed ICI line and the failure date."""
    ici = lines.filter(lines.has_ici)
    chemo = lines.filter(lines.has_index_class)
    pairs = ici.join(
        chemo, (ici.patient_id == chemo.patient_id) & (chemo.start_date > ici.start_date)
    ).select(
        patient_id=ici.patient_id,
        ici_line=ici.line_number,
        ici_start=ici.start_date,
        ici_end=ici.end_date,
        chemo_line=chemo.line_number,
        chemo_start=chemo.start_date,
    )
    # The first chemotherapy line after each ICI line (line starts are distinct within a patient).
    first = ibis.window(group_by=[pairs.patient_id, pairs.ici_line], order_by=pairs.chemo_start)
    pairs = pairs.mutate(rank=ibis.row_number().over(first))
    first_chemo = pairs.filter(pairs["rank"] == 0).drop("rank")
    evidence = _progression_evidence(assessments, events)
    window_end = first_chemo.ici_end + ibis.interval(days=protocol.exposure.progression_window_days)
    hits = first_chemo.join(
        evidence,
        (first_chemo.patient_id == evidence.patient_id)
        & (evidence.evidence_date >= first_chemo.ici_start)
        & (evidence.evidence_date <= window_end)
        & (evidence.evidence_date < first_chemo.chemo_start),
    ).select(first_chemo, evidence_date=evidence.evidence_date, source=evidence.source)
    # Of all ICI failures, the one whose next chemotherapy starts first (then the earliest ICI line).
    choose = ibis.window(
        group_by=hits.patient_id,
        order_by=[hits.chemo_start, hits.ici_line, hits.evidence_date],
    )
    ranked = hits.mutate(rank=ibis.dense_rank().over(choose))
    first_hits = ranked.filter(ranked["rank"] == 0)
    return first_hits.group_by("patient_id").aggregate(
        index_date=first_hits.chemo_start.min(),
        index_line=first_hits.chemo_line.min(),
        ici_line=first_hits.ici_line.min(),
        ici_failure_date=first_hits.evidence_date.min(),
        ici_failure_sources=first_hits.source.collect(distinct=True).sort().join("; "),
    )


def _first_index_lines(lines: ir.Table) -> ir.Table:
    """Per patient the first line holding the index class, for protocols without an ICI failure."""
    first = ibis.window(group_by=lines.patient_id, order_by=lines.start_date)
    ranked = lines.filter(lines.has_index_class).mutate(rank=ibis.row_number().over(first))
    return ranked.filter(ranked["rank"] == 0).select(
        patient_id="patient_id",
        index_date="start_date",
        index_line="line_number",
        ici_line=ibis.null("int64"),
        ici_failure_date=ibis.null("date"),
        ici_failure_sources=ibis.null("string"),
    )


def evaluate(tables: dict[str, ir.Table], lines: ir.Table, protocol: Protocol) -> ir.Table:
    """One row per patient of the ``patients`` table: the first failed criterion (``reason``, null
    when eligible) and, when there was an ICI failure, the index line (columns
    :data:`ELIGIBILITY_COLUMNS`)."""
    patients = tables["patients"]
    per_line = lines.group_by("patient_id").aggregate(any_chemo=lines.has_index_class.any())
    ici = lines.filter(lines.has_ici)
    chemo = lines.filter(lines.has_index_class)
    ici_first = (
        ici.join(chemo, (ici.patient_id == chemo.patient_id) & (ici.start_date < chemo.start_date))
        .select(patient_id=ici.patient_id)
        .distinct()
        .mutate(ici_before=ibis.literal(True))
    )
    if "no_progression_on_ici" in protocol.eligibility.criteria:
        index = _index_lines(lines, tables["assessments"], tables["events"], protocol)
    else:
        index = _first_index_lines(lines)
    base = patients.select("patient_id", "centre_id", "stage", "primary_site")
    joined = (
        base.left_join(per_line, "patient_id")
        .select(base, any_chemo=per_line.any_chemo)
    )
    joined = joined.left_join(ici_first, "patient_id").select(joined, ici_before=ici_first.ici_before)
    joined = joined.left_join(index, "patient_id").select(
        joined, *(index[c] for c in ELIGIBILITY_COLUMNS[3:])
    )
    passes = _passes(joined, protocol)
    failed = [(~passes[name], ibis.literal(name)) for name in protocol.eligibility.criteria if name in passes]
    reason = ibis.cases(*failed, else_=ibis.null("string")) if failed else ibis.null("string")
    return joined.mutate(reason=reason).select(*ELIGIBILITY_COLUMNS)


def _passes(t: ir.Table, protocol: Protocol) -> dict[str, Any]:
    """For each criterion evaluated on the canonical tables, whether the patient passes it."""
    window = protocol.calendar
    excluded_sites: list[str] = list(protocol.population.primary_sites_excluded) or ["__none__"]
    return {
        "not_stage_iv_unresectable": t.stage.isin(protocol.population.stages).fill_null(False),
        "primary_site_excluded": t.primary_site.isnull()
        | ~t.primary_site.isin(excluded_sites),
        "no_chemotherapy": t.any_chemo.fill_null(False),
        "no_ici_before_chemotherapy": t.ici_before.fill_null(False),
        "no_progression_on_ici": t.index_date.notnull(),
        "chemotherapy_outside_window": t.index_date.notnull()
        & (t.index_date >= ibis.literal(window.index_start))
        & (t.index_date <= ibis.literal(window.index_end)),
    }
