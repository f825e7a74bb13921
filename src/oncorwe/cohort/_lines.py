"""Lines of therapy from drug records, as portable Ibis expressions.

Definition (``docs/definitions.md``, Lines of therapy): a line's regimen is the set of antineoplastic
ingredients started within ``regimen_window_days`` of the line's first drug; a new ingredient after
that window, or a gap of more than ``max_gap_days`` without any exposure, starts a new line;
substitutions (the protocol's groups of interchangeable ingredients) and dropping one drug of a combination do not. A line
starts at its first exposure and ends at the latest end date (start date when the end is missing) of
its exposures. The rule is sequential (each line's start decides the next line's regimen window), so
it is evaluated one line number at a time over all patients at once: each round is one set-based
query, and the number of rounds is the largest number of lines any patient has.

The drugs are the ingredients of the protocol's drug classes (``[drug_classes]``; the class of an
exposure is the protocol's, not the source's); other drugs are not part of any line.

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

__all__ = ["LINE_COLUMNS", "build_lines", "holds_class", "line_sources", "materialise", "with_next_start"]

#: Columns of the lines table (one row per patient and line).
LINE_COLUMNS = (
    "patient_id",
    "line_number",
    "start_date",
    "end_date",
    "ingredients",
    "index_class_ingredients",
    "drug_classes",
    "regimen_class",
    "has_index_class",
    "has_prior_class",
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


def _up_to_today() -> Any:
    """A patient's records up to and including the current record's day (a RANGE frame: every
    record of that day, whatever their order)."""
    return ibis.window(group_by="pid", order_by="start_date", range=(None, 0))


def _antineoplastic(exposures: ir.Table, protocol: Protocol) -> ir.Table:
    """The exposures to an ingredient of the protocol's drug classes, with the protocol's class."""
    classes = protocol.ingredient_classes()
    drugs = exposures.filter(exposures.ingredient.isin(sorted(classes)))
    by_class: dict[str, list[str]] = {}
    for ingredient, name in classes.items():
        by_class.setdefault(name, []).append(ingredient)
    drug_class = ibis.cases(*[(drugs.ingredient.isin(sorted(members)), ibis.literal(name))
                              for name, members in sorted(by_class.items())], else_=ibis.null("string"))
    return drugs.mutate(drug_class=drug_class)


def holds_class(drug_classes: ir.StringValue, classes: list[str] | tuple[str, ...]) -> ir.BooleanValue:
    """Whether a line's ``drug_classes`` ("+"-joined class names) holds one of ``classes`` (class
    names are ``[a-z0-9_]`` words, so the "+"-delimited match is exact)."""
    padded = ibis.literal("+").concat(drug_classes.fill_null(""), ibis.literal("+"))
    condition = ibis.literal(False)
    for name in classes:
        condition = condition | padded.contains(f"+{name}+")
    return condition


def _prepared_exposures(con: Any, exposures: ir.Table, protocol: Protocol) -> tuple[ir.Table, ir.Table, ir.Table]:
    """Antineoplastic exposures with their substitution key, effective end and gap segment, and the
    numbers that stand for the patients (``pid``, in the order of ``patient_id``) and the drugs
    (``drug_id`` for an ingredient and class, ``key_id`` for its substitution key) inside this stage.

    Integers instead of identifiers make the joins and windows of the line rounds several times
    cheaper in memory and time on tens of millions of exposures.
    """
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
    ids = drugs.select("patient_id").distinct()
    ids = materialise(con, ids.mutate(pid=ibis.row_number().over(order_by=ids.patient_id)))
    # the few distinct drugs (ingredient, class) get numbers too, and their substitution keys
    drug_kinds = drugs.select("ingredient", "drug_class").distinct()
    drug_kinds = drug_kinds.mutate(key=_substitution_key(drug_kinds.ingredient, rules.substitutions))
    drug_kinds = materialise(con, drug_kinds.mutate(
        drug_id=ibis.row_number().over(order_by=[drug_kinds.ingredient, drug_kinds.drug_class]),
        key_id=ibis.dense_rank().over(order_by=drug_kinds.key),
    ))
    joined = drugs.join(ids, "patient_id").join(
        drug_kinds, (drugs.ingredient == drug_kinds.ingredient) & (drugs.drug_class == drug_kinds.drug_class))
    # an end before the start (harmonise rejects those) must not make a record look like a gap
    eff_end = ibis.greatest(ibis.coalesce(joined.end_date, joined.start_date), joined.start_date)
    drugs = joined.select(
        ids.pid, drug_kinds.drug_id, drug_kinds.key_id, joined.start_date, joined.reason_stopped, eff_end=eff_end,
    )
    # A day starts a new segment when it comes more than max_gap_days after the end of every exposure
    # started before it. Records of one day are in no order: over the rows before a record (ROWS
    # frame), the first record of a day sees exactly the exposures of earlier days and the others
    # also a record of the same day, which ends on or after that day, so exactly one record of a gap
    # day is flagged whatever the order; the running count then includes the whole day (RANGE frame).
    before = ibis.window(group_by="pid", order_by="start_date", rows=(None, -1))
    prev_max_end = drugs.eff_end.max().over(before)
    gap = prev_max_end.notnull() & (drugs.start_date.delta(prev_max_end, unit="day") > rules.max_gap_days)
    drugs = drugs.mutate(gap_start=ibis.ifelse(gap, 1, 0))
    drugs = drugs.mutate(segment=drugs.gap_start.sum().over(_up_to_today())).drop("gap_start")
    return materialise(con, drugs), ids, drug_kinds


def _next_starts(drugs: ir.Table, segments: ir.Table, cursor: ir.Table, window_days: int) -> ir.Table:
    """For each patient's current line (cursor: pid, line_number, line_start, segment0), the next
    line's start and segment, if any: the first day of a drug new to the regimen after the regimen
    window within the same segment, else the first day of the next segment."""
    window_end = cursor.line_start + ibis.interval(days=window_days)
    same = drugs.join(
        cursor,
        (drugs.pid == cursor.pid) & (drugs.segment == cursor.segment0) & (drugs.start_date >= cursor.line_start),
    ).select(drugs.pid, drugs.start_date, drugs.key_id, window_end=window_end)
    regimen = same.filter(same.start_date <= same.window_end).select("pid", "key_id").distinct()
    late = same.filter(same.start_date > same.window_end)
    new_drug = late.anti_join(regimen, ["pid", "key_id"])
    first_new = new_drug.group_by("pid").aggregate(new_start=new_drug.start_date.min())
    with_next = cursor.left_join(
        segments, (cursor.pid == segments.pid) & (segments.segment == cursor.segment0 + 1)
    ).select(cursor, next_segment_start=segments.segment_start)
    with_next = with_next.left_join(first_new, "pid").select(with_next, new_start=first_new.new_start)
    following = with_next.filter(with_next.new_start.notnull() | with_next.next_segment_start.notnull())
    # a new drug lies within the current segment, so before the next segment starts
    in_segment = following.new_start.notnull()
    return following.select(
        "pid",
        line_number=following.line_number + 1,
        line_start=ibis.ifelse(in_segment, following.new_start, following.next_segment_start),
        segment0=ibis.ifelse(in_segment, following.segment0, following.segment0 + 1),
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
        Supplies ``lines`` (window, gap, substitutions), the drug classes, the index and prior
        classes and the regimen classes in order of precedence.
    """
    drugs, ids, drug_kinds = _prepared_exposures(con, exposures, protocol)
    segments = materialise(con, drugs.group_by("pid", "segment").aggregate(segment_start=drugs.start_date.min()))
    first = segments.filter(segments.segment == 0)
    cursor = materialise(con, first.select(
        "pid", line_number=ibis.literal(1, type="int64"), line_start="segment_start", segment0="segment"))
    starts = [cursor]
    # each round reads the records of the patients still in it: when they have become few, the
    # records are narrowed to theirs, so the long tail of patients with many lines costs little
    active, active_patients = drugs, int(cursor.count().execute())
    for _ in range(_MAX_ROUNDS):
        cursor = materialise(con, _next_starts(active, segments, cursor, protocol.lines.regimen_window_days))
        remaining = int(cursor.count().execute())
        if remaining == 0:
            break
        starts.append(cursor)
        if remaining * 4 < active_patients:
            active, active_patients = materialise(con, active.semi_join(cursor, "pid")), remaining
    else:  # a patient with more than _MAX_ROUNDS lines is a data error, not a regimen
        raise DataError([f"drug_exposures: some patient has more than {_MAX_ROUNDS} lines of therapy"])
    # (Spark may store a round's numbers as int32: one type for the union)
    boundaries = ibis.union(*[c.select("pid", line_number=c.line_number.cast("int64"), line_start="line_start")
                              for c in starts])
    boundaries = materialise(con, boundaries)
    # Each record belongs to the last line started on or before its day (line numbers grow with
    # their start dates, so that is the running maximum of the numbers of the lines started so far).
    marked = drugs.left_join(
        boundaries, (drugs.pid == boundaries.pid) & (drugs.start_date == boundaries.line_start)
    ).select(drugs, started=boundaries.line_number)
    assigned = materialise(con, marked.mutate(line_number=marked.started.max().over(_up_to_today())).drop("started"))
    lines = _summarise(con, assigned, drug_kinds, protocol)
    return lines.join(ids, "pid").select(patient_id=ids.patient_id, **{
        c: lines[c] for c in LINE_COLUMNS if c != "patient_id"})


#: bits of a drug-set word: sums of distinct powers of two below 2**50 stay exact even where an
#: engine divides them as doubles (53-bit mantissa)
_WORD_BITS = 50


def _summarise(con: Any, assigned: ir.Table, drug_kinds: ir.Table, protocol: Protocol) -> ir.Table:
    """One row per line: dates, ingredients, classes, regimen class and why the line ended.

    Everything about a line's regimen depends only on its set of distinct drugs, and a study has
    few drugs, so millions of lines share a few hundred sets: each line's set is encoded as words
    of bits (one bit per drug number), and the names, classes and regimen are derived once per
    distinct set instead of once per line.
    """
    keys = ["pid", "line_number"]
    dates = assigned.group_by(keys).aggregate(start_date=assigned.start_date.min(), end_date=assigned.eff_end.max())
    n_kinds = int(drug_kinds.count().to_pyarrow().as_py())
    words = [f"set_word_{w}" for w in range(max(1, -(-n_kinds // _WORD_BITS)))]
    offset = drug_kinds.drug_id  # Ibis' row_number counts from 0
    kinds = materialise(con, drug_kinds.mutate(
        word=offset // _WORD_BITS,
        bit=(ibis.literal(2, type="int64") ** (offset % _WORD_BITS)).cast("int64"),
    ))
    held = assigned.select(*keys, "drug_id").distinct().join(kinds, "drug_id")
    sets = materialise(con, held.group_by(keys).aggregate(**{
        word: held.bit.sum(where=held.word == w).fill_null(0) for w, word in enumerate(words)}))
    distinct_sets = sets.select(*words).distinct()
    members = distinct_sets.cross_join(kinds)
    has_bit = ibis.cases(*[(members.word == w, (members[word] // members.bit) % 2 == 1)
                           for w, word in enumerate(words)], else_=False)
    a = members.filter(has_bit)
    is_index = a.drug_class == protocol.index.drug_class
    prior = protocol.index.prior_failure
    prior_classes = list(prior.drug_classes) if prior is not None else []
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
    described = a.group_by(words).aggregate(
        ingredients=a.ingredient.collect(distinct=True).sort().join("+"),
        index_class_ingredients=a.ingredient.collect(distinct=True, where=is_index).sort().join("+"),
        drug_classes=a.drug_class.collect(distinct=True).sort().join("+"),
        has_index_class=is_index.any(),
        has_prior_class=a.drug_class.isin(prior_classes or ["+"]).any(),  # "+" is no class name
        has_other_than_index_class=(~is_index).any(),
        **flags,
    )
    branches = [
        (described.has_index_class & described[f"rc_{i}"], ibis.literal(regimen.name))
        for i, regimen in enumerate(protocol.regimen_classes)
    ]
    regimen_class = ibis.cases(
        *branches,
        (described.has_index_class, ibis.literal(protocol.other_regimen_class)),
        else_=ibis.null("string"),
    )
    described = materialise(con, described.mutate(regimen_class=regimen_class).drop(*flags))
    lines = sets.join(described, words).select(*keys, *(described[c] for c in described.columns if c not in words))
    # Why the line ended: the reason recorded on its last-ending exposures; a recorded reason wins a
    # tie, then the first in alphabetical order (min ignores the unrecorded ones).
    last = assigned.join(
        dates,
        (assigned.pid == dates.pid) & (assigned.line_number == dates.line_number)
        & (assigned.eff_end == dates.end_date),
    ).select(assigned.pid, assigned.line_number, assigned.reason_stopped)
    reasons = last.group_by(keys).aggregate(
        end_reason=ibis.coalesce(last.reason_stopped.min(), ibis.literal("unknown")))
    out = dates.join(lines, keys).join(reasons, keys)
    return out.select("pid", *LINE_COLUMNS[1:])


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
