"""The flagship's competing-risks analysis (time to subsequent therapy, death before it competing,
by arm) equals R on the analysis table of the synthetic study: the causes derived in R from the
table's columns, the Aalen-Johansen incidences and their log intervals at the protocol's times
(survfit with a factor status), Gray's tests (cmprsk::cuminc) and the Fine-Gray subdistribution
hazard ratios (finegray + coxph, model-based variance)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.analysis._competing_risks import competing_analyses
from oncorwe.model import store
from rsupport import run_r

R_SCRIPT = """
suppressPackageStartupMessages(library(cmprsk))
d <- tab
d$subsequent_therapy <- as.logical(d$subsequent_therapy)
arms <- list(combination = c("carboplatin_paclitaxel"),
             single_agent = c("dacarbazine", "temozolomide", "taxane", "fotemustine"))
d$arm <- NA
for (a in names(arms)) d$arm[d$regimen_class %in% arms[[a]]] <- a
d <- d[!is.na(d$arm), ]
after_death <- d$os_event == 1 & !is.na(d$subsequent_therapy_months) & d$subsequent_therapy_months > d$os_months
therapy <- d$subsequent_therapy & !is.na(d$subsequent_therapy_months) & !after_death
d$time <- ifelse(therapy, d$subsequent_therapy_months, d$os_months)
d$cause <- ifelse(therapy, 1, ifelse(d$os_event == 1, 2, 0))
d$ev <- factor(d$cause, 0:2)
d$combination <- as.integer(d$arm == "combination")
put("counts", data.frame(cause = 0:2, n = as.vector(table(factor(d$cause, 0:2)))))
g <- cuminc(d$time, d$cause, d$arm, cencode = 0)
put("gray", data.frame(stat = g$Tests[, "stat"], df = g$Tests[, "df"], p = g$Tests[, "pv"]))
f <- survfit(Surv(time, ev) ~ arm, data = d)
s <- summary(f, times = c(3, 6, 12))
put("aj", data.frame(arm = sub("arm=", "", as.character(s$strata)), months = s$time, p1 = s$pstate[, 2],
                     p2 = s$pstate[, 3], lo1 = s$lower[, 2], up1 = s$upper[, 2], lo2 = s$lower[, 3], up2 = s$upper[, 3]))
fg_out <- NULL
for (cause in 1:2) {
  fg <- finegray(Surv(time, ev) ~ combination, data = d, etype = as.character(cause))
  fit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ combination, weights = fgwt, data = fg)
  nv <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  fg_out <- rbind(fg_out, data.frame(cause = cause, coef = coef(fit)[[1]], se = sqrt(nv[1, 1])))
}
put("fg", fg_out)
"""


@pytest.fixture(scope="module")
def flagship() -> protocol.Protocol:
    return protocol.load("goldinger2022")


@pytest.fixture(scope="module")
def synthetic_table(synthetic_study: Path, flagship: protocol.Protocol) -> pl.DataFrame:
    model = harmonise.run(synthetic_study, scope=flagship.scope())
    con = store.connect(None)
    store.write_model(con, model)
    cohort_result = cohort.run(con, flagship, merges=model.merges)
    return endpoints.run(con, cohort_result, flagship).analysis_table


@pytest.fixture(scope="module")
def ours(synthetic_table: pl.DataFrame, flagship: protocol.Protocol) -> dict[str, pl.DataFrame]:
    return competing_analyses(synthetic_table, flagship)


@pytest.fixture(scope="module")
def theirs(synthetic_table: pl.DataFrame) -> dict[str, pl.DataFrame]:
    columns = ["regimen_class", "subsequent_therapy", "subsequent_therapy_months", "os_months", "os_event"]
    return run_r(R_SCRIPT, inputs={"tab": synthetic_table.select(columns)}, outputs=("counts", "gray", "aj", "fg"))


def test_the_flagship_declares_subsequent_therapy_and_both_causes_occur(flagship: protocol.Protocol,
                                                                         theirs: dict[str, pl.DataFrame],
                                                                         ours: dict[str, pl.DataFrame]) -> None:
    assert flagship.competing_risks is not None and flagship.competing_risks.event == "subsequent_therapy"
    counts = dict(theirs["counts"].select(pl.col("cause").cast(pl.Int64), pl.col("n").cast(pl.Int64)).iter_rows())
    assert counts[1] > 50 and counts[2] > 50  # both compete in earnest
    fixed = ours["competing_incidence"].filter(pl.col("months") == 3.0)
    events = fixed.group_by("cause").agg(pl.col("events").sum())
    assert dict(events.iter_rows()) == {"subsequent_therapy": counts[1], "death": counts[2]}


def test_cumulative_incidence_equals_survfit(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> None:
    incidence = ours["competing_incidence"]
    for row in theirs["aj"].iter_rows(named=True):
        for code, cause in ((1, "subsequent_therapy"), (2, "death")):
            mine = incidence.filter((pl.col("cause") == cause) & (pl.col("group") == row["arm"])
                                    & (pl.col("months") == float(row["months"]))).row(0, named=True)
            for column, key in (("incidence", f"p{code}"), ("lower", f"lo{code}"), ("upper", f"up{code}")):
                assert mine[column] == pytest.approx(float(row[key]), rel=1e-6), (cause, row["arm"], row["months"], column)


def test_gray_tests_equal_cmprsk(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> None:
    tests = ours["competing_tests"]
    assert tests["cause"].to_list() == ["subsequent_therapy", "death"]
    assert tests["statistic"].to_list() == pytest.approx([float(v) for v in theirs["gray"]["stat"]], rel=1e-6)
    assert tests["p_value"].to_list() == pytest.approx([float(v) for v in theirs["gray"]["p"]], rel=1e-6)


def test_fine_gray_equals_finegray_coxph(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> None:
    fine_gray = ours["competing_fine_gray"]
    assert fine_gray["cause"].to_list() == ["subsequent_therapy", "death"]
    assert set(fine_gray["status"]) == {"computed"}
    assert fine_gray["group"].to_list() == ["combination"] * 2 and fine_gray["reference"].to_list() == ["single_agent"] * 2
    for mine, row in zip(fine_gray.iter_rows(named=True), theirs["fg"].iter_rows(named=True), strict=True):
        coef, se = float(row["coef"]), float(row["se"])
        assert mine["hazard_ratio"] == pytest.approx(float(pl.Series([coef]).exp()[0]), rel=1e-6)
        assert mine["lower"] == pytest.approx(float(pl.Series([coef - 1.959963984540054 * se]).exp()[0]), rel=1e-6)
        assert mine["upper"] == pytest.approx(float(pl.Series([coef + 1.959963984540054 * se]).exp()[0]), rel=1e-6)
