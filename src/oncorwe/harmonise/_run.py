"""The harmonisation stage: a study folder (plus OMOP databases) -> :class:`CanonicalModel`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.errors import DataError, InputError, OncorweError, SourceError
from oncorwe.harmonise._duplicates import find_duplicates
from oncorwe.harmonise._files_in_engine import files_into_engine
from oncorwe.harmonise._linkage import linkage_candidates, linked_merges
from oncorwe.harmonise._omop import harmonise_omop
from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._vocab import load_vocabulary
from oncorwe.model.schema import (
    ADVERSE_EVENTS_SCHEMA,
    ASSESSMENTS_SCHEMA,
    COLUMN_MAP_SCHEMA,
    CONCEPT_ANCESTOR_SCHEMA,
    CONDITIONS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    OBSERVATIONS_SCHEMA,
    PATIENTS_SCHEMA,
    PERSON_SCHEMA,
    QUARANTINE_SCHEMA,
    RECONCILIATION_SCHEMA,
    CanonicalModel,
)
from oncorwe.model.scope import StudyScope
from oncorwe.sources import StudyConfig, load_study_config, read_centre
from oncorwe.sources.omop import check_cdm_types

__all__ = ["run"]


def omop_targets(data_dir: Path | None, omop: Sequence[str]) -> list[tuple[str, str, str | None]]:
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
    scope: StudyScope | None = None,
    linkage: Sequence[Mapping[str, object]] | None = None,
    con: Any = None,
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
    linkage
        This centre's records that the coordinator's privacy-preserving linkage merged into another
        centre's (``harmonise._linkage``): they leave the tables as cross-centre duplicates do.
    con
        The engine in which the centre files are harmonised (``store.connect``; the pipeline passes
        the study's own engine); default a fresh in-memory DuckDB.
    scope
        What the study is about (``Protocol.scope()``): an OMOP CDM is read only for the persons
        with the study's condition and the study's drugs. Required when there are OMOP sources.

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
    # the last plausible record date: the study's data cut, else the day of the run
    latest = (config.data_cut if config else None) or dt.date.today()
    window = (latest, bool(config and config.data_cut))
    prepared: list[tuple[Any, Any]] = []
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
        prepared.append((centre, files.tables))
        for name, path in files.omop:
            _omop(connect, str(path), centre.id, name, None, vocab, scope, acc, problems, window)
    if prepared:
        files_into_engine(connect(None) if con is None else con, prepared, vocab, acc, latest=latest,
                          latest_is_data_cut=bool(config and config.data_cut))
    for centre_id, uri, schema in omop_targets(root, omop):
        label = uri.rsplit("/", 1)[-1].split("?", 1)[0] + (f".{schema}" if schema else "")
        _omop(connect, uri, centre_id, label, schema, vocab, scope, acc, problems, window)
    if acc.fatal:
        raise DataError(acc.fatal)
    return _model(acc, problems + acc.warnings, unreadable=problems, linkage=linkage)


def _open_cdm(connect: Any, uri: str, schema: str | None) -> tuple[Any, str | None]:
    """A connection in which the CDM's tables can be read and scratch tables written: a DuckDB
    file is attached read-only to an in-memory DuckDB (the centre's file is never written)."""
    text = uri.removeprefix("duckdb://") if uri.startswith("duckdb:///") else uri
    if not text.startswith(("postgres://", "postgresql://", "pyspark://", "spark")) and "://" not in text:
        from oncorwe.harmonise.in_engine import attach_duckdb

        con = connect(None)
        attached = attach_duckdb(con, text, "cdm")
        return con, (f"cdm.{schema}" if schema else attached)
    return connect(uri), schema


def _omop(connect: Any, uri: str, centre_id: str, file: str, schema: str | None, vocab: Any,
          scope: StudyScope | None, acc: Accumulator, problems: list[str],
          window: tuple[dt.date, bool] | None = None) -> None:
    if scope is None:
        raise InputError(f"centre {centre_id}, OMOP {file}: a CDM is read for a study: give the protocol's scope "
                         "(harmonise.run(..., scope=protocol.scope()))")
    try:
        con, schema = _open_cdm(connect, uri, schema)
    except (SourceError, InputError) as exc:
        problems.append(f"centre {centre_id}, OMOP {file}: {exc}")
        acc.quarantine_value(centre_id, file, None, 0, "(file)", None, f"database cannot be read: {exc}", reject=True)
        acc.read.setdefault((centre_id, file, None), 0)
        return
    try:
        try:
            latest, is_data_cut = window or (dt.date.today(), False)
            harmonise_omop(con, centre_id=centre_id, file=file, vocab=vocab, scope=scope, acc=acc, database=schema,
                           latest=latest, latest_is_data_cut=is_data_cut)
        except (ValueError, OncorweError):
            raise
        except Exception:
            # the engine's own error (a value that does not cast, deep in a query): a column whose
            # type is not the CDM's is named instead; anything else goes through as it is
            check_cdm_types(con, database=schema)
            raise
    except (ValueError, SourceError) as exc:
        problems.append(f"centre {centre_id}, OMOP {file}: {exc}")
        acc.quarantine_value(centre_id, file, None, 0, "(file)", None, f"not an OMOP CDM: {exc}", reject=True)
        acc.read.setdefault((centre_id, file, None), 0)
    finally:
        disconnect = getattr(con, "disconnect", None)
        if disconnect is not None:
            disconnect()


def _model(acc: Accumulator, problems: list[str], unreadable: list[str],
           linkage: Sequence[Mapping[str, object]] | None = None) -> CanonicalModel:
    tables = {
        "patients": _table(acc.frames["patients"], PATIENTS_SCHEMA),
        "drug_exposures": _table(acc.frames["drug_exposures"], DRUG_EXPOSURES_SCHEMA),
        "assessments": _table(acc.frames["assessments"], ASSESSMENTS_SCHEMA),
        "events": _table(acc.frames["events"], EVENTS_SCHEMA),
        "adverse_events": _table(acc.frames["adverse_events"], ADVERSE_EVENTS_SCHEMA),
        "person": _table(acc.frames["person"], PERSON_SCHEMA),
        "conditions": _table(acc.frames["conditions"], CONDITIONS_SCHEMA),
        "observations": _table(acc.frames["observations"], OBSERVATIONS_SCHEMA),
    }
    merges = find_duplicates(_referrals(tables), tables["drug_exposures"])
    if linkage is not None:
        candidates = linkage_candidates(_referrals(tables), tables["drug_exposures"])
        merges = pl.concat([merges, linked_merges(candidates, linkage)]).sort(["kept_patient_id", "merged_patient_id"])
    merged = merges["merged_patient_id"]
    order = {
        "patients": ["patient_id"],
        "person": ["patient_id"],
        "conditions": ["patient_id", "start_date", "source"],
        "observations": ["patient_id", "source", "variable", "value_text"],
        "drug_exposures": ["patient_id", "start_date", "ingredient", "source"],
        "assessments": ["patient_id", "assessment_date", "source"],
        "events": ["patient_id", "event_date", "event_type", "source"],
        "adverse_events": ["patient_id", "onset_date", "ctcae_term", "source"],
    }
    kept = {
        name: frame.filter(~pl.col("patient_id").is_in(merged.implode())).sort(order[name], nulls_last=True)
        for name, frame in tables.items()
    }
    ancestors = _table(acc.frames["concept_ancestor"], CONCEPT_ANCESTOR_SCHEMA).unique().sort(pl.all())
    quarantine = pl.concat([pl.DataFrame(acc.quarantine, schema=QUARANTINE_SCHEMA), *acc.quarantine_frames])
    quarantine = quarantine.sort(["centre_id", "file", "sheet", "row", "field"], nulls_last=False)
    return CanonicalModel(
        **kept,
        concept_ancestor=ancestors,
        quarantine=quarantine,
        reconciliation=_reconciliation(acc, quarantine, merged),
        merges=merges,
        column_map=pl.DataFrame(acc.columns, schema=COLUMN_MAP_SCHEMA),
        problems=tuple(problems),
        unreadable=tuple(unreadable),
    )


def model_linkage_candidates(model: CanonicalModel) -> pl.DataFrame:
    """The patients of a harmonised model the duplicate rule can match (``_linkage.linkage_candidates``)."""
    tables = {"patients": model.patients, "person": model.person, "conditions": model.conditions}
    return linkage_candidates(_referrals(tables), model.drug_exposures)


def _referrals(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Every patient's sex, birth year and diagnosis date (CRF patients' field; a CDM person's
    earliest condition record of the study's disease), what the duplicate rule compares."""
    keys = ["patient_id", "centre_id", "sex", "birth_year", "diagnosis_date"]
    first = tables["conditions"].group_by("patient_id").agg(diagnosis_date=pl.col("start_date").min())
    cdm = tables["person"].join(first, on="patient_id", how="left").select(keys)
    return pl.concat([tables["patients"].select(keys), cdm.cast(tables["patients"].select(keys).schema)])


def _table(frames: list[pl.DataFrame], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.concat([pl.DataFrame(schema=schema), *(f.cast(schema) for f in frames)])  # type: ignore[arg-type]


_ROWS_SCHEMA = {"centre_id": pl.String(), "file": pl.String(), "sheet": pl.String(), "row": pl.Int64(),
                "patient_id": pl.String()}


def _reconciliation(acc: Accumulator, quarantine: pl.DataFrame, merged: pl.Series) -> pl.DataFrame:
    keys = ["centre_id", "file", "sheet"]
    read = pl.DataFrame(
        [{"centre_id": c, "file": f, "sheet": s, "records_read": n} for (c, f, s), n in acc.read.items()],
        schema={"centre_id": pl.String(), "file": pl.String(), "sheet": pl.String(), "records_read": pl.Int64()},
    )
    rejected = quarantine.filter((pl.col("action") == "rejected") & (pl.col("row") > 0))
    owners = pl.concat([
        pl.DataFrame(schema=_ROWS_SCHEMA),
        *(frame.cast(_ROWS_SCHEMA) for frame in acc.row_frames),  # type: ignore[arg-type]
    ]).unique(["centre_id", "file", "sheet", "row"], keep="first")
    merged_rows = owners.filter(pl.col("patient_id").is_in(merged.implode())).join(
        rejected.select(*keys, "row").unique(), on=[*keys, "row"], how="anti", nulls_equal=True)
    counts = (
        read.join(rejected.group_by(keys).agg(quarantined=pl.col("row").n_unique()), on=keys, how="left",
                  nulls_equal=True)
        .join(merged_rows.group_by(keys).agg(merged=pl.len()), on=keys, how="left", nulls_equal=True)
        .with_columns(pl.col("quarantined").fill_null(0).cast(pl.Int64), pl.col("merged").fill_null(0).cast(pl.Int64))
        .with_columns(accepted=pl.col("records_read") - pl.col("quarantined") - pl.col("merged"))
    )
    return counts.select(list(RECONCILIATION_SCHEMA)).sort(keys, nulls_last=False)
