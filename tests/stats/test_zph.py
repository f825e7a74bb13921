"""proportional_hazards_test against R's cox.zph for every time transform, plus errors.

The default transform ("km") is compared with R on five data sets and random tied data in
test_cox.py; here the other transforms, a factor term with several degrees of freedom, strata with
Efron and Breslow ties, and the error messages.
"""

from __future__ import annotations

import polars as pl
import pytest

from oncorwe.errors import InputError
from oncorwe.stats import cox_ph, proportional_hazards_test
from rsupport import run_r

CASES = {
    # name: (data, R formula rhs, R extras, our kwargs, transform)
    "veteran_identity": ("veteran", "celltype + karno + age", "",
                         {"time": "time", "event": "status", "covariates": ["celltype", "karno", "age"]},
                         "identity"),
    "veteran_rank_breslow": ("veteran", "celltype + karno", ", ties='breslow'",
                             {"time": "time", "event": "status", "covariates": ["celltype", "karno"],
                              "ties": "breslow"}, "rank"),
    "lung_log_strata": ("lung", "age + ph.ecog + strata(sex)", "",
                        {"time": "time", "event": "dead", "covariates": ["age", "ph.ecog"], "strata": "sex"},
                        "log"),
    "lung_km_strata_breslow": ("lung", "age + ph.ecog + strata(sex)", ", ties='breslow'",
                               {"time": "time", "event": "dead", "covariates": ["age", "ph.ecog"],
                                "strata": "sex", "ties": "breslow"}, "km"),
}


@pytest.fixture(scope="module")
def r_zph() -> dict[str, pl.DataFrame]:
    lines = [
        "veteran$celltype <- factor(as.character(veteran$celltype))",
        "lung$dead <- lung$status - 1",
        "rows <- list()",
    ]
    for name, (data, rhs, extra, kwargs, transform) in CASES.items():
        lines.append(
            f"z <- cox.zph(coxph(Surv({kwargs['time']}, {kwargs['event']}) ~ {rhs}, data = {data}{extra}),"
            f" transform = '{transform}')$table"
        )
        lines.append(
            f"rows[[length(rows) + 1]] <- data.frame(case = '{name}', term = rownames(z), chisq = z[, 1],"
            " df = z[, 2], p = z[, 3])"
        )
    lines += ["put('out', do.call(rbind, rows))", "put('veteran', veteran)", "put('lung', lung)"]
    return run_r("\n".join(lines), outputs=("out", "veteran", "lung"))


@pytest.mark.parametrize("case", list(CASES))
def test_transforms_equal_r(r_zph: dict[str, pl.DataFrame], case: str) -> None:
    data, _, _, kwargs, transform = CASES[case]
    fit = cox_ph(r_zph[data], **kwargs)  # type: ignore[arg-type]
    ours = proportional_hazards_test(fit, transform=transform).to_frame()  # type: ignore[arg-type]
    theirs = r_zph["out"].filter(pl.col("case") == case)
    assert ours.get_column("term").to_list() == theirs.get_column("term").to_list()
    for column, r_column in (("statistic", "chisq"), ("df", "df"), ("p_value", "p")):
        for a, b in zip(ours.get_column(column).to_list(), theirs.get_column(r_column).to_list(), strict=True):
            assert a == pytest.approx(b, rel=1e-6), f"{case} {column}: ours {a} vs R {b}"


def test_factor_term_has_its_levels_as_degrees_of_freedom(r_zph: dict[str, pl.DataFrame]) -> None:
    fit = cox_ph(r_zph["veteran"], time="time", event="status", covariates=["celltype", "karno"])
    result = proportional_hazards_test(fit)
    assert result.terms == ("celltype", "karno", "GLOBAL")
    assert result.df == (3.0, 1.0, 4.0)
    assert result.test("karno").df == 1.0


def test_errors_name_the_argument(r_zph: dict[str, pl.DataFrame]) -> None:
    fit = cox_ph(r_zph["veteran"], time="time", event="status", covariates=["karno"])
    with pytest.raises(InputError, match="transform: must be one of"):
        proportional_hazards_test(fit, transform="sqrt")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="term: 'age' is not one of"):
        proportional_hazards_test(fit).test("age")
    zero_time = pl.DataFrame({"time": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "event": [1, 1, 0, 1, 1, 0],
                              "x": [0.5, 1.0, -1.0, 2.0, 0.0, 0.3]})
    fit0 = cox_ph(zero_time, time="time", event="event", covariates=["x"])
    with pytest.raises(InputError, match="'log' needs all times > 0"):
        proportional_hazards_test(fit0, transform="log")
