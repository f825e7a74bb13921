"""One centre's files, read as they are: the file kind is detected from the bytes, not the name.

XLSX (a zip holding ``xl/``), DuckDB (``DUCK`` magic: an OMOP CDM database) and text (CSV/TSV of
any delimiter and encoding). Among text files, a REDCap data dictionary and a cBioPortal attribute
file are metadata: they decode the other files and are not records. A file that cannot be read is a
:class:`ReadProblem`; the centre's other files are still read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from oncorwe.errors import SourceError
from oncorwe.sources._config import CentreConfig, resolve
from oncorwe.sources._redcap import (
    is_redcap_dictionary,
    is_redcap_export,
    read_dictionary,
    read_redcap,
)
from oncorwe.sources._tables import RawTable, ReadProblem
from oncorwe.sources._text import read_delimited
from oncorwe.sources._xlsx import read_workbook

__all__ = ["CentreFiles", "detect_kind", "read_centre"]

_CBIO_ATTRIBUTES = ("displayname", "description", "datatype")


@dataclass(frozen=True)
class CentreFiles:
    """What a centre sent: record tables, OMOP databases (file, path), metadata files, problems."""

    centre_id: str
    tables: tuple[RawTable, ...]
    omop: tuple[tuple[str, Path], ...]
    metadata: tuple[str, ...]
    problems: tuple[ReadProblem, ...]


def _cbio_labels(table: RawTable) -> dict[str, str]:
    """Attribute id -> display name, from a cBioPortal clinical attributes file."""
    lower = [c.lower() for c in table.columns]
    if "clinicalattributeid" not in lower:
        return {}
    i_id, i_name = lower.index("clinicalattributeid"), lower.index("displayname")
    return {str(row[i_id]): str(row[i_name]) for row in table.rows if row[i_id] and row[i_name]}


def detect_kind(path: Path) -> str:
    """``xlsx``, ``duckdb``, ``sqlite``, ``xls`` or ``text``, from the file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head[8:12] == b"DUCK":
        return "duckdb"
    if head.startswith(b"SQLite format 3"):
        return "sqlite"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "text"


def read_centre(root: Path, centre: CentreConfig) -> CentreFiles:
    """Read every file of one centre; unreadable files become problems, never exceptions."""
    overrides = centre.overrides
    tables: list[RawTable] = []
    omop: list[tuple[str, Path]] = []
    metadata: list[str] = []
    problems: list[ReadProblem] = []
    exports: list[RawTable] = []
    dictionaries = []
    attributes: dict[str, str] = {}
    for entry in centre.files:
        path = resolve(root, centre, entry.path)
        name = Path(entry.path).name if Path(entry.path).is_absolute() else entry.path
        try:
            try:
                found = path.is_file()
            except OSError as exc:  # a name the file system refuses (too long)
                raise SourceError(f"cannot open: {exc.strerror or exc}") from exc
            if not found:
                raise SourceError("file not found")
            kind = detect_kind(path)
            if kind == "xlsx":
                tables.extend(read_workbook(path, centre_id=centre.id, file=name,
                                            header_row=overrides.header_row))
            elif kind == "duckdb":
                omop.append((name, path))
            elif kind in ("sqlite", "xls"):
                raise SourceError(f"unsupported file type ({kind}); export it as CSV or XLSX")
            else:
                table = read_delimited(path, centre_id=centre.id, file=name,
                                       encoding=overrides.encoding, delimiter=overrides.delimiter,
                                       skip_rows=(overrides.header_row or 1) - 1)
                if is_redcap_dictionary(table.columns):
                    dictionaries.append(read_dictionary(table))
                    metadata.append(name)
                elif tuple(c.lower() for c in table.columns[:3]) == _CBIO_ATTRIBUTES:
                    metadata.append(name)
                    attributes.update(_cbio_labels(table))
                elif is_redcap_export(table.columns):
                    exports.append(table)
                else:
                    tables.append(table)
        except SourceError as exc:
            problems.append(ReadProblem(centre.id, name, None, str(exc)))
    for export in exports:
        tables.extend(read_redcap(export, dictionaries[0] if dictionaries else None))
    if attributes:
        tables = [
            replace(t, labels=tuple(attributes.get(c) for c in t.columns)) if not t.labels else t for t in tables
        ]
    return CentreFiles(centre.id, tuple(tables), tuple(omop), tuple(metadata), tuple(problems))
