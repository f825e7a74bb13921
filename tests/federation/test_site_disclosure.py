"""Disclosure control of counted views, and counted views as an exact summary of the rows they count."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from oncorwe.analysis import CountViews, TableViews, count_rows, sum_counts
from oncorwe.analysis._survival import survival_analyses
from oncorwe.analysis.federated import Disclosure
from oncorwe.analysis.federated._disclosure import control_view

MONTH_DAYS = 365.25 / 12


def _counted(rows: list[tuple[object, ...]], columns: list[str]) -> pl.DataFrame:
    return count_rows(pl.DataFrame(rows, schema=columns, orient="row"))


def test_exact_settings_change_nothing() -> None:
    counted = _counted([("a", "x"), ("a", "y"), ("b", "x")], ["group", "value"])
    controlled = control_view(counted, Disclosure(0, 0, {}))
    assert controlled.rows.equals(counted) and controlled.suppressed_cells == 0 and not controlled.binned


def test_times_are_rounded_up_to_the_bin() -> None:
    counted = _counted([(0.0, True), (0.5, False), (1.0, True), (2.2, True)], ["os_months", "os_event"])
    rows = control_view(counted, Disclosure(0, 30, {})).rows
    days = (rows["os_months"] * MONTH_DAYS / 30).round(9)
    assert (days % 1 == 0).all()
    assert rows["os_months"].min() == 0.0  # time 0 stays 0
    assert (rows["os_months"] >= 0).all() and rows["n_patients"].sum() == 4


def test_a_small_cell_loses_its_group_then_is_withheld_when_still_small() -> None:
    rows = [("a", "x")] * 6 + [("a", "y")] * 2 + [("b", "x")] * 5 + [("b", "y")] * 5 + [("c", "y")] * 4
    controlled = control_view(_counted(rows, ["group", "value"]), Disclosure(5, 0, {}))
    out = {(r[0], r[1]): r[2] for r in controlled.rows.iter_rows()}
    # ("a","y") 2 and ("c","y") 4 keep their value and lose their group; ("a","x") loses its group
    # too, else group a's size (printed in Table 1's header) would give ("a","y") back
    assert out == {(None, "x"): 6, (None, "y"): 6, ("b", "x"): 5, ("b", "y"): 5}
    assert controlled.suppressed_cells == 3
    still_small = [("a", "x")] * 6 + [("a", "y")] * 1 + [("b", "x")] * 7
    controlled = control_view(_counted(still_small, ["group", "value"]), Disclosure(5, 0, {}))
    assert all(n >= 5 for n in controlled.rows["n_patients"].to_list())
    assert ("y" not in controlled.rows["value"].to_list())  # one patient alone is withheld


def test_one_withheld_cell_takes_the_next_smallest_with_it() -> None:
    rows = [("CR",)] * 2 + [("PR",)] * 6 + [("PD",)] * 20
    controlled = control_view(_counted(rows, ["best_response"]), Disclosure(5, 0, {}))
    assert controlled.rows["best_response"].to_list() == ["PD"]  # total 28 minus 20 hides CR's 2
    assert controlled.suppressed_cells == 2


def test_a_thin_curve_tail_is_censored_where_enough_were_at_risk() -> None:
    times = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    counted = _counted([(t, True) for t in times], ["os_months", "os_event"])
    rows = control_view(counted, Disclosure(5, 0, {})).rows
    # at 4.0 five patients are at risk (4..8), at 5.0 four: the tail from 5.0 is censored at 4.0
    assert rows.filter(pl.col("os_months") > 4.0).height == 0
    tail = rows.filter((pl.col("os_months") == 4.0) & ~pl.col("os_event"))
    assert tail["n_patients"].item() == 4
    assert rows["n_patients"].sum() == 8


def test_continuous_values_become_their_bins_middle() -> None:
    counted = _counted([(61.0,), (63.9,), (67.0,)], ["age_years"])
    rows = control_view(counted, Disclosure(0, 30, {"age_years": 5.0})).rows
    assert dict(rows.iter_rows()) == {62.5: 2, 67.5: 1}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 60, allow_nan=False), st.booleans(), st.sampled_from(["a", "b", None]),
                          st.integers(0, 3)), min_size=1, max_size=60))
def test_counted_views_of_any_split_into_centres_give_the_pooled_survival(rows: list[tuple[float, bool, str | None, int]]) -> None:
    frame = pl.DataFrame([r[:3] for r in rows], schema={"os_months": pl.Float64, "os_event": pl.Boolean, "arm": pl.String},
                         orient="row").with_columns(pfs_months=pl.col("os_months"), pfs_event=pl.col("os_event"))
    centre = pl.Series([r[3] for r in rows])
    keys = [("pfs_months", "pfs_event"), ("pfs_months", "pfs_event", "arm"),
            ("os_months", "os_event"), ("os_months", "os_event", "arm")]
    parts = [frame.filter(centre == c) for c in sorted(set(centre.to_list()))]
    counts = {k: sum_counts([count_rows(TableViews(p).frame(k)) for p in parts]) for k in keys}
    pooled = survival_analyses(TableViews(frame).frame, splits=["arm"], rate_months=[12.0])
    combined = survival_analyses(CountViews(counts, frame.schema).frame, splits=["arm"], rate_months=[12.0])
    for name, table in pooled.items():
        assert table.equals(combined[name]), name
