"""The same pipeline on real data: the Liu 2019 anti-PD-1 cohort (144 patients), from the authors'
supplementary table through harmonise, cohort, endpoints, analysis and report, with a small protocol
of its own (src/oncorwe/protocol/studies/liu2019.toml), compared with R's survival run on the raw
table itself."""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from oncorwe.analysis import AnalysisResult
from oncorwe.pipeline import run_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from once import produce_once

from rsupport import run_r

PROTOCOL = Path(__file__).resolve().parents[2] / "src" / "oncorwe" / "protocol" / "studies" / "liu2019.toml"
TSV = "Supplemental_Table_1_wAge.tsv"

CENTRES_TOML = """
[centres.dfci]
country = "US"
files = ["Supplemental_Table_1_wAge.tsv"]
[centres.dfci.overrides]
time_units = { PFS = "days", OS = "days", TimeToBR = "days" }
# MR (mixed response) is no RECIST category; the authors never count it as a response.
codes = { best_response = { "MR" = "NE" } }
"""

R_SCRIPT = """
d <- liu
d <- d[!is.na(d$Tx) & d$Tx != "", ]
num <- function(x) suppressWarnings(as.numeric(as.character(x)))
d$pfs <- num(d$PFS) / (365.25 / 12); d$os <- num(d$OS) / (365.25 / 12)
d$pfs_event <- num(d$progressed); d$os_event <- num(d$dead)
d$ecog <- num(d$Tx_Start_ECOG)
d$m1c <- ifelse(num(d$Mstage) %in% c(0, 1, 2, 3), as.integer(num(d$Mstage) == 3), NA)
d$brain <- num(d$Brain_Met)
d$sex <- relevel(factor(ifelse(num(d$gender) == 1, "male", "female")), ref = "female")
put("counts", data.frame(n = nrow(d), responders = sum(d$BR %in% c("CR", "PR"))))
rows <- list()
for (ep in c("pfs", "os")) {
  fit <- survfit(as.formula(paste0("Surv(", ep, ", ", ep, "_event) ~ 1")), data = d)
  tb <- summary(fit)$table
  rows[[ep]] <- data.frame(endpoint = ep, median = tb["median"], lower = tb["0.95LCL"], upper = tb["0.95UCL"],
                           events = tb["events"])
  sd <- survdiff(as.formula(paste0("Surv(", ep, ", ", ep, "_event) ~ m1c")), data = d)
  put(paste0(ep, "_logrank"), data.frame(chisq = sd$chisq))
  cf <- coxph(as.formula(paste0("Surv(", ep, ", ", ep, "_event) ~ ecog + m1c + brain + sex")), data = d)
  put(paste0(ep, "_cox"), data.frame(hr = exp(coef(cf)), n = cf$n))
}
put("medians", do.call(rbind, rows))
"""


def _close(a: float | None, b: float | None, tol: float = 1e-6) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


@dataclass(frozen=True)
class LiuRun:
    analysis: AnalysisResult
    report_path: Path


@pytest.fixture(scope="module")
def liu_run(liu2019_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LiuRun:
    def make(study: Path) -> None:
        (study / "dfci").mkdir()
        shutil.copy(liu2019_dir / TSV, study / "dfci" / TSV)
        (study / "centres.toml").write_text(CENTRES_TOML, encoding="utf-8")
        result = run_study(protocol_ref=PROTOCOL, data_dir=study, out_dir=study / "report")
        result.analysis.write(study / "analysis")

    study = produce_once(tmp_path_factory, "liu2019", make)  # one run shared by the xdist workers
    return LiuRun(AnalysisResult.read(study / "analysis"), study / "report" / "report.html")


@pytest.fixture(scope="module")
def r_liu(liu2019_dir: Path) -> dict[str, pl.DataFrame]:
    raw = pl.read_csv(liu2019_dir / TSV, separator="\t", infer_schema_length=0)
    raw = raw.rename({"gender (Male=1, Female=0)": "gender", "Mstage (IIIC=0, M1a=1, M1b=2, M1c=3)": "Mstage"})
    columns = ["Tx", "BR", "PFS", "OS", "progressed", "dead", "Tx_Start_ECOG", "Mstage", "Brain_Met", "gender"]
    outputs = ("counts", "medians", "pfs_logrank", "os_logrank", "pfs_cox", "os_cox")
    return run_r(R_SCRIPT, inputs={"liu": raw.select(columns)}, outputs=outputs)


def test_liu_response_and_survival_equal_r(liu_run: LiuRun, r_liu: dict[str, pl.DataFrame]) -> None:
    result = liu_run.analysis
    counts = r_liu["counts"].row(0, named=True)
    assert result.info["n_patients"] == counts["n"]
    orr = result["response"].filter((pl.col("group_var") == "overall") & (pl.col("category") == "ORR")).row(0, named=True)
    assert orr["n"] == counts["responders"]
    for r_row in r_liu["medians"].iter_rows(named=True):
        mine = result["survival_summary"].filter((pl.col("endpoint") == r_row["endpoint"])
                                                 & (pl.col("group_var") == "overall")).row(0, named=True)
        assert mine["events"] == r_row["events"]
        assert _close(mine["median"], r_row["median"]), (mine, r_row)
        assert _close(mine["median_lower"], r_row["lower"]) and _close(mine["median_upper"], r_row["upper"])
        lr = result["logrank"].filter((pl.col("endpoint") == r_row["endpoint"]) & (pl.col("group_var") == "m1c_or_worse"))
        assert _close(lr["chisq"][0], r_liu[f"{r_row['endpoint']}_logrank"]["chisq"][0])


def test_liu_cox_equals_coxph(liu_run: LiuRun, r_liu: dict[str, pl.DataFrame]) -> None:
    for endpoint in ("pfs", "os"):
        mine = liu_run.analysis["cox"].filter(pl.col("endpoint") == endpoint)["hazard_ratio"].to_list()
        theirs = r_liu[f"{endpoint}_cox"]["hr"].to_list()
        assert len(mine) == len(theirs)
        assert all(_close(a, b, 1e-5) for a, b in zip(mine, theirs, strict=True)), (mine, theirs)
        model = liu_run.analysis["cox_models"].filter(pl.col("endpoint") == endpoint).row(0, named=True)
        assert model["n"] == r_liu[f"{endpoint}_cox"]["n"][0]


def test_liu_report_written(liu_run: LiuRun) -> None:
    assert liu_run.report_path.is_file()
    assert liu_run.analysis["published"].height == 0  # the paper publishes no such figures
