"""The study's adjusted comparison equals R on the same analysis table: the propensity model of
binomial glm, stabilised ATE weights, coxph(weights = w, robust = TRUE) hazard ratios and the
weighted survfit (issue 15)."""

from __future__ import annotations

import polars as pl
import pytest

import oncorwe.analysis as analysis
from rsupport import run_r

R_SCRIPT = """
arms <- list(combination = c("carboplatin_paclitaxel"),
             single_agent = c("dacarbazine", "temozolomide", "taxane", "fotemustine"))
tab$arm <- NA
for (a in names(arms)) tab$arm[tab$regimen_class %in% arms[[a]]] <- a
d <- tab[!is.na(tab$arm) & complete.cases(tab[, c("ecog", "ldh_elevated", "brain_metastases", "prior_anti_pd1")]), ]
d$arm <- factor(d$arm, levels = c("single_agent", "combination"))
ps <- glm(arm ~ ecog + ldh_elevated + brain_metastases + prior_anti_pd1, family = binomial, data = d)
p <- fitted(ps)
share <- mean(d$arm == "combination")
d$w <- ifelse(d$arm == "combination", share / p, (1 - share) / (1 - p))
out <- NULL
for (e in c("pfs", "os")) {
  f <- as.formula(paste0("Surv(", e, "_months, ", e, "_event) ~ arm"))
  fit <- coxph(f, data = d, weights = w, robust = TRUE)
  ci <- exp(confint(fit))
  out <- rbind(out, data.frame(endpoint = e, hr = exp(coef(fit))[[1]], lower = ci[1, 1], upper = ci[1, 2]))
}
put("cox", out)
km <- survfit(Surv(os_months, os_event) ~ arm, data = d, weights = w)
s <- summary(km, times = c(3, 6, 12, 24))
put("km", data.frame(arm = sub("arm=", "", as.character(s$strata)), months = s$time, survival = s$surv,
                     lower = s$lower, upper = s$upper))
put("ess", data.frame(arm = c("combination", "single_agent"),
                      ess = c(sum(d$w[d$arm == "combination"])^2 / sum(d$w[d$arm == "combination"]^2),
                              sum(d$w[d$arm == "single_agent"])^2 / sum(d$w[d$arm == "single_agent"]^2))))
"""


@pytest.fixture(scope="module")
def r_adjusted(table: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return run_r(R_SCRIPT, inputs={"tab": table.drop("index_date")}, outputs=("cox", "km", "ess"))


def test_weighted_cox_equals_coxph_robust(result: analysis.AnalysisResult, r_adjusted: dict[str, pl.DataFrame]) -> None:
    ours = result["adjusted_cox"].filter(pl.col("analysis") == "weighted_complete_case")
    for row in r_adjusted["cox"].iter_rows(named=True):
        mine = ours.filter(pl.col("endpoint") == row["endpoint"]).row(0, named=True)
        for column, theirs in (("hazard_ratio", "hr"), ("lower", "lower"), ("upper", "upper")):
            assert mine[column] == pytest.approx(float(row[theirs]), rel=1e-6), (row["endpoint"], column)


def test_weighted_survival_and_ess_equal_r(result: analysis.AnalysisResult, r_adjusted: dict[str, pl.DataFrame]) -> None:
    ours = result["adjusted_survival"].filter(pl.col("endpoint") == "os")
    for row in r_adjusted["km"].iter_rows(named=True):
        mine = ours.filter((pl.col("arm") == row["arm"]) & (pl.col("months") == float(row["months"]))).row(0, named=True)
        for column in ("survival", "lower", "upper"):
            assert mine[column] == pytest.approx(float(row[column]), rel=1e-6), (row["arm"], row["months"], column)
    weights = result["adjusted_weights"].filter(pl.col("analysis") == "complete_case")
    for row in r_adjusted["ess"].iter_rows(named=True):
        mine = weights.filter(pl.col("arm") == row["arm"])["ess"][0]
        assert mine == pytest.approx(float(row["ess"]), rel=1e-6)
