"""Log-rank test against R's survdiff (k groups, strata, single-member and all-censored groups)
and against a two-group test worked out by hand."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.stats import Test as StatTest
from oncorwe.stats import logrank_test
from rsupport import run_r
from stats.rdata import assert_close, survival_outcome


def _frame(time: object, event: object, group: object, strata: object = None) -> pl.DataFrame:
    columns = {"time": time, "event": event, "group": group}
    if strata is not None:
        columns["strata"] = strata
    return pl.DataFrame(columns)


def _random_cases() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(7)
    n = 240
    ties = _frame(
        rng.integers(0, 10, n).astype(float),
        (rng.random(n) < 0.55).astype(int),
        rng.choice(["a", "b", "c"], n),
        rng.choice([1, 2], n),
    )
    # group "z" has a single member; group "c" is entirely censored
    single = _frame(
        np.append(rng.exponential(5, 60).round(2), 3.3),
        np.append((rng.random(60) < 0.7).astype(int), 1),
        np.append(rng.choice(["a", "c"], 60), "z"),
    )
    single = single.with_columns(
        pl.when(pl.col("group") == "c").then(0).otherwise(pl.col("event")).alias("event")
    )
    # group 3 is censored before the first event: expected 0, dropped from the df as R does
    early = _frame(
        [0.5, 0.7, 2, 3, 4, 5, 6, 7, 8, 9],
        [0, 0, 1, 0, 1, 1, 0, 1, 1, 0],
        [3, 3, 1, 2, 1, 2, 1, 2, 1, 2],
    )
    # hazards 1 vs 8: p far below 1e-10
    strong = _frame(
        np.concatenate((rng.exponential(1, 150), rng.exponential(1 / 8, 150))).round(4),
        (rng.random(300) < 0.9).astype(int),
        np.repeat([1, 2], 150),
    )
    # floating-point near-ties across groups: one time for R's timefix
    near = _frame(
        [0.1 + 0.2, 0.3, 0.9999999999, 1.0, 2.0, 2.000000001, 3.0, 3.0, 4.0, 5.0],
        [1, 0, 1, 0, 1, 1, 0, 1, 1, 0],
        ["a", "b", "b", "a", "a", "b", "a", "b", "a", "b"],
    )
    return {
        "ties": ties,
        "single_member": single,
        "early_censored_group": early,
        "strong": strong,
        "near_ties": near,
    }


@functools.cache
def cases() -> dict[str, pl.DataFrame]:
    lung = survival_outcome("lung")[2].with_columns(event=(pl.col("status") == 2).cast(pl.Int64))
    veteran = survival_outcome("veteran")[2].rename({"status": "event"})
    ovarian = survival_outcome("ovarian")[2].rename({"futime": "time", "fustat": "event"})
    colon = survival_outcome("colon")[2].rename({"status": "event"})
    pbc = survival_outcome("pbc")[2].with_columns(event=(pl.col("status") == 2).cast(pl.Int64))
    out = {
        "lung_sex": lung.select("time", "event", group="sex"),
        "lung_ecog_by_sex": lung.drop_nulls("ph.ecog").select(
            "time", "event", group="ph.ecog", strata="sex"
        ),
        "veteran_celltype_by_trt": veteran.select("time", "event", group="celltype", strata="trt"),
        "veteran_trt": veteran.select("time", "event", group="trt"),
        "ovarian_rx_by_resid": ovarian.select("time", "event", group="rx", strata="resid.ds"),
        "colon_rx_by_etype": colon.select("time", "event", group="rx", strata="etype"),
        "pbc_edema": pbc.select("time", "event", group="edema"),
        "pbc_trt_by_stage": pbc.drop_nulls(["trt", "stage"]).select(
            "time", "event", group="trt", strata="stage"
        ),
    }
    out.update(_random_cases())
    return out


@functools.cache
def r_results() -> pl.DataFrame:
    names = list(cases())
    script = """
    rows <- list()
    for (name in names$case) {
      d <- get(name)
      f <- if ("strata" %in% names(d)) survdiff(Surv(time, event) ~ group + strata(strata), data = d)
           else survdiff(Surv(time, event) ~ group, data = d)
      o <- if (is.matrix(f$obs)) rowSums(f$obs) else f$obs
      e <- if (is.matrix(f$exp)) rowSums(f$exp) else f$exp
      df <- sum(e > 0) - 1
      k <- length(o)
      rows[[name]] <- data.frame(case = name,
        what = c("chisq", "p", "df", rep("observed", k), rep("expected", k), rep("n", k),
                 rep("var_diag", k)),
        value = c(f$chisq, pchisq(f$chisq, df, lower.tail = FALSE), df, o, e, as.vector(f$n),
                  diag(f$var)))
    }
    put("out", do.call(rbind, rows))
    """
    inputs = {name: frame for name, frame in cases().items()}
    inputs["names"] = pl.DataFrame({"case": names})
    return run_r(script, inputs=inputs)["out"]


def _r(case: str, what: str) -> np.ndarray:
    out = r_results().filter((pl.col("case") == case) & (pl.col("what") == what))
    return out["value"].to_numpy()


@pytest.mark.parametrize("case", list(cases()))
def test_matches_r_survdiff(case: str) -> None:
    frame = cases()[case]
    strata = frame["strata"] if "strata" in frame.columns else None
    result = logrank_test(frame["time"], frame["event"], frame["group"], strata=strata)
    assert_close(result.statistic, _r(case, "chisq")[0], what="chisq")
    assert result.df == int(_r(case, "df")[0])
    p_r = _r(case, "p")[0]
    assert_close(result.p_value, p_r, rtol=1e-4 if p_r < 1e-10 else 1e-6, atol=0, what="p")
    assert_close([result.n[g] for g in result.groups], _r(case, "n"), rtol=0, what="n")
    assert_close([result.observed[g] for g in result.groups], _r(case, "observed"), what="O")
    assert_close([result.expected[g] for g in result.groups], _r(case, "expected"), what="E")
    assert_close(np.diag(result.variance), _r(case, "var_diag"), what="V")
    assert list(result.groups) == sorted(result.groups)
    assert result.test == StatTest(result.statistic, float(result.df), result.p_value)


def test_tiny_p_value_is_reached() -> None:
    assert _r("strong", "p")[0] < 1e-10


def test_hand_worked_two_groups() -> None:
    """Group A: 1+, 3+, 4 ; group B: 2, 3, 5+   (+ = censored)

    t=2: n=(2 A, 3 B)=5 at risk, d=1 (B).  E_A = 1*2/5 = 0.4; V = 1*(5-1)/(5-1) * 2/5 * 3/5 = 0.24
    t=3: n=(2, 2)=4,           d=1 (B).  E_A = 2/4 = 0.5;   V = 1*3/3 * 1/2 * 1/2 = 0.25
    t=4: n=(1, 1)=2,           d=1 (A).  E_A = 1/2 = 0.5;   V = 1*1/1 * 1/2 * 1/2 = 0.25
    O_A = 1, E_A = 1.4, V = 0.74, chi-square = 0.4^2 / 0.74
    """
    result = logrank_test([1, 3, 4, 2, 3, 5], [0, 0, 1, 1, 1, 0], ["A", "A", "A", "B", "B", "B"])
    assert result.observed == {"A": 1.0, "B": 2.0}
    assert result.expected["A"] == pytest.approx(1.4, rel=1e-14)
    assert result.expected["B"] == pytest.approx(1.6, rel=1e-14)
    assert result.variance[0, 0] == pytest.approx(0.74, rel=1e-14)
    assert result.variance[0, 1] == pytest.approx(-0.74, rel=1e-14)
    assert result.statistic == pytest.approx(0.16 / 0.74, rel=1e-14)
    assert result.df == 1


def test_result_is_immutable() -> None:
    """A result cannot be changed after the fact: no field, count, mapping or matrix entry."""
    import dataclasses

    result = logrank_test([1, 3, 4, 2, 3, 5], [0, 0, 1, 1, 1, 0], ["A", "A", "A", "B", "B", "B"])
    for mapping in (result.n, result.observed, result.expected):
        with pytest.raises(TypeError):
            mapping["A"] = 0  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        result.variance[0, 0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.statistic = 0.0  # type: ignore[misc]


def test_stratified_sums_per_stratum_statistics() -> None:
    frame = cases()["ties"]
    stratified = logrank_test(frame["time"], frame["event"], frame["group"], strata=frame["strata"])
    parts = [
        logrank_test(part["time"], part["event"], part["group"])
        for part in frame.partition_by("strata", maintain_order=True)
    ]
    for g in stratified.groups:
        assert stratified.observed[g] == pytest.approx(sum(p.observed[g] for p in parts))
        assert stratified.expected[g] == pytest.approx(sum(p.expected[g] for p in parts))
    assert stratified.n_strata == 2


def test_frame_dict_repr_and_inputs() -> None:
    frame = cases()["lung_sex"]
    result = logrank_test(frame["time"], frame["event"], frame["group"])
    table = result.to_frame()
    assert table.columns == ["group", "n", "observed", "expected", "oe2_over_e", "oe2_over_v"]
    assert table["n"].to_list() == [138, 90]
    as_dict = result.to_dict()
    assert as_dict["df"] == 1 and as_dict["groups"] == ["1", "2"]
    assert "statistic=" in repr(result)
    pandas_frame = frame.to_pandas()
    again = logrank_test(
        pandas_frame["time"], pandas_frame["event"].astype(bool), list(pandas_frame["group"])
    )
    assert again.statistic == result.statistic and again.observed == result.observed
    with pytest.raises(ValueError):
        result.variance[0, 0] = 1.0


def test_pandas_categorical_like_string_groups() -> None:
    series = pd.Series(["x", "y", "x", "y", "x", "y"], dtype="string")
    result = logrank_test([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0], series)
    assert result.groups == ("x", "y")


def test_declared_level_order_of_categorical_columns_is_kept() -> None:
    time, event = [1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0]
    labels = ["b", "a", "c", "b", "a", "c"]
    plain = logrank_test(time, event, labels)
    enum = logrank_test(time, event, pl.Series(labels, dtype=pl.Enum(["x", "c", "b", "a"])))
    categorical = logrank_test(
        time, event, pd.Series(pd.Categorical(labels, categories=["c", "a", "b"]))
    )
    assert plain.groups == ("a", "b", "c")
    assert enum.groups == ("c", "b", "a")  # unused level "x" dropped, as R's strata()
    assert categorical.groups == ("c", "a", "b")
    assert enum.observed == plain.observed and enum.expected == plain.expected
    assert enum.statistic == pytest.approx(plain.statistic, rel=1e-12)


def _fuzz_cases() -> dict[str, pl.DataFrame]:
    """Many small tied data sets, 2-4 groups, some stratified: where edge cases live."""
    rng = np.random.default_rng(5)
    out = {}
    for i in range(60):
        n = int(rng.integers(3, 30))
        frame = _frame(
            rng.integers(0, 6, n).astype(float),
            (rng.random(n) < rng.uniform(0.2, 1.0)).astype(int),
            rng.integers(1, int(rng.integers(3, 6)), n),
            rng.integers(1, 3, n) if i % 2 else np.ones(n, dtype=int),
        )
        out[f"fuzz{i}"] = frame
    return out


@functools.cache
def r_fuzz() -> pl.DataFrame:
    data = pl.concat(frame.with_columns(case=pl.lit(name)) for name, frame in _fuzz_cases().items())
    script = """
    rows <- lapply(unique(data$case), function(name) {
      d <- data[data$case == name, ]
      f <- tryCatch(survdiff(Surv(time, event) ~ group + strata(strata), data = d),
                    error = function(e) NULL)
      if (is.null(f) || length(unique(d$group)) < 2)
        return(data.frame(case = name, chisq = NA, df = NA, e_sum = NA))
      e <- if (is.matrix(f$exp)) rowSums(f$exp) else f$exp
      data.frame(case = name, chisq = f$chisq, df = sum(e > 0) - 1, e_sum = sum(e^2))
    })
    put("out", do.call(rbind, rows))
    """
    return run_r(script, inputs={"data": data})["out"]


def test_many_small_data_sets_match_r() -> None:
    r = r_fuzz()
    checked = 0
    for name, frame in _fuzz_cases().items():
        row = r.filter(pl.col("case") == name).row(0, named=True)
        args = (frame["time"], frame["event"], frame["group"])
        if row["df"] is None or row["df"] < 1:
            with pytest.raises(InputError):
                logrank_test(*args, strata=frame["strata"])
            continue
        result = logrank_test(*args, strata=frame["strata"])
        assert_close(result.statistic, row["chisq"], atol=1e-10, what=f"{name} statistic")
        assert result.df == row["df"]
        assert_close(sum(e**2 for e in result.expected.values()), row["e_sum"], what=f"{name} E")
        checked += 1
    assert checked >= 40
