"""The one CSV writer for files people open in a spreadsheet: formula-leading cells neutralised.

A spreadsheet (Excel, LibreOffice, Google Sheets) evaluates a cell that begins with ``=``, ``+``,
``-`` or ``@`` as a formula, and a leading tab or carriage return can hide such a start; a centre's
raw value echoed into ``quarantine.csv`` (``=HYPERLINK(...)``, ``@SUM(...)``, ``=cmd|...``) would then
run on the data manager's machine ("CSV injection"). Following the OWASP recommendation
(https://owasp.org/www-community/attacks/CSV_Injection) every such text cell is written with a single
quote in front, which the spreadsheet shows as text and does not evaluate.

What is left as it is:

- numeric, boolean and date columns (a negative number is a number, not a formula);
- a text cell that is a plain decimal number (``-3``, ``+1.5``, ``-2e-3``): a spreadsheet reads it as
  that number, so prefixing it would only turn a number into text;
- nulls (written as empty cells) and every cell that does not begin with one of the characters above.

Column names go through the same rule. Everything oncorwe writes as CSV for people (report
``tables/*.csv``, ``validate``'s ``quarantine.csv``, ``reconciliation.csv`` and ``column_map.csv``)
goes through :func:`write_spreadsheet_csv`; the synthetic centres' files (inputs, deliberately raw)
do not.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

__all__ = ["FORMULA_START", "neutralise_cell", "neutralise_formulas", "write_spreadsheet_csv"]

#: The first characters that make a spreadsheet evaluate (or hide the start of) a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_FORMULA_START_RE = "^[=+\\-@\\t\\r]"
#: a plain decimal number, optionally signed and with an exponent: left as it is
_NUMBER_RE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(_NUMBER_RE)


def neutralise_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: a single quote in front when it begins with one
    of :data:`FORMULA_START` and is not a plain number."""
    if text.startswith(FORMULA_START) and _NUMBER.match(text) is None:
        return "'" + text
    return text


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell (and column name) neutralised by :func:`neutralise_cell`;
    numeric and other non-text columns unchanged. Categorical and enum columns become text."""
    exprs = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, (pl.Categorical, pl.Enum)):
            column = column.cast(pl.String)
        elif dtype != pl.String:
            exprs.append(column.alias(neutralise_cell(name)))
            continue
        risky = column.str.contains(_FORMULA_START_RE) & ~column.str.contains(_NUMBER_RE)
        exprs.append(pl.when(risky).then(pl.lit("'") + column).otherwise(column).alias(neutralise_cell(name)))
    return frame.select(exprs)


def write_spreadsheet_csv(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV to ``path`` with formula-leading text cells neutralised
    (:func:`neutralise_formulas`); returns the path. Same frame, same bytes."""
    target = Path(path)
    neutralise_formulas(frame).write_csv(target)
    return target
