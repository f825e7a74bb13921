"""Benchmark: the analysis and report stages on large per-patient analysis tables.

The pipeline's last two stages, ``oncorwe.analysis.run`` and ``oncorwe.report.run``, timed on
analysis tables of 10^4, 10^5 and 830,000 patients (the analysis set of a 10^6-patient CDM), without
the stages before them:

1. the flagship study is generated and run once (``oncorwe.pipeline.run_study``, the same as
   ``oncorwe run``); its 463-patient analysis table and its cohort attrition are kept in the work
   folder and reused by later runs;
2. per size, rows are drawn from that table with replacement (numpy, seeded), given new unique
   patient ids and spread uniformly over the 24 centres; times move by a whole number of days
   (up to 30 days; the same shift for a patient's PFS, OS and response, so their order is kept) so that, as in
   real data at this size, times are days: many ties, a few thousand distinct times;
3. the attrition is scaled to the resampled table (per centre, exclusions in the same proportion
   as in the flagship run; overall rows are the centres' sums), so that the flow diagram and the
   per-centre table are consistent with the patients analysed.

Every size runs in its own process, so each peak RSS (the process's high-water mark after the
stage) is that size's alone. The run fails (exit code 1) when a peak exceeds the bound (2 GiB).

    python benchmarks/bench_analysis_report.py                      # 10^4, 10^5, 830,000
    python benchmarks/bench_analysis_report.py --sizes 463 10000 --profile /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1024**3
MEMORY_BOUND_BYTES = 2 * GIB
DEFAULT_SIZES = (10_000, 100_000, 830_000)
MAX_SHIFT_DAYS = 30  # times move by a whole number of days in -30..+30


def _peak_rss_bytes() -> int:
    """The process's RSS high-water mark (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the report's
    figure workers): on a loaded machine a steadier measure of the work than wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --------------------------------------------------------------------------------------- base table


def base_run(workdir: Path, seed: int) -> tuple[Path, Path]:
    """The flagship study's analysis table and attrition (Parquet), made once per work folder."""
    table_path, attrition_path = workdir / "base_analysis_table.parquet", workdir / "base_attrition.parquet"
    if table_path.is_file() and attrition_path.is_file():
        return table_path, attrition_path
    from oncorwe.pipeline import run_study
    from oncorwe.synth import generate_study

    study = workdir / "study"
    if not (study / "centres.toml").is_file():
        generate_study("goldinger2022", study, seed=seed)
    result = run_study(protocol_ref="goldinger2022", data_dir=study, out_dir=workdir / "base_report", seed=seed)
    result.analysis_table.write_parquet(table_path)
    result.analysis["attrition"].write_parquet(attrition_path)
    return table_path, attrition_path


def resample(base: Any, size: int, seed: int) -> Any:
    """``size`` rows drawn from ``base`` with replacement, new ids, 24 centres, times moved by days."""
    import numpy as np
    import polars as pl

    from oncorwe.model.schema import DAYS_PER_MONTH

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, base.height, size=size)
    centres = np.array(sorted(base["centre_id"].unique().to_list()))
    centre = centres[rng.integers(0, centres.size, size=size)]
    shift = rng.integers(-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS + 1, size=size).astype(np.float64)
    table = base[rows].with_columns(
        pl.Series("centre_id", centre),
        pl.Series("shift_days", shift),
        pl.Series("serial", np.arange(size)),
    )

    def days(column: str) -> pl.Expr:
        return (pl.col(column) * DAYS_PER_MONTH).round(0)

    def at_least(value: pl.Expr, floor: pl.Expr) -> pl.Expr:
        # max_horizontal skips nulls: a missing value must stay missing
        return pl.when(value.is_null()).then(None).otherwise(pl.max_horizontal(value, floor))

    # a patient's PFS, OS and response date move together (response day = PFS day - response duration)
    pfs_days = at_least(days("pfs_months") + pl.col("shift_days"), pl.lit(0.0))
    os_days = at_least(days("os_months") + pl.col("shift_days"), pfs_days)
    response_day = days("pfs_months") - days("duration_of_response_months")
    table = table.with_columns(
        (pl.col("centre_id") + ":B" + pl.col("serial").cast(pl.String).str.zfill(7)).alias("patient_id"),
        (pfs_days / DAYS_PER_MONTH).alias("pfs_months"),
        (os_days / DAYS_PER_MONTH).alias("os_months"),
        (at_least(pfs_days - response_day, pl.lit(0.0)) / DAYS_PER_MONTH).alias("duration_of_response_months"),
        at_least((pl.col("chemo_duration_weeks") * 7).round(0) + pl.col("shift_days"), pl.lit(0.0)) / 7,
    )
    return table.drop("shift_days", "serial").select(base.columns).cast(dict(base.schema))


def scaled_attrition(attrition: Any, table: Any) -> Any:
    """The flagship attrition scaled to ``table``: per centre, each criterion excludes the same share
    of the records as in the flagship run; the overall rows are the sums over centres."""
    import polars as pl

    per_centre = attrition.filter(pl.col("centre_id").is_not_null())
    counts = dict(table.group_by("centre_id").len().rows())
    rows = []
    for centre in sorted(counts):
        block = per_centre.filter(pl.col("centre_id") == centre).sort("step").rows(named=True)
        # walk back from the analysed count: records before a step = after it + excluded by it
        after = counts[centre]
        scaled = []
        for row in reversed(block):
            share = row["n_excluded"] / row["n_before"] if row["n_before"] else 0.0
            excluded = round(after * share / (1 - share)) if share < 1 else 0
            scaled.append({**row, "n_before": after + excluded, "n_excluded": excluded, "n_after": after})
            after += excluded
        rows.extend(reversed(scaled))
    frame = pl.DataFrame(rows, schema=attrition.schema)
    overall = frame.group_by("step", "criterion").agg(pl.col("n_before", "n_excluded", "n_after").sum())
    overall = overall.with_columns(pl.lit(None, dtype=pl.String).alias("centre_id")).select(attrition.columns)
    return pl.concat([overall.cast(dict(attrition.schema)), frame]).sort("step", "centre_id", nulls_last=False)


# ------------------------------------------------------------------------------------------- worker


def worker(size: int, workdir: Path, seed: int, out_json: Path, profile_dir: Path | None) -> None:
    """One size in this process: resample, analysis.run, report.run; measurements as JSON."""
    import cProfile

    import polars as pl

    from oncorwe import analysis, protocol, report

    base = pl.read_parquet(workdir / "base_analysis_table.parquet")
    table = resample(base, size, seed) if size != base.height else base
    attrition = scaled_attrition(pl.read_parquet(workdir / "base_attrition.parquet"), table)
    goldinger = protocol.load("goldinger2022")
    result: dict[str, Any] = {"size": size, "rows": table.height, "rss_before_bytes": _peak_rss_bytes(),
                              "distinct_os_times": table["os_months"].n_unique(), "stages": {}}

    def stage(name: str, action: Any) -> Any:
        profiler = cProfile.Profile() if profile_dir else None
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        if profiler:
            profiler.enable()
        value = action()
        if profiler:
            profiler.disable()
        result["stages"][name] = {
            "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(_cpu_seconds() - cpu0, 2),
            "peak_rss_bytes": _peak_rss_bytes(),
            "children_peak_rss_bytes": int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024,
        }
        if profiler and profile_dir:
            profiler.dump_stats(profile_dir / f"{name}_{size}.prof")
        print(f"  {size}: {name} {result['stages'][name]['seconds']} s", file=sys.stderr, flush=True)
        return value

    analysed = stage("analysis", lambda: analysis.run(table, goldinger, attrition=attrition))
    stage("report", lambda: report.run(analysed, workdir / f"report_{size}",
                                       provenance={"benchmark": f"{size} patients"}))
    out_json.write_text(json.dumps(result, indent=2), encoding="utf-8")


# ------------------------------------------------------------------------------------------- driver


def _table(results: list[dict[str, Any]]) -> str:
    head = ["patients", "distinct OS times", "analysis s", "analysis CPU s", "report s", "report CPU s",
            "peak RSS after analysis GiB", "peak RSS after report GiB", "figure worker peak RSS GiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        a, p = r["stages"]["analysis"], r["stages"]["report"]
        lines.append("| " + " | ".join([
            f"{r['size']:,}", f"{r['distinct_os_times']:,}", f"{a['seconds']:.1f}", f"{a['cpu_seconds']:.1f}",
            f"{p['seconds']:.1f}", f"{p['cpu_seconds']:.1f}", f"{a['peak_rss_bytes'] / GIB:.2f}",
            f"{p['peak_rss_bytes'] / GIB:.2f}", f"{p['children_peak_rss_bytes'] / GIB:.2f}"]) + " |")
    return "\n".join(lines)


def _peak(result: dict[str, Any]) -> int:
    """The highest RSS of the size's process or of any of its figure workers."""
    return max(max(s["peak_rss_bytes"], s["children_peak_rss_bytes"]) for s in result["stages"].values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--workdir", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "oncorwe-bench-analysis")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats per stage and size here")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out-json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.worker is not None:
        worker(args.worker, args.workdir, args.seed, args.out_json, args.profile)
        return 0

    base_run(args.workdir, args.seed)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        out_json = args.workdir / f"result_{size}.json"
        out_json.unlink(missing_ok=True)
        command = [sys.executable, __file__, "--worker", str(size), "--workdir", str(args.workdir),
                   "--seed", str(args.seed), "--out-json", str(out_json)]
        if args.profile:
            command += ["--profile", str(args.profile)]
        done = subprocess.run(command, check=False)
        if done.returncode != 0 or not out_json.is_file():
            print(f"size {size}: worker failed (exit code {done.returncode})", file=sys.stderr)
            return 1
        results.append(json.loads(out_json.read_text(encoding="utf-8")))
    print(f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(_table(results))
    over = [r for r in results if _peak(r) > MEMORY_BOUND_BYTES]
    for r in over:
        peak = _peak(r)
        print(f"size {r['size']:,}: peak RSS {peak / GIB:.2f} GiB exceeds the bound of "
              f"{MEMORY_BOUND_BYTES / GIB:.0f} GiB", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
