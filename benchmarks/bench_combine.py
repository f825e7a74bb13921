"""Benchmark: the coordinator's side of a federated study (issue 14).

On the synthetic Goldinger study (24 centres): each centre's linkage tokens and site package are
made (timed per centre: that is a centre's own cost), then the coordinator's steps are timed:

    link               the centres' tokens -> cross-centre duplicates
    verify             reading and verifying the 24 packages (checksum, shapes, contradictions)
    combine            the pooled result tables from the packages (oncorwe.analysis.federated.combine)
    combine_report     the same, and the report folder written (what ``oncorwe combine`` does)
    secure_*           the same for secure aggregation: masked packages read and verified, the
                       network's totals unmasked and analysed, and with the report folder

and, beside them, the pooled analysis of the same data (oncorwe.analysis.run on the pooled table,
then the report) for the ratio. It also prints, for the default disclosure settings, how far the
released packages' published-vs-reproduced figures are from the exact ones, and how many of the
published figures agree with the paper in each mode: exact, per-centre suppression (the defaults),
binning only, and secure aggregation with the defaults (docs/federation.md).
Target: combine of 24 packages, report included, under 10 s.

    python benchmarks/bench_combine.py [--seed 2022] [--out /tmp/bench-combine]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from oncorwe import analysis, pipeline, protocol, report
from oncorwe.analysis.federated import SitePackage, combine, combine_secure, read_package
from oncorwe.sources import load_study_config
from oncorwe.synth import generate_study

KEY = b"benchmark linkage key, 32 bytes!!"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-combine-"))
    study = out / "goldinger2022"
    if not (study / "centres.toml").is_file():
        generate_study("goldinger2022", study, seed=args.seed)
    flagship = protocol.load("goldinger2022")
    centres = [c.id for c in load_study_config(study).centres]

    per_centre: list[float] = []
    tokens = []
    for centre in centres:
        started = time.perf_counter()
        tokens.append((centre, pipeline.linkage_tokens(flagship, study, centre, KEY)))
        per_centre.append(time.perf_counter() - started)
    started = time.perf_counter()
    linkage = pipeline.link(tokens)
    link_s = time.perf_counter() - started

    files: dict[str, list[Path]] = {"exact": [], "released": [], "binned": [], "secure": []}
    export_s: list[float] = []
    secure_s: list[float] = []
    keys = {centre: pipeline.secure_keys(flagship, centre) for centre in centres}
    peers = [(centre, public) for centre, (public, _private) in keys.items()]
    for centre in centres:
        for mode, overrides in (("exact", {"min_cell_count": 0, "time_bin_days": 0}), ("released", {}),
                                ("binned", {"min_cell_count": 0})):
            started = time.perf_counter()
            package = pipeline.site_export(flagship, study, centre, linkage=linkage, **overrides)  # type: ignore[arg-type]
            export_s.append(time.perf_counter() - started)
            folder = out / mode
            folder.mkdir(exist_ok=True)
            files[mode].append(package.write(folder / f"{centre}.json"))
        started = time.perf_counter()
        masked = pipeline.site_export_secure(flagship, study, centre, peers=peers, private_key=keys[centre][1],
                                             linkage=linkage)
        secure_s.append(time.perf_counter() - started)
        (out / "secure").mkdir(exist_ok=True)
        files["secure"].append(masked.write(out / "secure" / f"{centre}.json"))

    timings: dict[str, float] = {"link": link_s}
    started = time.perf_counter()
    packages = [SitePackage.read(p) for p in files["exact"]]
    timings["verify"] = time.perf_counter() - started
    started = time.perf_counter()
    combine(packages, flagship)
    timings["combine"] = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.combine_packages(flagship, files["exact"], out / "report-exact")
    timings["combine_report"] = time.perf_counter() - started
    started = time.perf_counter()
    masked_packages = [read_package(p) for p in files["secure"]]
    timings["secure_verify"] = time.perf_counter() - started
    started = time.perf_counter()
    secure_result = combine_secure(masked_packages, flagship)
    timings["secure_combine"] = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.combine_packages(flagship, files["secure"], out / "report-secure")
    timings["secure_combine_report"] = time.perf_counter() - started

    run = pipeline.run_study(protocol_ref=flagship, data_dir=study, out_dir=out / "report-pooled")
    started = time.perf_counter()
    pooled_result = analysis.run(run.analysis_table, flagship, attrition=run.analysis.tables["attrition"])
    pooled_analysis = time.perf_counter() - started
    started = time.perf_counter()
    report.run(pooled_result, out / "report-pooled-again")
    pooled_report = time.perf_counter() - started

    print(f"centres: {len(centres)}, patients: {run.analysis_table.height}, linked duplicates: "
          f"{sum(len(v) for v in linkage['centres'].values())}")
    print(f"per centre (median): linkage tokens {statistics.median(per_centre):.2f} s, site package "
          f"{statistics.median(export_s):.2f} s, masked package {statistics.median(secure_s):.2f} s "
          f"({files['secure'][0].stat().st_size / 1e6:.1f} MB each)")
    for name, seconds in timings.items():
        print(f"{name:16s} {seconds:8.3f} s")
    print(f"pooled analysis  {pooled_analysis:8.3f} s; pooled analysis + report {pooled_analysis + pooled_report:.3f} s; "
          f"combine_report / (pooled analysis + report) = {timings['combine_report'] / (pooled_analysis + pooled_report):.2f}")
    assert timings["combine_report"] < 10.0, "combine of 24 packages over 10 s"

    released = combine([SitePackage.read(p) for p in files["released"]], flagship).result.tables["published"]
    exact = combine(packages, flagship).result.tables["published"]
    joined = exact.select("key", "published_text", pl.col("reproduced_value").alias("exact")).join(
        released.select("key", pl.col("reproduced_value").alias("released")), on="key", how="left")
    joined = joined.with_columns((pl.col("released") - pl.col("exact")).alias("difference"))
    with pl.Config(tbl_rows=100, tbl_width_chars=140, fmt_str_lengths=40):
        print("published figures, exact packages vs default disclosure settings:")
        print(joined)
    finite = joined.filter(pl.col("difference").is_not_null())
    print(f"{finite.height} figures compared; largest absolute difference "
          f"{finite['difference'].abs().max():.3f} ({finite.sort(pl.col('difference').abs())['key'][-1]}); "
          f"{joined.height - finite.height} not estimable from the released packages")
    modes = {"exact": combine(packages, flagship), "per-centre suppression (defaults)": combine(
        [SitePackage.read(p) for p in files["released"]], flagship),
        "binning only": combine([SitePackage.read(p) for p in files["binned"]], flagship),
        "secure aggregation (defaults)": secure_result}
    print("published figures and the paper, per mode (status of published.csv):")
    for mode, combined in modes.items():
        status = dict(combined.result.tables["published"].group_by("status").len().iter_rows())
        print(f"  {mode:36s} " + ", ".join(f"{k} {v}" for k, v in sorted(status.items())))


if __name__ == "__main__":
    main()
