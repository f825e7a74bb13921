"""The per-patient analysis table, derived once as Ibis expressions over the canonical tables.

Rules (``docs/definitions.md``): index and baseline, response, time to event and subsequent therapy.
PFS: index to the earliest of the first PD time point after the index, a progression event after
the index, and death (unless ``pfs_death_is_event = false``); else censored at the last evaluable
(CR/PR/SD) time point or ``progression_free`` event after the index, or at the index (0 months)
without one (``pfs_censoring = "last_contact"`` censors at the OS date
instead). OS: index to death, else censored at the latest last contact (without any last-contact
record: the latest dated record of the patient). Duration of response: first CR/PR to the PFS date,
with the PFS event. Months are days / (365.25 / 12), weeks days / 7.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.cohort import (
    LINE_COLUMNS,
    baseline_values,
    holds_class,
    line_sources,
    materialise,
    with_next_start,
)
from oncorwe.endpoints._response import best_overall_response
from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK, ENDPOINT_SCHEMA
from oncorwe.protocol import Protocol
from oncorwe.protocol._covariates import (
    AboveReferenceHigh,
    BooleanCovariate,
    CategoricalCovariate,
    ConditionCategory,
    InSet,
    NumericCovariate,
    PriorClass,
    PriorTherapy,
    RatioToReferenceHigh,
)

__all__ = ["TRACE_COLUMNS", "analysis_expressions"]

#: Columns of the per-patient trace: which records produced each derived value.
TRACE_COLUMNS = (
    "patient_id",
    "index_line",
    "index_sources",
    "prior_failure_sources",
    "response_sources",
    "pfs_date",
    "pfs_sources",
    "os_date",
    "os_sources",
    "subsequent_line",
    "subsequent_sources",
)


def _earliest(candidates: ir.Table) -> ir.Table:
    """Per patient the earliest date of ``candidates`` (patient_id, date, source) and its sources."""
    return _extreme(candidates, latest=False)


def _latest(candidates: ir.Table) -> ir.Table:
    """Per patient the latest date of ``candidates`` (patient_id, date, source) and its sources."""
    return _extreme(candidates, latest=True)


def _extreme(candidates: ir.Table, *, latest: bool) -> ir.Table:
    date = candidates.date
    chosen = candidates.group_by("patient_id").aggregate(chosen=date.max() if latest else date.min())
    on_it = candidates.join(
        chosen, (candidates.patient_id == chosen.patient_id) & (candidates.date == chosen.chosen)
    ).select(candidates)
    return on_it.group_by("patient_id").aggregate(
        date=on_it.date.min(), sources=on_it.source.collect(distinct=True).sort().join("; ")
    )


def _dated(table: ir.Table, date_column: str, where: ir.BooleanValue) -> ir.Table:
    rows = table.filter(where & table[date_column].notnull())
    return rows.select(patient_id=rows.patient_id, date=rows[date_column], source=rows.source)


def _line(lines: ir.Table, keys: ir.Table, number: ir.IntegerValue | str, prefix: str,
          columns: tuple[str, ...]) -> ir.Table:
    """The line numbered ``number`` (a column of ``keys``) of each patient: its ``columns``, prefixed
    (only those: the per-patient working table is copied at every step, so it stays narrow)."""
    wanted = keys.select(patient_id="patient_id", wanted=keys[number] if isinstance(number, str) else number)
    joined = wanted.join(
        lines, (wanted.patient_id == lines.patient_id) & (lines.line_number == wanted.wanted)
    )
    return joined.select(patient_id=wanted.patient_id, **{f"{prefix}{c}": lines[c] for c in columns})


def analysis_expressions(
    con: Any, tables: dict[str, ir.Table], index: ir.Table, lines: ir.Table, protocol: Protocol
) -> tuple[ir.Table, ir.Table]:
    """The analysis table (``protocol.analysis_schema()``) and the trace (TRACE_COLUMNS), unexecuted.

    The per-patient working table is stored as a temporary table (``materialise``) before a value
    derived from it is joined back to it: Ibis cannot always tell the two sides of such a self-join
    apart, and stored tables also keep the generated SQL small.
    """
    # every value below reads the analysis set's assessments and events several times: they are
    # stored once, without the records of the excluded patients
    patients_in = index.select("patient_id")
    assessments = materialise(con, tables["assessments"].semi_join(patients_in, "patient_id").select(
        "patient_id", "assessment_date", "response", "kind", "source"))
    events = materialise(con, tables["events"].semi_join(patients_in, "patient_id").select(
        "patient_id", "event_type", "event_date", "source"))
    idx = index.select("patient_id", "centre_id", "index_date", "index_line", "prior_failure_sources")
    idx = idx.mutate(next_number=idx.index_line + 1)
    lines = lines.select(*LINE_COLUMNS)  # the records behind a line come from line_sources
    t = _with_lines(con, idx, lines, protocol)
    t = _with_line_sources(con, t, tables["drug_exposures"], lines, protocol)
    t = _with_responses(con, t, assessments, events, protocol)
    t = _with_time_to_event(con, t, idx, assessments, events, protocol)
    t = _with_covariates(con, t, tables, protocol)
    if protocol.adverse_events is not None:
        t = _with_adverse_events(con, t, tables, protocol)
    return _analysis(t, tables["person"], protocol), _trace(t)


def _with_adverse_events(con: Any, t: ir.Table, tables: dict[str, ir.Table], protocol: Protocol) -> ir.Table:
    """``ae_severe`` and ``ae_terms``: the index line's adverse events of at least the protocol's
    grade (``AdverseEventRules``: onset from the line's start to the window after its last end, or
    after its start without an end, and before the next line started), null for the patients of a
    centre that sent no adverse event record at all (toxicity not reported is not "none")."""
    rules = protocol.adverse_events
    assert rules is not None
    events = tables.get("adverse_events")
    if events is None:  # a model written before adverse events existed: none reported anywhere
        return t.mutate(ae_severe=ibis.null("boolean"), ae_terms=ibis.null("string"))
    person = tables["person"].select("patient_id", "centre_id")
    reporting = events.join(person, "patient_id").select(centre_id=person.centre_id).distinct()
    reporting = reporting.mutate(_reports=ibis.literal(True))
    severe = events.filter(events.grade.cast("int64") >= rules.grade_threshold).select(
        "patient_id", "ctcae_term", "onset_date")
    line = t.select("patient_id", "ix_start_date", "ix_end_date", "nx_start_date")
    last_day = _plus_days(ibis.coalesce(line.ix_end_date, line.ix_start_date), rules.attribution_window_days)
    line = line.mutate(_last_day=last_day)
    on_line = severe.join(line, "patient_id").select(severe, line.ix_start_date, line._last_day, line.nx_start_date)
    on_line = on_line.filter((on_line.onset_date >= on_line.ix_start_date) & (on_line.onset_date <= on_line._last_day)
                             & (on_line.nx_start_date.isnull() | (on_line.onset_date < on_line.nx_start_date)))
    per_patient = on_line.group_by("patient_id").aggregate(
        _terms=on_line.ctcae_term.collect(distinct=True).sort().join("; "))
    t = t.left_join(reporting, "centre_id").select(t, reporting._reports)
    t = t.left_join(per_patient, "patient_id").select(t, per_patient._terms)
    reported = t._reports.fill_null(False)
    t = t.mutate(ae_severe=ibis.ifelse(reported, t._terms.notnull(), ibis.null("boolean")),
                 ae_terms=ibis.ifelse(reported, t._terms, ibis.null("string")))
    return materialise(con, t.drop("_reports", "_terms"))


def _plus_days(day: ir.DateValue, days: int) -> ir.DateValue:
    return day + ibis.interval(days=days)


def _prior_flags(protocol: Protocol) -> dict[str, list[str]]:
    """The drug classes whose presence before the index the covariates ask about, as flag columns."""
    needed: set[str] = set()
    for spec in protocol.covariates.values():
        if isinstance(spec, PriorClass):
            needed.update(spec.drug_classes)
        elif isinstance(spec, PriorTherapy):
            for level in spec.levels:
                needed.update(level.all_of)
    return {f"prior_{name}": [name] for name in sorted(needed)}


def _with_lines(con: Any, idx: ir.Table, lines: ir.Table, protocol: Protocol) -> ir.Table:
    """Index line, next line, prior classes, and the subsequent therapy's class and counted line."""
    index_line = _line(lines, idx, "index_line", "ix_", (
        "start_date", "end_date", "ingredients", "regimen_class", "has_other_than_index_class"))
    t = idx.join(index_line, "patient_id").select(
        idx, *(index_line[c] for c in index_line.columns if c != "patient_id")
    )
    nxt = _line(lines, idx, "next_number", "nx_", ("line_number", "start_date", "drug_classes"))
    t = t.left_join(nxt, "patient_id").select(t, *(nxt[c] for c in nxt.columns if c != "patient_id"))

    # Drug classes given before the index: over the lines started before the index date.
    flags = _prior_flags(protocol)
    if flags:
        prior_lines = lines.join(idx, (lines.patient_id == idx.patient_id) & (lines.start_date < idx.index_date))
        prior_lines = prior_lines.select(lines)
        prior = prior_lines.group_by("patient_id").aggregate(**{
            flag: holds_class(prior_lines.drug_classes, classes).any() for flag, classes in flags.items()})
        t = t.left_join(prior, "patient_id").select(t, *(prior[f].fill_null(False).name(f) for f in flags))

    # Subsequent therapy: the protocol's classes in order; "later" ones look past the next line.
    rules = protocol.subsequent_therapy
    later_columns: dict[int, str] = {}
    for i, rule in enumerate(rules.classes):
        if rule.line != "later":
            continue
        later = lines.join(idx, (lines.patient_id == idx.patient_id) & (lines.line_number > idx.next_number))
        later = later.select(lines)
        later = later.filter(holds_class(later.drug_classes, rule.drug_classes))
        first = later.group_by("patient_id").aggregate(**{f"later_{i}": later.line_number.min()})
        t = t.left_join(first, "patient_id").select(t, first[f"later_{i}"])
        later_columns[i] = f"later_{i}"
    branches: list[tuple[Any, Any]] = [(t.nx_line_number.isnull(), ibis.null("string"))]
    counted: list[tuple[Any, Any]] = []
    for i, rule in enumerate(rules.classes):
        if rule.line == "next":
            branches.append((holds_class(t.nx_drug_classes, rule.drug_classes), ibis.literal(rule.name)))
        else:
            branches.append((t[later_columns[i]].notnull(), ibis.literal(rule.name)))
            counted.append((ibis.literal(rule.name), t[later_columns[i]]))
    t = t.mutate(subsequent_class=ibis.cases(*branches, else_=ibis.literal(rules.otherwise)))
    t = t.mutate(
        counted_line=ibis.cases(
            *[(t.subsequent_class == name, line) for name, line in counted],
            (t.nx_line_number.notnull(), t.nx_line_number),
            else_=ibis.null("int64"),
        )
    )
    t = materialise(con, t.mutate(counted_next=t.counted_line + 1))
    sub_line = _line(lines, t, "counted_line", "sb_", ("start_date",))
    sub_next = _line(lines, t, "counted_next", "sn_", ("start_date",))
    t = t.left_join(sub_line, "patient_id").select(t, sb_start=sub_line.sb_start_date)
    t = t.left_join(sub_next, "patient_id").select(t, sn_start=sub_next.sn_start_date)
    return materialise(con, t)


def _with_line_sources(con: Any, t: ir.Table, exposures: ir.Table, lines: ir.Table, protocol: Protocol) -> ir.Table:
    """The records behind the index line (``ix_sources``) and the subsequent line (``sb_sources``):
    only those two lines of each patient of the analysis set are looked up."""
    wanted = t.select("patient_id", line_number="index_line").union(
        t.filter(t.counted_line.notnull()).select("patient_id", line_number="counted_line"))
    chosen = with_next_start(lines).semi_join(wanted, ["patient_id", "line_number"])
    sources = materialise(con, line_sources(exposures, chosen, protocol))
    ix = sources.select("patient_id", ix_line=sources.line_number, ix_sources=sources.sources)
    sb = sources.select("patient_id", sb_line=sources.line_number, sb_sources=sources.sources)
    t = t.left_join(ix, (t.patient_id == ix.patient_id) & (t.index_line == ix.ix_line)).select(
        t, ix_sources=ix.ix_sources)
    t = t.left_join(sb, (t.patient_id == sb.patient_id) & (t.counted_line == sb.sb_line)).select(
        t, sb_sources=sb.sb_sources)
    return materialise(con, t)


def _with_responses(
    con: Any, t: ir.Table, assessments: ir.Table, events: ir.Table, protocol: Protocol
) -> ir.Table:
    """Best overall response of the index line (to the next line) and of the subsequent line."""
    index_windows = t.select(patient_id="patient_id", window_start="index_date", window_stop="nx_start_date")
    response = best_overall_response(con, index_windows, assessments, events, protocol.response)
    t = t.join(response, "patient_id").select(t, *(response[c] for c in response.columns if c != "patient_id"))
    t = materialise(con, t)
    sub_windows = t.filter(t.sb_start.notnull()).select(
        patient_id="patient_id", window_start="sb_start", window_stop="sn_start"
    )
    sub_response = best_overall_response(con, sub_windows, assessments, events, protocol.response)
    t = t.left_join(sub_response, "patient_id").select(
        t, subsequent_best_response=sub_response.best_response
    )
    return materialise(con, t)


def _with_time_to_event(
    con: Any, t: ir.Table, idx: ir.Table, assessments: ir.Table, events: ir.Table, protocol: Protocol
) -> ir.Table:
    """PFS and OS dates, events and the records they come from."""
    after_index = idx.select("patient_id", "index_date")
    patients_in = idx.select("patient_id")
    pd_scans = _dated(assessments, "assessment_date", (assessments.kind == "timepoint") & (assessments.response == "PD"))
    prog = _dated(events, "event_date", events.event_type == "progression")
    deaths = _dated(events, "event_date", events.event_type == "death")
    after = pd_scans.union(prog).join(after_index, "patient_id")
    after = after.filter(after.date > after.index_date).select("patient_id", "date", "source")
    pfs_event = _earliest(after.union(deaths) if protocol.endpoints.pfs_death_is_event else after)
    evaluable = _dated(assessments, "assessment_date", (assessments.kind == "timepoint")
                       & assessments.response.isin(("CR", "PR", "SD")))
    # A source that states "progression-free until" (analysis-ready tables) gives that date directly.
    progression_free = _dated(events, "event_date", events.event_type == "progression_free")
    evaluable = evaluable.union(progression_free).join(after_index, "patient_id")
    evaluable = _latest(evaluable.filter(evaluable.date > evaluable.index_date).select("patient_id", "date", "source"))
    death = materialise(con, _earliest(deaths))
    contact = materialise(con, _latest(_dated(events, "event_date", events.event_type == "last_contact")))
    # the latest record of any kind is needed only where neither a death nor a last contact is known
    unfollowed = patients_in.anti_join(death, "patient_id").anti_join(contact, "patient_id")
    anything = _latest(
        _dated(events, "event_date", events.event_type.notnull())
        .union(_dated(assessments, "assessment_date", assessments.kind.notnull()))
        .semi_join(unfollowed, "patient_id")
    )
    for name, frame in (("pe", pfs_event), ("ev", evaluable), ("de", death), ("lc", contact), ("an", anything)):
        t = t.left_join(frame, "patient_id").select(
            t, **{f"{name}_date": frame.date, f"{name}_sources": frame.sources}
        )
    os_date = ibis.coalesce(t.de_date, t.lc_date, t.an_date, t.index_date)
    os_sources = ibis.cases(
        (t.de_date.notnull(), t.de_sources),
        (t.lc_date.notnull(), t.lc_sources),
        (t.an_date.notnull(), ibis.literal("no last contact recorded; latest record: ").concat(t.an_sources)),
        else_=ibis.literal("no follow-up record: censored at the index date"),
    )
    if protocol.endpoints.pfs_censoring == "last_contact":
        censor_date, censor_sources = os_date, os_sources
    else:
        censor_date = ibis.coalesce(t.ev_date, t.index_date)
        censor_sources = ibis.ifelse(
            t.ev_date.notnull(), t.ev_sources, ibis.literal("no evaluable assessment: censored at the index date")
        )
    pfs_date = ibis.coalesce(t.pe_date, censor_date)
    t = t.mutate(
        pfs_date=pfs_date,
        pfs_sources=ibis.ifelse(t.pe_date.notnull(), t.pe_sources, censor_sources),
        pfs_flag=ibis.ifelse(t.pe_date.notnull(), 1, 0),
        os_date=os_date,
        os_sources=os_sources,
    )
    return materialise(con, t)



def _months(later: ir.DateValue, earlier: ir.DateValue) -> ir.FloatingValue:
    return later.delta(earlier, unit="day").cast("float64") / DAYS_PER_MONTH


def _observed_value(spec: Any, values: ir.Table) -> Any:
    """The covariate's value from its baseline observation row (``values``)."""
    text, number, high = values.value_text, values.value_number, values.reference_high
    if isinstance(spec, NumericCovariate):
        return number.cast("int64") if spec.integer else number
    if isinstance(spec, CategoricalCovariate):
        return ibis.cases(*[(text == raw, ibis.literal(category)) for raw, category in spec.categories.items()],
                          else_=ibis.null("string"))
    if isinstance(spec, BooleanCovariate):
        return _as_boolean(values)
    ratio = ibis.ifelse(high > 0, number / high, ibis.null("float64"))
    if isinstance(spec, RatioToReferenceHigh):
        return ratio
    return ibis.ifelse(ratio.isnull(), ibis.null("boolean"), ratio > 1.0)  # AboveReferenceHigh


def _as_boolean(values: ir.Table) -> Any:
    return ibis.cases(
        (values.value_number.notnull(), values.value_number != 0),
        (values.value_text.lower() == "true", True),
        (values.value_text.lower() == "false", False),
        else_=ibis.null("boolean"),
    )


def _condition_category(conditions: ir.Table, ancestors: ir.Table, spec: ConditionCategory) -> ir.Table:
    """(patient_id, value): the first category of ``spec`` one of whose concepts is a condition
    record's concept or one of its ancestors."""
    rows = conditions.filter(conditions.condition_concept_id.notnull())
    own = rows.select("patient_id", concept=rows.condition_concept_id)
    up = own.join(ancestors, own.concept == ancestors.descendant_concept_id)
    concepts = own.union(up.select("patient_id", concept=up.ancestor_concept_id))
    rank = ibis.cases(*[(concepts.concept.isin(list(level.concept_ids)), ibis.literal(i))
                        for i, level in enumerate(spec.categories)], else_=ibis.null("int64"))
    ranked = concepts.mutate(rank=rank).filter(lambda r: r["rank"].notnull())
    best = ranked.group_by("patient_id").aggregate(rank=ranked["rank"].min())
    return best.select("patient_id", value=ibis.cases(
        *[(best["rank"] == i, ibis.literal(level.category)) for i, level in enumerate(spec.categories)],
        else_=ibis.null("string")))


def _with_covariates(con: Any, t: ir.Table, tables: dict[str, ir.Table], protocol: Protocol) -> ir.Table:
    """Every observed covariate's baseline value (anchor: the index date), as ``cv_<name>``."""
    anchors = t.select("patient_id", anchor_date="index_date")
    observations = tables["observations"]
    for name, spec in protocol.covariates.items():
        if isinstance(spec, InSet | PriorClass | PriorTherapy):
            continue
        if isinstance(spec, ConditionCategory):
            category = _condition_category(tables["conditions"], tables["concept_ancestor"], spec)
            t = t.left_join(category, "patient_id").select(t, **{f"cv_{name}": category.value})
            t = materialise(con, t)
            continue
        values = baseline_values(observations, anchors, variable=spec.variable, concept_ids=spec.concept_ids,
                                 unit=spec.unit if isinstance(spec, NumericCovariate) else None)
        value = values.select("patient_id", value=_observed_value(spec, values))
        t = t.left_join(value, "patient_id").select(t, **{f"cv_{name}": value.value})
        if isinstance(spec, AboveReferenceHigh) and spec.fallback_variable is not None:
            fallback = baseline_values(observations, anchors, variable=spec.fallback_variable)
            flag = fallback.select("patient_id", value=_as_boolean(fallback))
            t = t.left_join(flag, "patient_id").select(t, **{f"fb_{name}": flag.value})
            t = t.mutate(**{f"cv_{name}": ibis.coalesce(t[f"cv_{name}"], t[f"fb_{name}"])}).drop(f"fb_{name}")
        t = materialise(con, t)
    return t


def _derived_covariate(spec: Any, t: ir.Table, values: dict[str, Any]) -> Any:
    if isinstance(spec, InSet):
        target = values[spec.of]
        return ibis.ifelse(target.isnull(), ibis.null("boolean"), target.isin(list(spec.values)))
    if isinstance(spec, PriorClass):
        return _holds_any_flag(t, spec.drug_classes)
    if isinstance(spec, PriorTherapy):
        branches = []
        for level in spec.levels:
            condition = ibis.literal(True)
            for name in level.all_of:
                condition = condition & t[f"prior_{name}"]
            branches.append((condition, ibis.literal(level.name)))
        return ibis.cases(*branches, else_=ibis.literal(spec.otherwise))  # nothing before: a category
    raise TypeError(f"covariate kind {spec.kind!r} is not derived")  # a programming error


def _holds_any_flag(t: ir.Table, classes: list[str]) -> Any:
    condition = ibis.literal(False)
    for name in classes:
        condition = condition | t[f"prior_{name}"]
    return condition


def _analysis(t: ir.Table, person: ir.Table, protocol: Protocol) -> ir.Table:
    p = person.select("patient_id", "sex", "birth_year", "reported_age_years")
    t = t.join(p, "patient_id").select(t, *(p[c] for c in p.columns if c != "patient_id"))
    from_birth = t.index_date.delta(ibis.date(t.birth_year.cast("int32"), 7, 1), unit="day").cast("float64") / 365.25
    responder = t.best_response.isin(("CR", "PR"))
    has_dor = responder & t.first_response_date.notnull()
    has_sub = t.nx_line_number.notnull()
    values: dict[str, Any] = {
        "patient_id": t.patient_id,
        "centre_id": t.centre_id,
        "index_date": t.index_date,
        "age_years": ibis.coalesce(t.reported_age_years, from_birth),
        "sex": t.sex,
        "regimen_class": t.ix_regimen_class,
        "regimen_ingredients": t.ix_ingredients,
        "combined_with_targeted_or_immuno": t.ix_has_other_than_index_class,
        "best_response": t.best_response,
        "best_response_source": t.best_response_source,
        "responder": responder,
        "disease_control": t.best_response.isin(("CR", "PR", "SD")),
        "pfs_months": _months(t.pfs_date, t.index_date),
        "pfs_event": t.pfs_flag,
        "os_months": _months(t.os_date, t.index_date),
        "os_event": ibis.ifelse(t.de_date.notnull(), 1, 0),
        "duration_of_response_months": ibis.ifelse(
            has_dor, _months(t.pfs_date, t.first_response_date), ibis.null("float64")
        ),
        "duration_of_response_event": ibis.ifelse(has_dor, t.pfs_flag, ibis.null("int64")),
        "chemo_duration_weeks": t.ix_end_date.delta(t.ix_start_date, unit="day").cast("float64") / DAYS_PER_WEEK,
        "subsequent_therapy": has_sub,
        "subsequent_therapy_months": ibis.ifelse(has_sub, _months(t.nx_start_date, t.index_date), ibis.null("float64")),
        "subsequent_therapy_class": t.subsequent_class,
        "subsequent_best_response": ibis.ifelse(has_sub, t.subsequent_best_response, ibis.null("string")),
        "subsequent_responder": ibis.ifelse(
            has_sub, t.subsequent_best_response.isin(("CR", "PR")), ibis.null("boolean")
        ),
    }
    assert tuple(values) == tuple(ENDPOINT_SCHEMA)
    if protocol.adverse_events is not None:
        values.update(severe_adverse_event=t.ae_severe, severe_adverse_event_terms=t.ae_terms)
    covariates: dict[str, Any] = {}
    for name, spec in protocol.covariates.items():
        if isinstance(spec, InSet | PriorClass | PriorTherapy):
            continue
        covariates[name] = t[f"cv_{name}"]
    for name, spec in protocol.covariates.items():
        if isinstance(spec, InSet | PriorClass | PriorTherapy):
            covariates[name] = _derived_covariate(spec, t, covariates)
    values.update({name: covariates[name] for name in protocol.covariates})
    return t.select(**values)


def _trace(t: ir.Table) -> ir.Table:
    return t.select(
        patient_id=t.patient_id,
        index_line=t.index_line,
        index_sources=t.ix_sources,
        prior_failure_sources=t.prior_failure_sources,
        response_sources=t.response_sources,
        pfs_date=t.pfs_date,
        pfs_sources=t.pfs_sources,
        os_date=t.os_date,
        os_sources=t.os_sources,
        subsequent_line=t.counted_line,
        subsequent_sources=t.sb_sources,
    )
