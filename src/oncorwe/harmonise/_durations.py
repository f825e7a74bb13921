"""Durations (PFS, OS, time to response) in analysis-ready sources, converted to days.

The unit comes from the header (``PFS_MONTHS``, ``OS (days)``) or the centre's
``overrides.time_units``; a duration column with neither stops harmonisation (a guessed unit would
shift every date). Months: a source that computed months as days / 30 (as cBioPortal's
``mel_dfci_2019`` does) is recognised because every value times 30 is a whole number of days; one that
used days / (365.25 / 12) likewise; otherwise months are converted with 365.25 / 12 days and rounded.
``overrides.month_days`` declares the month length outright.
"""

from __future__ import annotations

from collections.abc import Sequence

from oncorwe.harmonise._cells import CellError, parse_number
from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK

__all__ = ["column_days_factor", "infer_month_days"]

_UNIT_DAYS = {"days": 1.0, "weeks": DAYS_PER_WEEK, "years": 365.25}
_TOLERANCE = 1e-3


def infer_month_days(values: Sequence[str | None]) -> float:
    """The month length (days) a months column was computed with: 30, 365.25/12, else 365.25/12."""
    numbers: list[float] = []
    for text in values:
        if text is None:
            continue
        try:
            numbers.append(parse_number(text))
        except CellError:
            continue
    for month_days in (30.0, DAYS_PER_MONTH):
        if numbers and all(abs(n * month_days - round(n * month_days)) < _TOLERANCE * max(1.0, n) for n in numbers):
            return month_days
    return DAYS_PER_MONTH


def column_days_factor(
    values: Sequence[str | None],
    header_unit: str | None,
    month_days: float | None,
    declared_unit: str | None,
) -> float | None:
    """Days per unit of a duration column, or ``None`` when the unit is not known."""
    unit = declared_unit or header_unit
    if unit is None:
        return None
    if unit == "months":
        return month_days if month_days is not None else infer_month_days(values)
    return _UNIT_DAYS[unit]
