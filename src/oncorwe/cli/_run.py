"""The ``oncorwe run`` command: a whole study from centre files to the report.

Without arguments it reproduces the flagship study on synthetic data: the 24-centre study is
generated once into ``./oncorwe-work/goldinger2022/`` (reused when complete), the ``goldinger2022``
protocol runs on it, and the report goes to ``./oncorwe-report/``.

Exit codes: 0 done; 1 an analysis could not be computed; 2 bad input or protocol (one line per
problem); see docs/errors.md.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from oncorwe.analysis import agreement_counts
from oncorwe.errors import StageFailed
from oncorwe.pipeline import STAGES, RunResult, run_study

__all__ = ["ensure_synthetic_study", "headline_rows", "register", "run"]

DEFAULT_STUDY = "goldinger2022"
DEFAULT_WORK = Path("oncorwe-work")
DEFAULT_OUT = Path("oncorwe-report")
DEFAULT_SEED = 2022
_MARKER = ".oncorwe-synthetic.json"  # written last: its presence means the folder is complete


def ensure_synthetic_study(folder: Path, *, study: str, seed: int, console: Console | None = None) -> Path:
    """The synthetic study in ``folder``, generated unless a complete one with this seed is there.

    Generated into a temporary folder beside it and renamed, so an interrupted generation is never
    mistaken for a complete study.
    """
    marker = folder / _MARKER
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        if recorded == {"study": study, "seed": seed}:
            return folder
    # The command line may use synth; the pipeline never does.
    from oncorwe.synth import generate_study

    if console is not None:
        console.print(f"generating the synthetic {study} study (seed {seed}) into {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        generate_study(study, tmp, seed=seed)
        (tmp / _MARKER).write_text(json.dumps({"study": study, "seed": seed}) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def headline_rows(result: RunResult) -> list[tuple[str, str]]:
    """(label, value) pairs of the headline results, for the summary table and ``--json``."""
    tables = result.analysis.tables
    info = result.analysis.info
    rows = [("Patients (centres)", f"{info['n_patients']} ({info['n_centres']})")]

    def ci(value: Any, lower: Any, upper: Any, unit: str = "") -> str:
        def f(x: Any) -> str:
            return "NR" if x is None else f"{x:.1f}"
        return f"{f(value)}{unit} (95% CI {f(lower)}-{f(upper)})"

    resp = tables["response"].filter((pl.col("group_var") == "overall") & (pl.col("category") == "ORR"))
    if resp.height:
        r = resp.row(0, named=True)
        rows.append(("Objective response rate", ci(r["percent"], r["lower"], r["upper"], "%")))
    for endpoint, label in (("pfs", "Median PFS, months"), ("os", "Median OS, months")):
        s = tables["survival_summary"].filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == "overall"))
        if s.height:
            r = s.row(0, named=True)
            rows.append((label, ci(r["median"], r["median_lower"], r["median_upper"])))
    fu = tables["descriptives"].filter(pl.col("measure") == "median_followup_months") if tables["descriptives"].height else None
    if fu is not None and fu.height:
        rows.append(("Median follow-up, months", "NR" if fu["value"][0] is None else f"{fu['value'][0]:.1f}"))
    pub = tables["published"]
    if pub.height:
        agree, counted = agreement_counts(pub)
        rows.append(("Published figures reproduced", f"{agree} of {counted}"))
    return rows


def run(
    protocol: Annotated[str | None, typer.Option("--protocol", help="Protocol file (TOML/YAML) or shipped name; default goldinger2022.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Study folder with centres.toml and one folder per centre.")] = None,
    omop: Annotated[list[str] | None, typer.Option("--omop", help="OMOP CDM database as CENTRE=URI#schema (centre and schema optional); repeatable.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Report folder (replaced atomically).")] = DEFAULT_OUT,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic study (when --data is not given).")] = DEFAULT_SEED,
    work: Annotated[Path, typer.Option("--work", help="Where the synthetic study is generated.")] = DEFAULT_WORK,
    database: Annotated[str | None, typer.Option("--database", help="Canonical tables' database (default in-memory DuckDB).")] = None,
    engine_memory: Annotated[str | None, typer.Option("--engine-memory", help="Memory limit of the DuckDB engine, e.g. 2GB (beyond it, it spills to a temporary folder); default DuckDB's own, 80% of RAM.")] = None,
    shareable: Annotated[bool, typer.Option("--shareable", help="Suppress counts below the protocol's min_cell_count.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the report's path (and errors).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout, nothing else.")] = False,
) -> None:
    """Run a study end to end: centre files -> harmonise -> cohort -> endpoints -> analysis -> report."""
    err = Console(stderr=True, quiet=quiet or as_json)
    omop_list = list(omop or [])
    protocol_ref = protocol or DEFAULT_STUDY
    seed_used: int | None = None
    if data is None and not omop_list:
        if protocol is not None and protocol != DEFAULT_STUDY:
            _fail(2, "protocol", ["--data (a study folder) or --omop is required with --protocol"], as_json)
        data = ensure_synthetic_study(work / DEFAULT_STUDY, study=DEFAULT_STUDY, seed=seed, console=err)
        seed_used = seed

    progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), TimeElapsedColumn(),
                        console=err, transient=False, disable=quiet or as_json)
    tasks = {name: progress.add_task(name, total=1, start=False) for name in STAGES}

    def on_stage(name: str, status: str) -> None:
        if name not in tasks:
            return
        if status == "start":
            progress.start_task(tasks[name])
        else:
            progress.update(tasks[name], completed=1)

    try:
        with progress:
            result = run_study(protocol_ref=protocol_ref, data_dir=data, out_dir=out, omop=omop_list,
                               database=database, shareable=shareable, seed=seed_used, on_stage=on_stage,
                               engine_memory=engine_memory)
    except StageFailed as failure:
        _fail(failure.exit_code, failure.stage, list(failure.problems), as_json)

    rows = headline_rows(result)
    if as_json:
        typer.echo(json.dumps({
            "status": "done", "report": str(result.report_path),
            "headline": dict(rows), "timings": result.timings, "quarantined_values": result.n_quarantined,
        }, indent=2))
        return
    if quiet:
        typer.echo(str(result.report_path))
        return
    table = Table(title=result.analysis.info.get("title") or "Results")
    table.add_column("Result")
    table.add_column("Value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    out_console = Console()
    out_console.print(table)
    out_console.print(f"Report written to {result.report_path}")


def _fail(code: int, stage: str, problems: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"status": "failed", "stage": stage, "exit_code": code, "problems": problems}, indent=2))
    for line in problems:
        print(f"error: [{stage}] {line}", file=sys.stderr)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""
    app.command("run")(run)
