"""RECIST 1.1 best overall response (Eisenhauer et al., Eur J Cancer 2009;45:228-47, section 4.4),
as portable Ibis expressions over response windows.

A response window is (patient_id, window_start, window_stop): the line's start and the next line's
start (null when none). Counted time points are dated after ``window_start``, before ``window_stop``
and up to (and including) the first PD. Best overall response (``docs/definitions.md``, Response):
CR if any CR; else PR if any PR; else SD if an SD-or-better time point is at least ``sd_min_days``
after ``window_start``; else PD if any PD (or a progression event in the window); else NE. With
confirmation on, CR (PR) needs a repeat CR (CR or PR) at least ``confirmation_min_days`` later, else
it falls back to SD when the SD minimum is met, else PD or NE.

Patients whose centre reported only a best response (no time-point assessment in the window, an
assessment of kind ``best_overall`` undated or dated in the window) get that response (the best one
when there are several), marked ``best_response_source = "reported"``.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.cohort import materialise
from oncorwe.protocol import ResponseRules

__all__ = ["RESPONSE_COLUMNS", "best_overall_response"]

RESPONSE_COLUMNS = (
    "patient_id",
    "best_response",
    "best_response_source",
    "first_response_date",
    "response_sources",
)

_RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 3, "NE": 4}


def _in_window(dated: ir.Table, date_column: str, windows: ir.Table) -> ir.Table:
    """Rows of ``dated`` after the window start and before the window stop, with the window start."""
    date = dated[date_column]
    return dated.join(
        windows,
        (dated.patient_id == windows.patient_id)
        & (date > windows.window_start)
        & (windows.window_stop.isnull() | (date < windows.window_stop)),
    ).select(dated, window_start=windows.window_start)


def _confirmed(counted: ir.Table, first: tuple[str, ...], repeat: tuple[str, ...], min_days: int) -> ir.Table:
    """Patients with a ``first`` response confirmed by a ``repeat`` response ``min_days`` later."""
    a = counted.filter(counted.response.isin(first))
    b = counted.filter(counted.response.isin(repeat)).select(
        patient_id="patient_id", later_date="assessment_date"
    )
    pairs = a.join(
        b,
        (a.patient_id == b.patient_id)
        & (b.later_date.delta(a.assessment_date, unit="day") >= min_days),
    ).select(patient_id=a.patient_id)
    return pairs.distinct()


def best_overall_response(
    con: Any,
    windows: ir.Table,
    assessments: ir.Table,
    events: ir.Table,
    rules: ResponseRules,
) -> ir.Table:
    """Best overall response of every window (columns :data:`RESPONSE_COLUMNS`).

    Parameters
    ----------
    con
        The backend; per-patient summaries are stored as temporary tables before they are joined
        back to the windows they were derived from (Ibis cannot always tell such sides apart).
    windows
        One row per patient: patient_id, window_start (date), window_stop (date or null).
    assessments, events
        The canonical tables.
    rules
        The protocol's response rules (confirmation, confirmation_min_days, sd_min_days).
    """
    windows = materialise(con, windows.select("patient_id", "window_start", "window_stop"))
    timepoints = assessments.filter(
        (assessments.kind == "timepoint") & assessments.assessment_date.notnull()
    ).select("patient_id", "assessment_date", "response", "source")
    in_window = materialise(con, _in_window(timepoints, "assessment_date", windows))
    first_pd = materialise(con, (
        in_window.filter(in_window.response == "PD")
        .group_by("patient_id")
        .aggregate(first_pd=ibis._.assessment_date.min())
    ))
    with_pd = in_window.left_join(first_pd, "patient_id").select(in_window, first_pd=first_pd.first_pd)
    counted = with_pd.filter(
        with_pd.first_pd.isnull() | (with_pd.assessment_date <= with_pd.first_pd)
    ).drop("first_pd")
    days = counted.assessment_date.delta(counted.window_start, unit="day")
    summary = counted.group_by("patient_id").aggregate(
        any_cr=(counted.response == "CR").any(),
        any_pr=(counted.response == "PR").any(),
        sd_met=(counted.response.isin(("CR", "PR", "SD")) & (days >= rules.sd_min_days)).any(),
        any_pd=(counted.response == "PD").any(),
        first_response_date=counted.assessment_date.min(where=counted.response.isin(("CR", "PR"))),
        response_sources=counted.source.collect(distinct=True).sort().join("; "),
    )
    summary = materialise(con, summary)
    progression = events.filter((events.event_type == "progression") & events.event_date.notnull())
    progressed = (
        _in_window(progression.select("patient_id", "event_date", "source"), "event_date", windows)
        .group_by("patient_id")
        .aggregate(
            progression_event=ibis.literal(True),
            progression_sources=ibis._.source.collect(distinct=True).sort().join("; "),
        )
    )
    progressed = materialise(con, progressed)
    t = windows.select("patient_id").left_join(summary, "patient_id").select(
        "patient_id", *(summary[c] for c in summary.columns if c != "patient_id")
    )
    t = t.left_join(progressed, "patient_id").select(
        t, progression_event=progressed.progression_event, progression_sources=progressed.progression_sources
    )
    if rules.confirmation:
        counted = materialise(con, counted)
        cr_ok = materialise(con, _confirmed(counted, ("CR",), ("CR",), rules.confirmation_min_days).mutate(
            cr_ok=ibis.literal(True)
        ))
        pr_ok = materialise(con, _confirmed(counted, ("CR", "PR"), ("CR", "PR"), rules.confirmation_min_days).mutate(
            pr_ok=ibis.literal(True)
        ))
        t = t.left_join(cr_ok, "patient_id").select(t, cr_ok=cr_ok.cr_ok)
        t = t.left_join(pr_ok, "patient_id").select(t, pr_ok=pr_ok.pr_ok)
        is_cr = t.cr_ok.fill_null(False)
        is_pr = t.pr_ok.fill_null(False)
    else:
        is_cr = t.any_cr.fill_null(False)
        is_pr = t.any_pr.fill_null(False)
    derived = ibis.cases(
        (is_cr, "CR"),
        (is_pr, "PR"),
        (t.sd_met.fill_null(False), "SD"),
        (t.any_pd.fill_null(False) | t.progression_event.fill_null(False), "PD"),
        else_="NE",
    )
    responded = is_cr | is_pr
    first_response = ibis.ifelse(responded, t.first_response_date, ibis.null("date"))
    sources = ibis.coalesce(
        ibis.cases(
            (t.response_sources.notnull() & t.progression_sources.notnull(),
             t.response_sources.concat("; ", t.progression_sources)),
            else_=ibis.coalesce(t.response_sources, t.progression_sources),
        ),
        ibis.literal(""),
    )
    derived_t = t.select(
        "patient_id",
        best_response=derived,
        best_response_source=ibis.literal("derived"),
        first_response_date=first_response,
        response_sources=sources,
        has_timepoints=t.any_cr.notnull(),
    )
    return _with_reported(con, materialise(con, derived_t), windows, assessments)


def _with_reported(con: Any, derived: ir.Table, windows: ir.Table, assessments: ir.Table) -> ir.Table:
    """Replace the derived response by the centre's reported best response where it had no scans."""
    reported = assessments.filter(assessments.kind == "best_overall")
    reported = reported.join(windows, reported.patient_id == windows.patient_id).select(
        reported, window_start=windows.window_start, window_stop=windows.window_stop
    )
    dated = reported.assessment_date
    reported = reported.filter(
        dated.isnull()
        | ((dated >= reported.window_start) & (reported.window_stop.isnull() | (dated < reported.window_stop)))
    )
    rank = ibis.cases(*((reported.response == k, v) for k, v in _RANK.items()), else_=len(_RANK))
    best = ibis.window(group_by=reported.patient_id, order_by=[rank, reported.assessment_date, reported.source])
    reported = reported.mutate(pick=ibis.row_number().over(best))
    reported = materialise(con, reported.filter(reported.pick == 0).select(
        patient_id="patient_id",
        reported_response="response",
        reported_date="assessment_date",
        reported_source="source",
    ))
    t = derived.left_join(reported, "patient_id").select(
        derived,
        reported_response=reported.reported_response,
        reported_date=reported.reported_date,
        reported_source=reported.reported_source,
    )
    use = ~t.has_timepoints & t.reported_response.notnull()
    responder = t.reported_response.isin(("CR", "PR"))
    return t.select(
        "patient_id",
        best_response=ibis.ifelse(use, t.reported_response, t.best_response),
        best_response_source=ibis.ifelse(use, ibis.literal("reported"), t.best_response_source),
        first_response_date=ibis.ifelse(
            use, ibis.ifelse(responder, t.reported_date, ibis.null("date")), t.first_response_date
        ),
        response_sources=ibis.ifelse(use, t.reported_source, t.response_sources),
    )
