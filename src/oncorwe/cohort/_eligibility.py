"""Eligibility criteria, the index line and the prior failure, as portable Ibis expressions.

Definitions (``docs/definitions.md``, Eligibility and Index): the protocol's criteria apply in its
order and an excluded patient's reason is the first criterion failed. Without
``index.prior_failure`` the index line is the first line holding the protocol's
``index.drug_class``. With it, progression on a prior line is a PD time-point assessment or a
progression event dated from the prior line's start up to ``progression_window_days`` after its
end, and before the first index-class line started after that prior line; the index date is the
start of that line (the earliest such over the patient's prior lines).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.cohort._baseline import baseline_values
from oncorwe.cohort._lines import holds_class
from oncorwe.protocol import Protocol
from oncorwe.protocol._criteria import (
    ConditionPresent,
    DuplicateReferral,
    HasLine,
    IndexDateWithin,
    LineBeforeLine,
    ObservationIn,
    ObservationNotIn,
    ProgressionOnPriorLine,
)

__all__ = ["ELIGIBILITY_COLUMNS", "evaluate"]

#: Columns of the per-patient eligibility table.
ELIGIBILITY_COLUMNS = (
    "patient_id",
    "centre_id",
    "reason",
    "index_date",
    "index_line",
    "prior_line",
    "prior_failure_date",
    "prior_failure_sources",
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
    """Per patient with a prior failure: the index line, the failed prior line and the failure date."""
    ici = lines.filter(lines.has_prior_class)
    chemo = lines.filter(lines.has_index_class)
    pairs = ici.join(
        chemo, (ici.patient_id == chemo.patient_id) & (chemo.start_date > ici.start_date)
    ).select(
        patient_id=ici.patient_id,
        prior_line=ici.line_number,
        ici_start=ici.start_date,
        ici_end=ici.end_date,
        chemo_line=chemo.line_number,
        chemo_start=chemo.start_date,
    )
    # The first chemotherapy line after each ICI line (line starts are distinct within a patient).
    first = ibis.window(group_by=[pairs.patient_id, pairs.prior_line], order_by=pairs.chemo_start)
    pairs = pairs.mutate(rank=ibis.row_number().over(first))
    first_chemo = pairs.filter(pairs["rank"] == 0).drop("rank")
    evidence = _progression_evidence(assessments, events)
    assert protocol.index.prior_failure is not None
    window_days = protocol.index.prior_failure.progression_window_days
    window_end = first_chemo.ici_end + ibis.interval(days=window_days)
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
        order_by=[hits.chemo_start, hits.prior_line, hits.evidence_date],
    )
    ranked = hits.mutate(rank=ibis.dense_rank().over(choose))
    first_hits = ranked.filter(ranked["rank"] == 0)
    return first_hits.group_by("patient_id").aggregate(
        index_date=first_hits.chemo_start.min(),
        index_line=first_hits.chemo_line.min(),
        prior_line=first_hits.prior_line.min(),
        prior_failure_date=first_hits.evidence_date.min(),
        prior_failure_sources=first_hits.source.collect(distinct=True).sort().join("; "),
    )


def _first_index_lines(lines: ir.Table) -> ir.Table:
    """Per patient the first line holding the index class, for protocols without an ICI failure."""
    first = ibis.window(group_by=lines.patient_id, order_by=lines.start_date)
    ranked = lines.filter(lines.has_index_class).mutate(rank=ibis.row_number().over(first))
    return ranked.filter(ranked["rank"] == 0).select(
        patient_id="patient_id",
        index_date="start_date",
        index_line="line_number",
        prior_line=ibis.null("int64"),
        prior_failure_date=ibis.null("date"),
        prior_failure_sources=ibis.null("string"),
    )


def evaluate(tables: dict[str, ir.Table], lines: ir.Table, protocol: Protocol) -> ir.Table:
    """One row per patient of the ``person`` table: the first failed criterion (``reason``, null
    when eligible) and the index line (columns :data:`ELIGIBILITY_COLUMNS`)."""
    person = tables["person"]
    if protocol.index.prior_failure is not None:
        index = _index_lines(lines, tables["assessments"], tables["events"], protocol)
    else:
        index = _first_index_lines(lines)
    base = person.select("patient_id", "centre_id")
    t = base.left_join(index, "patient_id").select(base, *(index[c] for c in ELIGIBILITY_COLUMNS[3:]))
    flags: list[tuple[str, str]] = []
    anchors = base.left_join(index, "patient_id").select(base.patient_id, anchor_date=index.index_date)
    for i, criterion in enumerate(protocol.criteria):
        if isinstance(criterion, DuplicateReferral):
            continue  # merged records are not in ``person``: cohort.run counts them from the merges
        flag = f"passes_{i}"
        if isinstance(criterion, ProgressionOnPriorLine):
            t = t.mutate(**{flag: t.index_date.notnull()})
        elif isinstance(criterion, IndexDateWithin):
            t = t.mutate(**{flag: t.index_date.notnull() & (t.index_date >= ibis.literal(criterion.start))
                            & (t.index_date <= ibis.literal(criterion.end))})
        else:
            passes = _passes(criterion, tables, lines, anchors, protocol)
            t = t.left_join(passes, "patient_id").select(t, **{flag: passes.passes})
        flags.append((flag, criterion.id))
    reason = ibis.cases(*[(~t[flag].fill_null(False), ibis.literal(name)) for flag, name in flags],
                        else_=ibis.null("string")) if flags else ibis.null("string")
    return t.mutate(reason=reason).select(*ELIGIBILITY_COLUMNS)


def _passes(criterion: Any, tables: dict[str, ir.Table], lines: ir.Table, anchors: ir.Table,
            protocol: Protocol) -> ir.Table:
    """The patients who pass ``criterion``: (patient_id, passes) rows, true for those who pass (a
    patient without a row fails). ``anchors``: (patient_id, anchor_date), the index date or null."""
    if isinstance(criterion, HasLine):
        rows = lines.filter(holds_class(lines.drug_classes, criterion.drug_classes))
        return rows.select("patient_id").distinct().mutate(passes=ibis.literal(True))
    if isinstance(criterion, LineBeforeLine):
        before = lines.filter(holds_class(lines.drug_classes, criterion.before))
        after = lines.filter(holds_class(lines.drug_classes, criterion.after))
        pairs = before.join(after, (before.patient_id == after.patient_id) & (before.start_date < after.start_date))
        return pairs.select(patient_id=before.patient_id).distinct().mutate(passes=ibis.literal(True))
    if isinstance(criterion, ConditionPresent):
        conditions = tables["conditions"]
        cond = protocol.condition
        match = conditions.condition_concept_id.isin(list(cond.concept_ids) or [-1])
        text = conditions.condition_text.lower()
        for word in cond.words:
            match = match | text.contains(word).fill_null(False)
        if cond.files_have_condition:  # a CRF record of a registry of the disease (no concept, no text)
            match = match | (conditions.condition_concept_id.isnull() & conditions.condition_text.isnull())
        rows = conditions.filter(match)
        return rows.select("patient_id").distinct().mutate(passes=ibis.literal(True))
    if isinstance(criterion, ObservationIn | ObservationNotIn):
        values = baseline_values(tables["observations"], anchors, variable=criterion.variable)
        if isinstance(criterion, ObservationIn):
            rows = values.filter(values.value_text.isin(list(criterion.values)))
            return rows.select("patient_id", passes=ibis.literal(True))
        outside = values.filter(values.value_text.isin(list(criterion.values)))
        rows = tables["person"].select("patient_id").anti_join(outside, "patient_id")
        return rows.mutate(passes=ibis.literal(True))
    raise TypeError(f"criterion kind {criterion.kind!r} has no evaluation")  # a programming error
