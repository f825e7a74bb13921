"""REDCap flat exports with repeating instruments, decoded with their data dictionary.

A REDCap "flat" export has one row per record (the non-repeating forms) plus one row per instance of
each repeating instrument (``redcap_repeat_instrument``, ``redcap_repeat_instance``). Coded choices
("1, Male | 2, Female") are decoded to their labels with the data dictionary; yes/no fields to
Yes/No; checkbox columns (``field___code``) to the labels ticked. The export is split into one table
per instrument (the non-repeating rows first); every table keeps the flat file's row numbers, so
provenance points at the row a data manager sees. Checkbox columns (``field___code``) become one
column per field holding the ticked labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from oncorwe.errors import SourceError
from oncorwe.sources._tables import RawTable
from oncorwe.sources._text import read_delimited

__all__ = ["DataDictionary", "is_redcap_dictionary", "is_redcap_export", "read_redcap"]

_REPEAT_INSTRUMENT = "redcap_repeat_instrument"
_REPEAT_INSTANCE = "redcap_repeat_instance"
_CHECKBOX = re.compile(r"^(?P<field>.+)___(?P<code>[A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class DataDictionary:
    """Field name -> (form, field type, label, choices code -> label)."""

    fields: dict[str, tuple[str, str, str, dict[str, str]]]


def is_redcap_export(columns: tuple[str, ...]) -> bool:
    """A flat REDCap export names its repeating-instrument columns."""
    lowered = {c.lower() for c in columns}
    return _REPEAT_INSTRUMENT in lowered or "redcap_event_name" in lowered


def is_redcap_dictionary(columns: tuple[str, ...]) -> bool:
    """A REDCap data dictionary starts with 'Variable / Field Name'."""
    return bool(columns) and columns[0].lower().startswith("variable / field name")


def _choices(text: str | None, field_type: str) -> dict[str, str]:
    if field_type == "yesno":
        return {"1": "Yes", "0": "No"}
    if field_type == "truefalse":
        return {"1": "True", "0": "False"}
    if not text or field_type not in ("radio", "dropdown", "checkbox"):
        return {}
    out: dict[str, str] = {}
    for part in text.split("|"):
        code, _, label = part.partition(",")
        if label:
            out[code.strip()] = label.strip()
    return out


def read_dictionary(table: RawTable) -> DataDictionary:
    """Parse a data dictionary table (REDCap's standard column order)."""
    lower = [c.lower() for c in table.columns]

    def find(*starts: str) -> int:
        for i, name in enumerate(lower):
            if any(name.startswith(s) for s in starts):
                return i
        raise SourceError(f"REDCap data dictionary {table.file} lacks a column starting {starts[0]!r}")

    i_name, i_form = find("variable / field name"), find("form name")
    i_type, i_label = find("field type"), find("field label")
    i_choices = find("choices")
    fields: dict[str, tuple[str, str, str, dict[str, str]]] = {}
    for row in table.rows:
        name = (row[i_name] or "").strip()
        if not name:
            continue
        field_type = (row[i_type] or "").strip().lower()
        fields[name] = (
            (row[i_form] or "").strip(),
            field_type,
            (row[i_label] or "").strip(),
            _choices(row[i_choices], field_type),
        )
    return DataDictionary(fields)


def read_redcap(
    export: RawTable, dictionary: DataDictionary | None
) -> list[RawTable]:
    """Decode and split a flat export into one table per (repeating) instrument.

    The base table holds the record id and every non-repeating field; each repeating instrument's
    table holds the record id, the instance number and that instrument's fields. Rows of an
    instrument are kept only in that instrument's table.
    """
    columns = list(export.columns)
    lower = [c.lower() for c in columns]
    if _REPEAT_INSTRUMENT not in lower:
        return [_decoded(export, columns, list(range(len(columns))), export.rows, export.row_numbers,
                         dictionary, None)]
    i_instrument = lower.index(_REPEAT_INSTRUMENT)
    i_instance = lower.index(_REPEAT_INSTANCE) if _REPEAT_INSTANCE in lower else None
    id_index = 0
    groups: dict[str, list[int]] = {}
    for position, row in enumerate(export.rows):
        groups.setdefault((row[i_instrument] or "").strip(), []).append(position)
    tables: list[RawTable] = []
    for instrument in sorted(groups, key=lambda name: (name != "", name)):
        positions = groups[instrument]
        rows = [export.rows[p] for p in positions]
        keep = [id_index]
        if instrument and i_instance is not None:
            keep.append(i_instance)
        for i, name in enumerate(columns):
            if i in (id_index, i_instrument) or i == i_instance:
                continue
            form = _form_of(name, dictionary)
            filled = any(row[i] is not None for row in rows)
            if form is None or form not in groups:
                # a non-repeating form (or no dictionary): its cells live on the base rows
                if filled or not instrument:
                    keep.append(i)
            elif form == instrument:
                keep.append(i)
        tables.append(
            _decoded(export, columns, keep, tuple(rows), tuple(export.row_numbers[p] for p in positions),
                     dictionary, instrument or None)
        )
    if export.bad_rows:
        first = tables[0]
        tables[0] = RawTable(first.centre_id, first.file, first.sheet, first.columns, first.rows,
                             first.row_numbers, export.bad_rows, first.notes, first.labels)
    return tables


def _form_of(column: str, dictionary: DataDictionary | None) -> str | None:
    if dictionary is None:
        return None
    match = _CHECKBOX.match(column)
    name = match.group("field") if match and column not in dictionary.fields else column
    entry = dictionary.fields.get(name)
    return entry[0] if entry else None


def _checkbox(column: str, dictionary: DataDictionary | None) -> tuple[str, str] | None:
    """(field, choice code) of a checkbox column ``field___code``, per the dictionary."""
    match = _CHECKBOX.match(column)
    if not match or dictionary is None or column in dictionary.fields:
        return None
    entry = dictionary.fields.get(match.group("field"))
    if entry is None or entry[1] != "checkbox":
        return None
    return match.group("field"), match.group("code")


def _decoded(
    export: RawTable,
    columns: list[str],
    keep: list[int],
    rows: tuple[tuple[str | None, ...], ...],
    numbers: tuple[int, ...],
    dictionary: DataDictionary | None,
    instrument: str | None,
) -> RawTable:
    """Decode coded choices; a checkbox field's ``field___code`` columns (1 = ticked) become one
    column holding the ticked labels joined by "; " (empty when none is ticked)."""
    order: list[str] = []
    plain: dict[str, tuple[int, dict[str, str]]] = {}
    boxes: dict[str, list[tuple[int, str]]] = {}
    for i in keep:
        name = columns[i]
        box = _checkbox(name, dictionary)
        if box is not None and dictionary is not None:
            field, code = box
            if field not in boxes:
                boxes[field] = []
                order.append(field)
            boxes[field].append((i, dictionary.fields[field][3].get(code, code)))
            continue
        entry = dictionary.fields.get(name) if dictionary else None
        plain[name] = (i, entry[3] if entry else {})
        order.append(name)
    out_rows = []
    for row in rows:
        cells: list[str | None] = []
        for name in order:
            if name in plain:
                i, decoder = plain[name]
                value = row[i]
                if value is not None and decoder:
                    value = decoder.get(value.strip(), value)
                cells.append(value)
            else:
                ticked = [label for i, label in boxes[name] if (row[i] or "").strip() == "1"]
                cells.append("; ".join(ticked) or None)
        out_rows.append(tuple(cells))
    names = tuple(order)
    notes = (f"REDCap instrument {instrument}",) if instrument else ("REDCap base record",)
    labels = tuple(
        (dictionary.fields[n][2] or None) if dictionary and n in dictionary.fields else None for n in names
    )
    return RawTable(export.centre_id, export.file, None, names, tuple(out_rows), numbers,
                    (), export.notes + notes, labels)


def read_redcap_files(
    export_path: Path, dictionary_path: Path | None, *, centre_id: str, export_file: str,
    dictionary_file: str | None, encoding: str | None = None, delimiter: str | None = None,
) -> list[RawTable]:
    """Read a flat export (and its dictionary, when there is one) into per-instrument tables."""
    export = read_delimited(export_path, centre_id=centre_id, file=export_file, encoding=encoding,
                            delimiter=delimiter)
    dictionary = None
    if dictionary_path is not None and dictionary_file is not None:
        dictionary = read_dictionary(
            read_delimited(dictionary_path, centre_id=centre_id, file=dictionary_file)
        )
    return read_redcap(export, dictionary)
