"""Binomial CIs against R's binom.test / prop.test(correct=FALSE); rate comparison against R's
fisher.test and chisq.test(correct=FALSE) on the k x 2 table."""

from __future__ import annotations

import functools
import math

import numpy as np
import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.stats import Estimate, binomial_ci, compare_rates
from rsupport import run_r
from stats.rdata import assert_close

GRID = [
    (x, n) for n in (1, 2, 5, 13, 37, 100, 463) for x in sorted({0, 1, n // 3, n // 2, n - 1, n})
]
LEVELS = (0.95, 0.9, 0.99)

TABLES: dict[str, tuple[list[int], list[int]]] = {
    "2x2_small": ([3, 10], [23, 25]),
    "2x2_zero": ([0, 4], [6, 7]),
    "2x2_large": ([40, 65], [120, 130]),
    "3x2_small": ([3, 10, 7], [23, 25, 37]),
    "3x2_large": ([30, 55, 41], [100, 120, 90]),
    "4x2_sparse": ([0, 1, 3, 2], [4, 5, 6, 3]),
    "4x2_goldinger_like": ([12, 5, 9, 3], [110, 60, 95, 40]),
    "5x2_tiny": ([1, 0, 2, 1, 0], [2, 3, 3, 2, 1]),
    "5x2_rare": ([3, 1, 2, 0, 4], [110, 60, 95, 40, 158]),
    "4x2_many_tables": ([30, 20, 25, 10], [110, 60, 95, 40]),
}


@functools.cache
def r_results() -> dict[str, pl.DataFrame]:
    """One R run: binom.test / prop.test over the grid, fisher.test / chisq.test over the tables."""
    grid = pl.DataFrame(
        [(x, n, level) for x, n in GRID for level in LEVELS],
        schema=["x", "n", "level"],
        orient="row",
    )
    long = pl.DataFrame(
        [
            (name, s, n)
            for name, (succ, tot) in TABLES.items()
            for s, n in zip(succ, tot, strict=True)
        ],
        schema=["case", "s", "n"],
        orient="row",
    )
    script = """
    rows <- lapply(seq_len(nrow(grid)), function(i) {
      x <- grid$x[i]; n <- grid$n[i]; cl <- grid$level[i]
      b <- binom.test(x, n, conf.level = cl)$conf.int
      w <- suppressWarnings(prop.test(x, n, correct = FALSE, conf.level = cl))$conf.int
      data.frame(x = x, n = n, level = cl, exact_lower = b[1], exact_upper = b[2],
                 wilson_lower = w[1], wilson_upper = w[2])
    })
    put("binomial", do.call(rbind, rows))
    rows <- lapply(unique(tables$case), function(name) {
      d <- tables[tables$case == name, ]
      m <- cbind(d$s, d$n - d$s)
      chi <- suppressWarnings(chisq.test(m, correct = FALSE))
      data.frame(case = name, fisher_p = fisher.test(m)$p.value,
                 chisq = unname(chi$statistic), chisq_p = chi$p.value, df = unname(chi$parameter))
    })
    put("tables", do.call(rbind, rows))
    """
    return run_r(script, inputs={"grid": grid, "tables": long}, outputs=("binomial", "tables"))


def r_binomial() -> pl.DataFrame:
    return r_results()["binomial"]


def r_tables() -> pl.DataFrame:
    return r_results()["tables"]


@pytest.mark.parametrize("level", LEVELS)
def test_binomial_ci_matches_r(level: float) -> None:
    r = r_binomial().filter((pl.col("level") - level).abs() < 1e-12)
    exact = np.array(
        [binomial_ci(x, n, conf_level=level)[1:] for x, n in r.select("x", "n").rows()]
    )
    wilson = np.array(
        [
            binomial_ci(x, n, method="wilson", conf_level=level)[1:]
            for x, n in r.select("x", "n").rows()
        ]
    )
    assert_close(exact, r.select("exact_lower", "exact_upper").to_numpy(), what="Clopper-Pearson")
    assert_close(wilson, r.select("wilson_lower", "wilson_upper").to_numpy(), what="Wilson")


def test_binomial_ci_by_hand() -> None:
    # x = 0: the exact upper limit solves (1 - p)^n = alpha / 2
    estimate = binomial_ci(0, 10)
    assert estimate.value == 0 and estimate.lower == 0
    assert estimate.upper == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-12)
    # x = n: lower limit solves p^n = alpha / 2
    assert binomial_ci(10, 10).lower == pytest.approx(0.025 ** (1 / 10), rel=1e-12)
    # Wilson at x = n/2: symmetric around 1/2 with half-width z sqrt(1/(4n) + z^2/(4 n^2)) / (1 + z^2/n)
    z, n = 1.959963984540054, 20
    half = z * math.sqrt(0.25 / n + z * z / (4 * n * n)) / (1 + z * z / n)
    wilson = binomial_ci(10, n, method="wilson")
    assert wilson == pytest.approx(Estimate(0.5, 0.5 - half, 0.5 + half), rel=1e-12)


@pytest.mark.parametrize("case", list(TABLES))
def test_compare_rates_matches_r(case: str) -> None:
    successes, totals = TABLES[case]
    r = r_tables().filter(pl.col("case") == case).row(0, named=True)
    fisher = compare_rates(successes, totals, method="fisher")
    assert fisher.method == ("Fisher exact" if len(totals) == 2 else "Fisher-Freeman-Halton exact")
    assert fisher.statistic is None and fisher.df is None
    assert_close(fisher.p_value, r["fisher_p"], what="Fisher p")
    if r["chisq"] is None or math.isnan(r["chisq"]):
        with pytest.raises(InputError, match="chi-square test is undefined"):
            compare_rates(successes, totals, method="chisq")
        return
    chisq = compare_rates(successes, totals, method="chisq")
    assert chisq.method == "Pearson chi-square"
    assert_close(chisq.statistic, r["chisq"], what="chi-square")
    assert chisq.df == int(r["df"])
    assert_close(chisq.p_value, r["chisq_p"], what="chi-square p")


def test_auto_states_the_test_used() -> None:
    small = compare_rates([3, 10, 7], [23, 25, 37])  # expected successes 5.7, 6.2, 9.1; failures ok
    large = compare_rates([30, 55, 41], [100, 120, 90])
    sparse = compare_rates([0, 1, 3, 2], [4, 5, 6, 3], groups=["a", "b", "c", "d"])
    assert small.method == "Pearson chi-square"
    assert large.method == "Pearson chi-square"
    assert sparse.method == "Fisher-Freeman-Halton exact"
    assert compare_rates([1, 4], [6, 7]).method == "Fisher exact"
    assert sparse.to_frame()["group"].to_list() == ["a", "b", "c", "d"]
    assert sparse.table.tolist() == [[0, 4], [1, 4], [3, 3], [2, 1]]
    assert sparse.to_dict()["method"] == "Fisher-Freeman-Halton exact"
    assert "Fisher" in repr(sparse)


def test_fisher_by_hand() -> None:
    """2 x 2 table [[1, 1], [0, 2]] (margins: rows 2, 2; successes 1).

    Tables with one success: it falls in row 1 or row 2, each with probability
    C(2,1) C(2,0) / C(4,1) = 1/2; both are as extreme as observed, so p = 1.
    Table [[2, 0], [0, 2]]: p = P(s1 = 2) + P(s1 = 0) = 1/6 + 1/6 = 1/3.
    """
    assert compare_rates([1, 0], [2, 2], method="fisher").p_value == pytest.approx(1.0)
    assert compare_rates([2, 0], [2, 2], method="fisher").p_value == pytest.approx(1 / 3, rel=1e-12)


def test_compare_rates_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="totals: empty groups at positions \\[1\\]"):
        compare_rates([1, 0], [3, 0])
    with pytest.raises(InputError, match="successes: exceed totals at positions \\[0\\]"):
        compare_rates([4, 0], [3, 2])
    with pytest.raises(InputError, match="at least two groups"):
        compare_rates([1], [3])
    with pytest.raises(InputError, match="groups: 3 names given for 2 groups"):
        compare_rates([1, 2], [3, 4], groups=["a", "b", "c"])
    with pytest.raises(InputError, match="whole numbers"):
        compare_rates([1.5, 2], [3, 4])
    with pytest.raises(InputError, match="method"):
        compare_rates([1, 2], [3, 4], method="g-test")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="would enumerate"):
        compare_rates([500] * 6, [1000] * 6, method="fisher")


def test_binomial_ci_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="successes: 5 exceeds n = 4"):
        binomial_ci(5, 4)
    with pytest.raises(InputError, match="n: must be >= 1"):
        binomial_ci(0, 0)
    with pytest.raises(InputError, match="successes: must be a whole number"):
        binomial_ci(1.5, 4)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="method"):
        binomial_ci(1, 4, method="agresti")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="conf_level"):
        binomial_ci(1, 4, conf_level=95)
