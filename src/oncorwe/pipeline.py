"""The whole study, stage after stage: centre files -> harmonise -> model -> cohort -> endpoints ->
analysis -> report.

:func:`run_study` is what ``oncorwe run`` calls; it knows nothing of terminals (progress goes to an
optional callback) and never generates or reads synthetic truth: the data folder is treated as a real
study's. Errors keep their type and gain the stage they happened in
(:class:`oncorwe.errors.StageFailed`); the error's type gives the exit code (docs/errors.md).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe import analysis, cohort, endpoints, harmonise, protocol, report
from oncorwe.errors import InputError, OncorweError, StageFailed
from oncorwe.model import store
from oncorwe.sources import load_study_config

__all__ = [
    "STAGES",
    "RunResult",
    "hash_inputs",
    "quarantine_summary",
    "run_study",
]

#: The stages in order, as shown by the progress display.
STAGES = ("harmonise", "model", "cohort", "endpoints", "analysis", "report")

ProgressCallback = Callable[[str, str], None]


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

    Raises
    ------
    StageFailed : one of oncorwe's errors, with the stage it happened in.
    """
    notify = on_stage or (lambda _stage, _status: None)
    timings: dict[str, float] = {}
    state: dict[str, Any] = {}

    def stage(name: str, action: Callable[[], Any]) -> Any:
        notify(name, "start")
        started = time.perf_counter()
        try:
            value = action()
        except OncorweError as exc:
            raise StageFailed(name, exc) from exc
        timings[name] = round(time.perf_counter() - started, 3)
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

    model = stage("harmonise", lambda: harmonise.run(data_path, omop=tuple(omop), scope=loaded.scope()))

    def write_model() -> Any:
        con = store.connect(database)
        store.write_model(con, model)
        return con

    state["con"] = stage("model", write_model)
    cohort_result = stage("cohort", lambda: cohort.run(state["con"], loaded, merges=model.merges))
    endpoint_result = stage("endpoints", lambda: endpoints.run(state["con"], cohort_result, loaded))
    result = stage("analysis", lambda: analysis.run(
        endpoint_result.analysis_table, loaded,
        attrition=cohort_result.attrition,
        reconciliation=model.reconciliation,
        quarantine_summary=quarantine_summary(model.quarantine),
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
    _write_timings(Path(out_dir), timings)
    return RunResult(report_path=report_path, analysis=result, analysis_table=endpoint_result.analysis_table,
                     timings=timings, n_quarantined=model.quarantine.height)


def _write_timings(out_dir: Path, timings: dict[str, float]) -> None:
    """Timings go beside the manifest, never in it: they differ between runs, the report must not."""
    tmp = out_dir / ".timings.json.tmp"
    tmp.write_text(json.dumps({"seconds": timings}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "timings.json")
