"""Speed of oncorwe.stats against lifelines, scikit-survival, statsmodels and R ``survival``.

Not part of the test suite. For each size (default 10^4, 10^5, 10^6 patients; 30% censored, times
rounded to 2 decimals so ties exist, 5 normal covariates, 2 groups) every implementation runs, on
the same data in the same run:

* KM        Kaplan-Meier curve          (R ``survfit``)
* log-rank  two groups                  (R ``survdiff``)
* Cox       Efron ties, standard errors (R ``coxph``, which also computes the concordance)

Each (implementation, task, size) runs in its own subprocess on data written beforehand, timed
around the call only (best of up to 3 runs while a run takes < 5 s); R is timed with
``system.time`` inside R on data already read. A peer is skipped at a size when it timed out at a
smaller one or its time extrapolated linearly would exceed ``--cap`` seconds. Peak memory of oncorwe
is measured in its subprocess: the tracemalloc peak during the call (numpy reports its buffers) and
the process's peak resident set size.

    python benchmarks/bench_stats.py                 # 10^4, 10^5, 10^6 (about 5-10 minutes)
    python benchmarks/bench_stats.py --sizes 1e4,1e5 --cap 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("km", "logrank", "cox")
PEERS = ("oncorwe", "lifelines", "sksurv", "statsmodels", "R")
COVARIATES = [f"x{i}" for i in range(1, 6)]


def make_data(n: int, seed: int) -> dict[str, np.ndarray]:
    """n patients: 5 covariates, exponential times rounded to 2 decimals, 30% censored, 2 groups."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    beta = np.array([0.3, -0.2, 0.1, 0.0, 0.05])
    group = rng.integers(0, 2, size=n)
    hazard = np.exp(x @ beta + 0.2 * group)
    time_ = np.round(rng.exponential(1 / hazard), 2)
    event = (rng.random(n) >= 0.3).astype(np.int64)
    data = {"time": time_, "event": event, "group": group}
    data.update({name: x[:, i] for i, name in enumerate(COVARIATES)})
    return data


# --- one task in a worker process ---------------------------------------------------------------

def _task(peer: str, task: str, data: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The call to time (data preparation happens here, outside the timing)."""
    time_, event, group = data["time"], data["event"], data["group"]
    if peer == "oncorwe":
        import polars as pl

        from oncorwe.stats import cox_ph, kaplan_meier, logrank_test

        if task == "km":
            return lambda: kaplan_meier(time_, event)
        if task == "logrank":
            return lambda: logrank_test(time_, event, group)
        frame = pl.DataFrame({k: data[k] for k in ("time", "event", *COVARIATES)})
        if task == "cox":
            return lambda: cox_ph(frame, time="time", event="event", covariates=COVARIATES)
        # cox_c: the fit and its concordance with standard error (what R's coxph computes)
        return lambda: cox_ph(frame, time="time", event="event", covariates=COVARIATES).concordance
    if peer == "lifelines":
        import pandas as pd
        from lifelines import CoxPHFitter, KaplanMeierFitter
        from lifelines.statistics import logrank_test as ll_logrank

        if task == "km":
            return lambda: KaplanMeierFitter().fit(time_, event)
        if task == "logrank":
            a, b = group == 0, group == 1
            return lambda: ll_logrank(time_[a], time_[b], event[a], event[b])
        frame = pd.DataFrame({k: data[k] for k in ("time", "event", *COVARIATES)})
        return lambda: CoxPHFitter().fit(frame, "time", "event")
    if peer == "sksurv":
        from sksurv.compare import compare_survival
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.nonparametric import kaplan_meier_estimator
        from sksurv.util import Surv

        y = Surv.from_arrays(event.astype(bool), time_)
        if task == "km":
            return lambda: kaplan_meier_estimator(event.astype(bool), time_)
        if task == "logrank":
            return lambda: compare_survival(y, group)
        x = np.column_stack([data[k] for k in COVARIATES])
        # scikit-survival gives no standard errors: its time is for the coefficients only
        return lambda: CoxPHSurvivalAnalysis(ties="efron").fit(x, y)
    if peer == "statsmodels":
        from statsmodels.duration.hazard_regression import PHReg
        from statsmodels.duration.survfunc import SurvfuncRight, survdiff

        if task == "km":
            return lambda: SurvfuncRight(time_, event)
        if task == "logrank":
            return lambda: survdiff(time_, event, group)
        x = np.column_stack([data[k] for k in COVARIATES])
        return lambda: PHReg(time_, x, status=event, ties="efron").fit().bse
    raise ValueError(f"unknown peer {peer!r}")


def worker(peer: str, task: str, path: str, measure_memory: bool) -> None:
    loaded = np.load(path)
    data = {k: loaded[k] for k in loaded.files}
    call = _task(peer, task, data)
    times: list[float] = []
    while len(times) < 3:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        if times[-1] > 5:
            break
    result: dict[str, float] = {"seconds": min(times)}
    if measure_memory:
        tracemalloc.start()
        call()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["peak_mib"] = peak / 2**20
        result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# --- R ------------------------------------------------------------------------------------------

R_SCRIPT = """
suppressPackageStartupMessages(library(survival))
d <- read.csv("{csv}")
best <- function(expr) {{
  times <- c()
  repeat {{
    t <- system.time(eval(expr))[["elapsed"]]
    times <- c(times, t)
    if (length(times) >= 3 || t > 5) break
  }}
  min(times)
}}
km <- best(quote(survfit(Surv(time, event) ~ 1, data = d)))
lr <- best(quote(survdiff(Surv(time, event) ~ group, data = d)))
cx <- best(quote(coxph(Surv(time, event) ~ x1 + x2 + x3 + x4 + x5, data = d)))
cat(sprintf("%.6f,%.6f,%.6f\\n", km, lr, cx))
"""


def run_r(data: dict[str, np.ndarray], workdir: Path, timeout: float) -> dict[str, float | None]:
    if shutil.which("Rscript") is None:
        return dict.fromkeys(TASKS)
    csv = workdir / "data.csv"
    columns = ["time", "event", "group", *COVARIATES]
    matrix = np.column_stack([data[c] for c in columns])
    np.savetxt(csv, matrix, delimiter=",", header=",".join(columns), comments="", fmt="%.17g")
    script = workdir / "bench.R"
    script.write_text(R_SCRIPT.format(csv=csv.as_posix()), encoding="utf-8")
    try:
        proc = subprocess.run(["Rscript", "--vanilla", str(script)], capture_output=True, text=True,
                              timeout=timeout, check=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return dict.fromkeys(TASKS)
    km, lr, cx = (float(v) for v in proc.stdout.strip().splitlines()[-1].split(","))
    return {"km": km, "logrank": lr, "cox": cx}


# --- driver -------------------------------------------------------------------------------------

def _run_worker(peer: str, task: str, path: Path, cap: float, memory: bool) -> dict[str, float] | None:
    command = [sys.executable, __file__, "--worker", peer, task, str(path)]
    if memory:
        command.append("--memory")
    try:
        # the cap bounds the timed call; 30 s more for start-up (imports, loading the data)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=cap + 30, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        print(f"  {peer} {task} failed: {exc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _label(n: int) -> str:
    exponent = math.log10(n)
    return f"10^{exponent:g}" if exponent.is_integer() else str(n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated numbers of patients")
    parser.add_argument("--cap", type=float, default=60.0, help="skip a peer above this many seconds")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--worker", nargs=3, metavar=("PEER", "TASK", "NPZ"), help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, measure_memory=args.memory)
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    tasks = [*TASKS, "cox_c"]
    results: dict[tuple[str, str, int], float | str] = {}
    memory: dict[tuple[str, int], dict[str, float]] = {}
    last: dict[tuple[str, str], tuple[int, float]] = {}
    started = time.perf_counter()
    print(f"# bench_stats: sizes {sizes}, cap {args.cap:g} s, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="oncorwe-bench-") as tmp:
        workdir = Path(tmp)
        for n in sizes:
            data = make_data(n, args.seed)
            path = workdir / f"data_{n}.npz"
            np.savez(path, **data)
            for peer in peers:
                if peer == "R":
                    r_times = run_r(data, workdir, timeout=max(600.0, args.cap * 10))
                    for task, seconds in r_times.items():
                        results[(peer, task, n)] = seconds if seconds is not None else "failed"
                    print(f"  {_label(n)} R: {r_times}", flush=True)
                    continue
                for task in tasks:
                    if task == "cox_c" and peer != "oncorwe":
                        continue
                    previous = last.get((peer, task))
                    if previous is not None:
                        size_before, seconds_before = previous
                        if seconds_before == math.inf or seconds_before * n / size_before > args.cap:
                            shown = ">" + f"{args.cap:g}" if seconds_before == math.inf else f"{seconds_before:.1f}"
                            results[(peer, task, n)] = f"skipped (too slow, {shown} s at {_label(size_before)})"
                            continue
                    out = _run_worker(peer, task, path, args.cap, memory=peer == "oncorwe")
                    if out is None:
                        results[(peer, task, n)] = f"skipped (too slow, >{args.cap:g} s at {_label(n)})"
                        last[(peer, task)] = (n, math.inf)
                        continue
                    results[(peer, task, n)] = out["seconds"]
                    last[(peer, task)] = (n, out["seconds"])
                    if peer == "oncorwe":
                        memory[(task, n)] = out
                    print(f"  {_label(n)} {peer} {task}: {out['seconds']:.4f} s", flush=True)
    print_tables(sizes, peers, tasks, results, memory)
    print(f"\n(total run {time.perf_counter() - started:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.2f})")


def _cell(value: float | str | None) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return value or "-"


def print_tables(
    sizes: list[int],
    peers: list[str],
    tasks: list[str],
    results: dict[tuple[str, str, int], float | str],
    memory: dict[tuple[str, int], dict[str, float]],
) -> None:
    names = {"km": "Kaplan-Meier", "logrank": "log-rank (2 groups)", "cox": "Cox (Efron, with SEs)"}
    for task in TASKS:
        columns = [p for p in peers]
        print(f"\n### {names[task]}: seconds (ratio = peer / oncorwe)\n")
        header = ["n", *columns]
        if task == "cox" and "oncorwe" in peers:
            header.insert(2, "oncorwe + concordance")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for n in sizes:
            ours = results.get(("oncorwe", task, n))
            row = [_label(n)]
            for peer in columns:
                value = results.get((peer, task, n))
                text = _cell(value)
                if peer != "oncorwe" and isinstance(value, float) and isinstance(ours, float) and ours > 0:
                    ratio = value / ours
                    text += f" ({ratio:.1f}x)" if ratio >= 1 else f" ({ratio:.2f}x)"
                row.append(text)
                if peer == "oncorwe" and task == "cox":
                    row.append(_cell(results.get(("oncorwe", "cox_c", n))))
            print("| " + " | ".join(row) + " |")
    if memory:
        print("\n### oncorwe peak memory (MiB): tracemalloc peak during the call / process peak RSS\n")
        print("| n | " + " | ".join(names.get(t, "Cox + concordance") for t in tasks) + " |")
        print("|" + "---|" * (len(tasks) + 1))
        for n in sizes:
            cells = []
            for task in tasks:
                m = memory.get((task, n))
                cells.append(f"{m['peak_mib']:.0f} / {m['rss_mib']:.0f}" if m else "-")
            print(f"| {_label(n)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
