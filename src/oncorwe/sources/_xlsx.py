"""XLSX workbooks: every non-empty sheet is a table; notes rows and merged group headers above the
header row are recognised and skipped.

The header row is the first of the sheet's top rows that is all text and at least 80% as wide as the
widest of those rows: a notes row (one cell of text) and a merged group header (one label over several
columns) are narrower, so they are passed over. A centre can declare the header row (1-based sheet
row, ``header_row``) when this does not find it.
"""

from __future__ import annotations

import datetime as dt
import zipfile
import zlib
from pathlib import Path
from typing import Any

from oncorwe.errors import SourceError
from oncorwe.sources._limits import check_file_size
from oncorwe.sources._tables import REPEATED_HEADER, BadRow, RawTable, repeats_header

__all__ = ["cell_text", "read_workbook"]

_SCAN_ROWS = 20


def cell_text(value: Any) -> str | None:
    """A cell as text: dates as ISO dates, whole numbers without ``.0``, empty as ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    text = str(value)
    return text if text.strip() else None


def _header_index(top: list[list[str | None]]) -> int | None:
    widths = [sum(1 for c in row if c is not None) for row in top]
    if not widths or max(widths) == 0:
        return None
    widest = max(widths)
    for i, row in enumerate(top):
        cells = [c for c in row if c is not None]
        if len(cells) >= max(1, 0.8 * widest) and all(_is_label(c) for c in cells):
            return i
    return None


def _is_label(text: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return False
    try:
        float(stripped.replace(",", "."))
    except ValueError:
        return not (len(stripped) == 10 and stripped[4] == "-" and stripped[7] == "-")
    return False


def _unreadable_errors() -> tuple[type[BaseException], ...]:
    """What a damaged workbook raises while it is read: a broken zip or deflate stream, malformed XML
    (``xml.etree.ElementTree.ParseError`` is a ``SyntaxError``), missing parts, openpyxl's own."""
    from openpyxl.utils.exceptions import InvalidFileException

    return (zipfile.BadZipFile, zlib.error, KeyError, OSError, ValueError, TypeError, EOFError, SyntaxError,
            IndexError, InvalidFileException)


def read_workbook(
    path: Path, *, centre_id: str, file: str, header_row: int | None = None
) -> list[RawTable]:
    """Read every non-empty sheet of a workbook as a :class:`RawTable` of text cells."""
    import openpyxl

    check_file_size(path, file)
    unreadable = _unreadable_errors()
    # the file's bytes say it is a workbook (detect_kind): read it through a handle, so that openpyxl
    # does not refuse it for its name (an XLSX saved as ``.csv``)
    handle = path.open("rb")
    try:
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except unreadable as exc:
            raise SourceError(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
        tables: list[RawTable] = []
        try:
            for sheet in book.worksheets:
                try:
                    grid = [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
                except unreadable as exc:
                    raise SourceError(f"sheet {sheet.title!r} cannot be read ({type(exc).__name__}: {exc})") from exc
                table = _sheet_table(grid, centre_id, file, sheet.title, header_row)
                if table is not None:
                    tables.append(table)
        finally:
            book.close()
    finally:
        handle.close()
    if not tables:
        raise SourceError("the workbook has no sheet with a header row and data")
    return tables


def _sheet_table(
    grid: list[list[str | None]],
    centre_id: str,
    file: str,
    sheet: str,
    header_row: int | None,
) -> RawTable | None:
    while grid and not any(c is not None for c in grid[-1]):
        grid.pop()
    if not grid:
        return None
    if header_row is not None:
        index: int | None = header_row - 1
    else:
        index = _header_index(grid[:_SCAN_ROWS])
    if index is None or index >= len(grid):
        return None
    header_cells = list(grid[index])
    while header_cells and header_cells[-1] is None:
        header_cells.pop()
    columns = tuple(
        (c.strip() if c is not None else "") or f"column_{i + 1}" for i, c in enumerate(header_cells)
    )
    width = len(columns)
    rows: list[tuple[str | None, ...]] = []
    numbers: list[int] = []
    data_row = 0
    overflow: list[tuple[int, list[str | None]]] = []
    repeated: list[tuple[int, list[str | None]]] = []
    for cells in grid[index + 1 :]:
        if not any(c is not None for c in cells):
            continue
        data_row += 1
        if repeats_header(cells, columns):
            repeated.append((data_row, list(cells)))
            continue
        padded = list(cells) + [None] * max(0, width - len(cells))
        if any(c is not None for c in padded[width:]):
            overflow.append((data_row, padded))
            continue
        rows.append(tuple(padded[:width]))
        numbers.append(data_row)
    bad = tuple(sorted(
        [BadRow(n, "\t".join("" if c is None else c for c in cells), "cells beyond the header's last column")
         for n, cells in overflow]
        + [BadRow(n, "\t".join("" if c is None else c for c in cells), REPEATED_HEADER) for n, cells in repeated],
        key=lambda b: b.row))
    notes = (f"header found on sheet row {index + 1}",) if index else ()
    return RawTable(centre_id, file, sheet, columns, tuple(rows), tuple(numbers), bad, notes)
