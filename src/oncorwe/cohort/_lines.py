"""Lines of therapy from drug records, as portable Ibis expressions.

Definition (``docs/definitions.md``, Lines of therapy): a line's regimen is the set of antineoplastic
ingredients started within ``regimen_window_days`` of the line's first drug; a new ingredient after
that window, or a gap of more than ``max_gap_days`` without any exposure, starts a new line;
substitutions (e.g. cisplatin <-> carboplatin) and dropping one drug of a combination do not. A line
starts at its first exposure and ends at the latest end date (start date when the end is missing) of
its exposures. The rule is sequential (each line's start decides the next line's regimen window), so
it is evaluated one line number at a time over all patients at once: each round is one set-based
query, and the number of rounds is the largest number of lines any patient has.

A line holds the antineoplastic exposures started from its start up to the next line's start, so
the records behind any line follow from the lines table and ``drug_exposures`` alone
(:func:`line_sources`): the lines table itself does not carry them, which keeps it small at the
scale of a national CDM (tens of millions of exposures).
"""

from __future__ import annotations

import uuid
from typing import Any

import ibis
import ibis.expr.types as ir

from oncorwe.errors import DataError
from oncorwe.model import engine
from oncorwe.protocol import Protocol

__all__ = ["LINE_COLUMNS", "build_lines", "line_sources", "materialise", "with_next_start"]

#: Columns of the lines table (one row per patient and line).
LINE_COLUMNS = (
    "patient_id",
    "line_number",
    "start_date",
    "end_date",
    "ingredients",
    "chemo_ingredients",
    "drug_classes",
    "regimen_class",
    "has_index_class",
    "has_chemotherapy",
    "has_ici",
    "has_anti_pd1",
    "has_anti_ctla4",
    "has_braf_mek",
    "has_non_chemotherapy",
    "has_other_than_index_class",
    "end_reason",
)

_MAX_ROUNDS = 1_000


def materialise(con: Any, expr: ir.Table) -> ir.Table:
    """Store an intermediate result as a temporary table of the session (dropped when it closes).

    Portable through :func:`oncorwe.model.engine.materialise` (Spark has no temporary tables)."""
    return engine.materialise(con, expr, f"oncorwe_tmp_{uuid.uuid4().hex[:12]}", temp=True)


def _substitution_key(ingredient: ir.StringValue, groups: list[list[str]]) -> ir.StringValue:
    """An ingredient's substitution key: the first (sorted) member of its group, else itself."""
    if not groups:
        return ingredient
    branches = [(ingredient.isin(group), ibis.literal(sorted(group)[0])) for group in groups]
    return ibis.cases(*branches, else_=ingredient)


def _antineoplastic(exposures: ir.Table, protocol: Protocol) -> ir.Table:
    return exposures.filter(exposures.drug_class.isin(protocol.lines.antineoplastic_classes))


def _prepared_exposures(con: Any, exposures: ir.Table, protocol: Protocol) -> ir.Table:
    """Antineoplastic exposures with their substitution key, effective end and gap segment."""
    rules = protocol.lines
    drugs = _antineoplastic(exposures, protocol)
    undated = drugs.filter(drugs.start_date.isnull())
    n_undated = int(undated.count().execute())
    if n_undated:
        where = sorted(str(s) for s in undated.select("source").limit(10).to_pyarrow().column(0).to_pylist())
        raise DataError(
            [f"drug_exposures: {n_undated} antineoplastic record(s) without start_date cannot be placed "
             f"in a line of therapy (first: {', '.join(where)}); harmonise must quarantine them"]
        )
    drugs = drugs.select(
        "patient_id", "ingredient", "drug_class", "start_date", "reason_stopped",
        key=_substitution_key(drugs.ingredient, rules.substitutions),
        eff_end=ibis.coalesce(drugs.end_date, drugs.start_date),
    )
    # Gaps are a property of start dates, not of records: a day starts a new segment when it comes
    # more than max_gap_days after every exposure started before it has ended. Computing it per
    # (patient, day) makes the order unique (records of one day are in no order) and the input smaller.
    days = drugs.group_by("patient_id", "start_date").aggregate(day_end=drugs.eff_end.max())
    before = ibis.window(group_by="patient_id", order_by="start_date", rows=(None, -1))
    days = days.mutate(prev_max_end=days.day_end.max().over(before))
    gap = days.prev_max_end.notnull() & (days.start_date.delta(days.prev_max_end, unit="day") > rules.max_gap_days)
    days = days.mutate(gap_start=ibis.ifelse(gap, 1, 0))
    running = ibis.window(group_by="patient_id", order_by="start_date", rows=(None, 0))
    days = days.select("patient_id", "start_date", segment=days.gap_start.sum().over(running))
    return materialise(con, drugs.join(days, ["patient_id", "start_date"]).select(drugs, segment=days.segment))


def _next_starts(drugs: ir.Table, cursor: ir.Table, window_days: int) -> ir.Table:
    """For each patient's current line (cursor), the start date of their next line, if any."""
    at_start = drugs.join(
        cursor,
        (drugs.patient_id == cursor.patient_id) & (drugs.start_date == cursor.line_start),
    ).select(
        patient_id=cursor.patient_id,
        line_number=cursor.line_number,
        line_start=cursor.line_start,
        segment=drugs.segment,
    )
    current = at_start.group_by("patient_id", "line_number", "line_start").aggregate(
        segment0=at_start.segment.min()
    )
    window_end = current.line_start + ibis.interval(days=window_days)
    joined = drugs.join(
        current,
        (drugs.patient_id == current.patient_id) & (drugs.start_date >= current.line_start),
    ).select(
        patient_id=drugs.patient_id,
        line_number=current.line_number,
        start_date=drugs.start_date,
        key=drugs.key,
        segment=drugs.segment,
        segment0=current.segment0,
        line_start=current.line_start,
        window_end=window_end,
    )
    regimen = joined.filter(
        (joined.segment == joined.segment0) & (joined.start_date <= joined.window_end)
    ).select("patient_id", "key").distinct()
    new_segment = joined.filter(joined.segment > joined.segment0)
    late = joined.filter(
        (joined.segment == joined.segment0) & (joined.start_date > joined.window_end)
    )
    new_drug = late.anti_join(regimen, ["patient_id", "key"])
    breaks = new_segment.union(new_drug.select(*new_segment.columns))
    return breaks.group_by("patient_id").aggregate(
        line_number=(breaks.line_number.max() + 1), line_start=breaks.start_date.min()
    )


def build_lines(con: Any, exposures: ir.Table, protocol: Protocol) -> ir.Table:
    """The lines of therapy of every patient (columns :data:`LINE_COLUMNS`), as an expression over
    the temporary tables of its rounds (store it with :func:`oncorwe.model.engine.materialise`).

    Parameters
    ----------
    con
        The Ibis backend holding ``exposures``.
    exposures
        The canonical ``drug_exposures`` table.
    protocol
        Supplies ``lines`` (window, gap, substitutions, classes), ``exposure.ici_classes`` and the
        regimen classes in order of precedence.
    """
    drugs = _prepared_exposures(con, exposures, protocol)
    cursor = materialise(
        con,
        drugs.group_by("patient_id").aggregate(
            line_number=ibis.literal(1, type="int64"), line_start=drugs.start_date.min()
        ),
    )
    starts = [cursor]
    for _ in range(_MAX_ROUNDS):
        cursor = materialise(con, _next_starts(drugs, cursor, protocol.lines.regimen_window_days))
        if int(cursor.count().execute()) == 0:
            break
        starts.append(cursor)
    else:  # a patient with more than _MAX_ROUNDS lines is a data error, not a regimen
        raise DataError([f"drug_exposures: some patient has more than {_MAX_ROUNDS} lines of therapy"])
    boundaries = ibis.union(*starts) if len(starts) > 1 else starts[0]
    following = ibis.window(group_by=boundaries.patient_id, order_by=boundaries.line_number)
    boundaries = boundaries.mutate(next_start=boundaries.line_start.lead().over(following))
    assigned = drugs.join(
        boundaries,
        (drugs.patient_id == boundaries.patient_id)
        & (drugs.start_date >= boundaries.line_start)
        & (boundaries.next_start.isnull() | (drugs.start_date < boundaries.next_start)),
    ).select(drugs, line_number=boundaries.line_number)
    return _summarise(assigned, protocol)


def _summarise(assigned: ir.Table, protocol: Protocol) -> ir.Table:
    """One row per line: dates, ingredients, classes, regimen class and why the line ended."""
    keys = ["patient_id", "line_number"]
    dates = assigned.group_by(keys).aggregate(start_date=assigned.start_date.min(), end_date=assigned.eff_end.max())
    # Everything about the regimen depends only on the distinct ingredients (with their class).
    a = assigned.select(*keys, "ingredient", "drug_class").distinct()
    # The index class is chemotherapy in the flagship study; a first-line ICI study indexes on anti_pd1.
    is_index = a.drug_class == protocol.exposure.index_class
    is_chemo = a.drug_class == "chemotherapy"
    ici = list(protocol.exposure.ici_classes)
    flags: dict[str, Any] = {}
    for i, regimen in enumerate(protocol.regimen_classes):
        allowed = sorted({name for group in regimen.all_of for name in group})
        holds = [(is_index & a.ingredient.isin(group)).any() for group in regimen.all_of]
        condition = holds[0]
        for extra in holds[1:]:
            condition = condition & extra
        if regimen.only:
            condition = condition & ~(is_index & ~a.ingredient.isin(allowed)).any()
        flags[f"rc_{i}"] = condition
    lines = a.group_by(keys).aggregate(
        ingredients=a.ingredient.collect(distinct=True).sort().join("+"),
        chemo_ingredients=a.ingredient.collect(distinct=True, where=is_chemo).sort().join("+"),
        drug_classes=a.drug_class.collect(distinct=True).sort().join("+"),
        has_index_class=is_index.any(),
        has_chemotherapy=is_chemo.any(),
        has_ici=a.drug_class.isin(ici).any(),
        has_anti_pd1=(a.drug_class == "anti_pd1").any(),
        has_anti_ctla4=(a.drug_class == "anti_ctla4").any(),
        has_braf_mek=(a.drug_class == "braf_mek").any(),
        has_non_chemotherapy=(~is_chemo).any(),
        has_other_than_index_class=(~is_index).any(),
        **flags,
    )
    branches = [
        (lines.has_index_class & lines[f"rc_{i}"], ibis.literal(regimen.name))
        for i, regimen in enumerate(protocol.regimen_classes)
    ]
    regimen_class = ibis.cases(
        *branches,
        (lines.has_index_class, ibis.literal(protocol.other_regimen_class)),
        else_=ibis.null("string"),
    )
    lines = lines.mutate(regimen_class=regimen_class).drop(*flags)
    # Why the line ended: the reason recorded on its last-ending exposures; a recorded reason wins a
    # tie, then the first in alphabetical order (min ignores the unrecorded ones).
    last = assigned.join(
        dates,
        (assigned.patient_id == dates.patient_id) & (assigned.line_number == dates.line_number)
        & (assigned.eff_end == dates.end_date),
    ).select(assigned.patient_id, assigned.line_number, assigned.reason_stopped)
    reasons = last.group_by(keys).aggregate(
        end_reason=ibis.coalesce(last.reason_stopped.min(), ibis.literal("unknown")))
    out = dates.join(lines, keys).join(reasons, keys)
    return out.select(*LINE_COLUMNS)


def line_sources(exposures: ir.Table, lines: ir.Table, protocol: Protocol) -> ir.Table:
    """The records behind each row of ``lines`` (patient_id, line_number, start_date; typically
    some lines of the full lines table) as (patient_id, line_number, sources): the sources of the
    antineoplastic exposures started from the line's start up to the next line's start, distinct,
    sorted and joined by "; ".

    ``lines`` must be a subset of the full lines table with, for each of its rows, ``next_start``:
    the start of the patient's next line (null for the last), as :func:`with_next_start` gives."""
    drugs = _antineoplastic(exposures, protocol).select("patient_id", "start_date", "source")
    held = drugs.join(
        lines,
        (drugs.patient_id == lines.patient_id) & (drugs.start_date >= lines.start_date)
        & (lines.next_start.isnull() | (drugs.start_date < lines.next_start)),
    ).select(lines.patient_id, lines.line_number, drugs.source)
    return held.group_by("patient_id", "line_number").aggregate(
        sources=held.source.collect(distinct=True).sort().join("; "))


def with_next_start(lines: ir.Table) -> ir.Table:
    """``lines`` (the full lines table) with ``next_start``: the start of the patient's next line."""
    following = ibis.window(group_by=lines.patient_id, order_by=lines.line_number)
    return lines.mutate(next_start=lines.start_date.lead().over(following))
