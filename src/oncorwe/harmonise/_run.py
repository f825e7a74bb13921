"""The harmonisation stage: a study folder (plus OMOP databases) -> :class:`CanonicalModel`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.errors import DataError, InputError, SourceError
from oncorwe.harmonise._duplicates import find_duplicates
from oncorwe.harmonise._omop import harmonise_omop
from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._tables import harmonise_tables
from oncorwe.harmonise._vocab import load_vocabulary
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    COLUMN_MAP_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    PATIENTS_SCHEMA,
    QUARANTINE_SCHEMA,
    RECONCILIATION_SCHEMA,
    CanonicalModel,
)
from oncorwe.sources import StudyConfig, load_study_config, read_centre

__all__ = ["run"]


def _omop_targets(data_dir: Path | None, omop: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(centre_id, uri, schema) for each extra OMOP source: ``[CENTRE=]uri[#schema]``."""
    targets = []
    for entry in omop:
        centre, sep, uri = entry.partition("=")
        if not sep or "://" in centre or "/" in centre:
            centre, uri = "", entry
        uri, _, schema = uri.partition("#")
        if not centre:
            tail = uri.rstrip("/").rsplit("/", 1)[-1]
            centre = tail.split(".", 1)[0] or "OMOP"
        targets.append((centre, uri, schema or None))
    return targets


def run(
    data_dir: str | Path | None,
    *,
    omop: Sequence[str] = (),
    config: StudyConfig | None = None,
    progress: bool = False,
) -> CanonicalModel:
    """Read every centre of a study folder (and extra OMOP databases) into the canonical model.

    Parameters
    ----------
    data_dir
        The study folder holding ``centres.toml`` and one folder per centre (``None`` with only
        ``omop`` sources).
    omop
        Extra OMOP CDM databases, each ``"[CENTRE=]URI[#schema]"``: a ``.duckdb`` path or a
        ``postgres://user:pw@host:port/db`` URI; the centre id defaults to the file or database name.
    config
        A study configuration to use instead of ``data_dir/centres.toml``.
    progress
        Print one line per centre to stderr.

    Returns
    -------
    CanonicalModel
        The four canonical tables plus quarantine, reconciliation, merges, column map and the
        non-fatal problem lines.

    Raises
    ------
    DataError
        Fatal problems (an ambiguous date column, a duration column without a unit), one line each,
        all of them together.
    InputError
        The folder or its ``centres.toml`` is missing or invalid.
    """
    from oncorwe.model.store import connect

    vocab = load_vocabulary()
    acc = Accumulator()
    root = Path(data_dir) if data_dir is not None else None
    if config is None and root is not None:
        if not root.is_dir():
            raise InputError(f"data_dir {root} is not a folder")
        config = load_study_config(root)
    if config is None and not omop:
        raise InputError("nothing to read: give data_dir (a study folder) or omop sources")
    problems: list[str] = []
    for centre in config.centres if config else ():
        if progress:
            import sys

            print(f"harmonise: centre {centre.id}", file=sys.stderr)
        files = read_centre(config.root, centre)  # type: ignore[union-attr]
        for problem in files.problems:
            problems.append(problem.line())
            acc.quarantine_value(centre.id, problem.file, problem.sheet, 0, "(file)", None,
                                 f"file cannot be read: {problem.reason}", reject=True)
            acc.read.setdefault((centre.id, problem.file, problem.sheet), 0)
        harmonise_tables(files.tables, centre, vocab, acc)
        for name, path in files.omop:
            _omop(connect, str(path), centre.id, name, None, vocab, acc, problems)
    for centre_id, uri, schema in _omop_targets(root, omop):
        label = uri.rsplit("/", 1)[-1].split("?", 1)[0] + (f".{schema}" if schema else "")
        _omop(connect, uri, centre_id, label, schema, vocab, acc, problems)
    if acc.fatal:
        raise DataError(acc.fatal)
    merges = find_duplicates(acc)
    return _model(acc, merges, problems + acc.warnings)


def _omop(connect: Any, uri: str, centre_id: str, file: str, schema: str | None, vocab: Any,
          acc: Accumulator, problems: list[str]) -> None:
    try:
        con = connect(uri)
    except (SourceError, InputError) as exc:
        problems.append(f"centre {centre_id}, OMOP {file}: {exc}")
        acc.quarantine_value(centre_id, file, None, 0, "(file)", None, f"database cannot be read: {exc}", reject=True)
        acc.read.setdefault((centre_id, file, None), 0)
        return
    try:
        harmonise_omop(con, centre_id=centre_id, file=file, vocab=vocab, acc=acc, database=schema)
    except (ValueError, SourceError) as exc:
        problems.append(f"centre {centre_id}, OMOP {file}: {exc}")
        acc.quarantine_value(centre_id, file, None, 0, "(file)", None, f"not an OMOP CDM: {exc}", reject=True)
        acc.read.setdefault((centre_id, file, None), 0)
    finally:
        disconnect = getattr(con, "disconnect", None)
        if disconnect is not None:
            disconnect()


def _model(acc: Accumulator, merges: list[dict[str, str]], problems: list[str]) -> CanonicalModel:
    merged_ids = {m["merged_patient_id"] for m in merges}
    patients = [p for pid, p in sorted(acc.patients.items()) if pid not in merged_ids]
    keep = lambda rows: [r for r in rows if r["patient_id"] not in merged_ids]  # noqa: E731
    quarantine = pl.DataFrame(acc.quarantine, schema=QUARANTINE_SCHEMA)
    return CanonicalModel(
        patients=_frame(patients, PATIENTS_SCHEMA, ["patient_id"]),
        drug_exposures=_frame(keep(acc.exposures), DRUG_EXPOSURES_SCHEMA, ["patient_id", "start_date", "ingredient", "source"]),
        assessments=_frame(keep(acc.assessments), ASSESSMENTS_SCHEMA, ["patient_id", "assessment_date", "source"]),
        events=_frame(keep(acc.events), EVENTS_SCHEMA, ["patient_id", "event_date", "event_type", "source"]),
        quarantine=quarantine.sort(["centre_id", "file", "sheet", "row", "field"], nulls_last=False),
        reconciliation=_reconciliation(acc, merged_ids),
        merges=pl.DataFrame(merges, schema={"kept_patient_id": pl.String(), "merged_patient_id": pl.String(),
                                            "rule": pl.String()}),
        column_map=pl.DataFrame(acc.columns, schema=COLUMN_MAP_SCHEMA),
        problems=tuple(problems),
    )


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType], order: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)
    return frame.sort(order, nulls_last=True, maintain_order=True)


def _reconciliation(acc: Accumulator, merged_ids: set[str]) -> pl.DataFrame:
    merged_rows: dict[tuple[str, str, str | None], int] = {}
    for (centre, file, sheet, row), pid in acc.row_patient.items():
        if pid in merged_ids and not acc.is_rejected(centre, file, sheet, row):
            merged_rows[(centre, file, sheet)] = merged_rows.get((centre, file, sheet), 0) + 1
    rows = []
    for key in sorted(acc.read, key=lambda k: (k[0], k[1], k[2] or "")):
        centre, file, sheet = key
        read = acc.read[key]
        quarantined = len({r for r in acc.rejected.get(key, set()) if r != 0})
        merged = merged_rows.get(key, 0)
        rows.append({"centre_id": centre, "file": file, "records_read": read,
                     "accepted": read - quarantined - merged, "quarantined": quarantined,
                     "merged": merged, "sheet": sheet})
    return pl.DataFrame(rows, schema=RECONCILIATION_SCHEMA)
