"""The cohort flow diagram (STROBE item 13; von Elm E et al., Lancet 2007;370:1453-1457): the
number of patients at each step, with the patients excluded at each criterion and why."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import polars as pl
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from oncorwe.report._format import group_label
from oncorwe.report._style import FULL_WIDTH_IN, figure_style, new_figure

__all__ = ["CRITERION_LABELS", "flow_figure"]

#: The first box; every criterion is worded by its protocol label (``info["criterion_labels"]``).
CRITERION_LABELS: dict[str, str] = {
    "source_records": "Patients in the centres' records",
}


def flow_figure(
    attrition: pl.DataFrame,
    *,
    n_centres: int | None = None,
    suppress_below: int = 0,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """A vertical flow diagram from the overall attrition rows (``centre_id`` null); counts below
    ``suppress_below`` (zero excepted) print as "<k". ``labels`` (the protocol's wording of a
    criterion or of ``source_records``, the first box; the analysis result's
    ``info["criterion_labels"]``) take precedence over the generic :data:`CRITERION_LABELS`."""
    names = {**CRITERION_LABELS, **(labels or {})}

    def count(value: int | str | None) -> str:
        if isinstance(value, str):  # already withheld by the disclosure control ("<k" or "*")
            return value
        if value is None:  # withheld by a federated combine's disclosure control (small flow steps)
            return "withheld"
        return f"<{suppress_below}" if 0 < value < suppress_below else str(value)

    overall = attrition.filter(pl.col("centre_id").is_null()).sort("step")
    steps = overall.rows(named=True)
    n_boxes = sum(1 for row in steps if row["criterion"] != "source_records") + 1
    height = 0.62 * n_boxes + 0.25
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN, height)
        ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
        ax.set_xlim(0, 10)
        ax.set_ylim(-0.15, n_boxes)
        ax.axis("off")

        def box(x: float, y: float, w: float, text: str, face: str) -> None:
            half = 0.08 + 0.11 * (text.count("\n") + 1)
            ax.add_patch(FancyBboxPatch((x, y - half), w, 2 * half, boxstyle="round,pad=0.02",
                                        linewidth=0.8, edgecolor="#000000", facecolor=face))
            ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=7, linespacing=1.2)

        y = n_boxes - 0.5
        if steps:
            first = steps[0]
            centres = f" from {n_centres} centres" if n_centres else ""
            box(0.3, y, 4.6, f"{names['source_records']}{centres}\nn = {count(first['n_before'])}", "#FFFFFF")
        for row in steps:
            if row["criterion"] == "source_records":
                continue
            y_next = y - 1
            ax.annotate("", xy=(2.6, y_next + 0.22), xytext=(2.6, y - 0.22),
                        arrowprops={"arrowstyle": "-|>", "linewidth": 0.8, "color": "#000000"})
            ax.plot([2.6, 5.3], [y - 0.5, y - 0.5], color="#000000", linewidth=0.8)
            label = names.get(row["criterion"], group_label(row["criterion"]))
            wrapped = textwrap.fill(f"Excluded: {label}", width=52)
            box(5.3, y - 0.5, 4.6, f"{wrapped}\nn = {count(row['n_excluded'])}", "#F2F2F2")
            box(0.3, y_next, 4.6, f"n = {count(row['n_after'])}", "#FFFFFF")
            y = y_next
        if steps:
            ax.text(2.6, y - 0.42, "Analysed", ha="center", va="top", fontsize=7.5, fontweight="bold")
    return fig
