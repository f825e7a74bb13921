"""Benchmark: the Goldinger study on synthetic OMOP CDMs of 10^4, 10^5 and 10^6 patients, CDM to report.

Per size and backend, each stage's wall time and the peak memory (the larger of the process's RSS
high-water mark and the peak proportional set size of the process with the report's figure workers,
sampled every 0.2 s by a separate process during the report, the only stage with workers), and the throughput in patients per second:

    cdm_to_canonical   OMOP CDM -> canonical tables inside the engine (oncorwe.harmonise.in_engine)
    cohort             eligibility, lines of therapy, index (oncorwe.cohort.run, in the engine)
    endpoints          per-patient endpoints (oncorwe.endpoints.run, in the engine; the analysis
                       table is the only patient-level table that comes into Python)
    analysis           the protocol's analyses (oncorwe.analysis.run)
    report             HTML, figures, tables (oncorwe.report.run)

Every size and backend runs in its own process, so the memory figures are that run's alone. For
PostgreSQL and Spark the CDM is first loaded into the engine (``load_cdm``, timed apart: in real
use the CDM already lives there); their server / JVM memory is not in the Python process's figure.

The synthetic studies come from the generator's scale option (``generate_study(..., patients=N,
omop_only=True)``: every centre an OMOP DuckDB file, streamed in chunks). Generation is timed
apart and not part of the pipeline.

Targets (2 cores, DuckDB): 10^6 patients CDM to report in under 5 minutes, peak memory under
4 GiB (asserted here: the run fails when exceeded), time growing no worse than linearly.

    python benchmarks/bench_pipeline.py                       # 10^4, 10^5, 10^6; PG/Spark up to 10^5
    python benchmarks/bench_pipeline.py --sizes 10000 --backends duckdb,spark
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()

HERE = Path(__file__).resolve().parent
GIB = 1024**3
MEMORY_BOUND_BYTES = 4 * GIB
TIME_TARGET_SECONDS = 300.0
DUCKDB_MEMORY_LIMIT = os.environ.get("ONCORWE_BENCH_DUCKDB_MEMORY", "2GB")
STAGES = ("cdm_to_canonical", "cohort", "endpoints", "analysis", "report")


def _peak_rss_bytes() -> int:
    """The process's RSS high-water mark (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _tree_pss_bytes(pid: int) -> int:
    """Proportional set size of process ``pid`` and all its descendants (Linux ``smaps_rollup``):
    each page shared between processes (forked workers share the parent's) is counted once in all,
    so the sum is the physical memory the run holds."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # a worker that ended between two reads
    return total


def _sample(pid: int, out: Path) -> None:
    """Sampler process: the peak PSS of ``pid``'s tree every 0.2 s, written to ``out`` on SIGTERM."""
    peak = 0

    def stop(*_: object) -> None:
        out.write_text(str(max(peak, _tree_pss_bytes(pid))), encoding="utf-8")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    out.write_text("ready", encoding="utf-8")
    while True:
        peak = max(peak, _tree_pss_bytes(pid))
        time.sleep(0.2)


class _MemorySampler:
    """The largest PSS of this process and its children while the block runs, sampled by a separate
    process (a thread here would change what it measures: the report saves its figures in this
    process when another thread runs)."""

    def __init__(self, workdir: Path) -> None:
        self.peak = 0
        self._out = workdir / f"pss_{os.getpid()}_{uuid.uuid4().hex[:6]}.txt"

    def __enter__(self) -> _MemorySampler:
        self._process = subprocess.Popen([sys.executable, __file__, "--sample", str(os.getpid()), str(self._out)])
        while not (self._out.exists() and self._out.read_text(encoding="utf-8") == "ready"):
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait()
        self.peak = int(self._out.read_text(encoding="utf-8"))
        self._out.unlink()


def _peak_bound_bytes(r: dict[str, Any]) -> int:
    """The run's peak memory: the larger of the process's RSS high-water mark and the sampled peak
    PSS of the process with its figure workers."""
    return max(max(s["peak_rss_bytes"], s.get("peak_tree_pss_bytes", 0)) for s in r["stages"].values())


# --------------------------------------------------------------------------------------------- worker


def _omop_files(study: Path) -> list[tuple[str, Path]]:
    from oncorwe.sources import detect_kind

    found = [(p.parent.name, p) for p in sorted(study.glob("*/*")) if p.is_file() and detect_kind(p) == "duckdb"]
    if not found:
        raise SystemExit(f"{study}: no OMOP DuckDB files")
    return found


def _load_cdm(con: Any, backend: str, files: list[tuple[str, Path]], tag: str) -> list[Any]:
    """Copy each centre's CDM into the engine (one schema / database per centre)."""
    import duckdb

    from oncorwe.harmonise.in_engine import OmopInEngine

    sources = []
    for i, (centre, path) in enumerate(files):
        schema = f"{tag}_cdm_{i}"
        if backend == "postgres":
            con.raw_sql(f"CREATE SCHEMA {schema}")
        else:
            con._session.sql(f"CREATE DATABASE {schema}")
        src = duckdb.connect(str(path), read_only=True)
        for (name,) in src.execute("SELECT table_name FROM information_schema.tables").fetchall():
            arrow = src.execute(f'SELECT * FROM "{name}"').to_arrow_table()
            if backend == "postgres":
                con.create_table(name, arrow, database=schema)
            else:  # straight from Arrow, which keeps the types (see oncorwe.model.engine)
                con._session.createDataFrame(arrow).write.saveAsTable(f"{schema}.{name}", mode="overwrite")
        src.close()
        sources.append(OmopInEngine(centre, path.name, schema))
    return sources


def _drop_cdm(con: Any, backend: str, sources: list[Any]) -> None:
    for source in sources:
        if backend == "postgres":
            con.raw_sql(f"DROP SCHEMA IF EXISTS {source.database} CASCADE")
        elif backend == "spark":
            con._session.sql(f"DROP DATABASE IF EXISTS {source.database} CASCADE")


def worker(size: int, backend: str, study: Path, out_json: Path, workdir: Path, pg_uri: str) -> None:
    """One size on one backend, in this process; writes the measurements as JSON."""
    from oncorwe import analysis, protocol, report
    from oncorwe.harmonise.in_engine import OmopInEngine, attach_duckdb
    from oncorwe.model.engine import drop_scratch
    from oncorwe.model.store import STAGE_TABLES, connect
    from oncorwe.pipeline import derive, quarantine_summary

    files = _omop_files(study)
    goldinger = protocol.load("goldinger2022")
    tag = f"b{uuid.uuid4().hex[:8]}"
    prefix = f"oncorwe_tmp_{tag}_"
    report_workers = min(len(os.sched_getaffinity(0)), 4)  # the report's own default
    result: dict[str, Any] = {"size": size, "backend": backend, "stages": {}, "load_cdm_seconds": None,
                              "report_workers": report_workers,
                              "duckdb_memory_limit": DUCKDB_MEMORY_LIMIT if backend == "duckdb" else None}
    started = time.perf_counter()
    if backend == "duckdb":
        import ibis

        path = workdir / f"engine_{size}.duckdb"
        path.unlink(missing_ok=True)
        # DuckDB's buffer pool lives in this process: its limit (spilling to disk beyond it) keeps
        # the process's peak under the bound with room for the Python side
        con = ibis.duckdb.connect(str(path), threads=2, memory_limit=DUCKDB_MEMORY_LIMIT,
                                  temp_directory=str(workdir / "spill"))
        sources = [OmopInEngine(c, p.name, attach_duckdb(con, str(p), f"cdm_{i}")) for i, (c, p) in enumerate(files)]
    else:
        con = connect(pg_uri if backend == "postgres" else "pyspark://local[2]")
        sources = _load_cdm(con, backend, files, tag)
        result["load_cdm_seconds"] = round(time.perf_counter() - started, 2)
    result["connect_seconds"] = round(time.perf_counter() - started, 2)

    def stage(name: str, action: Any) -> Any:
        t0 = time.perf_counter()
        if name == "report":  # the only stage with worker processes; sampling costs time, so only here
            with _MemorySampler(workdir) as sampled:
                value = action()
            tree = sampled.peak
        else:
            value, tree = action(), 0
        result["stages"][name] = {"seconds": round(time.perf_counter() - t0, 2), "peak_rss_bytes": _peak_rss_bytes(),
                                  "peak_tree_pss_bytes": tree}
        print(f"  {backend} {size}: {name} {result['stages'][name]['seconds']} s", file=sys.stderr, flush=True)
        return value

    try:
        # the pipeline's own orchestration; keep_in_engine: the lines of therapy and the trace stay
        # in the engine, only the exclusions, the analysis set's index and the analysis table come
        # into Python
        names = {"harmonise": "cdm_to_canonical", "model": "cdm_to_canonical", "cohort": "cohort",
                 "endpoints": "endpoints"}
        timed: dict[str, float] = {}

        def pipeline_stage(name: str, action: Any) -> Any:
            # harmonise maps the CDMs inside the engine, model reads back the quarantine: one stage here
            t0 = time.perf_counter()
            value = action()
            timed[names[name]] = timed.get(names[name], 0.0) + time.perf_counter() - t0
            result["stages"][names[name]] = {"seconds": round(timed[names[name]], 2),
                                             "peak_rss_bytes": _peak_rss_bytes(), "peak_tree_pss_bytes": 0}
            print(f"  {backend} {size}: {name} {round(time.perf_counter() - t0, 2)} s", file=sys.stderr, flush=True)
            return value

        derived = derive(goldinger, con, cdms=sources, prefix=prefix, keep_in_engine=True, stage=pipeline_stage)
        analysed = stage("analysis", lambda: analysis.run(derived.endpoints.analysis_table, goldinger,
                                                          attrition=derived.cohort.attrition,
                                                          reconciliation=derived.reconciliation,
                                                          quarantine_summary=quarantine_summary(derived.quarantine)))
        stage("report", lambda: report.run(analysed, workdir / f"report_{backend}_{size}", workers=report_workers,
                                           provenance={"benchmark": f"{size} patients, {backend}"}))
        counts = {name: int(con.table(f"{prefix}{name}").count().to_pyarrow().as_py()) for name in STAGE_TABLES}
    finally:
        drop_scratch(con)
        if backend != "duckdb":
            _drop_cdm(con, backend, sources)
    result["canonical_rows"] = counts
    result["analysis_patients"] = derived.endpoints.analysis_table.height
    result["records"] = counts["person"] + len(derived.merges)
    out_json.write_text(json.dumps(result, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------------------------- driver


def _generate(size: int, workdir: Path, seed: int) -> tuple[Path, float]:
    study = workdir / f"study_{size}"
    if (study / "centres.toml").exists():
        return study, float(json.loads((study / ".bench_generated.json").read_text())["seconds"])
    code = (
        "import sys\n"
        "from oncorwe.synth import generate_study\n"
        "generate_study('goldinger2022', sys.argv[2], seed=int(sys.argv[3]), patients=int(sys.argv[1]),\n"
        "               omop_only=True)\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(size), str(study), str(seed)], check=True)
    seconds = round(time.perf_counter() - t0, 1)
    (study / ".bench_generated.json").write_text(json.dumps({"seconds": seconds}), encoding="utf-8")
    return study, seconds


def _row(r: dict[str, Any]) -> str:
    total = sum(s["seconds"] for s in r["stages"].values())
    peak = _peak_bound_bytes(r)
    cells = [f"{r['size']:,}", r["backend"], *(f"{r['stages'][s]['seconds']:.1f}" for s in STAGES),
             f"{total:.1f}", f"{r['size'] / total:,.0f}", f"{peak / GIB:.2f}",
             f"{r['analysis_patients']:,}", "-" if r["load_cdm_seconds"] is None else f"{r['load_cdm_seconds']:.0f}"]
    return "| " + " | ".join(cells) + " |"


def _table(results: list[dict[str, Any]]) -> str:
    head = ["patients", "backend", *(f"{s} s" for s in STAGES), "total s", "patients/s", "peak memory GiB",
            "analysis set", "load CDM s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_row(r) for r in results]
    return "\n".join(lines)


def _growth(results: list[dict[str, Any]]) -> list[str]:
    """Per backend, the time per patient at each size relative to the smallest size."""
    out = []
    for backend in sorted({r["backend"] for r in results}):
        runs = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["size"])
        if len(runs) < 2:
            continue
        base = sum(s["seconds"] for s in runs[0]["stages"].values()) / runs[0]["size"]
        ratios = [f"{r['size']:,}: {sum(s['seconds'] for s in r['stages'].values()) / r['size'] / base:.2f}"
                  for r in runs]
        out.append(f"- {backend}: seconds per patient relative to {runs[0]['size']:,} patients: " + ", ".join(ratios)
                   + " (1.00 = linear; below 1 = better than linear)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", default="duckdb,postgres,spark")
    parser.add_argument("--other-backends-up-to", type=int, default=100_000,
                        help="PostgreSQL and Spark only at sizes up to this")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "oncorwe-bench")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--pg", default=os.environ.get("ONCORWE_TEST_PG",
                                                     "postgres://oncorwe:oncorwe@127.0.0.1:5432/oncorwe_test"))
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_pipeline.md")
    parser.add_argument("--collect", action="store_true",
                        help="only build the table from the results of earlier runs in --workdir")
    parser.add_argument("--worker", nargs=3, metavar=("SIZE", "BACKEND", "STUDY"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", nargs=2, metavar=("PID", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sample:
        _sample(int(args.sample[0]), Path(args.sample[1]))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        size, backend, study = args.worker
        worker(int(size), backend, Path(study), args.json, args.workdir, args.pg)
        return 0

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"duckdb", "postgres", "spark"})
    if unknown:
        parser.error(f"--backends: unknown {unknown}; use duckdb, postgres, spark")
    results: list[dict[str, Any]] = []
    generated: dict[int, float] = {}
    for size in sorted(args.sizes):
        if args.collect:  # the table from runs done before (separate invocations), no new runs
            for backend in backends:
                found = args.workdir / f"result_{backend}_{size}.json"
                if found.exists():
                    results.append(json.loads(found.read_text(encoding="utf-8")))
            marker = args.workdir / f"study_{size}" / ".bench_generated.json"
            if marker.exists():
                generated[size] = float(json.loads(marker.read_text())["seconds"])
            continue
        study, generated[size] = _generate(size, args.workdir, args.seed)
        for backend in backends:
            if backend != "duckdb" and size > args.other_backends_up_to:
                continue
            out_json = args.workdir / f"result_{backend}_{size}.json"
            out_json.unlink(missing_ok=True)
            print(f"{size:,} patients on {backend} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, __file__, "--worker", str(size), backend, str(study),
                            "--json", str(out_json), "--workdir", str(args.workdir), "--pg", args.pg], check=True)
            results.append(json.loads(out_json.read_text(encoding="utf-8")))
    table = _table(results)
    duck = [r for r in results if r["backend"] == "duckdb"]
    over = [r for r in duck if _peak_bound_bytes(r) >= MEMORY_BOUND_BYTES]
    at_million = [r for r in duck if r["size"] >= 1_000_000]
    checks = [f"- memory bound (DuckDB, peak memory < 4 GiB at every size): {'met' if not over else 'EXCEEDED'}"]
    for r in at_million:
        total = sum(s["seconds"] for s in r["stages"].values())
        checks.append(f"- time target (DuckDB, {r['size']:,} patients CDM to report < {TIME_TARGET_SECONDS:.0f} s): "
                      f"{total:.0f} s, {'met' if total < TIME_TARGET_SECONDS else 'NOT met'}")
    text = "\n".join([
        "# Pipeline benchmark: CDM to report on synthetic OMOP studies",
        "",
        f"Produced by `python benchmarks/bench_pipeline.py` on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} cores, {platform.python_version()}, {platform.machine()}. Peak memory is the "
        "larger of the Python process's RSS high-water mark and the peak proportional set size (PSS: "
        "shared pages counted once) of the process with the report's forked figure workers, sampled "
        "every 0.2 s during the report. DuckDB runs in the process and the Spark JVM is its child (in the figure through the report's sample only); the PostgreSQL server's memory is not in "
        "the figures. `load CDM` copies the CDM into PostgreSQL / Spark "
        "first and is not part of the total. Generation of the synthetic studies (seconds): "
        + ", ".join(f"{k:,}: {v:.0f}" for k, v in sorted(generated.items())) + ".",
        "",
        table,
        "",
        *checks,
        *_growth(results),
        "",
    ])
    args.out.write_text(text, encoding="utf-8")
    print(text)
    if over:
        raise SystemExit(f"memory bound exceeded: {[r['size'] for r in over]} patients used 4 GiB or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
