"""Benchmark: ``oncorwe run --omop`` on a CDM of about 10^7 persons, from the command line, CDM to report.

The synthetic Goldinger study in its OMOP form (``generate_study("goldinger2022", out,
patients=P, omop_only=True, background=B)``): ``P`` study records (about 5 x 10^5, the persons
with the condition) and ``B`` background persons per study record (the hospital's other
patients, none with the condition), ``P * (1 + B)`` persons in all, over the 24 centres' DuckDB
files. Generation is timed apart (it is not part of the pipeline) and reused when the folder holds
a complete study of the same size and seed.

The run is the command a user types, in a child process::

    oncorwe run --omop CENTRE=/path/omop.duckdb ... --out REPORT --json

Measured while it runs, every 0.2 s, over the command's whole process tree (the command and the
report's figure workers): the summed resident set size (RSS: a page shared between processes
counts once per process, an upper bound) and the summed proportional set size (PSS: shared pages
counted once, the physical memory held), and the command's own RSS high-water mark (``VmHWM``);
the peak memory figure is the larger of the last two, as in ``bench_pipeline.py``. Printed and
written: wall time (start to exit, Python's
start-up included), the CPU seconds of the command and its workers (what a busy machine does
not inflate as much), the per-stage seconds the command itself writes (``timings.json``), both peaks,
and the load average at the start and the end (the machine may be shared: the figure is only as
good as the load beside it).

The row goes into ``benchmarks/RESULTS_pipeline.md`` and the README's bench table (between the
``bench_pipeline table`` markers), beside the rows of ``bench_pipeline.py``; a row of the same size
from an earlier run of this script is replaced.

Targets (issue 12): under 5 minutes and under 4 GiB peak memory on 2 cores.

    python benchmarks/bench_cli_scale.py                                  # 5 x 10^5 records, 19x background
    python benchmarks/bench_cli_scale.py --records 50000 --workdir /tmp/small   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GIB = 1024**3
MEMORY_BOUND_BYTES = 4 * GIB
TIME_TARGET_SECONDS = 300.0
SAMPLE_SECONDS = 0.2
_START, _END = "<!-- bench_pipeline table: start -->", "<!-- bench_pipeline table: end -->"
#: the label of this script's rows in the tables (the backend column)
ROW_LABEL = "duckdb, CLI"


# ------------------------------------------------------------------------------------- process tree


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from every ``/proc/<pid>/stat`` readable now."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:  # ended between listing and reading
            continue
        # the command name may hold spaces and parentheses: the ppid follows the last ')'
        tree.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    return tree


def _field_kib(path: str, name: str) -> int:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def hwm_bytes(pid: int) -> int:
    """The RSS high-water mark of process ``pid`` (``VmHWM``), in bytes."""
    return _field_kib(f"/proc/{pid}/status", "VmHWM:") * 1024


def tree_memory_bytes(root: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) of ``root`` and all its descendants, in bytes."""
    tree = _children()
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        rss += _field_kib(f"/proc/{pid}/status", "VmRSS:") * 1024
        pss += _field_kib(f"/proc/{pid}/smaps_rollup", "Pss:") * 1024
        stack.extend(tree.get(pid, ()))
    return rss, pss


def measured(command: list[str], log: Path) -> dict[str, Any]:
    """Run ``command`` (stdout and stderr to ``log``), sampling its process tree's memory."""
    load_start = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        peak_rss = peak_pss = peak_own = 0
        while proc.poll() is None:
            rss, pss = tree_memory_bytes(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            peak_own = max(peak_own, hwm_bytes(proc.pid))
            time.sleep(SAMPLE_SECONDS)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"exit": proc.returncode, "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(cpu, 1),
            "peak_tree_rss_bytes": peak_rss, "peak_tree_pss_bytes": peak_pss, "peak_process_rss_bytes": peak_own,
            "load_start": [round(x, 2) for x in load_start], "load_end": [round(x, 2) for x in os.getloadavg()]}


# --------------------------------------------------------------------------------------- the study


def generate(study: Path, records: int, background: int, seed: int) -> dict[str, Any]:
    """The synthetic study in ``study`` (generated unless complete with these settings), with the
    generation's measurements (those of the run that made it, when reused)."""
    marker = study / ".bench_cli_scale.json"
    wanted = {"records": records, "background": background, "seed": seed}
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if recorded.get("settings") == wanted:
            return dict(recorded["generation"])
    study.parent.mkdir(parents=True, exist_ok=True)
    code = ("import sys\nfrom oncorwe.synth import generate_study\n"
            "generate_study('goldinger2022', sys.argv[1], seed=int(sys.argv[2]), patients=int(sys.argv[3]),\n"
            "               background=int(sys.argv[4]), omop_only=True)\n")
    result = measured([sys.executable, "-c", code, str(study), str(seed), str(records), str(background)],
                      study.parent / f"generate_{records}.log")
    if result["exit"] != 0:
        raise SystemExit(f"generation failed (exit {result['exit']}): see {study.parent / f'generate_{records}.log'}")
    marker.write_text(json.dumps({"settings": wanted, "generation": result}, indent=2) + "\n", encoding="utf-8")
    return result


def cdm_files(study: Path) -> list[tuple[str, Path]]:
    """(centre, OMOP DuckDB file) of every centre of the study."""
    found = [(p.parent.name, p) for p in sorted(study.glob("*/omop.duckdb"))]
    if not found:
        raise SystemExit(f"{study}: no OMOP DuckDB files")
    return found


def persons(files: list[tuple[str, Path]]) -> int:
    """The persons in the CDMs (every centre's ``person`` table)."""
    import duckdb

    total = 0
    for _, path in files:
        con = duckdb.connect(str(path), read_only=True)
        try:
            total += int(con.execute("SELECT count(*) FROM person").fetchone()[0])  # type: ignore[index]
        finally:
            con.close()
    return total


# --------------------------------------------------------------------------------------------- tables


def peak_bytes(r: dict[str, Any]) -> int:
    """The run's peak memory, as ``bench_pipeline.py`` counts it: the larger of the command's own RSS
    high-water mark and the peak PSS of its process tree (its figure workers share its pages)."""
    return max(r["peak_process_rss_bytes"], r["peak_tree_pss_bytes"])


def row(r: dict[str, Any]) -> str:
    """The row of the bench_pipeline table (same columns): ``total s`` is the command's wall time."""
    t = r["timings"]
    stages = [t.get("harmonise", 0.0) + t.get("model", 0.0), t.get("cohort", 0.0), t.get("endpoints", 0.0),
              t.get("analysis", 0.0), t.get("report", 0.0)]
    peak = peak_bytes(r)
    cells = [f"{r['persons']:,}", ROW_LABEL, *(f"{s:.1f}" for s in stages), f"{r['wall_seconds']:.1f}",
             f"{r['persons'] / r['wall_seconds']:,.0f}", f"{peak / GIB:.2f}", f"{r['analysis_set']:,}", "-"]
    return "| " + " | ".join(cells) + " |"


def note(r: dict[str, Any]) -> str:
    """The line under the table that says how the row was measured and how busy the machine was."""
    met_time = r["wall_seconds"] < TIME_TARGET_SECONDS
    met_memory = peak_bytes(r) < MEMORY_BOUND_BYTES
    return (
        f"- `{ROW_LABEL}` {r['persons']:,} persons ({r['records']:,} study records, {r['background']}x background; "
        f"{r['date']}): `oncorwe run --omop` x {r['centres']}{' ' + r['options'] if r.get('options') else ''} "
        "from the command line, CDM to report, "
        f"{r['wall_seconds']:.0f} s wall ({'met' if met_time else 'NOT met'}: < {TIME_TARGET_SECONDS:.0f} s), "
        f"peak memory {peak_bytes(r) / GIB:.2f} GiB ({'met' if met_memory else 'NOT met'}: < 4 GiB; the command's "
        f"own RSS high-water mark {r['peak_process_rss_bytes'] / GIB:.2f} GiB, the PSS of its process tree "
        f"{r['peak_tree_pss_bytes'] / GIB:.2f} GiB, its summed RSS {r['peak_tree_rss_bytes'] / GIB:.2f} GiB); "
        f"{r['cpu_seconds']:.0f} CPU seconds (user + system, the command and its workers); "
        f"load average {r['load_start'][0]:.1f} at the start, {r['load_end'][0]:.1f} at the end"
        f"{' (the machine was shared with other jobs)' if r['shared'] else ''}; "
        f"generation {r['generation_seconds']:.0f} s (`python benchmarks/bench_cli_scale.py`)"
    )


def _with_row(text: str, new_row: str, new_note: str) -> str:
    """``text`` (a bench_pipeline table, between the markers or the whole file) with ``new_row``
    after the table's last row and ``new_note`` after the table; an earlier row and note of this
    script for the same number of persons are replaced."""
    persons_cell = new_row.split("|")[1].strip()
    lines = text.split("\n")
    lines = [ln for ln in lines if not (ln.startswith("| ") and ln.split("|")[1].strip() == persons_cell
                                        and ln.split("|")[2].strip() == ROW_LABEL)]
    lines = [ln for ln in lines if not ln.startswith(f"- `{ROW_LABEL}` {persons_cell} persons")]
    table_rows = [i for i, ln in enumerate(lines) if ln.startswith("| ")]
    if not table_rows:
        raise SystemExit("no bench_pipeline table found")
    last = table_rows[-1]
    lines.insert(last + 1, new_row)
    # the note goes after the first block of bullet lines under the table (the checks), else right after it
    at = last + 2
    while at < len(lines) and lines[at] == "":
        at += 1
    while at < len(lines) and lines[at].startswith("- "):
        at += 1
    lines.insert(at, new_note)
    return "\n".join(lines)


def write_tables(r: dict[str, Any], results: Path, readme: Path) -> None:
    new_row, new_note = row(r), note(r)
    results.write_text(_with_row(results.read_text(encoding="utf-8"), new_row, new_note), encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    match = re.search(re.escape(_START) + r"(.*?)" + re.escape(_END), text, flags=re.S)
    if match is None:
        raise SystemExit(f"{readme}: no '{_START}' ... '{_END}' markers")
    inner = _with_row(match.group(1), new_row, new_note)
    readme.write_text(text[:match.start(1)] + inner + text[match.end(1):], encoding="utf-8")


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500_000, help="study records (the persons with the condition)")
    parser.add_argument("--background", type=int, default=19, help="background persons per study record")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "oncorwe-bench-cli")
    parser.add_argument("--database", default=None, help="--database of the run (default: the CLI's default)")
    parser.add_argument("--engine-memory", default=None,
                        help="--engine-memory of the run (the DuckDB engine's memory limit, e.g. 2GB)")
    parser.add_argument("--generate-only", action="store_true", help="generate the study and stop")
    parser.add_argument("--no-write", action="store_true", help="print the row, leave the tables alone")
    parser.add_argument("--shared", action="store_true",
                        help="say in the note that the machine was shared with other jobs")
    parser.add_argument("--from-result", type=Path, default=None,
                        help="write the tables from a result_*.json of an earlier run (no new run)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS_pipeline.md")
    parser.add_argument("--readme", type=Path, default=HERE.parent / "README.md")
    args = parser.parse_args(argv)
    if args.from_result is not None:
        saved = json.loads(args.from_result.read_text(encoding="utf-8"))
        print(row(saved))
        print(note(saved))
        write_tables(saved, args.results, args.readme)
        return 0

    study = args.workdir / f"study_{args.records}x{args.background}"
    print(f"generating {args.records:,} records x (1 + {args.background}) into {study} (reused when complete) ...",
          file=sys.stderr, flush=True)
    generation = generate(study, args.records, args.background, args.seed)
    print(f"  generation: {generation['wall_seconds']} s, peak RSS {generation['peak_tree_rss_bytes'] / GIB:.2f} GiB",
          file=sys.stderr, flush=True)
    if args.generate_only:
        return 0
    files = cdm_files(study)
    out = args.workdir / f"report_{args.records}x{args.background}"
    command = [sys.executable, "-m", "oncorwe", "run", *[a for c, p in files for a in ("--omop", f"{c}={p}")],
               "--out", str(out), "--json"]
    extra = [*(["--database", args.database] if args.database else []),
             *(["--engine-memory", args.engine_memory] if args.engine_memory else [])]
    command += extra
    print(f"running oncorwe run --omop x {len(files)} ...", file=sys.stderr, flush=True)
    log = args.workdir / f"run_{args.records}x{args.background}.log"
    run = measured(command, log)
    if run["exit"] != 0:
        raise SystemExit(f"oncorwe run failed (exit {run['exit']}): see {log}")
    summary = json.loads(log.read_text(encoding="utf-8"))
    analysis_set = int(summary["headline"]["Patients (centres)"].split()[0])
    result = {
        **run, "date": time.strftime("%Y-%m-%d", time.gmtime()), "records": args.records,
        "background": args.background, "persons": persons(files), "centres": len(files),
        "timings": summary["timings"], "analysis_set": analysis_set, "shared": args.shared,
        "generation_seconds": generation["wall_seconds"], "cpus": os.cpu_count(),
        "options": " ".join(extra),
        # the command's memory high-water mark at the end of each stage (timings.json): where the peak is
        "peak_memory_gib_after": json.loads((out / "timings.json").read_text(encoding="utf-8")).get("peak_memory_gib_after", {}),
    }
    (args.workdir / f"result_{args.records}x{args.background}.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(row(result))
    print(note(result))
    print("memory high-water mark after each stage (GiB): "
          + ", ".join(f"{stage} {gib}" for stage, gib in result["peak_memory_gib_after"].items()))
    if not args.no_write:
        write_tables(result, args.results, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
