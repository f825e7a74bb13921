"""Run R (the oracle) on the same data as a test: data go in as CSV, results come back as CSV.

R is a hard requirement of the test suite: when ``Rscript`` or the ``survival`` package is missing,
these helpers raise (the test fails), they never skip. ``.ci/run`` installs both.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import polars as pl

__all__ = ["RMissingError", "run_r"]


class RMissingError(RuntimeError):
    """R or its survival package is not installed: install r-base-core and r-cran-survival."""


def _rscript() -> str:
    exe = shutil.which("Rscript")
    if exe is None:
        raise RMissingError("Rscript not found: apt-get install -y r-base-core r-cran-survival")
    return exe


def run_r(
    script: str,
    inputs: dict[str, pl.DataFrame] | None = None,
    outputs: tuple[str, ...] = ("out",),
    timeout: float = 300,
) -> dict[str, pl.DataFrame]:
    """Run an R script with ``library(survival)`` loaded.

    Each input frame is written to ``<name>.csv`` and read into R as a data frame called ``<name>``
    before the script runs; the script must write each output with ``put("<name>", data.frame)``,
    which writes numbers with 17 significant digits. Returns the outputs as polars frames.
    """
    with tempfile.TemporaryDirectory(prefix="oncorwe-r-") as tmp:
        work = Path(tmp)
        prelude = [
            "suppressPackageStartupMessages(library(survival))",
            "options(digits = 17, warn = 1)",
            "put <- function(name, df) { df <- as.data.frame(df);"
            " for (col in names(df)) if (is.numeric(df[[col]])) df[[col]] <- sprintf('%.17g', df[[col]]);"
            f" write.csv(df, file.path('{work.as_posix()}', paste0(name, '.out.csv')), row.names = FALSE) }}",
        ]
        for name, frame in (inputs or {}).items():
            path = work / f"{name}.csv"
            frame.write_csv(path)
            prelude.append(
                f"{name} <- read.csv('{path.as_posix()}', stringsAsFactors = FALSE, na.strings = c('', 'NA'))"
            )
        source = "\n".join(prelude) + "\n" + textwrap.dedent(script)
        (work / "script.R").write_text(source, encoding="utf-8")
        proc = subprocess.run(
            [_rscript(), "--vanilla", str(work / "script.R")],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            if "there is no package called" in proc.stderr:
                raise RMissingError(proc.stderr.strip())
            raise RuntimeError(f"R failed ({proc.returncode}):\n{proc.stderr}\n--- script ---\n{source}")
        result: dict[str, pl.DataFrame] = {}
        for name in outputs:
            path = work / f"{name}.out.csv"
            if not path.exists():
                raise RuntimeError(f"R script wrote no output {name!r}; stderr:\n{proc.stderr}")
            result[name] = pl.read_csv(path, null_values=["NA", "NaN", "Inf", "-Inf"], infer_schema_length=None)
        return result
