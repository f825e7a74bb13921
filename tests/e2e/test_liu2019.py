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

from liu_study import TSV
from rsupport import run_r

PROTOCOL = Path(__file__).resolve().parents[2] / "src" / "oncorwe" / "protocol" / "studies" / "liu2019.toml"


CENTRES_TOML = """
[centres.dfci]
country = "US"
files = ["Supplemental_Table_1_wAge.tsv"]
[centres.dfci.overrides]
time_units = { PFS = "days", OS = "days", TimeToBR = "days" }
# MR (mixed response) is no RECIST category; the authors never count it as a response.
codes = { best_response = { "MR" = "NE" } }
"""

#: R on the per-patient table the pipeline analysed: every number of the analysis must equal R's.
R_TABLE = """
d <- tab
d$ecog <- as.numeric(d$ecog)
d$ldh <- as.integer(as.logical(d$ldh_elevated))
d$prior <- relevel(factor(d$prior_ici_class), ref = "none")
d$m1c <- as.integer(as.logical(d$m1c_or_worse))
d$brain <- as.integer(as.logical(d$brain_metastases))
d$sex <- relevel(factor(d$sex), ref = "female")
rows <- list()
for (ep in c("pfs", "os")) {
  f <- as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ 1"))
  tb <- summary(survfit(f, data = d))$table
  rows[[ep]] <- data.frame(endpoint = ep, median = tb["median"], lower = tb["0.95LCL"], upper = tb["0.95UCL"],
                           events = tb["events"])
  sd <- survdiff(as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ m1c")), data = d)
  put(paste0(ep, "_logrank"), data.frame(chisq = sd$chisq))
  cf <- coxph(as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ ldh + ecog + m1c + prior + brain + sex")),
              data = d)
  put(paste0(ep, "_cox"), data.frame(hr = exp(coef(cf)), p = summary(cf)$coefficients[, "Pr(>|z|)"], n = cf$n))
}
put("medians", do.call(rbind, rows))
"""

#: R on the authors' raw table: what the pipeline derives from it (patients, responders, LDH elevated,
#: prior anti-CTLA-4, OS and its Cox model) must equal R's reading of the same file.
R_RAW = """
d <- liu
d <- d[!is.na(d$Tx) & d$Tx != "", ]
num <- function(x) suppressWarnings(as.numeric(as.character(x)))
d$os <- num(d$OS) / (365.25 / 12); d$os_event <- num(d$dead)
d$ecog <- num(d$Tx_Start_ECOG)
d$m1c <- ifelse(num(d$Mstage) %in% c(0, 1, 2, 3), as.integer(num(d$Mstage) == 3), NA)
d$brain <- num(d$Brain_Met)
d$ldh <- num(d$LDH_Elevated)  # "unknown" -> NA
d$prior <- ifelse(num(d$priorCTLA4) == 1, "anti_ctla4", "none")
d$prior <- relevel(factor(d$prior), ref = "none")
d$sex <- relevel(factor(ifelse(num(d$gender) == 1, "male", "female")), ref = "female")
put("counts", data.frame(n = nrow(d), responders = sum(d$BR %in% c("CR", "PR")),
                         progressed = sum(num(d$progressed) == 1, na.rm = TRUE),
                         ldh_elevated = sum(d$ldh == 1, na.rm = TRUE), ldh_normal = sum(d$ldh == 0, na.rm = TRUE),
                         prior_ctla4 = sum(d$prior == "anti_ctla4")))
tb <- summary(survfit(Surv(os, os_event) ~ 1, data = d))$table
put("os", data.frame(median = tb["median"], lower = tb["0.95LCL"], upper = tb["0.95UCL"], events = tb["events"]))
put("os_logrank", data.frame(chisq = survdiff(Surv(os, os_event) ~ m1c, data = d)$chisq))
cf <- coxph(Surv(os, os_event) ~ ldh + ecog + m1c + prior + brain + sex, data = d)
put("os_cox", data.frame(hr = exp(coef(cf)), n = cf$n))
"""


def _close(a: float | None, b: float | None, tol: float = 1e-6) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


@dataclass(frozen=True)
class LiuRun:
    analysis: AnalysisResult
    table: pl.DataFrame
    report_path: Path


@pytest.fixture(scope="module")
def liu_run(liu2019_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LiuRun:
    def make(study: Path) -> None:
        (study / "dfci").mkdir()
        shutil.copy(liu2019_dir / TSV, study / "dfci" / TSV)
        (study / "centres.toml").write_text(CENTRES_TOML, encoding="utf-8")
        result = run_study(protocol_ref=PROTOCOL, data_dir=study, out_dir=study / "report")
        result.analysis.write(study / "analysis")
        result.analysis_table.write_parquet(study / "analysis_table.parquet")

    study = produce_once(tmp_path_factory, "liu2019", make)  # one run shared by the xdist workers
    return LiuRun(AnalysisResult.read(study / "analysis"), pl.read_parquet(study / "analysis_table.parquet"),
                  study / "report" / "report.html")


@pytest.fixture(scope="module")
def r_table(liu_run: LiuRun) -> dict[str, pl.DataFrame]:
    columns = ["pfs_months", "pfs_event", "os_months", "os_event", "ldh_elevated", "ecog", "m1c_or_worse",
               "prior_ici_class", "brain_metastases", "sex"]
    outputs = ("medians", "pfs_logrank", "os_logrank", "pfs_cox", "os_cox")
    return run_r(R_TABLE, inputs={"tab": liu_run.table.select(columns)}, outputs=outputs)


@pytest.fixture(scope="module")
def r_raw(liu2019_dir: Path) -> dict[str, pl.DataFrame]:
    raw = pl.read_csv(liu2019_dir / TSV, separator="\t", infer_schema_length=0)
    raw = raw.rename({"gender (Male=1, Female=0)": "gender", "Mstage (IIIC=0, M1a=1, M1b=2, M1c=3)": "Mstage"})
    columns = ["Tx", "BR", "PFS", "OS", "progressed", "dead", "Tx_Start_ECOG", "Mstage", "Brain_Met", "gender",
               "LDH_Elevated", "priorCTLA4"]
    return run_r(R_RAW, inputs={"liu": raw.select(columns)}, outputs=("counts", "os", "os_logrank", "os_cox"))


def _overall(result: AnalysisResult, endpoint: str) -> dict[str, object]:
    return result["survival_summary"].filter((pl.col("endpoint") == endpoint)
                                             & (pl.col("group_var") == "overall")).row(0, named=True)


def test_liu_analysis_equals_r_on_the_analysed_table(liu_run: LiuRun, r_table: dict[str, pl.DataFrame]) -> None:
    result = liu_run.analysis
    for r_row in r_table["medians"].iter_rows(named=True):
        mine = _overall(result, r_row["endpoint"])
        assert mine["events"] == r_row["events"]
        assert _close(mine["median"], r_row["median"]), (mine, r_row)
        assert _close(mine["median_lower"], r_row["lower"]) and _close(mine["median_upper"], r_row["upper"])
        lr = result["logrank"].filter((pl.col("endpoint") == r_row["endpoint"]) & (pl.col("group_var") == "m1c_or_worse"))
        assert _close(lr["statistic"][0], r_table[f"{r_row['endpoint']}_logrank"]["chisq"][0])
    for endpoint in ("pfs", "os"):
        mine = result["cox"].filter(pl.col("endpoint") == endpoint)
        theirs = r_table[f"{endpoint}_cox"]
        assert mine.height == theirs.height == 6
        assert mine["term"].to_list()[:4] == ["ldh_elevated", "ecog", "m1c_or_worse", "prior_ici_class=anti_ctla4"]
        for (hr, p), r_row in zip(mine.select("hazard_ratio", "p_value").rows(), theirs.iter_rows(named=True), strict=True):
            assert _close(hr, r_row["hr"], 1e-5) and _close(p, r_row["p"], 1e-4), r_row
        model = result["cox_models"].filter(pl.col("endpoint") == endpoint).row(0, named=True)
        assert model["n"] == theirs["n"][0]


def test_liu_pipeline_equals_r_on_the_raw_table(liu_run: LiuRun, r_raw: dict[str, pl.DataFrame]) -> None:
    """From the authors' file through every stage: patients, responders (MR is no response), OS."""
    result = liu_run.analysis
    counts = r_raw["counts"].row(0, named=True)
    assert result.info["n_patients"] == counts["n"] == 144
    orr = result["response"].filter((pl.col("group_var") == "overall") & (pl.col("category") == "ORR")).row(0, named=True)
    assert orr["n"] == counts["responders"]
    os_mine, os_r = _overall(result, "os"), r_raw["os"].row(0, named=True)
    assert os_mine["events"] == os_r["events"]
    assert _close(os_mine["median"], os_r["median"]) and _close(os_mine["median_lower"], os_r["lower"])
    assert _close(os_mine["median_upper"], os_r["upper"])
    lr = result["logrank"].filter((pl.col("endpoint") == "os") & (pl.col("group_var") == "m1c_or_worse"))
    assert _close(lr["statistic"][0], r_raw["os_logrank"]["chisq"][0])
    # LDH enters as the authors' own flag (no ULN in the table), prior anti-CTLA-4 as a dated line
    table = liu_run.table
    assert table.filter(pl.col("ldh_elevated") == True).height == counts["ldh_elevated"]  # noqa: E712
    assert table.filter(pl.col("ldh_elevated") == False).height == counts["ldh_normal"]  # noqa: E712
    assert table.filter(pl.col("prior_ici_class") == "anti_ctla4").height == counts["prior_ctla4"]
    assert table.filter(pl.col("prior_ici_class") == "none").height == counts["n"] - counts["prior_ctla4"]
    assert set(table["regimen_class"].to_list()) == {"pembrolizumab", "nivolumab"}  # the index is still anti-PD-1
    hr = result["cox"].filter(pl.col("endpoint") == "os")["hazard_ratio"].to_list()
    assert len(hr) == r_raw["os_cox"].height == 6
    assert all(_close(a, b, 1e-5) for a, b in zip(hr, r_raw["os_cox"]["hr"].to_list(), strict=True))
    assert result["cox_models"].filter(pl.col("endpoint") == "os")["n"][0] == r_raw["os_cox"]["n"][0]
    # PFS events: the authors' progressions plus deaths without progression (PFS counts death).
    pfs = _overall(result, "pfs")
    died_first = liu_run.table.filter((pl.col("pfs_event") == 1) & (pl.col("pfs_months") == pl.col("os_months"))
                                      & (pl.col("os_event") == 1))
    assert pfs["events"] >= counts["progressed"] and pfs["events"] <= counts["progressed"] + died_first.height


def test_liu_report_written(liu_run: LiuRun) -> None:
    assert liu_run.report_path.is_file()
    assert liu_run.analysis["published"].height == 0  # the paper publishes no such figures
