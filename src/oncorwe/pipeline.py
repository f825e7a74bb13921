"""The whole study, stage after stage: centre files -> harmonise -> model -> cohort -> endpoints ->
analysis -> report.

:func:`derive` is the one orchestration of the stages up to the per-patient analysis table, used by
``oncorwe run`` (through :func:`run_study`), ``oncorwe explain``, the API and the benchmark. OMOP
CDMs given on their own (``--omop`` without ``--data``) are mapped inside the engine that holds
the canonical model (:func:`oncorwe.harmonise.in_engine.omop_into_engine`: DuckDB files attached
read-only, CDM schemas of the engine's own PostgreSQL or Spark read where they are; any other CDM,
a PostgreSQL one beside the default DuckDB engine, copied into the engine first, only the rows the
study reads, in Arrow batches), so no patient-level table passes through Python objects before the
analysis table. With a study folder, the centres' files are harmonised inside the same engine
(:mod:`oncorwe.harmonise._files_in_engine`: raw cells in, each distinct value read once, the row
rules as queries); their canonical rows and those of the CDMs among them are then checked for
duplicates together and written into the engine.

:func:`run_study` is what ``oncorwe run`` calls; it knows nothing of terminals (progress goes to an
optional callback) and never generates or reads synthetic truth: the data folder is treated as a real
study's. Errors keep their type and gain the stage they happened in
(:class:`oncorwe.errors.StageFailed`); the error's type gives the exit code (docs/errors.md).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from oncorwe import analysis, cohort, endpoints, harmonise, protocol, report
from oncorwe.errors import EngineMemoryError, InputError, OncorweError, SourceError, StageFailed
from oncorwe.harmonise.in_engine import (
    EngineModel,
    OmopInEngine,
    attach_duckdb,
    copy_scoped_cdm,
    drop_copied_cdm,
    omop_into_engine,
    scoped_cdm,
)
from oncorwe.model import engine, store
from oncorwe.model.schema import QUARANTINE_SCHEMA, CanonicalModel
from oncorwe.model.scope import StudyScope
from oncorwe.sources import load_study_config

__all__ = [
    "STAGES",
    "Derived",
    "RunResult",
    "derive",
    "hash_inputs",
    "quarantine_summary",
    "run_study",
]

#: The stages in order, as shown by the progress display.
STAGES = ("harmonise", "model", "cohort", "endpoints", "analysis", "report")

ProgressCallback = Callable[[str, str], None]
#: runs one stage: (stage name, the stage's work) -> its result
StageRunner = Callable[[str, Callable[[], Any]], Any]


@dataclass(frozen=True)
class Derived:
    """What the stages up to the endpoints produced (:func:`derive`).

    ``con`` holds the canonical tables (under ``prefix``); ``merges``, ``reconciliation`` and
    ``quarantine`` are the harmonisation's audit tables (small: one row per duplicate, per file or
    CDM table, per quarantined value); ``in_engine`` says whether the CDMs were mapped inside the
    engine. Only ``endpoints.analysis_table`` is patient-level.
    """

    con: Any
    prefix: str
    merges: pl.DataFrame
    reconciliation: pl.DataFrame
    quarantine: pl.DataFrame
    cohort: cohort.CohortResult
    endpoints: endpoints.EndpointsResult
    in_engine: bool


def _translating(con: Any, asked: str | None = None, *, caller_set: bool = True) -> StageRunner:
    """Runs each stage as it is, except that the engine running out of memory becomes an
    :class:`EngineMemoryError` naming the stage (and the limit: ``asked`` / ``caller_set`` as in
    :func:`engine_out_of_memory`): the runner of the callers of :func:`derive` that bring none of
    their own (``oncorwe explain``, the API), and inside :func:`run_study`'s, so that every caller
    gets one line, not a traceback."""
    def run(name: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except OncorweError:
            raise
        except Exception as exc:
            out_of_memory = engine_out_of_memory(exc, con, name, asked, caller_set=caller_set)
            if out_of_memory is None:
                raise  # not the engine's memory: a programming error, a traceback
            raise out_of_memory from exc
    return run


def _engine_reads(data_dir: str | Path | None, omop: Sequence[str]) -> bool:
    """Whether the OMOP sources are mapped inside the engine: CDMs given alone (a study folder's
    centres are harmonised together, so that duplicates across its files and CDMs are found),
    whatever and wherever they are (:func:`_cdms_in_engine`)."""
    return data_dir is None and bool(omop)


_POSTGRES = ("postgres://", "postgresql://")
_SPARK = ("spark", "pyspark")


def _cdm_label(uri: str, schema: str | None) -> str:
    """What a CDM's records name as their file: a DuckDB file's name, else ``<database>[.<schema>]``."""
    if "://" not in uri.removeprefix("duckdb://"):
        return Path(uri.removeprefix("duckdb://")).name
    return uri.rsplit("/", 1)[-1].split("?", 1)[0] + (f".{schema}" if schema else "")


def _same_postgres(con: Any, uri: str) -> bool:
    """Whether ``uri`` names the server and database the PostgreSQL engine ``con`` is connected to
    (host, port and database as written: another spelling of the same host is another server)."""
    if engine.backend_name(con) != "postgres" or not uri.startswith(_POSTGRES):
        return False
    parts = urlsplit(uri)
    info = con.con.info
    database = parts.path.lstrip("/").split("/", 1)[0]  # ibis reads ``/db/schema`` as a search path
    return (parts.hostname or "localhost", parts.port or 5432, database) == (info.host, int(info.port), info.dbname)


def _readable_in_place(con: Any, uri: str) -> bool:
    """Whether the engine ``con`` reads the CDM ``uri`` where it is: a DuckDB file attached to a
    DuckDB engine, a schema of the engine's own PostgreSQL database, a database of its Spark."""
    backend = engine.backend_name(con)
    if "://" not in uri.removeprefix("duckdb://") and not uri.startswith(_SPARK):
        return backend == "duckdb"
    return _same_postgres(con, uri) or (backend == "pyspark" and uri.startswith(_SPARK))


def _one_line(exc: Exception) -> str:
    """An error's first line, without a password (driver messages run over several lines)."""
    lines = str(exc).strip().splitlines()
    return _redact(lines[0] if lines else type(exc).__name__)


def _check_schema(con: Any, centre_id: str, uri: str, schema: str | None) -> None:
    """A SourceError naming the centre when the PostgreSQL CDM's schema is not there (the engine
    would otherwise read the tables of its default schema instead)."""
    if not schema or engine.backend_name(con) != "postgres":
        return
    if schema not in con.list_databases():
        raise SourceError(f"centre {centre_id}: {_redact(uri)} has no schema {schema!r}")


def _open_source(uri: str, centre_id: str) -> tuple[Any, str | None]:
    """A connection of its own to the CDM ``uri`` (a DuckDB file attached read-only to an in-memory
    DuckDB), and the database the file's tables are in (None: the connection's default)."""
    if "://" not in uri.removeprefix("duckdb://") and not uri.startswith(_SPARK):
        src = store.connect(None)
        return src, attach_duckdb(src, uri.removeprefix("duckdb://"), "cdm")
    try:
        return store.connect(uri), None
    except OncorweError as exc:
        raise SourceError(f"centre {centre_id}: {_one_line(exc)}") from exc


@contextmanager
def _cdms_in_engine(con: Any, omop: Sequence[str], scope: StudyScope) -> Iterator[list[OmopInEngine]]:
    """Each OMOP CDM of ``omop`` as a CDM the engine ``con`` reads, for the time of the block.

    A CDM the engine reads where it is (:func:`_readable_in_place`) is read there: a DuckDB file
    attached read-only, a schema of the engine's own PostgreSQL database. Any other (a PostgreSQL
    CDM beside the default DuckDB engine, or on another server) is copied into a scratch schema of
    the engine, only the rows the study reads (:func:`oncorwe.harmonise.in_engine.scoped_cdm`,
    streamed in Arrow batches), and the schema dropped when the block ends. Then one mapping,
    :func:`oncorwe.harmonise.in_engine.omop_into_engine`, maps them all.
    """
    sources: list[OmopInEngine] = []
    copied: list[str] = []
    try:
        for number, (centre_id, uri, schema) in enumerate(harmonise.omop_targets(None, omop)):
            label = _cdm_label(uri, schema)
            if _readable_in_place(con, uri):
                if engine.backend_name(con) == "duckdb":
                    path = uri.removeprefix("duckdb://")
                    try:
                        attached = attach_duckdb(con, path, f"cdm_{number}")
                    except SourceError as exc:
                        raise SourceError(f"centre {centre_id}: {exc}") from exc
                    sources.append(OmopInEngine(centre_id, label, f"cdm_{number}.{schema}" if schema else attached))
                else:
                    _check_schema(con, centre_id, uri, schema)
                    sources.append(OmopInEngine(centre_id, label, schema))
                continue
            try:
                src, attached_as = _open_source(uri, centre_id)
            except SourceError as exc:
                if str(exc).startswith(f"centre {centre_id}:"):
                    raise
                raise SourceError(f"centre {centre_id}: {exc}") from exc
            try:
                _check_schema(src, centre_id, uri, schema)
                database = (f"cdm.{schema}" if schema else attached_as) if attached_as else schema
                tables = scoped_cdm(src, database, scope, centre_id=centre_id, file=label)
                target = engine.scratch_name(f"cdm_{number}")
                copied.append(target)
                copy_scoped_cdm(tables, con, target)
            finally:
                disconnect = getattr(src, "disconnect", None)
                if disconnect is not None:
                    disconnect()
            sources.append(OmopInEngine(centre_id, label, target))
        yield sources
    finally:
        for target in copied:
            drop_copied_cdm(con, target)


def derive(
    loaded: protocol.Protocol,
    con: Any,
    *,
    data_dir: str | Path | None = None,
    omop: Sequence[str] = (),
    cdms: Sequence[OmopInEngine] = (),
    prefix: str = "",
    keep_in_engine: bool = False,
    stage: StageRunner | None = None,
    centre: str | None = None,
    linkage: Sequence[Mapping[str, object]] | None = None,
) -> Derived:
    """Sources -> canonical model in ``con`` -> cohort -> endpoints, for protocol ``loaded``.

    Parameters
    ----------
    con : the engine (``store.connect``); the canonical tables are written into it under ``prefix``.
    data_dir : a study folder (``centres.toml``); its files and CDMs are harmonised, then written.
    omop : extra OMOP CDMs, ``"[CENTRE=]URI[#schema]"``. Without ``data_dir`` they are mapped
        inside ``con`` (read where they are when it can, else their study rows copied in first).
    cdms : CDMs already readable in ``con`` (a schema of its PostgreSQL, a Spark database, an
        attached DuckDB file), mapped inside it; only without ``data_dir`` and ``omop``.
    keep_in_engine : the lines of therapy and the endpoint trace stay in the engine (large studies).
    stage : runs each stage (``harmonise``, ``model``, ``cohort``, ``endpoints``), for timing and progress;
        by default each runs as it is, the engine running out of memory raising EngineMemoryError.
    centre : only this centre of the study folder (a site's own run, ``oncorwe site-export``).
    linkage : the centre's records the coordinator's linkage merged into another centre's.
    """
    if data_dir is None and not omop and not cdms:
        raise InputError("no data: give a study folder (--data) or an OMOP database (--omop)")
    if cdms and (data_dir is not None or omop):
        raise InputError("cdms: give the engine's CDMs alone, without a study folder or --omop sources")
    stage = stage or _translating(con)
    scope = loaded.scope()
    in_engine = bool(cdms) or _engine_reads(data_dir, omop)
    if in_engine:
        mapped = stage("harmonise", lambda: _map_in_engine(con, cdms, omop, scope, prefix))
        merges, reconciliation = mapped.merges, mapped.reconciliation
        # the model is already in the engine: what comes back is the (small) quarantine
        quarantine = stage("model", lambda: store.to_polars(con.table(f"{prefix}quarantine")).cast(
            QUARANTINE_SCHEMA))  # type: ignore[arg-type]
    else:
        config = _one_centre(Path(data_dir), centre) if centre is not None and data_dir is not None else None
        model = stage("harmonise", lambda: _all_read(harmonise.run(
            Path(data_dir) if data_dir is not None else None, omop=tuple(omop), scope=scope, config=config,
            linkage=linkage, con=con)))
        stage("model", lambda: store.write_model(con, model, prefix=prefix))
        merges, reconciliation, quarantine = model.merges, model.reconciliation, model.quarantine
    selected = stage("cohort", lambda: cohort.run(con, loaded, prefix=prefix, merges=merges,
                                                  keep_in_engine=keep_in_engine))
    derived = stage("endpoints", lambda: endpoints.run(con, selected, loaded, prefix=prefix,
                                                       keep_in_engine=keep_in_engine))
    return Derived(con=con, prefix=prefix, merges=merges, reconciliation=reconciliation, quarantine=quarantine,
                   cohort=selected, endpoints=derived, in_engine=in_engine)


def _map_in_engine(con: Any, cdms: Sequence[OmopInEngine], omop: Sequence[str], scope: StudyScope,
                   prefix: str) -> EngineModel:
    if cdms:
        return omop_into_engine(con, list(cdms), scope=scope, prefix=prefix)
    with _cdms_in_engine(con, omop, scope) as sources:
        return omop_into_engine(con, sources, scope=scope, prefix=prefix)


def _one_centre(data_dir: Path, centre: str) -> Any:
    """The study folder's configuration with only ``centre`` (InputError naming the known ones)."""
    config = load_study_config(data_dir)
    chosen = [c for c in config.centres if c.id == centre]
    if not chosen:
        known = ", ".join(c.id for c in config.centres)
        raise InputError(f"{data_dir / 'centres.toml'}: no centre {centre!r} (centres: {known})")
    return config.model_copy(update={"centres": chosen})


def _all_read(model: CanonicalModel) -> CanonicalModel:
    """The model, when every file and database was read; else a :class:`SourceError` naming each
    one that was not (a study with a file missing would be analysed as if it had none)."""
    if model.unreadable:
        raise SourceError(model.unreadable)
    return model


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the report's path, the analysis result, per-stage timings (seconds).

    ``analysis_table`` is the per-patient table the analyses ran on (patient-level, in memory only:
    it is never written by the run) for a caller that wants to check or re-analyse it.
    """

    report_path: Path
    analysis: analysis.AnalysisResult
    analysis_table: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    n_quarantined: int = 0


def hash_inputs(data_dir: Path | None, omop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every input the run reads: ``centres.toml``, each listed centre's folder and listed files,
    and OMOP databases given as files; file names relative to the study folder, sizes, sha256.

    Only what ``centres.toml`` names is read (other folders beside the centres are not inputs).
    """
    paths: set[Path] = set()
    root = None
    if data_dir is not None:
        root = Path(data_dir)
        config = load_study_config(root)
        paths.add(root / "centres.toml")
        for centre in config.centres:
            folder = root / centre.id
            if folder.is_dir():
                paths.update(p for p in folder.rglob("*") if p.is_file())
            for entry in centre.files:
                for base in (folder, root):
                    candidate = base / entry.path
                    if candidate.is_file():
                        paths.add(candidate)
                        break
            if centre.mapping:
                mapping = root / centre.mapping
                if mapping.is_file():
                    paths.add(mapping)
    records = []
    for path in sorted(paths):
        name = path.relative_to(root).as_posix() if root is not None else path.name
        records.append({"file": name, "bytes": path.stat().st_size, "sha256": report.file_sha256(path)})
    for spec in omop:
        uri = spec.split("=", 1)[-1].split("#", 1)[0]
        omop_entry: dict[str, Any] = {"omop": _redact(spec)}
        if Path(uri).is_file():
            omop_entry.update(bytes=Path(uri).stat().st_size, sha256=report.file_sha256(Path(uri)))
        records.append(omop_entry)
    return records


def _redact(uri: str) -> str:
    """A database URI without its password (the manifest is shared with the report)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", uri)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_DIGITS = re.compile(r"\d+")


def quarantine_summary(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Quarantined values counted by centre, field, reason and action, for the report.

    Raw values never leave: reasons are generalised (quoted text -> '...', numbers -> N) so that a
    reason quoting a value or an identifier cannot carry it into the report.
    """
    if quarantine.height == 0:
        return pl.DataFrame(schema={"centre_id": pl.String(), "field": pl.String(), "reason": pl.String(),
                                    "action": pl.String(), "n": pl.Int64()})
    general = quarantine.with_columns(
        pl.col("reason").cast(pl.String).fill_null("")
        .map_elements(lambda text: _DIGITS.sub("N", _QUOTED.sub("'...'", text)), return_dtype=pl.String)
    )
    return (general.group_by(["centre_id", "field", "reason", "action"]).len(name="n")
            .with_columns(pl.col("n").cast(pl.Int64))
            .sort(["centre_id", "field", "reason", "action"], nulls_last=True))


def _load_protocol(protocol_ref: str | Path | protocol.Protocol) -> tuple[protocol.Protocol, Path | None]:
    if isinstance(protocol_ref, protocol.Protocol):
        return protocol_ref, None
    loaded = protocol.load(protocol_ref)
    path = Path(protocol_ref)
    return loaded, (path if path.is_file() else None)


def _published_beside(loaded: protocol.Protocol, protocol_path: Path | None) -> Path | None:
    """The published-figures file named by the protocol, beside the protocol file when it is there."""
    name = loaded.reference.published
    if not name or protocol_path is None:
        return None
    candidate = protocol_path.parent / name
    return candidate if candidate.is_file() else None


def run_study(
    *,
    protocol_ref: str | Path | protocol.Protocol,
    data_dir: str | Path | None,
    out_dir: str | Path,
    omop: Sequence[str] = (),
    database: str | None = None,
    shareable: bool = False,
    seed: int | None = None,
    on_stage: ProgressCallback | None = None,
    engine_memory: str | None = None,
) -> RunResult:
    """Run a study end to end and write its report into ``out_dir``.

    Parameters
    ----------
    protocol_ref : a shipped protocol name ("goldinger2022"), a protocol file, or a loaded protocol.
    data_dir : the study folder (``centres.toml`` and one folder per centre); None with only ``omop``.
    out_dir : the report folder (replaced atomically when the run succeeds).
    omop : extra OMOP CDM databases, ``"[CENTRE=]URI[#schema]"``.
    database : where the canonical tables go (default: an in-memory DuckDB).
    shareable : suppress small counts in the report.
    seed : the seed the data were generated with, when synthetic (recorded in the manifest only).
    on_stage : called with (stage, "start" | "done") around each stage.
    engine_memory : the DuckDB engine's memory limit (``"2GB"``), beyond which it spills to a
        temporary folder; default DuckDB's own (80% of the RAM).

    Raises
    ------
    StageFailed : one of oncorwe's errors, with the stage it happened in.
    """
    notify = on_stage or (lambda _stage, _status: None)
    timings: dict[str, float] = {}
    high_water: dict[str, float | None] = {}

    def stage(name: str, action: Callable[[], Any]) -> Any:
        notify(name, "start")
        started = time.perf_counter()
        try:
            value = _translating(con, engine_memory, caller_set=False)(name, action)
        except OncorweError as exc:
            raise StageFailed(name, exc) from exc
        timings[name] = round(time.perf_counter() - started, 3)
        high_water[name] = _memory_high_water_gib()
        notify(name, "done")
        return value

    try:
        loaded, protocol_path = _load_protocol(protocol_ref)
    except OncorweError as exc:
        raise StageFailed("protocol", exc) from exc
    if data_dir is None and not omop:
        raise StageFailed("protocol", InputError("no data: give a study folder (--data) or an OMOP database (--omop)"))
    data_path = Path(data_dir) if data_dir is not None else None
    try:  # an unusable --out is found before any data are read
        report.check_output_target(out_dir)
    except OncorweError as exc:
        raise StageFailed("report", exc) from exc
    try:
        con = store.connect(database)
        _limit_memory(con, engine_memory)
    except OncorweError as exc:
        raise StageFailed("model", exc) from exc
    # the run reads only the analysis table and the audit tables: the lines of therapy and the
    # endpoint trace stay in the engine (a CDM's cohort of 10^5 patients is not pulled into Python)
    derived = derive(loaded, con, data_dir=data_path, omop=omop, stage=stage, keep_in_engine=True)
    endpoint_result = derived.endpoints
    result = stage("analysis", lambda: analysis.run(
        endpoint_result.analysis_table, loaded,
        attrition=derived.cohort.attrition,
        reconciliation=derived.reconciliation,
        quarantine_summary=quarantine_summary(derived.quarantine),
        published=_published_beside(loaded, protocol_path),
    ))
    provenance = {
        "inputs": hash_inputs(data_path, omop),
        "protocol": loaded.to_dict(),
        "protocol_file": protocol_path.name if protocol_path else f"{loaded.name} (shipped with oncorwe)",
        "seed": seed,
        "database": _redact(database) if database else "duckdb (in memory)",
    }
    report_path = stage("report", lambda: report.run(result, out_dir, shareable=shareable, provenance=provenance))
    _write_timings(Path(out_dir), timings, high_water)
    return RunResult(report_path=report_path, analysis=result, analysis_table=endpoint_result.analysis_table,
                     timings=timings, n_quarantined=derived.quarantine.height)


_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _limit_memory(con: Any, limit: str | None) -> None:
    """Set the DuckDB engine's memory limit to ``limit``, spilling beyond it to a temporary folder
    removed when the process ends (DuckDB's default folder is ``.tmp`` in the working directory)."""
    if limit is None:
        return
    if not _SIZE.match(limit.strip()):
        raise InputError(f"engine memory: {limit!r} is not a size such as 2GB or 1.5GiB")
    if engine.backend_name(con) != "duckdb":
        raise InputError(f"engine memory: only for a DuckDB engine; {engine.backend_name(con)} manages its own")
    spill = tempfile.mkdtemp(prefix="oncorwe-spill-")
    atexit.register(shutil.rmtree, spill, True)
    con.raw_sql(f"SET memory_limit = '{limit.strip()}'")
    con.raw_sql(f"SET temp_directory = '{spill}'")


def engine_out_of_memory(exc: BaseException, con: Any, stage: str, asked: str | None, *,
                         caller_set: bool = False) -> EngineMemoryError | None:
    """``exc`` as an :class:`EngineMemoryError` when it is the engine running out of memory
    (:func:`oncorwe.model.engine.out_of_memory`), else None.

    The message names the stage, the engine's memory limit in force (``asked``: the
    ``--engine-memory`` given, None for the engine's default; ``caller_set``: the connection is the
    caller's, whose limit is whatever it set) and what to do.
    """
    kind = engine.out_of_memory(exc)
    if kind == "duckdb":
        return EngineMemoryError(_duckdb_advice(con, stage, asked, caller_set))
    if kind == "postgres":
        return EngineMemoryError(
            f"PostgreSQL ran out of memory in the {stage} stage (SQLSTATE {engine.PG_OUT_OF_MEMORY}): give the "
            "server more memory (work_mem, or a larger machine) or free memory on it, then run again")
    return None


def _duckdb_advice(con: Any, stage: str, asked: str | None, caller_set: bool = False) -> str:
    """The one line for DuckDB out of memory: its memory limit in force and its temporary folder."""
    try:
        limit, spill = con.raw_sql(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    except Exception:  # the line is still useful without the engine's settings
        limit, spill = None, None
    if caller_set:
        in_force = f"{limit or 'unknown'}, the connection's memory_limit"
        advice = "raise the connection's memory_limit"
    elif asked is not None:
        in_force = f"--engine-memory {asked.strip()}" + (f", {limit} in force" if limit else "")
        advice = "raise --engine-memory"
    else:
        in_force = f"DuckDB's default, 80% of the RAM{f', {limit}' if limit else ''}; no --engine-memory given"
        advice = "give --engine-memory below the free RAM (DuckDB then spills to disk sooner)"
    spilling = f"; beyond the limit DuckDB spills to the temporary folder {spill}, which needs free disk" if spill else ""
    return (f"the DuckDB engine ran out of memory in the {stage} stage (memory limit: {in_force}): "
            f"{advice}, or free memory, then run again{spilling}")


def _memory_high_water_gib() -> float | None:
    """The process's resident-memory high-water mark so far (GiB; None where the system does not say).

    It only grows, so the stage after which it jumps is the stage of the run's peak (the engine's
    memory included: DuckDB runs in this process)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return round(kib * (1 if sys.platform != "darwin" else 1 / 1024) / 2**20, 3)


def _write_timings(out_dir: Path, timings: dict[str, float], high_water: dict[str, float | None]) -> None:
    """Timings go beside the manifest, never in it: they differ between runs, the report must not.
    ``peak_memory_gib_after``: the process's memory high-water mark at the end of each stage."""
    tmp = out_dir / ".timings.json.tmp"
    document = {"seconds": timings, "peak_memory_gib_after": high_water}
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "timings.json")


# --- multicentre without pooling (issue 14; docs/federation.md) ---------------------------------

LINKAGE_TOKENS_FORMAT = "oncorwe-linkage-tokens"
LINKAGE_FORMAT = "oncorwe-linkage"


def linkage_tokens(protocol_ref: str | Path | protocol.Protocol, data_dir: str | Path, centre: str,
                   key: bytes) -> dict[str, Any]:
    """A centre's linkage tokens (``harmonise._linkage``): its harmonised records, one centre only,
    as ordinals and keyed hashes of the duplicate rule's values; no identifier, no value."""
    from oncorwe.analysis.federated import protocol_sha256

    loaded, _ = _load_protocol(protocol_ref)
    model = _all_read(harmonise.run(Path(data_dir), config=_one_centre(Path(data_dir), centre), scope=loaded.scope()))
    records = harmonise.linkage_tokens(harmonise.model_linkage_candidates(model), key)
    return {"format": LINKAGE_TOKENS_FORMAT, "schema_version": 1, "centre_id": centre,
            "protocol_sha256": protocol_sha256(loaded), "records": records}


def link(token_documents: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The coordinator's linkage of the centres' tokens: for each centre, its records merged into
    another centre's. ``token_documents``: (where it came from, the parsed JSON) per centre."""
    tokens: dict[str, Any] = {}
    hashes = set()
    for where, document in token_documents:
        if not isinstance(document, dict) or document.get("format") != LINKAGE_TOKENS_FORMAT:
            raise InputError(f"{where}: not an oncorwe linkage-tokens file")
        centre = document.get("centre_id")
        if not isinstance(centre, str) or not isinstance(document.get("records"), list):
            raise InputError(f"{where}: malformed linkage tokens (centre_id, records)")
        if centre in tokens:
            raise InputError(f"{where}: a second tokens file for centre {centre}")
        for record in document["records"]:
            if not (isinstance(record, dict) and isinstance(record.get("ordinal"), int)
                    and isinstance(record.get("tokens"), list) and all(isinstance(t, str) for t in record["tokens"])):
                raise InputError(f"{where}: malformed linkage record")
        tokens[centre] = document["records"]
        hashes.add(document.get("protocol_sha256"))
    if len(hashes) > 1:
        raise InputError("linkage: the tokens were made with different protocols")
    merged = harmonise.link_centres(tokens)
    return {"format": LINKAGE_FORMAT, "schema_version": 1, "protocol_sha256": next(iter(hashes), None),
            "centres": {centre: merged[centre] for centre in sorted(merged)}}


def site_export(
    protocol_ref: str | Path | protocol.Protocol,
    data_dir: str | Path,
    centre: str,
    *,
    min_cell_count: int | None = None,
    time_bin_days: int | None = None,
    linkage: Mapping[str, Any] | None = None,
    database: str | None = None,
) -> Any:
    """A centre's site package (``analysis.federated``): this centre's files through the one data
    path (:func:`derive`, the centre alone), then its views counted under disclosure control.

    ``min_cell_count`` / ``time_bin_days`` override the protocol's ``[federation]`` (0 and 0: exact,
    not for release; value binning is then off too). ``linkage``: the coordinator's linkage
    (:func:`link`), whose records of this centre are left out as cross-centre duplicates.
    """
    from oncorwe.analysis.federated import Disclosure, build_package

    loaded, _ = _load_protocol(protocol_ref)
    spec = loaded.federation
    k = spec.min_cell_count if min_cell_count is None else min_cell_count
    bin_days = spec.time_bin_days if time_bin_days is None else time_bin_days
    if k < 0 or bin_days < 0:
        raise InputError("--min-cell-count and --time-bin-days are 0 or more")
    exact = k == 0 and bin_days == 0
    value_bins = {} if exact else {
        v.column: spec.value_bins.get(v.column, spec.default_value_bin)
        for v in analysis.table1_continuous(loaded) if v.column not in analysis.TIME_COLUMNS}
    derived = site_derive(loaded, data_dir, centre, linkage=linkage, database=database)
    package = build_package(
        derived.endpoints.analysis_table, loaded, centre_id=centre,
        disclosure=Disclosure(k, bin_days, value_bins), attrition=derived.cohort.attrition,
        reconciliation=derived.reconciliation, quarantine_summary=quarantine_summary(derived.quarantine),
        linkage_sha256=None if linkage is None else _json_sha256(linkage),
    )
    return package


def secure_keys(protocol_ref: str | Path | protocol.Protocol, centre: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A centre's fresh key pair for one secure-aggregation round (``analysis.federated._secure``):
    (the public key to send to the other centres, the private key the centre keeps)."""
    from oncorwe.analysis.federated import make_key_pair

    loaded, _ = _load_protocol(protocol_ref)
    return make_key_pair(centre, loaded)


def site_export_secure(
    protocol_ref: str | Path | protocol.Protocol,
    data_dir: str | Path,
    centre: str,
    *,
    peers: Sequence[tuple[str, Any]],
    private_key: Mapping[str, Any],
    min_cell_count: int | None = None,
    time_bin_days: int | None = None,
    linkage: Mapping[str, Any] | None = None,
    database: str | None = None,
) -> Any:
    """A centre's masked package (secure aggregation): this centre's files through the one data path,
    counted over the cell universe, masked with the peers' public keys (``peers``: (where it came
    from, the parsed public-key document), the centre's own included) and its ``private_key``.

    Times and continuous values are binned here (the universe's cells are bins; ``time_bin_days``
    must be above 0); ``min_cell_count`` is applied by ``combine`` to the network's totals.
    """
    from oncorwe.analysis.federated import Disclosure, build_secure_package, read_roster

    loaded, _ = _load_protocol(protocol_ref)
    spec = loaded.federation
    k = spec.min_cell_count if min_cell_count is None else min_cell_count
    bin_days = spec.time_bin_days if time_bin_days is None else time_bin_days
    if k < 0 or bin_days <= 0:
        raise InputError("--secure: --min-cell-count is 0 or more and --time-bin-days above 0 (the cells of "
                         "secure aggregation are time bins)")
    value_bins = {v.column: spec.value_bins.get(v.column, spec.default_value_bin)
                  for v in analysis.table1_continuous(loaded) if v.column not in analysis.TIME_COLUMNS}
    roster = read_roster(peers, loaded)
    derived = site_derive(loaded, data_dir, centre, linkage=linkage, database=database)
    return build_secure_package(
        derived.endpoints.analysis_table, loaded, centre_id=centre, disclosure=Disclosure(k, bin_days, value_bins),
        roster=roster, private_key=private_key, attrition=derived.cohort.attrition,
        reconciliation=derived.reconciliation, linkage_sha256=None if linkage is None else _json_sha256(linkage),
    )


def site_derive(
    protocol_ref: str | Path | protocol.Protocol,
    data_dir: str | Path,
    centre: str,
    *,
    linkage: Mapping[str, Any] | None = None,
    database: str | None = None,
) -> Derived:
    """A centre's own run of the one data path (:func:`derive` on the centre alone), with the
    coordinator's linkage applied: what its site package and its Cox answers are computed from."""
    loaded, _ = _load_protocol(protocol_ref)
    merged = None
    if linkage is not None:
        if linkage.get("format") != LINKAGE_FORMAT or not isinstance(linkage.get("centres"), dict):
            raise InputError("linkage: not an oncorwe linkage file (oncorwe link)")
        merged = linkage["centres"].get(centre, [])
    return derive(loaded, store.connect(database), data_dir=Path(data_dir), centre=centre, linkage=merged)


def _json_sha256(document: Any) -> str:
    import hashlib

    from oncorwe.analysis.federated._package import canonical_json

    return hashlib.sha256(canonical_json(document)).hexdigest()


@dataclass(frozen=True)
class CombineResult:
    """What ``oncorwe combine`` wrote: the report's path, the pooled result, the combination's record."""

    report_path: Path
    result: analysis.AnalysisResult
    combined: Any
    #: with ``cox_rounds``: where the Cox rounds through files stand (``_cox_files.CoxRounds``)
    cox_rounds: Any = None


def combine_packages(
    protocol_ref: str | Path | protocol.Protocol,
    package_files: Sequence[str | Path],
    out_dir: str | Path,
    *,
    min_centres: int | None = None,
    min_patients: int | None = None,
    shareable: bool = False,
    cox: Mapping[str, pl.DataFrame] | None = None,
    cox_rounds: str | Path | None = None,
) -> CombineResult:
    """Verify the centres' site packages and write the pooled report folder (as :func:`run_study`),
    marked as federated; the manifest lists each package's file and sha256.

    ``cox_rounds``: a folder of Cox rounds through files (``analysis.federated._cox_files``): the
    distributed Cox fit is replayed on the centres' answers in it; while a round is unanswered, its
    request is written there and the Cox tables say which centres must answer it
    (``CombineResult.cox_rounds``)."""
    from oncorwe.analysis.federated import (
        CombineRules,
        SecurePackage,
        combine,
        combine_secure,
        read_package,
    )

    loaded, protocol_path = _load_protocol(protocol_ref)
    report.check_output_target(out_dir)
    packages = [read_package(path) for path in package_files]
    rules = CombineRules.of(loaded)
    rules = CombineRules(rules.min_centres if min_centres is None else min_centres,
                         rules.min_patients_per_centre if min_patients is None else min_patients)
    secure = [isinstance(p, SecurePackage) for p in packages]
    if any(secure) and not all(secure):
        odd = packages[secure.index(False)] if secure[0] else packages[secure.index(True)]
        raise InputError(f"centre {odd.centre_id}: a {'plain' if secure[0] else 'masked'} package among "
                         f"{'masked' if secure[0] else 'plain'} ones (all centres of a round send the same kind)")
    combining = combine_secure if all(secure) else combine
    rounds = None
    if cox_rounds is not None:
        if cox is not None:
            raise InputError("combine: give the Cox tables or --cox-rounds, not both")
        cox, rounds = _file_cox_rounds(Path(cox_rounds), loaded, packages)
    combined = combining(packages, loaded, rules=rules, published=_published_beside(loaded, protocol_path), cox=cox)
    if rounds is not None and rounds.waiting_round is not None:  # the record says the fit is waiting, not done
        federated_info = {**combined.result.info["federated"], "cox": rounds.message}
        result = dataclasses.replace(combined.result, info={**combined.result.info, "federated": federated_info})
        combined = dataclasses.replace(combined, result=result)
    provenance = {
        "inputs": [{"file": Path(p).name, "bytes": Path(p).stat().st_size, "sha256": report.file_sha256(Path(p))}
                   for p in package_files],
        "protocol": loaded.to_dict(),
        "protocol_file": protocol_path.name if protocol_path else f"{loaded.name} (shipped with oncorwe)",
        "federated": combined.result.info["federated"],
    }
    report_path = report.run(combined.result, out_dir, shareable=shareable, provenance=provenance)
    return CombineResult(report_path=report_path, result=combined.result, combined=combined, cox_rounds=rounds)


def _file_cox_rounds(directory: Path, loaded: protocol.Protocol, packages: Sequence[Any]) -> tuple[Any, Any]:
    """The Cox tables replayed on the answers in ``directory``, for the centres of ``packages``, with
    their times binned as in the packages (exact packages: exact times)."""
    from oncorwe.analysis.federated._cox_files import file_cox_tables

    bins = {int(p.disclosure.get("time_bin_days", 0) or 0) for p in packages}
    if len(bins) > 1:
        raise InputError(f"--cox-rounds: the packages bin times differently ({sorted(bins)} days)")
    return file_cox_tables(directory, loaded, sorted(p.centre_id for p in packages),
                           schema=loaded.analysis_schema(), time_bin_days=bins.pop() if bins else 0,
                           linkage_sha256=packages[0].linkage_sha256 if packages else None)


def site_cox_answer(
    protocol_ref: str | Path | protocol.Protocol,
    data_dir: str | Path,
    centre: str,
    request_document: Any,
    *,
    where: str = "--cox-request",
    linkage: Mapping[str, Any] | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """A centre's answer to one Cox round's request file: the request verified (its sha256, the
    protocol, the linkage), then ``cox_site_answer`` on the centre's own analysis table
    (:func:`site_derive`, as its package)."""
    from oncorwe.analysis.federated._cox_files import cox_answer_document, read_cox_request

    loaded, _ = _load_protocol(protocol_ref)
    document = read_cox_request(request_document, loaded, where=where)
    if centre not in document.get("centres", [centre]):
        raise InputError(f"{where}: centre {centre} is not among the centres of this round")
    expected_linkage = document.get("linkage_sha256")
    made_with = None if linkage is None else _json_sha256(linkage)
    if expected_linkage != made_with:
        raise InputError(f"{where}: the packages were made with linkage {expected_linkage or 'none'}, "
                         f"this answer would use {made_with or 'none'} (give the same --linkage)")
    derived = site_derive(loaded, data_dir, centre, linkage=linkage, database=database)
    return cox_answer_document(derived.endpoints.analysis_table, loaded, centre, document)
