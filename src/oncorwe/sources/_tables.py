"""What a reader hands on: a table of text cells exactly as the centre wrote them.

Readers do not interpret: every cell stays text (``None`` for an empty cell), every data row keeps
its 1-based row number, and a row that cannot be laid out as the header says (too many or too few
cells) is kept aside as a :class:`BadRow` so that nothing read is ever lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["REPEATED_HEADER", "BadRow", "RawTable", "ReadProblem", "repeats_header"]

#: why a data row that repeats the header is kept aside (a bad row): a header pasted again inside
#: the data, or two exports concatenated, is not a patient
REPEATED_HEADER = "the row repeats the header row (a header pasted inside the data?)"


def repeats_header(cells: Sequence[str | None], columns: Sequence[str]) -> bool:
    """Whether a data row's cells are the header's names again (case and surrounding blanks aside;
    trailing empty cells are layout; an empty cell matches a header cell that was empty, which the
    table names ``column_<n>``)."""
    names = [(cell or "").strip().lstrip("\ufeff").casefold() for cell in cells]
    while names and not names[-1]:
        names.pop()
    if len(names) != len(columns) or not any(names):
        return False
    return all(name == column.casefold() or (not name and column == f"column_{i + 1}")
               for i, (name, column) in enumerate(zip(names, columns, strict=True)))


@dataclass(frozen=True)
class BadRow:
    """A data row that does not fit the header (wrong number of cells).

    ``row`` is the 1-based data row (header excluded), ``raw`` the row's cells joined back as text.
    """

    row: int
    raw: str
    reason: str


@dataclass(frozen=True)
class ReadProblem:
    """A file (or sheet) that could not be read at all; the reason names what was expected."""

    centre_id: str
    file: str
    sheet: str | None
    reason: str

    def line(self) -> str:
        """One line for a person: where, and what went wrong."""
        where = f"{self.file}[{self.sheet}]" if self.sheet else self.file
        return f"centre {self.centre_id}, file {where}: {self.reason}"


@dataclass(frozen=True)
class RawTable:
    """One table of a centre's export, as written.

    Attributes
    ----------
    centre_id, file, sheet
        Where it came from (``file`` relative to the centre folder; ``sheet`` for workbooks,
        REDCap instruments and OMOP tables, else ``None``).
    columns
        Header cells, stripped, in file order (empty headers become ``column_<n>``).
    rows
        Data rows, each a tuple of cells (``None`` = empty), as long as ``columns``.
    row_numbers
        1-based data row of each row (header and notes rows excluded).
    bad_rows
        Rows that could not be laid out under the header.
    notes
        Things a data manager should know about how the file was read (encoding, delimiter, header
        row found), for the validate report.
    labels
        A label per column from the export's own dictionary (REDCap field labels, cBioPortal
        display names), or empty; column mapping falls back on it when a name is not known.
    """

    centre_id: str
    file: str
    sheet: str | None
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    row_numbers: tuple[int, ...]
    bad_rows: tuple[BadRow, ...] = ()
    notes: tuple[str, ...] = field(default=())
    labels: tuple[str | None, ...] = field(default=())

    @property
    def records_read(self) -> int:
        """Every data row read, good or bad."""
        return len(self.rows) + len(self.bad_rows)

    @property
    def label(self) -> str:
        """``file`` or ``file#sheet``: how provenance names this table."""
        return f"{self.file}#{self.sheet}" if self.sheet else self.file

    def column(self, name: str) -> list[str | None]:
        """All cells of one column, in row order."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]
