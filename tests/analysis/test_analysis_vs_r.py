"""The analysis stage's numbers equal R's on the same per-patient table: survfit medians and
rates, survdiff, coxph, binom.test, reverse-KM follow-up."""

from __future__ import annotations

import math

import polars as pl
import pytest

import oncorwe.analysis as analysis
from rsupport import run_r


def _rel(a: float | None, b: float | None, tol: float = 1e-6) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return (a is None) and (b is None or (isinstance(b, float) and math.isnan(b)))
    return abs(a - b) <= tol * max(1.0, abs(b))


R_SCRIPT = """
d <- tab
d$ecog <- as.numeric(d$ecog)
d$ldh_elevated <- as.integer(as.logical(d$ldh_elevated))
d$m1c_or_worse <- as.integer(as.logical(d$m1c_or_worse))
d$brain_metastases <- as.integer(as.logical(d$brain_metastases))
d$braf_v600 <- as.integer(as.logical(d$braf_v600))
d$sex <- relevel(factor(d$sex), ref = "female")
d$prior_ici_class <- relevel(factor(d$prior_ici_class), ref = "anti_ctla4")
d$regimen_class <- relevel(factor(d$regimen_class), ref = "dacarbazine")
med <- list()
for (ep in c("pfs", "os")) {
  f <- as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ regimen_class"))
  fit <- survfit(f, data = d)
  tb <- summary(fit)$table
  med[[ep]] <- data.frame(endpoint = ep, group = sub("regimen_class=", "", rownames(tb)),
                          median = tb[, "median"], lower = tb[, "0.95LCL"], upper = tb[, "0.95UCL"])
  all <- survfit(as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ 1")), data = d)
  s <- summary(all, times = c(6, 12))
  med[[paste0(ep, "_all")]] <- data.frame(endpoint = ep, group = "all", median = summary(all)$table["median"],
      lower = summary(all)$table["0.95LCL"], upper = summary(all)$table["0.95UCL"])
  put(paste0(ep, "_rates"), data.frame(months = s$time, surv = s$surv, lower = s$lower, upper = s$upper))
  sd <- survdiff(f, data = d)
  put(paste0(ep, "_logrank"), data.frame(chisq = sd$chisq, p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE)))
  cf <- coxph(as.formula(paste0("Surv(", ep, "_months, ", ep, "_event) ~ age_years + sex + ecog + ldh_elevated + ",
              "m1c_or_worse + brain_metastases + braf_v600 + prior_ici_class + regimen_class")), data = d, ties = "efron")
  sm <- summary(cf)
  put(paste0(ep, "_cox"), data.frame(term = rownames(sm$coefficients), hr = sm$coefficients[, "exp(coef)"],
      p = sm$coefficients[, "Pr(>|z|)"], n = cf$n, events = cf$nevent))
}
put("medians", do.call(rbind, med))
fu <- survfit(Surv(os_months, 1 - os_event) ~ 1, data = d)
put("followup", data.frame(median = summary(fu)$table["median"], lower = summary(fu)$table["0.95LCL"],
                           upper = summary(fu)$table["0.95UCL"]))
orr <- sapply(split(d, d$regimen_class), function(g) { b <- binom.test(sum(g$best_response %in% c("CR", "PR")), nrow(g));
  c(b$conf.int[1], b$conf.int[2]) })
put("orr", data.frame(group = colnames(orr), lower = orr[1, ], upper = orr[2, ]))
"""


@pytest.fixture(scope="module")
def r_out(table: pl.DataFrame) -> dict[str, pl.DataFrame]:
    outputs = ("medians", "followup", "orr", "pfs_rates", "os_rates", "pfs_logrank", "os_logrank", "pfs_cox", "os_cox")
    return run_r(R_SCRIPT, inputs={"tab": table.drop("index_date")}, outputs=outputs)


def test_medians_and_cis_equal_survfit(result: analysis.AnalysisResult, r_out: dict[str, pl.DataFrame]) -> None:
    summary = result["survival_summary"]
    for row in r_out["medians"].iter_rows(named=True):
        group_var = "overall" if row["group"] == "all" else "regimen_class"
        mine = summary.filter((pl.col("endpoint") == row["endpoint"]) & (pl.col("group_var") == group_var)
                              & (pl.col("group") == row["group"])).row(0, named=True)
        assert _rel(mine["median"], row["median"]), (row, mine)
        assert _rel(mine["median_lower"], row["lower"]), (row, mine)
        assert _rel(mine["median_upper"], row["upper"]), (row, mine)


def test_rates_logrank_followup_equal_r(result: analysis.AnalysisResult, r_out: dict[str, pl.DataFrame]) -> None:
    for endpoint in ("pfs", "os"):
        rates = result["survival_rates"].filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == "overall"))
        for r_row in r_out[f"{endpoint}_rates"].iter_rows(named=True):
            mine = rates.filter(pl.col("months") == r_row["months"]).row(0, named=True)
            assert _rel(mine["rate"], 100 * r_row["surv"])
            assert _rel(mine["lower"], 100 * r_row["lower"])
            assert _rel(mine["upper"], 100 * r_row["upper"])
        lr = result["logrank"].filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == "regimen_class")).row(0, named=True)
        assert _rel(lr["statistic"], r_out[f"{endpoint}_logrank"]["chisq"][0])
        assert _rel(lr["p_value"], r_out[f"{endpoint}_logrank"]["p"][0], 1e-5)
    fu = result["descriptives"].filter(pl.col("measure") == "median_followup_months").row(0, named=True)
    r_fu = r_out["followup"].row(0, named=True)
    assert _rel(fu["value"], r_fu["median"]) and _rel(fu["lower"], r_fu["lower"]) and _rel(fu["upper"], r_fu["upper"])


def test_cox_equals_coxph_complete_cases(result: analysis.AnalysisResult, r_out: dict[str, pl.DataFrame]) -> None:
    for endpoint in ("pfs", "os"):
        r_cox = r_out[f"{endpoint}_cox"]
        mine = result["cox"].filter(pl.col("endpoint") == endpoint)
        assert mine.height == r_cox.height
        # Same terms in the same order; R writes factor terms as <variable><level>.
        for (hr, p), r_row in zip(mine.select("hazard_ratio", "p_value").rows(), r_cox.iter_rows(named=True), strict=True):
            assert _rel(hr, r_row["hr"], 1e-5), r_row
            assert _rel(p, r_row["p"], 1e-4), r_row
        model = result["cox_models"].filter(pl.col("endpoint") == endpoint).row(0, named=True)
        assert model["n"] == r_cox["n"][0] and model["events"] == r_cox["events"][0]
        assert model["n"] + model["n_missing"] == result.info["n_patients"]


def test_orr_exact_cis_equal_binom_test(result: analysis.AnalysisResult, r_out: dict[str, pl.DataFrame]) -> None:
    resp = result["response"].filter((pl.col("group_var") == "regimen_class") & (pl.col("category") == "ORR"))
    for r_row in r_out["orr"].iter_rows(named=True):
        mine = resp.filter(pl.col("group") == r_row["group"]).row(0, named=True)
        assert _rel(mine["lower"], 100 * r_row["lower"]) and _rel(mine["upper"], 100 * r_row["upper"])
