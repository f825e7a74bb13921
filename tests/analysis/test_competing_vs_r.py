"""The flagship's competing-risks analysis (time to subsequent therapy, death before it competing,
by arm), with a second analysis beside it (progression, death without progression competing, by
arm), equals R on the analysis table of the synthetic study: the causes derived in R from the
table's columns, the Aalen-Johansen incidences and their log intervals at each analysis's times
(survfit with a factor status), Gray's tests (cmprsk::cuminc) and the Fine-Gray subdistribution
hazard ratios (finegray + coxph, model-based variance), each analysis's rows under its name."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.analysis._competing_risks import competing_analyses
from oncorwe.model import store
from rsupport import run_r

#: the analyses of the protocol under test: name -> (event of interest, times of the fixed-time table)
ANALYSES = {"subsequent_therapy_by_arm": ("subsequent_therapy", (3.0, 6.0, 12.0)),
            "progression_by_arm": ("progression", (2.0, 4.0, 8.0))}

R_SCRIPT = """
suppressPackageStartupMessages(library(cmprsk))
d <- tab
d$subsequent_therapy <- as.logical(d$subsequent_therapy)
arms <- list(combination = c("carboplatin_paclitaxel"),
             single_agent = c("dacarbazine", "temozolomide", "taxane", "fotemustine"))
d$arm <- NA
for (a in names(arms)) d$arm[d$regimen_class %in% arms[[a]]] <- a
d <- d[!is.na(d$arm), ]
# time to subsequent therapy: a next line before any death is cause 1, a death without one cause 2
after_death <- d$os_event == 1 & !is.na(d$subsequent_therapy_months) & d$subsequent_therapy_months > d$os_months
therapy <- d$subsequent_therapy & !is.na(d$subsequent_therapy_months) & !after_death
st <- data.frame(arm = d$arm, time = ifelse(therapy, d$subsequent_therapy_months, d$os_months),
                 cause = ifelse(therapy, 1, ifelse(d$os_event == 1, 2, 0)))
# progression: a PFS event at the time of death is a death without progression (cause 2)
p <- d[!is.na(d$pfs_months) & !is.na(d$pfs_event) & !is.na(d$os_months) & !is.na(d$os_event), ]
death_first <- p$pfs_event == 1 & p$os_event == 1 & p$os_months == p$pfs_months
pr <- data.frame(arm = p$arm, time = p$pfs_months, cause = ifelse(p$pfs_event != 1, 0, ifelse(death_first, 2, 1)))
counts <- NULL; gray <- NULL; aj <- NULL; fg_out <- NULL
for (name in c("subsequent_therapy_by_arm", "progression_by_arm")) {
  x <- if (name == "progression_by_arm") pr else st
  times <- if (name == "progression_by_arm") c(2, 4, 8) else c(3, 6, 12)
  x$ev <- factor(x$cause, 0:2)
  x$combination <- as.integer(x$arm == "combination")
  counts <- rbind(counts, data.frame(analysis = name, cause = 0:2, n = as.vector(table(factor(x$cause, 0:2)))))
  g <- cuminc(x$time, x$cause, x$arm, cencode = 0)
  gray <- rbind(gray, data.frame(analysis = name, stat = g$Tests[, "stat"], df = g$Tests[, "df"], p = g$Tests[, "pv"]))
  f <- survfit(Surv(time, ev) ~ arm, data = x)
  s <- summary(f, times = times)
  aj <- rbind(aj, data.frame(analysis = name, arm = sub("arm=", "", as.character(s$strata)), months = s$time,
                             p1 = s$pstate[, 2], p2 = s$pstate[, 3], lo1 = s$lower[, 2], up1 = s$upper[, 2],
                             lo2 = s$lower[, 3], up2 = s$upper[, 3]))
  for (cause in 1:2) {
    fg <- finegray(Surv(time, ev) ~ combination, data = x, etype = as.character(cause))
    fit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ combination, weights = fgwt, data = fg)
    nv <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
    fg_out <- rbind(fg_out, data.frame(analysis = name, cause = cause, coef = coef(fit)[[1]], se = sqrt(nv[1, 1])))
  }
}
put("counts", counts)
put("gray", gray)
put("aj", aj)
put("fg", fg_out)
"""


@pytest.fixture(scope="module")
def flagship() -> protocol.Protocol:
    return protocol.load("goldinger2022")


@pytest.fixture(scope="module")
def two_analyses(flagship: protocol.Protocol) -> protocol.Protocol:
    """The flagship with a second analysis: progression, death without progression competing, by arm."""
    data = flagship.to_dict()
    data["competing_risks"].append({"name": "progression_by_arm", "event": "progression", "competing_event": "death",
                                    "by": "arm", "times_months": [2, 4, 8]})
    return protocol.from_data(data)


@pytest.fixture(scope="module")
def synthetic_table(synthetic_study: Path, flagship: protocol.Protocol) -> pl.DataFrame:
    model = harmonise.run(synthetic_study, scope=flagship.scope())
    con = store.connect(None)
    store.write_model(con, model)
    cohort_result = cohort.run(con, flagship, merges=model.merges)
    return endpoints.run(con, cohort_result, flagship).analysis_table


@pytest.fixture(scope="module")
def ours(synthetic_table: pl.DataFrame, two_analyses: protocol.Protocol) -> dict[str, pl.DataFrame]:
    return competing_analyses(synthetic_table, two_analyses)


@pytest.fixture(scope="module")
def theirs(synthetic_table: pl.DataFrame) -> dict[str, pl.DataFrame]:
    columns = ["regimen_class", "subsequent_therapy", "subsequent_therapy_months", "pfs_months", "pfs_event",
               "os_months", "os_event"]
    return run_r(R_SCRIPT, inputs={"tab": synthetic_table.select(columns)}, outputs=("counts", "gray", "aj", "fg"))


def _rows(tables: dict[str, pl.DataFrame], table: str, analysis: str) -> pl.DataFrame:
    """One analysis's rows of one of our tables or R's (both have the column ``analysis``)."""
    return tables[table].filter(pl.col("analysis") == analysis)


def test_the_flagship_declares_subsequent_therapy(flagship: protocol.Protocol) -> None:
    assert [(c.name, c.event, c.by) for c in flagship.competing_risks] == [
        ("subsequent_therapy_by_arm", "subsequent_therapy", "arm")]


def test_every_table_holds_both_analyses_in_the_protocols_order(ours: dict[str, pl.DataFrame]) -> None:
    for table in ("competing_curves", "competing_incidence", "competing_tests", "competing_fine_gray"):
        assert ours[table]["analysis"].unique(maintain_order=True).to_list() == list(ANALYSES), table
    for analysis, (_event, times) in ANALYSES.items():
        assert _rows(ours, "competing_incidence", analysis)["months"].unique(maintain_order=True).to_list() == list(times)


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_both_causes_occur_and_the_event_counts_equal_rows(analysis: str, ours: dict[str, pl.DataFrame],
                                                        theirs: dict[str, pl.DataFrame]) -> None:
    event, times = ANALYSES[analysis]
    counts = dict(_rows(theirs, "counts", analysis).select(pl.col("cause").cast(pl.Int64), pl.col("n").cast(pl.Int64))
                  .iter_rows())
    assert counts[1] > 50 and counts[2] > 10  # both compete in earnest
    fixed = _rows(ours, "competing_incidence", analysis).filter(pl.col("months") == times[0])
    events = fixed.group_by("cause").agg(pl.col("events").sum())
    assert dict(events.iter_rows()) == {event: counts[1], "death": counts[2]}


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_cumulative_incidence_equals_survfit(analysis: str, ours: dict[str, pl.DataFrame],
                                             theirs: dict[str, pl.DataFrame]) -> None:
    event, _times = ANALYSES[analysis]
    incidence = _rows(ours, "competing_incidence", analysis)
    rows = _rows(theirs, "aj", analysis)
    assert rows.height == 6  # two arms at three times
    for row in rows.iter_rows(named=True):
        for code, cause in ((1, event), (2, "death")):
            mine = incidence.filter((pl.col("cause") == cause) & (pl.col("group") == row["arm"])
                                    & (pl.col("months") == float(row["months"]))).row(0, named=True)
            for column, key in (("incidence", f"p{code}"), ("lower", f"lo{code}"), ("upper", f"up{code}")):
                assert mine[column] == pytest.approx(float(row[key]), rel=1e-6), (cause, row["arm"], row["months"], column)


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_gray_tests_equal_cmprsk(analysis: str, ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> None:
    tests = _rows(ours, "competing_tests", analysis)
    gray = _rows(theirs, "gray", analysis)
    assert tests["cause"].to_list() == [ANALYSES[analysis][0], "death"]
    assert tests["statistic"].to_list() == pytest.approx([float(v) for v in gray["stat"]], rel=1e-6)
    assert tests["p_value"].to_list() == pytest.approx([float(v) for v in gray["p"]], rel=1e-6)


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_fine_gray_equals_finegray_coxph(analysis: str, ours: dict[str, pl.DataFrame],
                                         theirs: dict[str, pl.DataFrame]) -> None:
    fine_gray = _rows(ours, "competing_fine_gray", analysis)
    assert fine_gray["cause"].to_list() == [ANALYSES[analysis][0], "death"]
    assert set(fine_gray["status"]) == {"computed"}
    assert fine_gray["group"].to_list() == ["combination"] * 2 and fine_gray["reference"].to_list() == ["single_agent"] * 2
    rows = _rows(theirs, "fg", analysis)
    assert rows.height == 2
    for mine, row in zip(fine_gray.iter_rows(named=True), rows.iter_rows(named=True), strict=True):
        coef, se = float(row["coef"]), float(row["se"])
        assert mine["hazard_ratio"] == pytest.approx(float(pl.Series([coef]).exp()[0]), rel=1e-6)
        assert mine["lower"] == pytest.approx(float(pl.Series([coef - 1.959963984540054 * se]).exp()[0]), rel=1e-6)
        assert mine["upper"] == pytest.approx(float(pl.Series([coef + 1.959963984540054 * se]).exp()[0]), rel=1e-6)
