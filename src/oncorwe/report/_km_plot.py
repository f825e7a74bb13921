"""Kaplan-Meier figures in the KMunicate style (Morris TP et al., BMJ Open 2019;9:e030215): step
curves with censor ticks, optional confidence bands, median lines, the log-rank p in the plot, and
under the x-axis a table aligned to its ticks with, per group, the number at risk and the
cumulative numbers censored and with an event.

Counts in the table at time t: at risk = time >= t; censored and events = cumulative before t, so
that the three add up to the group's size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from oncorwe.report._format import fmt_ci, fmt_p, split_label
from oncorwe.report._style import FULL_WIDTH_IN, LINESTYLES, PALETTE, figure_style, new_figure

__all__ = ["RiskRow", "km_figure", "risk_table", "time_ticks"]


@dataclass(frozen=True)
class RiskRow:
    """Numbers under the x-axis for one group at each tick."""

    group: str
    label: str
    at_risk: tuple[int, ...]
    censored: tuple[int, ...]
    events: tuple[int, ...]


def time_ticks(max_time: float) -> np.ndarray:
    """Ticks every 3 months (6 or 12 when the follow-up is long), from 0 to just past ``max_time``."""
    step = 3.0 if max_time <= 36 else 6.0 if max_time <= 72 else 12.0
    last = step * max(1, math.ceil(max_time / step))
    return np.arange(0.0, last + step / 2, step)


def risk_table(curve: pl.DataFrame, ticks: Sequence[float] | np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """At risk (time >= t), cumulative censored and events (time < t) at each tick, from a KM curve."""
    time = curve["time"].to_numpy()
    n_risk = curve["n_risk"].to_numpy()
    n_event = curve["n_event"].to_numpy()
    n_censor = curve["n_censor"].to_numpy()
    at_risk, censored, events = [], [], []
    for t in ticks:
        later = np.flatnonzero(time >= t)
        at_risk.append(int(n_risk[later[0]]) if later.size else 0)
        before = time < t
        censored.append(int(n_censor[before].sum()))
        events.append(int(n_event[before].sum()))
    return tuple(at_risk), tuple(censored), tuple(events)


def _display_horizon(curves: pl.DataFrame) -> float:
    """Where the x-axis ends: the last time with at least 5 patients still at risk over all groups
    (beyond it the curve rests on a handful of patients), or the last time when all have fewer."""
    if curves.height == 0:
        return 1.0
    times = np.sort(curves["time"].unique().to_numpy())
    pooled = np.zeros(times.size, dtype=np.int64)
    for group in curves.partition_by("group"):
        group_times = group["time"].to_numpy()
        n_risk = group["n_risk"].to_numpy()
        # at risk at t: n_risk of the group's first time >= t (0 past its last time)
        position = np.searchsorted(group_times, times, side="left")
        inside = position < group_times.size
        pooled[inside] += n_risk[position[inside]]
    enough = times[pooled >= 5]
    return float(enough[-1]) if enough.size else float(times[-1])


def _step(curve: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The curve as a right-continuous step function starting at (0, 1)."""
    time = np.concatenate(([0.0], curve["time"].to_numpy()))
    values = curve[column].to_numpy().astype(float)
    values = np.concatenate(([1.0], values))
    return time, values


def km_figure(
    curves: pl.DataFrame,
    *,
    ylabel: str,
    groups: Sequence[str],
    medians: Mapping[str, tuple[float | None, float | None, float | None]],
    p_value: float | None = None,
    ci_bands: bool = True,
    suppress_below: int = 0,
    title: str | None = None,
) -> Figure:
    """A Kaplan-Meier figure with its numbers-at-risk table.

    Parameters
    ----------
    curves : rows of one endpoint and one grouping (columns group, time, n_risk, n_event, n_censor,
        survival, lower, upper), e.g. the analysis result's ``survival_curves`` filtered.
    ylabel : the endpoint, e.g. "Progression-free survival".
    groups : group values in plotting order.
    medians : group -> (median, lower, upper) in months, shown in the legend.
    p_value : log-rank p shown in the plot (omitted when None).
    ci_bands : shade the pointwise 95% confidence band of each curve.
    suppress_below : a shareable figure (the protocol's min_cell_count, 0 for a full one): the
        table shows the number at risk only (cumulative censored and events would let a
        suppressed count be recovered), counts below it print as "<k", each curve stops where
        fewer remain at risk, and censoring ticks (single patients' times) are left out.
        ``medians`` then holds only the groups whose median may be shown.
    """
    ticks = time_ticks(_display_horizon(curves))
    group_var = str(curves["group_var"][0]) if "group_var" in curves.columns and curves.height else ""
    labels = {g: split_label(group_var, g) for g in groups}
    rows = [RiskRow(g, labels[g], *risk_table(curves.filter(pl.col("group") == g), ticks)) for g in groups]
    shareable = suppress_below > 0
    lines_per_group = 1 if shareable else 3
    table_lines = lines_per_group * len(rows) + len(rows)  # the count lines per group plus a heading
    height = 2.9 + 0.115 * table_lines + 0.35
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN, height)
        top = 1 - 0.25 / height
        plot_bottom = (0.115 * table_lines + 0.55) / height
        ax = fig.add_axes((0.22, plot_bottom, 0.75, top - plot_bottom))
        table_ax = fig.add_axes((0.22, 0.02, 0.75, plot_bottom - 0.4 / height), sharex=ax)
        for i, group in enumerate(groups):
            curve = curves.filter(pl.col("group") == group).sort("time")
            if shareable:  # the tail where fewer than min_cell_count remain at risk is cut
                curve = curve.filter(pl.col("n_risk") >= suppress_below)
            colour, style = PALETTE[i % len(PALETTE)], LINESTYLES[i % len(LINESTYLES)]
            median = medians.get(group, (None, None, None))
            label = (f"{labels[group]}: median {fmt_ci(*median)} mo" if group in medians or not shareable
                     else labels[group])
            t, s = _step(curve, "survival")
            ax.step(t, s, where="post", color=colour, linestyle=style, linewidth=1.2, label=label)
            if ci_bands:
                _, lo = _step(curve, "lower")
                _, hi = _step(curve, "upper")
                ax.fill_between(t, np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0), step="post",
                                color=colour, alpha=0.12, linewidth=0)
            censored = curve.filter(pl.col("n_censor") > 0) if not shareable else curve.clear()
            ax.plot(censored["time"].to_numpy(), censored["survival"].to_numpy(), linestyle="none",
                    marker="|", markersize=5, markeredgewidth=0.8, color=colour)
            if median[0] is not None:
                ax.plot([0, median[0], median[0]], [0.5, 0.5, 0.0], color=colour, linestyle=":",
                        linewidth=0.7, alpha=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, ticks[-1])
        ax.set_xticks(ticks)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_yticklabels([f"{int(v * 100)}%" for v in np.linspace(0, 1, 6)])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("Months since start of chemotherapy")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(loc="upper right", frameon=False, handlelength=3)
        if p_value is not None:
            ax.text(0.98, 0.55 if len(groups) > 3 else 0.7, f"Log-rank {fmt_p(p_value)}",
                    transform=ax.transAxes, ha="right", va="center")
        if title:
            ax.set_title(title, loc="left")
        _draw_table(fig, table_ax, rows, ticks, suppress_below, at_risk_only=shareable)
    return fig


def _draw_table(fig: Figure, ax: Axes, rows: Sequence[RiskRow], ticks: np.ndarray, suppress_below: int,
                *, at_risk_only: bool = False) -> None:
    ax.set_ylim(0, 1)
    ax.axis("off")
    lines = (2 if at_risk_only else 4) * len(rows)
    height = 1.0 / max(lines, 1)
    y = 1.0 - height / 2
    for i, row in enumerate(rows):
        colour = PALETTE[i % len(PALETTE)]
        ax.text(0.01, y, row.label, transform=blended_transform_factory(fig.transFigure, ax.transAxes), ha="left",
                va="center", fontsize=7, fontweight="bold", color=colour)
        y -= height
        counts = [("At risk", row.at_risk)]
        if not at_risk_only:
            counts += [("Censored", row.censored), ("Events", row.events)]
        for name, values in counts:
            ax.text(-0.045, y, name, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=6.5)
            for tick, value in zip(ticks, values, strict=True):
                shown = f"<{suppress_below}" if 0 < value < suppress_below else str(value)
                ax.text(tick, y, shown, ha="center", va="center", fontsize=6.5)
            y -= height
