"""Dates: one format per column, inferred from the whole column, never row by row.

A value is split into three parts (digits or a month name) at ``. / - space``; ISO ``YYYY-MM-DD``
(with an optional ``T``/space time) and 8-digit ``YYYYMMDD`` are read as year-month-day. For the
other shapes the candidate orders are day-month-year and month-day-year; a part above 12 settles the
order for the whole column. When every value of a column reads both ways with different dates, the
column is ambiguous: the centre's other date columns decide if they settled one order (a centre
writes dates one way), else harmonisation stops with an error naming the centre, file and column and
saying how to declare the order (``date_order`` or ``date_orders`` in the centre's overrides).

A date that reads but cannot be a patient's record date is *implausible*: before
:data:`EARLIEST_DATE` (1900-01-01: no patient of a modern cohort was diagnosed or treated earlier,
and 0001-01-01 or 1800-05-03 are placeholders or typing slips) or after the study's data cut
(``data_cut`` in ``centres.toml``; without one, after the day of the run: a record cannot describe
the future). :func:`implausible_date` names which bound a date crosses; harmonisation quarantines
such a value like an unreadable one.

References: ISO 8601; the conventions of the study's centres (31.12.2015, 12/31/2015, 2015-12-31,
31-Dec-2015); Excel serial day numbers (42370 = 2016-01-01) when a whole column is written so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from oncorwe.harmonise._vocab import Vocabulary, normalise_word

__all__ = ["EARLIEST_DATE", "ColumnDates", "implausible_date", "infer_date_column", "infer_date_order", "parse_date"]

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{5}(?:\.0+)?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug folded in)
_PARTS = re.compile(r"^([0-9A-Za-zÀ-ÿ]+)[./\- ]+([0-9A-Za-zÀ-ÿ]+)\.?[./\- ]+(\d{2,4})$")
ORDERS = ("YMD", "DMY", "MDY", "SERIAL")
#: the earliest plausible record date (diagnosis, treatment, assessment, death, contact)
EARLIEST_DATE = dt.date(1900, 1, 1)


def implausible_date(day: dt.date, latest: dt.date, latest_is_data_cut: bool) -> str | None:
    """Why ``day`` cannot be a record date (the bound it crosses), or ``None`` when it can.

    ``latest`` is the study's data cut, or the day of the run when the study declares none
    (``latest_is_data_cut`` says which, for the reason).
    """
    if day < EARLIEST_DATE:
        return f"implausible date {day.isoformat()}: before {EARLIEST_DATE.isoformat()}"
    if day > latest:
        bound = (f"the data cut {latest.isoformat()}" if latest_is_data_cut
                 else f"the day of the run {latest.isoformat()} (no data_cut in centres.toml)")
        return f"implausible date {day.isoformat()}: after {bound}"
    return None


def _make(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _year(text: str) -> int | None:
    if len(text) == 4:
        return int(text)
    return None  # two-digit years are not guessed: the century would be a guess


def parse_date(text: str, order: str, vocab: Vocabulary) -> dt.date | None:
    """One value in one order (``YMD``, ``DMY``, ``MDY``, or ``SERIAL``: Excel day numbers such as
    42370 that a spreadsheet export left as numbers); ``None`` when it does not read so."""
    value = text.strip()
    if order == "SERIAL":
        if not _SERIAL.match(value):
            return None
        day = _EXCEL_EPOCH + dt.timedelta(days=int(float(value)))
        return day if dt.date(1900, 1, 1) < day < dt.date(2100, 1, 1) else None
    iso = _ISO.match(value)
    if iso:
        return _make(int(iso[1]), int(iso[2]), int(iso[3])) if order == "YMD" else None
    compact = _COMPACT.match(value)
    if compact:
        return _make(int(compact[1]), int(compact[2]), int(compact[3])) if order == "YMD" else None
    parts = _PARTS.match(value)
    if not parts:
        return None
    first, second, third = parts[1], parts[2], parts[3]
    if order == "YMD":
        if len(first) == 4 and first.isdigit() and second.isdigit() and third.isdigit():
            return _make(int(first), int(second), int(third))
        return None
    year = _year(third) if third.isdigit() else None
    if year is None:
        return None
    day_text, month_text = (first, second) if order == "DMY" else (second, first)
    if not day_text.isdigit():
        return None
    if month_text.isdigit():
        month = int(month_text)
    else:
        named = vocab.months.get(normalise_word(month_text))
        if named is None:
            return None
        month = named
    return _make(year, month, int(day_text))


@dataclass(frozen=True)
class ColumnDates:
    """How one column's dates were read.

    ``order`` is the order used (``None`` when no value is a date), ``dates`` the parsed value per
    cell (``None`` for empty or unreadable cells), ``unreadable`` the positions of non-empty cells
    that are not dates in that order, ``ambiguous`` True when the column alone could not decide.
    """

    order: str | None
    dates: tuple[dt.date | None, ...]
    unreadable: tuple[int, ...]
    ambiguous: bool
    how: str


def infer_date_column(
    values: Sequence[str | None],
    vocab: Vocabulary,
    *,
    declared: str | None = None,
    centre_orders: Sequence[str] = (),
) -> ColumnDates:
    """Read a whole column of dates in one order: declared, else settled by the column, else by
    the centre's other columns; ``ambiguous`` is set when none of these decides."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    order, how, ambiguous = infer_date_order(Counter(v for _, v in present), vocab, declared=declared,
                                             centre_orders=centre_orders)
    chosen = {i: parse_date(v, order, vocab) for i, v in present} if order else {}
    dates = tuple(chosen.get(i) for i in range(len(values)))
    unreadable = tuple(i for i, _ in present if chosen.get(i) is None)
    return ColumnDates(order, dates, unreadable, ambiguous, how)


def infer_date_order(
    counts: Mapping[str, int],
    vocab: Vocabulary,
    *,
    declared: str | None = None,
    centre_orders: Sequence[str] = (),
) -> tuple[str | None, str, bool]:
    """The order a column's dates are read in, from its distinct non-empty values and how often
    each occurs (the rule of :func:`infer_date_column`, which it serves): (order, how, ambiguous).

    The order read by the most cells wins; a tie is settled when every value reads the same in
    the tied orders, else by the centre's other columns (``centre_orders``), else it is ambiguous.
    """
    parsed = {order: {v: parse_date(v, order, vocab) for v in counts} for order in ORDERS}
    read = {order: sum(n for v, n in counts.items() if parsed[order][v] is not None) for order in ORDERS}
    if declared is not None:
        return declared, "declared", False
    best = max(read.values())
    tied = [o for o in ORDERS if read[o] == best]
    if best == 0:
        return None, "no dates", False
    if len(tied) == 1:
        return tied[0], "settled by the column", False
    if all(len({parsed[o][v] for o in tied}) == 1 for v in counts if parsed[tied[0]][v] is not None):
        return tied[0], "settled by the column (every value reads the same either way)", False
    settled = [o for o in tied if o in centre_orders]
    if len(settled) == 1:
        return settled[0], "settled by the centre's other date columns", False
    return tied[0], "ambiguous", True
