"""Delimited text files (CSV, TSV, semicolon, pipe) in any common encoding.

Encoding: a byte-order mark (UTF-8, UTF-16, UTF-32) settles it; else UTF-8 if the bytes decode as
UTF-8; else Windows-1252 (a superset of Latin-1 for printable characters), which every byte
sequence decodes as. NUL bytes without a byte-order mark are binary, unless the centre declares the
encoding (UTF-16 or UTF-32 without a mark). Delimiter:
the candidate (``,`` ``;`` tab ``|``) that splits the header and the first rows into the same, largest
number of fields outside quotes. Both can be declared per centre (``encoding``, ``delimiter``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from oncorwe.errors import SourceError
from oncorwe.sources._limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_FILE_BYTES, check_file_size
from oncorwe.sources._tables import REPEATED_HEADER, BadRow, RawTable, repeats_header

__all__ = ["decode_text", "read_delimited", "sniff_delimiter"]

_DELIMITERS = (",", ";", "\t", "|")
#: byte-order marks, longest first: UTF-32 LE's ``FF FE 00 00`` begins with UTF-16 LE's ``FF FE``
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_WIDE_BOMS = tuple(bom for bom, name in _BOMS if name in ("utf-16", "utf-32"))


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of a file and the encoding used (declared, BOM, UTF-8, else Windows-1252)."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise SourceError(f"cannot decode as the declared encoding {encoding!r}: {exc}") from exc
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as exc:
                # utf-8-sig counts from after the mark; the UTF-16/32 codecs from the file's start
                offset = exc.start + (len(bom) if name == "utf-8-sig" else 0)
                raise SourceError(
                    f"the file starts with a {name.removesuffix('-sig').upper()} byte-order mark, but "
                    f"byte {offset} is not {name.removesuffix('-sig').upper()}: a damaged file, or "
                    "two encodings mixed; export it again (or declare the encoding)"
                ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


@contextlib.contextmanager
def _any_field_size() -> Iterator[None]:
    """The csv module's (process-wide) field limit lifted while a file is parsed, then restored.

    The cells are checked against :data:`MAX_CELL_CHARS` after parsing, where the row and column
    of an oversized cell are known (the csv module only says that a field is too large); while the
    delimiter is sniffed, a wrong candidate may legitimately make one long field of a wide header.
    """
    previous = csv.field_size_limit(MAX_FILE_BYTES + 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _reader(text: str, delimiter: str) -> Iterator[list[str]]:
    # newline="" hands csv the line ends as written (CR, LF or CRLF all end a record outside
    # quotes), so a quoted cell keeps its own CR, LF or CRLF and never splits its record
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)


#: a physical line end before the header: CRLF, a bare CR (classic Mac) or LF
_LINE_END = re.compile(r"\r\n|\r|\n")


def _after_preamble(text: str, skip_rows: int) -> str:
    """The text from the header on: ``skip_rows`` physical lines, then ``#`` lines, dropped.

    Only the lines above the header are cut by their line ends; the table itself is left to the
    csv parser, which knows which line ends are inside quoted cells.
    """
    start = 0
    skipped = 0
    while start < len(text) and (skipped < skip_rows or text.startswith("#", start)):
        end = _LINE_END.search(text, start)
        if end is None:
            return ""
        start, skipped = end.end(), skipped + 1
    return text[start:]


def _split(text: str, delimiter: str, limit: int) -> list[list[str]]:
    reader = _reader(text, delimiter)
    rows: list[list[str]] = []
    for row in reader:
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def sniff_delimiter(text: str) -> str:
    """The delimiter that gives the header and the first rows one common, largest field count."""
    best, best_score = ",", (-1, -1)
    for delimiter in _DELIMITERS:
        rows = [r for r in _split(text, delimiter, 50) if any(cell.strip() for cell in r)]
        if not rows:
            continue
        width = len(rows[0])
        agreeing = sum(1 for r in rows if len(r) == width)
        score = (agreeing if width > 1 else 0, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_delimited(
    path: Path,
    *,
    centre_id: str,
    file: str,
    encoding: str | None = None,
    delimiter: str | None = None,
    skip_rows: int = 0,
) -> RawTable:
    """Read a delimited text file as text cells; rows that do not fit the header become bad rows.

    Lines starting with ``#`` before the header (cBioPortal's metadata lines) are skipped, as are
    ``skip_rows`` lines a centre declares (notes above the table). Blank lines are not data rows.
    """
    check_file_size(path, file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if encoding is None and b"\x00" in data[:4096] and not data.startswith(_WIDE_BOMS):
        raise SourceError(
            "not a text file (binary content); expected CSV/TSV text (UTF-16 or UTF-32 text without "
            'a byte-order mark: declare it, encoding = "utf-16-le" or "utf-32-le")'
        )
    text, used_encoding = decode_text(data, encoding)
    body = _after_preamble(text, skip_rows)
    if not body.strip():
        raise SourceError("the file is empty (no header row)")
    with _any_field_size():
        try:
            used_delimiter = delimiter or sniff_delimiter(body)
            parsed, spans = _records_with_lines(body, used_delimiter)
        except csv.Error as exc:
            raise SourceError(f"malformed delimited text: {exc}") from exc
    header_index = next((i for i, r in enumerate(parsed) if any(c.strip() for c in r)), None)
    if header_index is None:
        raise SourceError("the file has no header row")
    if len(parsed[header_index]) > MAX_COLUMNS:
        raise SourceError(
            f"header: {len(parsed[header_index]):,} columns; the widest accepted is {MAX_COLUMNS:,} "
            f"(MAX_COLUMNS){'' if delimiter else f' (delimiter detected: {used_delimiter!r})'}"
        )
    header = _header(parsed[header_index])
    _check_cells(parsed, header_index, header)
    with _any_field_size():
        _check_quoting(parsed, spans, header_index, header, used_delimiter)
    rows: list[tuple[str | None, ...]] = []
    numbers: list[int] = []
    bad: list[BadRow] = []
    data_row = 0
    for cells in parsed[header_index + 1 :]:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line is layout, not a record
        data_row += 1
        if repeats_header(cells, header):
            bad.append(BadRow(data_row, used_delimiter.join(cells), REPEATED_HEADER))
            continue
        if len(cells) != len(header):
            # trailing empty cells are layout (some exporters pad rows); anything else is a bad row
            trimmed = _trim_trailing(cells, len(header))
            if trimmed is None:
                bad.append(
                    BadRow(
                        data_row,
                        used_delimiter.join(cells),
                        f"{len(cells)} fields where the header has {len(header)}",
                    )
                )
                continue
            cells = trimmed
        rows.append(tuple(cell if cell.strip() else None for cell in cells))
        numbers.append(data_row)
    notes = (f"encoding {used_encoding}", f"delimiter {used_delimiter!r}")
    return RawTable(centre_id, file, None, header, tuple(rows), tuple(numbers), tuple(bad), notes)


def _records_with_lines(body: str, delimiter: str) -> tuple[list[list[str]], list[list[str]]]:
    """The records of ``body`` and, for each, the physical lines it was read from (as written)."""
    lines: list[str] = []

    def fed() -> Iterator[str]:
        for line in io.StringIO(body, newline=""):
            lines.append(line)
            yield line

    records: list[list[str]] = []
    spans: list[list[str]] = []
    reader = csv.reader(fed(), delimiter=delimiter, quotechar='"', strict=False)
    used = 0
    for cells in reader:
        records.append(cells)
        spans.append(lines[used:])
        used = len(lines)
    return records, spans


def _check_quoting(parsed: Sequence[list[str]], spans: Sequence[list[str]], header_index: int,
                   header: tuple[str, ...], delimiter: str) -> None:
    """Refuse a file in which a quote opened in a cell runs on over the following lines.

    A record read from several lines is a quoted cell holding line breaks, which is fine when it is
    well formed; when the same lines do not parse as CSV strictly (the quote is never closed, or
    "closes" before text that is not a delimiter), the lines after the stray quote were swallowed
    into one cell, records that would be lost: the file is refused, naming the row and column where
    the quote opened. A stray quote within one line (``"abc" ,``) is left as the lenient reading gives.
    """
    data_row = 0
    line = 1
    for index, (cells, raw) in enumerate(zip(parsed, spans, strict=True)):
        is_header = index == header_index
        if index > header_index and any(cell.strip() for cell in cells):
            data_row += 1
        if len(raw) > 1:
            try:
                list(csv.reader(raw, delimiter=delimiter, quotechar='"', strict=True))
            except csv.Error:
                position = next((i for i, c in enumerate(cells) if "\n" in c or "\r" in c), len(cells) - 1)
                where = _cell_name(is_header or index < header_index, position, header, data_row)
                raise SourceError(
                    f"{where}: a quote (\") opened on line {line} of the table is not closed as CSV requires, "
                    f"so the {len(raw) - 1} line(s) after it would be read into one cell; close or remove the "
                    "quote (a quote inside a quoted cell is written twice: \"\")"
                ) from None
        line += len(raw)


def _cell_name(in_header: bool, position: int, header: Sequence[str], data_row: int) -> str:
    """A cell as the problem line names it: the header's column number, or the data row and column."""
    if in_header:
        return f"header, column {position + 1}"
    column = header[position] if position < len(header) else f"column_{position + 1}"
    return f"row {data_row}, column {column[:80]!r}"


def _check_cells(parsed: Sequence[list[str]], header_index: int, header: tuple[str, ...]) -> None:
    """Refuse the first cell longer than :data:`MAX_CELL_CHARS`, naming its row and column.

    Rows are numbered as the quarantine numbers them: data rows below the header, blank lines not
    counted (the header itself is ``header``).
    """
    data_row = 0
    for index in range(header_index, len(parsed)):
        cells = parsed[index]
        is_header = index == header_index
        if not is_header and any(cell.strip() for cell in cells):
            data_row += 1
        for position, cell in enumerate(cells):
            if len(cell) > MAX_CELL_CHARS:
                where = _cell_name(is_header, position, header, data_row)
                raise SourceError(
                    f"{where}: a cell of {len(cell):,} characters; the largest "
                    f"accepted is {MAX_CELL_CHARS:,} (MAX_CELL_CHARS); an unbalanced quote (\") "
                    "makes one cell of the lines after it"
                )


def _header(cells: list[str]) -> tuple[str, ...]:
    names = [cell.strip().lstrip("\ufeff") for cell in cells]
    while names and not names[-1]:
        names.pop()
    return tuple(name or f"column_{i + 1}" for i, name in enumerate(names))


def _trim_trailing(cells: list[str], width: int) -> list[str] | None:
    if len(cells) > width and not any(c.strip() for c in cells[width:]):
        return cells[:width]
    if len(cells) < width and len(cells) >= 1:
        return None
    return None
