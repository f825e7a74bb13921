"""Statistical disclosure control of a centre's counted views, before they leave the centre.

Applied to each view's counted rows (``analysis._views.count_rows``) with the protocol's
``[federation]`` settings (:class:`oncorwe.protocol.FederationSpec`):

- **time binning**: every time (PFS, OS, time to response, duration of chemotherapy) is rounded up
  to a multiple of ``time_bin_days``, so that no exact event or censoring date can be rebuilt;
- **value binning**: a continuous covariate (age) becomes the middle of its bin (bins of the given width
  from 0);
- **tail truncation**: in a Kaplan-Meier view, where fewer than ``min_cell_count`` patients of a
  group remain at risk, their times are set to the last time at which enough were at risk and they
  are counted as censored there (the thin tail of a curve identifies its last patients);
- **small cells**: a row of a view without an event column that counts fewer than
  ``min_cell_count`` patients is withheld; when it is a view's only withheld row, the next smallest
  row is withheld too, so that it cannot be recovered from the centre's total. In a Kaplan-Meier
  view a whole group of fewer than ``min_cell_count`` patients is withheld.

Counts withheld here are missing from the pooled numbers; ``oncorwe combine`` lists the estimates
that are approximate because of it. With ``min_cell_count = 0`` and ``time_bin_days = 0`` nothing is
changed: the package is exact, and marked "not for release".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from oncorwe.analysis._views import COUNT_COLUMN, TIME_COLUMN_DAYS

__all__ = ["EVENT_OF_TIME", "Disclosure", "ViewControl", "control_view"]

#: A Kaplan-Meier view's time column -> its event column.
EVENT_OF_TIME = {"pfs_months": "pfs_event", "os_months": "os_event"}


@dataclass(frozen=True)
class Disclosure:
    """The settings a package was made with."""

    min_cell_count: int
    time_bin_days: int
    value_bins: Mapping[str, float]

    @property
    def exact(self) -> bool:
        """Nothing suppressed, binned or truncated: the package is not for release."""
        return self.min_cell_count == 0 and self.time_bin_days == 0 and not self.value_bins

    def record(self) -> dict[str, object]:
        return {"exact": self.exact, "min_cell_count": self.min_cell_count, "time_bin_days": self.time_bin_days,
                "value_bins": {k: float(v) for k, v in sorted(self.value_bins.items())}}


@dataclass(frozen=True)
class ViewControl:
    """What disclosure control did to one view: its rows as they leave, and what was changed."""

    rows: pl.DataFrame
    suppressed_cells: int
    truncated_patients: bool
    binned: bool


def control_view(counted: pl.DataFrame, disclosure: Disclosure) -> ViewControl:
    """Bin, truncate and suppress one view's counted rows (see the module docstring)."""
    columns = [c for c in counted.columns if c != COUNT_COLUMN]
    frame = counted
    binned = False
    if disclosure.time_bin_days > 0:
        for column in columns:
            if column in TIME_COLUMN_DAYS:
                width = disclosure.time_bin_days / TIME_COLUMN_DAYS[column]
                frame = frame.with_columns(_round_up(pl.col(column), width).alias(column))
                binned = True
    for column in columns:
        if column in disclosure.value_bins:
            width = float(disclosure.value_bins[column])
            # the bin's middle: rounding down would bias every mean and median by half a bin
            frame = frame.with_columns(((pl.col(column).cast(pl.Float64) / width).floor().mul(width) + width / 2)
                                       .alias(column))
            binned = True
    frame = _regroup(frame, columns)
    k = disclosure.min_cell_count
    times = [c for c in columns if c in EVENT_OF_TIME and EVENT_OF_TIME[c] in columns]
    if k <= 0:
        return ViewControl(frame, 0, False, binned)
    if times:
        frame, truncated, suppressed = _km_control(frame, columns, times[0], k)
        return ViewControl(frame, suppressed, truncated, binned)
    generalised = 0
    if len(columns) > 1:
        frame, generalised = _generalise(frame, columns, k)
    withheld = frame.filter(pl.col(COUNT_COLUMN) < k).height
    frame = frame.filter(pl.col(COUNT_COLUMN) >= k)
    if withheld == 1 and frame.height:  # secondary suppression: the next smallest row too
        frame = frame.sort([COUNT_COLUMN, *columns], nulls_last=False).slice(1)
        withheld += 1
    withheld += generalised
    return ViewControl(_regroup(frame, columns), withheld, False, binned)


def _generalise(frame: pl.DataFrame, columns: list[str], k: int) -> tuple[pl.DataFrame, int]:
    """A small cell of a grouped view keeps its value but loses its group: the grouping columns (all
    but the last) become null, so the value still counts in the overall column; in a group with
    one small cell, the group's next smallest cell loses its group too (else the group's total would
    give it back). Returns the rows and the number of cells generalised."""
    groups, last = columns[:-1], columns[-1]
    ranked = frame.with_columns(
        (pl.col(COUNT_COLUMN) < k).alias("__small"),
        pl.col(COUNT_COLUMN).rank("ordinal").over(groups).alias("__rank"),
    ).with_columns(
        pl.col("__small").sum().over(groups).alias("__n_small"),
        (pl.col("__rank") - pl.col("__small").cast(pl.UInt32).sum().over(groups)).alias("__rank_big"),
    )
    mark = pl.col("__small") | ((pl.col("__n_small") == 1) & ~pl.col("__small") & (pl.col("__rank_big") == 1))
    any_group = pl.any_horizontal([pl.col(c).is_not_null() for c in groups])
    marked = ranked.with_columns((mark & any_group).alias("__mark"))
    n_marked = int(marked["__mark"].sum())
    out = marked.with_columns([pl.when(pl.col("__mark")).then(None).otherwise(pl.col(c)).alias(c) for c in groups])
    del last
    return _regroup(out.select(frame.columns), columns), n_marked


def _round_up(column: pl.Expr, width: float) -> pl.Expr:
    """``column`` rounded up to a multiple of ``width`` (0 stays 0; null stays null)."""
    return (column / width).ceil() * width


def _regroup(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Rows that became equal (binning) counted once; sorted as ``count_rows``."""
    if not frame.height:
        return frame
    summed = frame.group_by(columns).agg(pl.col(COUNT_COLUMN).sum().cast(pl.Int64))
    return summed.sort(columns, nulls_last=False).select(frame.columns)


def _km_control(frame: pl.DataFrame, columns: list[str], time: str, k: int) -> tuple[pl.DataFrame, bool, int]:
    """Withhold groups of fewer than ``k`` patients; censor each group's tail where fewer than ``k``
    remain at risk at the last time at which ``k`` or more were."""
    event = EVENT_OF_TIME[time]
    group_columns = [c for c in columns if c not in (time, event) and c not in TIME_COLUMN_DAYS]
    groups = frame.partition_by(group_columns, maintain_order=True) if group_columns else [frame]
    parts = []
    suppressed = 0
    truncated = False
    for part in groups:
        usable = part.filter(pl.col(time).is_not_null() & pl.col(event).is_not_null())
        if part[COUNT_COLUMN].sum() < k:
            suppressed += 1
            continue
        order = usable.sort(time, descending=True)
        at_risk = order[COUNT_COLUMN].cum_sum()  # patients with a time >= this row's time (descending order)
        times = order[time].to_list()
        risk = dict(zip(times, at_risk.to_list(), strict=True))  # last write per time: all rows at that time
        thin = [t for t in times if risk[t] < k]
        if thin:
            enough = [t for t in times if risk[t] >= k]
            cut = max(enough) if enough else 0.0
            tail = (pl.col(time) > cut) & pl.col(time).is_not_null() & pl.col(event).is_not_null()
            # another time of the row (the time of response) cannot come after the end of follow-up
            others = [c for c in columns if c in TIME_COLUMN_DAYS and c != time]
            part = part.with_columns(
                pl.when(tail).then(pl.lit(cut)).otherwise(pl.col(time)).cast(part.schema[time]).alias(time),
                pl.when(tail).then(pl.lit(False)).otherwise(pl.col(event)).cast(part.schema[event]).alias(event),
                *(pl.when(tail).then(pl.min_horizontal(pl.col(c), pl.lit(cut))).otherwise(pl.col(c))
                  .cast(part.schema[c]).alias(c) for c in others),
            )
            truncated = truncated or bool(part.filter(pl.col(time) == cut).height)
        parts.append(part)
    if not parts:
        return frame.slice(0, 0), truncated, suppressed
    return _regroup(pl.concat(parts), columns), truncated, suppressed

