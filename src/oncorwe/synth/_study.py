"""``generate_study``: draw, calibrate, lay out timelines, write every centre's files and the truth."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import io
import os
import pickle
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from oncorwe.errors import InputError
from oncorwe.model.schema import make_patient_id
from oncorwe.synth._adjusted_truth import true_effects, write_effects
from oncorwe.synth._adverse_events import (
    ADVERSE_EVENT_TRUTH_COLUMNS,
    adverse_event_table,
    adverse_event_truth,
    draw_adverse_events,
    write_adverse_events,
)
from oncorwe.synth._allocate import scale_counts
from oncorwe.synth._background import BackgroundPlan
from oncorwe.synth._baseline import EPOCH, Cohort, draw_cohort, stream
from oncorwe.synth._cdm_study import generate_cdm_study
from oncorwe.synth._config import CentreStyle, centre_styles, load_targets, referral_pairs
from oncorwe.synth._crf import ExtraSheet, crf_tables, write_csv_tables, write_xlsx
from oncorwe.synth._defects import DEFECT_COLUMNS, Defect, inject_crf_defects, resolve
from oncorwe.synth._design import Design, study_design
from oncorwe.synth._omop import OmopWriter
from oncorwe.synth._records import PatientRecord, build_record, with_identity
from oncorwe.synth._redcap import redcap_rows, write_redcap
from oncorwe.synth._render import Renderer, pick
from oncorwe.synth._subsequent import Subsequent, draw_subsequent
from oncorwe.synth._times import Calibration, Times, draw_times
from oncorwe.synth._truth import TRUTH_COLUMNS, exclusion_reason, truth_row

__all__ = ["LARGE_STUDY", "generate_study"]

#: From this many records on, every centre writes OMOP only, streamed in chunks.
LARGE_STUDY = 20_000
CHUNK = 10_000
WORKERS = 2
#: An OMOP-only study of fewer records is written in the calling process, without workers.
IN_PROCESS_BELOW = 5_000
DEFECT_RATE = 0.035
#: the workbook centres' sheet of adverse events (beside the CRF sheets)
ADVERSE_EVENT_SHEET = "adverse_events"
DEFECT_KINDS = frozenset(
    {"unparseable_date", "end_before_start", "progression_before_chemo", "unknown_drug", "unknown_response", "shifted_row", "duplicated_row"}
)
TRUTH_README = """# Ground truth of this synthetic study

This folder holds what the generator knows and the pipeline must find out by itself: the true
per-patient values (`patients.csv`), every defect injected into the centre files (`defects.csv`),
the calibration figures (`calibration.csv`) and the true effect the confounding-adjusted
comparison estimates (`effects.csv`, docs/synthetic-data.md). Only tests may read it: the oncorwe pipeline must
never read this folder, and nothing here is needed to run a study.
"""


def generate_study(
    study: str,
    out: str | Path,
    *,
    seed: int = 2022,
    patients: int | None = None,
    progress: bool = False,
    omop_only: bool | None = None,
    background: int | None = None,
) -> Path:
    """Write a synthetic multicentre study (centre folders, ``centres.toml``, ``_truth/``) to ``out``.

    Parameters
    ----------
    study
        Name of a study with a targets file, e.g. ``"goldinger2022"``.
    out
        Output folder (created; files the generator writes are overwritten).
    seed
        Random seed; the same seed, size and version give byte-identical files.
    patients
        Number of patient records (eligible and excluded); ``None`` = the study's default size
        (463 eligible + about 20% excluded). Counts are scaled proportionally; from
        ``LARGE_STUDY`` records on every centre writes an OMOP database, streamed in chunks.
    progress
        Show a progress bar.
    omop_only
        Write every centre as an OMOP database, streamed by two worker processes (no CSV, XLSX,
        REDCap, defects or duplicate referrals); ``None`` = only from ``LARGE_STUDY`` records on.
    background
        Background persons (without the study's condition) per study record in each OMOP centre;
        ``None`` = the study file's ``background_multiple``.

    Returns
    -------
    Path
        ``out``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed: must be a non-negative integer, got {seed!r}")
    targets = load_targets(study)
    if patients is not None and (isinstance(patients, bool) or not isinstance(patients, int) or patients < 50):
        raise InputError(f"patients: must be an integer of at least 50, got {patients!r}")
    if background is not None and (isinstance(background, bool) or not isinstance(background, int) or background < 0):
        raise InputError(f"background: must be a non-negative integer, got {background!r}")
    if targets["study"].get("generator") == "cdm":
        return generate_cdm_study(study, targets, Path(out), seed=seed, patients=patients, background_multiple=background)
    total = _default_size(targets) if patients is None else patients
    large = total >= LARGE_STUDY if omop_only is None else bool(omop_only)
    out = Path(out)
    bg = _background_plan(targets, seed, background)
    if large:
        return _generate_large(study, out, seed, total, progress, bg)
    plan = _plan(study, seed, total, large=False)
    cohort, times, calibration, subsequent = plan.cohort, plan.times, plan.calibration, plan.subsequent
    styles, centre_of, numbers, design = plan.styles, plan.centre_of, plan.numbers, plan.design
    duplicates = _duplicates(cohort, centre_of, styles, plan.n_duplicates, seed)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "_truth"
    truth_dir.mkdir(exist_ok=True)
    (truth_dir / "README.md").write_text(TRUTH_README, encoding="utf-8")
    dup_numbers: dict[int, int] = {}
    next_number = np.bincount(centre_of, minlength=len(styles)).astype(int) + 1
    for k, (_, dup_centre) in enumerate(duplicates):
        dup_numbers[k] = int(next_number[dup_centre])
        next_number[dup_centre] += 1

    def local_id(style: CentreStyle, number: int) -> str:
        return _format_id(style, number, design)

    files: dict[str, list[str]] = {}
    defects: list[Defect] = []
    adverse_truth: list[list[Any]] = []
    truth_path = truth_dir / "patients.csv"
    with truth_path.open("w", encoding="utf-8", newline="") as truth_handle:
        truth = csv.writer(truth_handle, lineterminator="\n")
        truth.writerow(TRUTH_COLUMNS)
        for c_idx, style in enumerate(styles):
            keys = np.flatnonzero(centre_of == c_idx)
            keys = keys[np.argsort(numbers[keys], kind="stable")]
            records = [
                build_record(cohort, times, subsequent, int(i), style, local_id(style, int(numbers[i])), design) for i in keys
            ]
            for k, (kept, dup_centre) in enumerate(duplicates):
                if dup_centre != c_idx:
                    continue
                kept_style = styles[int(centre_of[kept])]
                original = build_record(cohort, times, subsequent, kept, kept_style, local_id(kept_style, int(numbers[kept])), design)
                records.append(with_identity(original, style.centre_id, local_id(style, dup_numbers[k]),
                                             make_patient_id(kept_style.centre_id, original.local_id), style, design))
            protected = {kept for kept, _ in duplicates}
            centre_files, centre_defects = _write_centre(out, style, records, subsequent, seed, protected, bg, design,
                                                         adverse_truth)
            files[style.centre_id] = centre_files
            defects.extend(centre_defects)
            for rec in records:
                truth.writerow(_checked_truth(rec, cohort, design))
    _write_defects(truth_dir / "defects.csv", defects)
    _write_rows(truth_dir / "adverse_events.csv", ADVERSE_EVENT_TRUTH_COLUMNS, adverse_truth)
    _write_calibration(truth_dir / "calibration.csv", calibration, targets)
    write_effects(truth_dir / "effects.csv", true_effects(targets, seed, calibration, design.adjusted))
    manifest = {
        "study": study,
        "centre": [
            {"id": s.centre_id, "country": s.country, "files": files.get(s.centre_id, [])} for s in styles if s.centre_id in files
        ],
    }
    (out / "centres.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return out


def _background_plan(targets: dict[str, Any], seed: int, multiple: int | None) -> BackgroundPlan:
    """The OMOP centres' background population: ``multiple`` (or the study file's
    ``background_multiple``) persons per study record, observed over the study's years."""
    study = targets["study"]
    return BackgroundPlan(
        multiple=int(study.get("background_multiple", 0)) if multiple is None else multiple,
        seed=seed,
        first_day=(dt.date(int(study["index_first_year"]) - 3, 1, 1) - EPOCH).days,
        last_day=(dt.date.fromisoformat(str(study["data_cutoff"])) - EPOCH).days,
        clinical_share=float(study.get("background_clinical_drug_share", 0.5)),
    )


def _default_size(targets: dict[str, Any]) -> int:
    return int(targets["study"]["eligible"] + sum(targets["excluded"].values()))


@dataclass(frozen=True)
class _Plan:
    """Everything drawn before writing: identical wherever it is rebuilt from the same inputs."""

    cohort: Cohort
    times: Times
    calibration: Calibration
    subsequent: Subsequent
    styles: tuple[CentreStyle, ...]
    centre_of: np.ndarray
    numbers: np.ndarray
    n_duplicates: int
    design: Design


def _plan(study: str, seed: int, total: int, *, large: bool) -> _Plan:
    targets = load_targets(study)
    n_eligible = round(total * targets["study"]["eligible"] / _default_size(targets))
    excluded = scale_counts(dict(targets["excluded"]), total - n_eligible)
    design = study_design(study)
    n_duplicates = excluded.pop(design.reasons["duplicate_referral"])
    cohort = draw_cohort(targets, n_eligible, excluded, seed)
    times, calibration = draw_times(cohort, targets, seed)
    subsequent = draw_subsequent(cohort, times, targets, seed)
    styles = centre_styles()
    if large:
        styles = tuple(CentreStyle(**{**asdict(s), "format": "omop"}) for s in styles)
    centre_of = _assign_centres(cohort, styles, seed, design)
    numbers = _numbers(centre_of, len(styles), seed)
    return _Plan(cohort, times, calibration, subsequent, styles, centre_of, numbers, n_duplicates, design)


def _checked_truth(rec: PatientRecord, cohort: Cohort, design: Design) -> list[Any]:
    """The truth row as written (csv writes None as "" and floats by repr; bools become words),
    after checking the rules give back what was designed (else a bug)."""
    row = truth_row(rec, design)
    if rec.reason != design.reasons["duplicate_referral"]:
        derived = exclusion_reason(rec, design)
        if derived != rec.reason:
            raise RuntimeError(f"synth bug: record {rec.key} designed {rec.reason!r}, rules say {derived!r}")
    if not rec.reason and row["best_response"] != cohort.bor[rec.key]:
        raise RuntimeError(
            f"synth bug: record {rec.key} designed {cohort.bor[rec.key]}, rules say {row['best_response']}"
        )
    return ["true" if v is True else "false" if v is False else v for v in row.values()]


def _assign_centres(c: Cohort, styles: tuple[CentreStyle, ...], seed: int, design: Design) -> np.ndarray:
    rng = stream(seed, "centres")
    weights = {s.centre_id: s.weight for s in styles}
    counts = scale_counts(weights, c.n_eligible)
    labels = np.array([k for k, (cid, v) in enumerate(counts.items()) for _ in range(v)], dtype=np.int64)
    del weights
    centre_of = np.empty(c.n, dtype=np.int64)
    centre_of[: c.n_eligible] = rng.permutation(labels)
    w = np.array([s.weight for s in styles])
    crf = np.array([s.format != "omop" for s in styles])
    excluded = np.arange(c.n_eligible, c.n)
    # a stage III patient has no M category to put in an OMOP database: CRF centres only
    stage_iii = c.reason[excluded] == design.reasons["observation_in"]
    for mask, allowed in ((~stage_iii, np.ones(len(styles), dtype=bool)), (stage_iii, crf if crf.any() else np.ones(len(styles), dtype=bool))):
        p = np.where(allowed, w, 0.0)
        centre_of[excluded[mask]] = rng.choice(len(styles), size=int(mask.sum()), p=p / p.sum())
    return centre_of


def _numbers(centre_of: np.ndarray, n_centres: int, seed: int) -> np.ndarray:
    """Per record, its running number at its centre (1-based, in a random order)."""
    rng = stream(seed, "numbers")
    numbers = np.zeros(centre_of.shape[0], dtype=np.int64)
    for c_idx in range(n_centres):
        keys = np.flatnonzero(centre_of == c_idx)
        numbers[keys] = rng.permutation(keys.shape[0]) + 1
    return numbers


def _format_id(style: CentreStyle, number: int, design: Design) -> str:
    if style.format == "omop":
        return str(100_000 + number * 7)
    if style.format == "redcap":
        return str(number)
    code = "".join(part[:2] for part in style.centre_id.split("-")).upper()
    pattern = pick(list(design.local_id_patterns), style.centre_id)
    return pattern.format(n=number, c=code)


def _duplicates(c: Cohort, centre_of: np.ndarray, styles: tuple[CentreStyle, ...], k: int, seed: int) -> list[tuple[int, int]]:
    """(kept cohort key, referring centre index) for each duplicate referral."""
    rng = stream(seed, "duplicates")
    index = {s.centre_id: n for n, s in enumerate(styles)}
    pairs = [(index[a], index[b]) for a, b in referral_pairs() if a in index and b in index]
    out: list[tuple[int, int]] = []
    taken: set[int] = set()
    for j in range(k):
        kept_centre, dup_centre = pairs[j % len(pairs)]
        pool = [int(i) for i in np.flatnonzero((centre_of == kept_centre) & c.eligible) if int(i) not in taken]
        if not pool:
            continue
        chosen = pool[int(rng.integers(0, len(pool)))]
        taken.add(chosen)
        out.append((chosen, dup_centre))
    return out


def _extra_line_starts(records: list[PatientRecord], subsequent: Subsequent, design: Design) -> dict[int, int]:
    """Where a line the centre forgot to number may start: after the anti-PD-1 subsequent line."""
    out = {}
    anti_pd1 = design.subsequent.names["anti_pd1"]
    for rec in records:
        if rec.reason or subsequent.klass[rec.key] != anti_pd1:
            continue
        last = max([x.day for x in rec.scans] + [c.end or c.start for c in rec.courses])
        if rec.last_contact_day - last > 35:
            out[rec.key] = last + 21
    return out


def _write_centre(
    out: Path, style: CentreStyle, records: list[PatientRecord], subsequent: Subsequent, seed: int, protected: set[int],
    background: BackgroundPlan, design: Design, adverse_truth: list[list[Any]],
) -> tuple[list[str], list[Defect]]:
    folder = out / style.centre_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    r = Renderer(style)
    rng = stream(seed, f"defects:{style.centre_id}")
    if style.format in ("csv", "xlsx"):
        tables = crf_tables(records, r)
        # every kind at least once in the study: each CRF centre guarantees the kinds dealt to it
        crf_ids = [s.centre_id for s in centre_styles() if s.format in ("csv", "xlsx")]
        kinds = sorted(DEFECT_KINDS)
        position = crf_ids.index(style.centre_id) if style.centre_id in crf_ids else -1
        guaranteed = frozenset(kind for j, kind in enumerate(kinds) if j % len(crf_ids) == position or (j + 7) % len(crf_ids) == position)
        pending = inject_crf_defects(
            tables, r, rng, DEFECT_RATE, protected, DEFECT_KINDS, _extra_line_starts(records, subsequent, design), guaranteed
        )
        if style.format == "csv":
            names = write_csv_tables(tables, r, folder)
            # after every other draw, from a stream of its own: the other files stay byte-identical
            adverse_name, truth_rows = write_adverse_events(draw_adverse_events(records, seed, style.centre_id), r, folder)
            adverse_truth.extend(truth_rows)
            return [*names.values(), adverse_name], resolve(tables, pending, style.centre_id, names, xlsx=False)
        name = design.crf_workbook.format(city=style.centre_id.split("-")[1])
        # the same draws as a CSV centre's, from the same stream of their own: the workbook's other
        # sheets stay cell for cell what they were
        events = draw_adverse_events(records, seed, style.centre_id)
        table = adverse_event_table(events, r)
        sheet = ExtraSheet(ADVERSE_EVENT_SHEET, table.columns, table.rows, frozenset({table.onset_column}))
        write_xlsx(tables, r, folder / name, 2 if style.layout != "plain" else 1, design.crf_title, (sheet,))
        adverse_truth.extend(adverse_event_truth(events, style.centre_id, name, range(1, len(events) + 1)))
        return [name], resolve(tables, pending, style.centre_id, dict.fromkeys(("patients", "treatments", "assessments"), name), xlsx=True)
    if style.format == "redcap":
        events = draw_adverse_events(records, seed, style.centre_id)
        rows, meta = redcap_rows(records, design, events)
        stem = f"{design.redcap_project}_{zlib.crc32(style.centre_id.encode()) % 9000 + 1000}"
        data_name, dict_name = write_redcap(rows, folder, stem, design)
        # an event's row in the flat export, counted from its first data row
        at = {int(role.split(":")[1]): n for n, (_, role) in enumerate(meta, start=1) if role.startswith("adverse_event:")}
        adverse_truth.extend(adverse_event_truth(events, style.centre_id, data_name, [at[k] for k in range(len(events))]))
        return [data_name, dict_name], []
    writer = OmopWriter(folder / "omop.duckdb", r, design, background)
    for rec in records:
        writer.add(rec)
    writer.close()
    return ["omop.duckdb"], []


def _chunks(keys: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, keys.shape[0], size):
        yield keys[start : start + size]


@dataclass(frozen=True)
class _CentreWork:
    """One centre's share of a large study's plan, in its running-number order (a worker's task)."""

    c_idx: int
    cohort: Cohort
    times: Times
    subsequent: Subsequent
    numbers: np.ndarray
    background: BackgroundPlan
    study: str


def _take(obj: Any, rows: np.ndarray) -> Any:
    """The same dataclass with every per-patient array restricted to ``rows`` (in that order)."""
    fields = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    return type(obj)(**{name: value[rows] if isinstance(value, np.ndarray) else value for name, value in fields.items()})


def _centre_work(plan: _Plan, c_idx: int, background: BackgroundPlan) -> _CentreWork:
    keys = np.flatnonzero(plan.centre_of == c_idx)
    keys = keys[np.argsort(plan.numbers[keys], kind="stable")]
    cohort = _take(plan.cohort, keys)
    cohort = Cohort(**{**{n: getattr(cohort, n) for n in cohort.__dataclass_fields__}, "n_eligible": int(cohort.eligible.sum())})
    return _CentreWork(c_idx, cohort, _take(plan.times, keys), _take(plan.subsequent, keys), plan.numbers[keys], background,
                       plan.design.study)


#: Set in each spawned worker: the study folder and the queue its progress goes to (workers are
#: spawned: no thread pool of the parent is inherited half-alive, which fork would risk).
_WORKER: dict[str, Any] = {}


def _worker_init(out: str, progress: Any) -> None:
    _WORKER["out"] = Path(out)
    _WORKER["progress"] = progress


def _write_large_centre(task: str) -> tuple[int, str]:
    """Worker: one centre's OMOP database in chunks, from its share of the plan; its truth rows go
    to a part file. Returns the number of records and the part file."""
    with open(task, "rb") as handle:
        work: _CentreWork = pickle.load(handle)
    Path(task).unlink()
    cohort, times, subsequent = work.cohort, work.times, work.subsequent
    design = study_design(work.study)
    style = CentreStyle(**{**asdict(centre_styles()[work.c_idx]), "format": "omop"})
    out: Path = _WORKER["out"]
    folder = out / style.centre_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    writer = OmopWriter(folder / "omop.duckdb", Renderer(style), design, work.background)
    part = out / "_truth" / f".part-{work.c_idx:03d}.csv"
    # records and rows hold no reference cycles: the cyclic collector would only rescan the
    # chunk's hundreds of thousands of row tuples again and again; it runs once per chunk instead
    gc.freeze()  # what exists now (modules, the plan share) is never garbage: not rescanned
    gc.disable()
    try:
        with part.open("w", encoding="utf-8", newline="") as handle:
            truth = csv.writer(handle, lineterminator="\n")
            for chunk in _chunks(np.arange(cohort.n), CHUNK):
                for i in chunk.tolist():
                    rec = build_record(cohort, times, subsequent, i, style, _format_id(style, int(work.numbers[i]), design), design)
                    writer.add(rec)
                    truth.writerow(_checked_truth(rec, cohort, design))
                writer.flush()
                gc.collect()
                _WORKER["progress"].put(int(chunk.shape[0]))
        writer.close()
    finally:
        gc.enable()
        gc.unfreeze()
    return cohort.n, str(part)


#: Each worker is one of two processes on two cores: no library thread pools of its own (polars
#: would otherwise start one thread per core and spin them for every small frame).
_WORKER_ENV = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Spawned workers inherit the environment: set ``_WORKER_ENV`` while they start, then restore."""
    saved = {name: os.environ.get(name) for name in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _release_memory() -> None:
    import ctypes

    gc.collect()
    with contextlib.suppress(OSError):  # hand the calibration's freed heap back to the system (glibc)
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _generate_large(study: str, out: Path, seed: int, total: int, show: bool, background: BackgroundPlan) -> Path:
    """Every centre as an OMOP database: the plan is drawn and calibrated once, here; each
    centre's share goes to a task file, and two spawned workers write the centres in chunks."""
    import multiprocessing
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from rich.progress import Progress

    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "_truth"
    truth_dir.mkdir(exist_ok=True)
    (truth_dir / "README.md").write_text(TRUTH_README, encoding="utf-8")
    work_dir = truth_dir / ".work"
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir()
    try:
        with Progress(disable=not show) as bar:
            planning = bar.add_task("drawing and calibrating", total=None)
            plan = _plan(study, seed, total, large=True)
            calibration, styles, adjusted = plan.calibration, plan.styles, plan.design.adjusted
            tasks: list[tuple[int, str]] = []
            for c_idx in range(len(styles)):
                work = _centre_work(plan, c_idx, background)
                path = work_dir / f"centre-{c_idx:03d}.pickle"
                with path.open("wb") as handle:
                    pickle.dump(work, handle, protocol=pickle.HIGHEST_PROTOCOL)
                tasks.append((work.cohort.n, str(path)))
            del plan, work
            _release_memory()
            bar.update(planning, total=1, completed=1)
            writing = bar.add_task("writing OMOP centres", total=sum(size for size, _ in tasks))
            parts: dict[int, str] = {}
            order = sorted(range(len(tasks)), key=lambda k: (-tasks[k][0], k))  # largest first
            if sum(size for size, _ in tasks) < IN_PROCESS_BELOW:
                # starting two interpreters costs more than writing a small study: write it here
                # (the same writer on the same shares: the same bytes)
                local: queue.SimpleQueue[int] = queue.SimpleQueue()
                _worker_init(str(out), local)
                for k in order:
                    parts[k] = _write_large_centre(tasks[k][1])[1]
                    while not local.empty():
                        bar.advance(writing, local.get())
            else:
                context = multiprocessing.get_context("spawn")
                progress = context.Queue()
                with _worker_environment(), ProcessPoolExecutor(
                    max_workers=WORKERS, mp_context=context, initializer=_worker_init, initargs=(str(out), progress)
                ) as pool:
                    # the largest centres first, so the two workers finish together
                    pending = {pool.submit(_write_large_centre, tasks[k][1]): k for k in order}
                    while pending:
                        done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                        with contextlib.suppress(queue.Empty):
                            while True:
                                bar.advance(writing, progress.get_nowait())
                        for future in done:
                            parts[pending.pop(future)] = future.result()[1]
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    with (truth_dir / "patients.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(TRUTH_COLUMNS)
        for k in range(len(styles)):
            path = Path(parts[k])
            with path.open(encoding="utf-8") as part_handle:
                shutil.copyfileobj(part_handle, handle)
            path.unlink()
    _write_defects(truth_dir / "defects.csv", [])
    targets = load_targets(study)
    _write_calibration(truth_dir / "calibration.csv", calibration, targets)
    write_effects(truth_dir / "effects.csv", true_effects(targets, seed, calibration, adjusted))
    manifest = {"study": study, "centre": [{"id": s.centre_id, "country": s.country, "files": ["omop.duckdb"]} for s in styles]}
    (out / "centres.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return out


def _write_defects(path: Path, defects: list[Defect]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DEFECT_COLUMNS)
    for d in defects:
        writer.writerow([d.centre_id, d.file, d.row, d.sheet, d.field, d.kind, d.raw_value, d.consequence])
    path.write_text(buf.getvalue(), encoding="utf-8")


def _write_rows(path: Path, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _write_calibration(path: Path, cal: Calibration, targets: dict[str, Any]) -> None:
    goal = targets["published"]["times"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("figure", "published", "generated"))
    for key, value in cal.figures.items():
        writer.writerow((key, goal.get(key, ""), repr(float(value))))
    writer.writerow(("iterations", "", cal.iterations))
    writer.writerow(("converged", "", "true" if cal.converged else "false"))
    path.write_text(buf.getvalue(), encoding="utf-8")
