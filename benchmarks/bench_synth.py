"""Benchmark: the synthetic generator at 10^4, 10^5 and 10^6 patient records (OMOP form).

Per size, ``generate_study("goldinger2022", out, patients=N, omop_only=True, progress=False)`` runs
in a child process (every size in the OMOP form, the form of a large study); while it
runs, the resident memory of its whole process tree (the command and the worker processes it
spawns) is summed from ``/proc/<pid>/status`` every 100 ms. Printed per size:

    wall            seconds, start to exit
    cpu             user + system seconds of the command and every worker it waited for
    peak_rss_gib    the largest summed RSS of the process tree seen while sampling
    patients_per_s  records / wall
    rows            rows written per OMOP CDM table, summed over the 24 centre databases
    calibration     whether every published figure rounds to its target (``_truth/calibration.csv``)

The memory bound of issue 3 (2 GiB for the process tree) is asserted: the script exits with status
1 when a run exceeds it (or fails). With ``--twice`` each size is generated a second time into
another folder and every file compared byte for byte (same seed and size, same bytes); a
difference also exits with status 1. Wall time depends on what else runs on the machine; the CPU
seconds and the load average printed beside them say how busy it was.

    python benchmarks/bench_synth.py                          # 10^4, 10^5, 10^6 into a temp folder
    python benchmarks/bench_synth.py --sizes 1000000 --out /tmp/synth-bench --keep
    python benchmarks/bench_synth.py --sizes 100000 --twice     # and check the bytes repeat
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024**3
MEMORY_BOUND_BYTES = 2 * GIB
SAMPLE_SECONDS = 0.1
TABLES = ("person", "observation_period", "condition_occurrence", "drug_exposure", "measurement", "death", "episode", "episode_event")


def _children_of() -> dict[int, list[int]]:
    """Parent pid -> child pids, from every ``/proc/<pid>/stat`` readable now."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:  # the process ended between listing and reading
            continue
        # the command name may hold spaces and parentheses: the ppid follows the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def tree_rss_bytes(root: int) -> int:
    """Summed RSS of ``root`` and all its descendants (shared pages count once per process)."""
    tree = _children_of()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        stack.extend(tree.get(pid, ()))
    return total


def _rows(study: Path) -> dict[str, int]:
    import duckdb

    counts = dict.fromkeys(TABLES, 0)
    for path in sorted(study.glob("*/omop.duckdb")):
        con = duckdb.connect(str(path), read_only=True)
        try:
            for table in TABLES:
                counts[table] += int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        finally:
            con.close()
    return counts


def _calibration(study: Path) -> tuple[bool, list[str]]:
    with (study / "_truth" / "calibration.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    converged = next(r["generated"] for r in rows if r["figure"] == "converged") == "true"
    figures = [f"{r['figure']}={float(r['generated']):.4g}" for r in rows if r["published"]]
    return converged, figures


def differing_files(first: Path, second: Path) -> list[str]:
    """Relative paths whose bytes differ between two study folders (or exist in one only)."""
    names = sorted({str(p.relative_to(first)) for p in first.rglob("*") if p.is_file()}
                   | {str(p.relative_to(second)) for p in second.rglob("*") if p.is_file()})
    out = []
    for name in names:
        a, b = first / name, second / name
        if not (a.is_file() and b.is_file()) or a.stat().st_size != b.stat().st_size or not _same_bytes(a, b):
            out.append(name)
    return out


def _same_bytes(a: Path, b: Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
            if block_a != block_b:
                return False
            if not block_a:
                return True


def run_one(size: int, out: Path, seed: int) -> dict[str, object]:
    """Run the CLI at ``size`` records into ``out`` and measure it."""
    if out.exists():
        shutil.rmtree(out)
    code = (
        "import sys; from oncorwe.synth import generate_study; "
        "generate_study('goldinger2022', sys.argv[1], patients=int(sys.argv[2]), seed=int(sys.argv[3]), omop_only=True)"
    )
    command = [sys.executable, "-c", code, str(out), str(size), str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result: dict[str, object] = {
        "size": size, "exit": proc.returncode, "wall": wall, "cpu": cpu, "peak_rss": peak,
        "load_at_start": load, "load_at_end": os.getloadavg()[0], "stderr": stderr[-2000:],
    }
    if proc.returncode == 0:
        result["rows"] = _rows(out)
        result["converged"], result["figures"] = _calibration(out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=None, help="folder for the generated studies (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--keep", action="store_true", help="keep the generated studies")
    parser.add_argument("--twice", action="store_true", help="generate each size twice and compare the bytes")
    args = parser.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="oncorwe-bench-synth-"))
    base.mkdir(parents=True, exist_ok=True)
    failed = False
    print(f"cores {os.cpu_count()}, memory bound {MEMORY_BOUND_BYTES / GIB:.1f} GiB (process tree, summed RSS)")
    print(f"{'records':>9} {'wall s':>8} {'cpu s':>8} {'peak GiB':>9} {'rec/s':>8} {'load':>10}  calibration")
    for size in args.sizes:
        res = run_one(size, base / f"synth-{size}", args.seed)
        peak = int(res["peak_rss"])  # type: ignore[call-overload]
        wall = float(res["wall"])  # type: ignore[arg-type]
        load = f"{res['load_at_start']:.1f}-{res['load_at_end']:.1f}"
        if res["exit"] != 0:
            print(f"{size:>9} FAILED (exit {res['exit']}):\n{res['stderr']}")
            failed = True
            continue
        status = "all figures round to the published ones" if res["converged"] else "NOT converged"
        print(f"{size:>9} {wall:>8.1f} {float(res['cpu']):>8.1f} {peak / GIB:>9.2f} {size / wall:>8.0f} {load:>10}  {status}")  # type: ignore[arg-type]
        print("          rows: " + ", ".join(f"{t} {n:,}" for t, n in res["rows"].items()))  # type: ignore[attr-defined]
        print("          figures: " + " ".join(res["figures"]))  # type: ignore[arg-type]
        if peak > MEMORY_BOUND_BYTES:
            print(f"          memory bound exceeded: {peak / GIB:.2f} GiB > {MEMORY_BOUND_BYTES / GIB:.1f} GiB")
            failed = True
        if args.twice:
            again = run_one(size, base / f"synth-{size}-again", args.seed)
            differ = differing_files(base / f"synth-{size}", base / f"synth-{size}-again") if again["exit"] == 0 else ["(second run failed)"]
            print(f"          second run: {float(again['wall']):.1f} s wall, {float(again['cpu']):.1f} s CPU; "  # type: ignore[arg-type]
                  + ("every file byte-identical" if not differ else f"DIFFERENT: {', '.join(differ[:10])}"))
            failed |= bool(differ)
            if not args.keep:
                shutil.rmtree(base / f"synth-{size}-again", ignore_errors=True)
        sys.stdout.flush()
        if not args.keep:
            shutil.rmtree(base / f"synth-{size}", ignore_errors=True)
    if not args.keep and args.out is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
