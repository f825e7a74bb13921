"""Forest plot of the Cox models: hazard ratio with 95% CI per term, one panel per endpoint, on a
log scale with the line of no effect at 1, and beside each panel the text columns journals print
(the term's n: the model's patients it describes, "HR (95% CI)" and the Wald p-value of the term),
so the figure reads without the table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from oncorwe.report._format import fmt_ci, fmt_p, group_label, variable_label
from oncorwe.report._style import FULL_WIDTH_IN, figure_style, new_figure

__all__ = ["forest_figure", "hr_text", "n_text", "p_text", "term_label"]

# Panel layout as fractions of the figure width: row labels, then per endpoint the plot and its
# text columns. The text block is as wide as "1234", "0.85 (0.70-1.03)" and "<0.001" at the body size.
LABELS_WIDTH = 0.29
PLOT_WIDTH = 0.13
TEXT_WIDTH = 0.22
N_COLUMN_X = 1.0 + 0.035 / PLOT_WIDTH  # right edge of the n column, in axes fractions (1 = the plot's right edge)
HR_COLUMN_X = N_COLUMN_X + 0.01 / PLOT_WIDTH  # left edge of "HR (95% CI)"
P_COLUMN_X = 1.0 + (TEXT_WIDTH - 0.005) / PLOT_WIDTH  # right edge of the p column
TEXT_SIZE = 6.5


def hr_text(hazard_ratio: object, lower: object, upper: object) -> str:
    """``0.85 (0.70–1.03)``: the hazard ratio and its 95% CI at two decimals."""
    return fmt_ci(hazard_ratio, lower, upper, decimals=2)


def p_text(p_value: object) -> str:
    """The p column of a forest plot: ``0.012``, ``<0.001`` (the "p" is in the header; below 0.001
    the column prints ``<0.001`` as journals' forest plots do, the table keeps the finer threshold)."""
    text = fmt_p(p_value)
    return "<0.001" if text.startswith("p < ") else text.removeprefix("p = ")


def term_label(term: str, variable: str) -> str:
    """``regimen_class=taxane`` -> "Regimen: Taxane alone"; a numeric covariate its own label."""
    rest = term[len(variable):].lstrip("=:._ ") if term.startswith(variable) else ""
    if not rest or rest in {"TRUE", "True", "1"}:
        return variable_label(variable)
    return f"{variable_label(variable)}: {group_label(rest)}"


def n_text(value: object) -> str:
    """The n column: the count as the (possibly disclosure-controlled) table prints it, "–" if none."""
    return "\u2013" if value is None else str(value)


def forest_figure(cox: pl.DataFrame, *, endpoints: Sequence[tuple[str, str]],
                  references: dict[str, str] | None = None,
                  n_shown: dict[tuple[str, str], object] | None = None) -> Figure:
    """Hazard ratios of ``cox`` (columns endpoint, term, variable, hazard_ratio, lower, upper, and
    optionally n).

    ``endpoints`` lists (endpoint, title) panels; ``references`` names each categorical
    covariate's reference level, printed under the plot. ``n_shown`` maps (endpoint, term) to the
    n as the report's table shows it (a shareable report's "<5"); default the ``n`` column.
    """
    terms = cox.filter(pl.col("endpoint") == endpoints[0][0]).select("term", "variable").rows()
    n_terms = max(len(terms), 1)
    height = 1.05 + 0.22 * n_terms
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN, height)
        axes = fig.subplots(1, len(endpoints), sharey=True, squeeze=False)[0]
        right = LABELS_WIDTH + len(endpoints) * (PLOT_WIDTH + TEXT_WIDTH) - TEXT_WIDTH
        fig.subplots_adjust(left=LABELS_WIDTH, right=right, top=1 - 0.45 / height, bottom=0.55 / height,
                            wspace=TEXT_WIDTH / PLOT_WIDTH)
        y = np.arange(n_terms)[::-1]
        for ax, (endpoint, title) in zip(axes, endpoints, strict=True):
            rows = {r["term"]: r for r in cox.filter(pl.col("endpoint") == endpoint).iter_rows(named=True)}
            hr, lo, hi = [], [], []
            text = ax.get_yaxis_transform()  # x in axes fractions, y in rows
            for term_y, (term, _variable) in zip(y, terms, strict=True):
                row = rows.get(term, {})
                hr.append(_num(row.get("hazard_ratio")))
                lo.append(_num(row.get("lower")))
                hi.append(_num(row.get("upper")))
                shown = n_shown.get((endpoint, term)) if n_shown is not None else row.get("n")
                ax.text(N_COLUMN_X, term_y, n_text(shown),
                        transform=text, ha="right", va="center", fontsize=TEXT_SIZE, clip_on=False)
                ax.text(HR_COLUMN_X, term_y, hr_text(row.get("hazard_ratio"), row.get("lower"), row.get("upper")),
                        transform=text, ha="left", va="center", fontsize=TEXT_SIZE, clip_on=False)
                ax.text(P_COLUMN_X, term_y, p_text(row.get("p_value")),
                        transform=text, ha="right", va="center", fontsize=TEXT_SIZE, clip_on=False)
            ax.text(N_COLUMN_X, 1.0, "n", transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=TEXT_SIZE, fontweight="bold", fontstyle="italic")
            ax.text(HR_COLUMN_X, 1.0, "HR (95% CI)", transform=ax.transAxes, ha="left", va="bottom",
                    fontsize=TEXT_SIZE, fontweight="bold")
            ax.text(P_COLUMN_X, 1.0, "p", transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=TEXT_SIZE, fontweight="bold", fontstyle="italic")
            hr_arr, lo_arr, hi_arr = np.array(hr), np.array(lo), np.array(hi)
            ax.axvline(1.0, color="#777777", linewidth=0.7)
            ok = np.isfinite(hr_arr) & np.isfinite(lo_arr) & np.isfinite(hi_arr)
            ax.hlines(y[ok], lo_arr[ok], hi_arr[ok], color="#000000", linewidth=1.0)
            ax.plot(hr_arr[ok], y[ok], marker="s", linestyle="none", color="#0072B2", markersize=4)
            ax.set_xscale("log")
            finite = np.concatenate([lo_arr[ok], hi_arr[ok]]) if ok.any() else np.array([0.5, 2.0])
            low, high = max(float(finite.min()) * 0.8, 0.05), min(float(finite.max()) * 1.25, 20.0)
            ax.set_xlim(min(low, 0.5), max(high, 2.0))
            ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 8) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_title(title, loc="left", pad=11)  # above the text columns' headers
            if ax is not axes[0]:
                ax.tick_params(axis="y", left=False)  # the row labels belong to the first panel only
            ax.set_xlabel("Hazard ratio (95% CI, log scale)")
        axes[0].set_yticks(y)
        axes[0].set_yticklabels([term_label(t, v) for t, v in terms])
        axes[0].set_ylim(-0.7, n_terms - 0.3)
        if references:
            text = "Reference levels: " + "; ".join(
                f"{variable_label(k)} {group_label(v)}" for k, v in sorted(references.items()))
            fig.text(0.01, 0.01, text, fontsize=6.5, ha="left", va="bottom")
    return fig


def _num(value: object) -> float:
    if value is None:
        return math.nan
    return float(value)  # type: ignore[arg-type]
