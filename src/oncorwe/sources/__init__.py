"""Readers: each centre's files (CSV/TSV, XLSX, REDCap, cBioPortal) and OMOP CDM databases, read as
they are written, without interpretation.

- :func:`load_study_config` reads a study folder's ``centres.toml``;
- :func:`read_centre` reads one centre's files into :class:`RawTable` objects (text cells with their
  row numbers), reporting unreadable files as :class:`ReadProblem` instead of raising;
- :mod:`oncorwe.sources.omop` maps an OMOP CDM v5.4 database to the canonical tables with Ibis
  expressions that run unchanged on DuckDB and PostgreSQL.
"""

from oncorwe.sources._centre import CentreFiles, detect_kind, read_centre
from oncorwe.sources._config import (
    CentreConfig,
    FileEntry,
    Overrides,
    StudyConfig,
    load_study_config,
)
from oncorwe.sources._redcap import read_dictionary as read_redcap_dictionary
from oncorwe.sources._redcap import read_redcap
from oncorwe.sources._tables import BadRow, RawTable, ReadProblem
from oncorwe.sources._text import decode_text, read_delimited, sniff_delimiter
from oncorwe.sources._xlsx import read_workbook

__all__ = [
    "BadRow",
    "CentreConfig",
    "CentreFiles",
    "FileEntry",
    "Overrides",
    "RawTable",
    "ReadProblem",
    "StudyConfig",
    "decode_text",
    "detect_kind",
    "load_study_config",
    "read_centre",
    "read_delimited",
    "read_redcap",
    "read_redcap_dictionary",
    "read_workbook",
    "sniff_delimiter",
]
