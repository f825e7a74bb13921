"""The readers' limits: the largest input each reader accepts, as declared constants.

A centre file beyond a limit is refused with a :class:`~oncorwe.errors.SourceError` naming the file,
the row and the column, never read partly or left to a library's own accident (the csv module's
field limit, memory). The values are far above anything a clinical export holds; a file that crosses
one is broken (an unbalanced quote that swallows the rest of the file into one cell) or hostile.
Documented in ``docs/data-sources.md`` (Limits).
"""

from __future__ import annotations

import os
from pathlib import Path

from oncorwe.errors import SourceError

__all__ = ["MAX_CELL_CHARS", "MAX_COLUMNS", "MAX_FILE_BYTES", "check_file_size"]

#: the largest cell of a text file, in characters (the csv module's default field limit, 128 Ki):
#: free-text clinical notes stay far below; a larger cell is an unbalanced quote or not a table
MAX_CELL_CHARS = 131_072

#: the widest header of a text file, in columns: Excel's own limit (column XFD), so that no export
#: made with a spreadsheet is refused
MAX_COLUMNS = 16_384

#: the largest centre file (text or XLSX) read, in bytes (1 GiB): files are read whole into memory
MAX_FILE_BYTES = 1 << 30


def check_file_size(path: Path, file: str) -> None:
    """Refuse a file larger than :data:`MAX_FILE_BYTES` before any of it is read."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise SourceError(
            f"the file has {size:,} bytes; the largest accepted is {MAX_FILE_BYTES:,} (MAX_FILE_BYTES): "
            "split the export (one file per table or per year)"
        )
