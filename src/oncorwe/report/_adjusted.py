"""The report's adjusted comparison and competing-risks sections (issue 15): the balance table and
love plot (|SMD| before and after weighting, the 0.1 line), propensity overlap histograms, weighted
Kaplan-Meier curves with their numbers at risk, the weighted Cox table with E-values, and per
competing-risks analysis (the ``analysis`` column of the ``competing_*`` tables) its cumulative
incidence curves with Gray's test and the Fine-Gray subdistribution hazard ratios. Tables print the
disclosed tables; figures draw the computed ones and withhold what they print (``suppress_below``),
as the other sections do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from oncorwe.report._format import fmt_ci, fmt_num, fmt_p, group_label, variable_label
from oncorwe.report._km_plot import km_figure, time_ticks
from oncorwe.report._render import FigureSpec
from oncorwe.report._style import FULL_WIDTH_IN, LINESTYLES, PALETTE, figure_style, new_figure
from oncorwe.report._tables import DisplayTable

__all__ = ["adjusted_items", "competing_items", "competing_names", "competing_title"]

ENDPOINT_LABELS = {"pfs": "Progression-free survival", "os": "Overall survival"}
ANALYSIS_LABELS = {"unadjusted": "Unadjusted", "complete_case": "Complete cases",
                   "weighted_complete_case": "Weighted, complete cases",
                   "imputed": "Imputed", "weighted_imputed": "Weighted, multiple imputation (pooled)"}
CAUSE_LABELS = {"progression": "Progression", "subsequent_therapy": "Subsequent therapy"}
#: the competing death, named after the event of interest it comes before
DEATH_LABELS = {"progression": "Death without progression", "subsequent_therapy": "Death before subsequent therapy"}
BALANCE_LINE = 0.1


def _text(value: object, decimals: int = 2) -> str:
    """A cell as printed: a withheld value as given ("<5", "*"), a missing one as a dash."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "\u2013"
    if isinstance(value, int):
        return str(value)
    return fmt_num(value, decimals)


def _term(covariate: str) -> str:
    name, _, level = covariate.partition("=")
    return f"{variable_label(name)}: {group_label(level, name)}" if level else variable_label(name)


def _in_sentence(label: str) -> str:
    """A label inside a sentence: its first letter in lower case, unless it starts an acronym ("LDH ...")."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def _arm(arm: str) -> str:
    return group_label(arm, "arm")


def _cause(cause: str, causes: Sequence[str]) -> str:
    """A cause as printed; the competing death is named after the event of interest beside it."""
    if cause == "death":
        interest = next((c for c in causes if c != "death"), "")
        return DEATH_LABELS.get(interest, "Death")
    return CAUSE_LABELS.get(cause, cause.replace("_", " ").capitalize())


def competing_names(raw: Mapping[str, pl.DataFrame]) -> list[str]:
    """The competing-risks analyses of a result (their names), in the protocol's order."""
    names: list[str] = []
    for table in ("competing_incidence", "competing_tests"):
        frame = raw[table]
        if "analysis" in frame.columns:
            names.extend(n for n in frame["analysis"].unique(maintain_order=True).to_list() if n not in names)
    return names


def _of(frame: pl.DataFrame, analysis: str) -> pl.DataFrame:
    return frame.filter(pl.col("analysis") == analysis) if "analysis" in frame.columns else frame.clear()


def _causes(raw: Mapping[str, pl.DataFrame], analysis: str) -> list[str]:
    """The analysis's causes, the event of interest first."""
    for table, column in (("competing_tests", "cause"), ("competing_incidence", "cause"), ("competing_curves", "endpoint")):
        causes = _of(raw[table], analysis)[column].unique(maintain_order=True).to_list()
        if causes:
            return [str(c) for c in causes]
    return []


def _subject(raw: Mapping[str, pl.DataFrame], analysis: str) -> str:
    """What an analysis is about, as its headings print it: "Subsequent therapy and death before
    subsequent therapy, by arm" (distinct, as the protocol's analyses differ in event or grouping)."""
    causes = _causes(raw, analysis)
    names = [_cause(c, causes) for c in causes]
    text = " and ".join([names[0], *(n.lower() for n in names[1:])]) if names else analysis.replace("_", " ")
    group_var = next((str(v) for table in ("competing_incidence", "competing_tests")
                      for v in _of(raw[table], analysis)["group_var"].head(1).to_list()), "")
    return f"{text}, by {_in_sentence(variable_label(group_var))}" if group_var else text


def competing_title(raw: Mapping[str, pl.DataFrame], analysis: str) -> str:
    """A competing-risks section's title: the event of interest, the death competing with it, the groups."""
    return f"Competing risks: {_subject(raw, analysis)}"


# --- figures ---------------------------------------------------------------------------------------

def love_figure(balance: pl.DataFrame) -> Figure:
    """|SMD| of each covariate before (open) and after (filled) weighting, per analysis; the 0.1 line."""
    covariates = balance["covariate"].unique(maintain_order=True).to_list()
    analyses = balance["analysis"].unique(maintain_order=True).to_list()
    height = 1.2 + 0.32 * len(covariates)
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN * 0.8, height)
        ax = fig.add_axes((0.34, 0.8 / height, 0.62, 1 - 1.15 / height))
        y = np.arange(len(covariates))[::-1].astype(float)
        offset = {a: (i - (len(analyses) - 1) / 2) * 0.18 for i, a in enumerate(analyses)}
        for i, analysis in enumerate(analyses):
            rows = {r["covariate"]: r for r in balance.filter(pl.col("analysis") == analysis).iter_rows(named=True)}
            colour = PALETTE[(i + 1) % len(PALETTE)]
            before = [abs(rows[c]["smd_unweighted"]) if c in rows else np.nan for c in covariates]
            after = [abs(rows[c]["smd_weighted"]) if c in rows and rows[c]["smd_weighted"] is not None else np.nan
                     for c in covariates]
            label = ANALYSIS_LABELS.get(analysis, analysis)
            ax.scatter(before, y + offset[analysis], facecolors="none", edgecolors=colour, s=22,
                       label=f"{label}: unweighted")
            ax.scatter(after, y + offset[analysis], color=colour, s=22, marker="s", label=f"{label}: weighted")
        ax.axvline(BALANCE_LINE, color="#555555", linestyle="--", linewidth=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([_term(c) for c in covariates])
        ax.set_xlabel("Absolute standardised mean difference")
        ax.set_xlim(left=0)
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
        ax.legend(loc="lower right", frameon=False, fontsize=6.5)
    return fig


def overlap_figure(overlap: pl.DataFrame, suppress_below: int) -> Figure:
    """Mirrored histograms of the propensity of an arm: the first arm above the axis, the others
    below. In a shareable figure a bin of fewer than ``suppress_below`` patients is not drawn."""
    of_levels = overlap["propensity_of"].unique(maintain_order=True).to_list()
    arms = overlap["arm"].unique(maintain_order=True).to_list()
    height = 2.4 * len(of_levels) + 0.4
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN * 0.8, height)
        for k, of in enumerate(of_levels):
            bottom = (0.45 + 2.4 * (len(of_levels) - 1 - k)) / height
            ax = fig.add_axes((0.12, bottom, 0.84, 2.0 / height))
            for i, arm in enumerate(arms):
                rows = overlap.filter((pl.col("propensity_of") == of) & (pl.col("arm") == arm)).sort("bin_lower")
                counts = rows["n"].to_numpy().astype(float)
                if suppress_below > 0:
                    counts = np.where(counts < suppress_below, 0.0, counts)
                sign = 1.0 if i == 0 else -1.0
                ax.bar(rows["bin_lower"].to_numpy(), sign * counts, width=rows["bin_upper"].to_numpy() - rows["bin_lower"].to_numpy(),
                       align="edge", color=PALETTE[(i + 1) % len(PALETTE)], alpha=0.75, edgecolor="white",
                       linewidth=0.4, label=_arm(arm))
            ax.axhline(0, color="#000000", linewidth=0.6)
            ax.set_xlim(0, 1)
            ax.set_xlabel(f"Propensity of {_arm(of).lower()}")
            ax.set_ylabel("Patients")
            ticks = ax.get_yticks()
            ax.set_yticks(ticks)
            ax.set_yticklabels([f"{abs(t):g}" for t in ticks])
            ax.legend(loc="upper right", frameon=False)
    return fig


def _median(curve: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """The median and its interval from a curve: the first times the estimate, the lower and the upper
    confidence limit reach 0.5 (R's survfit); None where not reached."""
    ordered = curve.sort("time")
    return _first_at_half(ordered, "survival"), _first_at_half(ordered, "lower"), _first_at_half(ordered, "upper")


def _first_at_half(curve: pl.DataFrame, column: str) -> float | None:
    below = curve.filter(pl.col(column) <= 0.5)
    return float(below["time"][0]) if below.height else None


def incidence_figure(curves: pl.DataFrame, tests: pl.DataFrame, suppress_below: int) -> Figure:
    """Cumulative incidence step curves: colour by group, line style by cause; Gray's p per cause."""
    groups = curves["group"].unique(maintain_order=True).to_list()
    causes = curves["endpoint"].unique(maintain_order=True).to_list()
    ticks = time_ticks(float(curves["time"].max() or 1.0))  # type: ignore[arg-type]
    with figure_style():
        fig = new_figure(FULL_WIDTH_IN, 3.4)
        ax = fig.add_axes((0.1, 0.15, 0.86, 0.8))
        for i, group in enumerate(groups):
            for j, cause in enumerate(causes):
                curve = curves.filter((pl.col("group") == group) & (pl.col("endpoint") == cause)).sort("time")
                if suppress_below > 0:
                    curve = curve.filter(pl.col("n_risk") >= suppress_below)
                t = np.concatenate([[0.0], curve["time"].to_numpy()])
                f = np.concatenate([[0.0], curve["incidence"].to_numpy()])
                ax.step(t, f, where="post", color=PALETTE[(i + 1) % len(PALETTE)], linestyle=LINESTYLES[j % len(LINESTYLES)],
                        linewidth=1.2, label=f"{group_label(group, str(curves['group_var'][0]))}: {_cause(cause, causes).lower()}")
        text = "; ".join(f"Gray's test, {_cause(r['cause'], causes).lower()}: {fmt_p(r['p_value'])}"
                         for r in tests.iter_rows(named=True) if not isinstance(r["p_value"], str))
        if text:
            ax.text(0.98, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, ticks[-1])
        ax.set_xticks(ticks)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_yticklabels([f"{int(v * 100)}%" for v in np.linspace(0, 1, 6)])
        ax.set_ylabel("Cumulative incidence")
        ax.set_xlabel("Months since start of chemotherapy")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(loc="center right", frameon=False, fontsize=6.5)
    return fig


# --- sections' items ---------------------------------------------------------------------------------

def _problems(weights: pl.DataFrame, cox: pl.DataFrame) -> list[str]:
    """What could not be computed, and the covariate warnings, each once."""
    out: list[str] = []
    for frame in (weights, cox):
        for r in frame.iter_rows(named=True):
            message = r.get("message") or ""
            label = ANALYSIS_LABELS.get(str(r["analysis"]), str(r["analysis"]))
            if not message:
                continue
            text = (f"{label}: not computed: {message}" if r["status"] == "not computed"
                    else f"{label}: warning: {message}")
            if text not in out:
                out.append(text)
    return out


def _weights_table(weights: pl.DataFrame) -> DisplayTable:
    header = ("Analysis", "Arm", "Patients", "Trimmed", "Effective sample size", "Weights (min\u2013max)")
    rows = tuple((ANALYSIS_LABELS.get(r["analysis"], r["analysis"]), _arm(r["arm"]), _text(r["n"]), _text(r["n_trimmed"]),
                  _text(r["ess"], 1), "withheld" if r["weight_max"] is None or isinstance(r["weight_max"], str)
                  else f"{_text(r['weight_min'])}\u2013{_text(r['weight_max'])}")
                 for r in weights.filter(pl.col("status") == "computed").iter_rows(named=True))
    return DisplayTable("adjusted_weights", "Propensity weights per arm: patients, effective sample size (Kish) and range",
                        header, rows)


def _balance_table(balance: pl.DataFrame) -> DisplayTable:
    analyses = balance["analysis"].unique(maintain_order=True).to_list()
    header = ("Covariate", *(f"{ANALYSIS_LABELS.get(a, a)}: SMD {when}" for a in analyses for when in ("before", "after")))
    rows = []
    for covariate in balance["covariate"].unique(maintain_order=True).to_list():
        cells = [_term(covariate)]
        for a in analyses:
            r = balance.filter((pl.col("analysis") == a) & (pl.col("covariate") == covariate))
            cells.extend([_text(r["smd_unweighted"][0], 3), _text(r["smd_weighted"][0], 3)] if r.height else ["\u2013"] * 2)
        rows.append(tuple(cells))
    return DisplayTable("adjusted_balance", "Covariate balance: standardised mean differences before and after weighting "
                        f"(|SMD| < {BALANCE_LINE:g} taken as balanced)", header, tuple(rows))


def _cox_table(cox: pl.DataFrame) -> DisplayTable:
    header = ("Outcome", "Analysis", "Comparison", "Patients", "Events", "HR (95% CI)", "p", "E-value (CI limit)", "FMI")
    rows = []
    for r in cox.iter_rows(named=True):
        computed = r["status"] == "computed"
        rows.append((ENDPOINT_LABELS.get(r["endpoint"], r["endpoint"]), ANALYSIS_LABELS.get(r["analysis"], r["analysis"]),
                     f"{_arm(r['arm'])} vs {_arm(r['reference']).lower()}", _text(r["n"]), _text(r["events"]),
                     fmt_ci(r["hazard_ratio"], r["lower"], r["upper"], 2) if computed else "not computed",
                     fmt_p(r["p_value"]).removeprefix("p = ") if computed else "\u2013",
                     f"{_text(r['e_value'])} ({_text(r['e_value_ci'])})" if computed else "\u2013",
                     _text(r["fmi"], 3)))
    return DisplayTable("adjusted_cox", "Hazard ratios of the arms: unadjusted, propensity-weighted (robust 95% CI) "
                        "and pooled over the imputed sets; E-values", header, tuple(rows),
                        note="FMI: fraction of missing information (Rubin's rules).")


def _survival_table(survival: pl.DataFrame) -> DisplayTable:
    months = survival["months"].unique(maintain_order=True).to_list()
    header = ("Outcome", "Arm", *(f"{m:g} months: % (95% CI), at risk" for m in months))
    rows = []
    for (endpoint, arm), part in survival.group_by(["endpoint", "arm"], maintain_order=True):
        cells = [ENDPOINT_LABELS.get(str(endpoint), str(endpoint)), _arm(str(arm))]
        for r in part.iter_rows(named=True):
            values = (r["survival"], r["lower"], r["upper"])
            estimate = ("\u2013" if any(v is None or isinstance(v, str) for v in values)
                        else fmt_ci(100 * values[0], 100 * values[1], 100 * values[2]))
            cells.append(f"{estimate}, {_text(r['n_risk'])}")
        rows.append(tuple(cells))
    return DisplayTable("adjusted_survival", "Propensity-weighted survival at fixed times, with the numbers at risk",
                        header, tuple(rows))


def adjusted_items(raw: Mapping[str, pl.DataFrame], shown: Mapping[str, pl.DataFrame], *,
                   suppress_below: int) -> tuple[list[str], list[DisplayTable | FigureSpec]]:
    """The adjusted comparison's paragraphs (what could not be computed) and tables and figures."""
    weights, cox = shown["adjusted_weights"], shown["adjusted_cox"]
    paragraphs = ["Regimens were not randomised. The hazard ratios below are weighted by the propensity of the arm "
                  "given the baseline covariates (Methods); they adjust for the covariates measured, not for others."]
    paragraphs.extend(_problems(raw["adjusted_weights"], raw["adjusted_cox"]))
    items: list[DisplayTable | FigureSpec] = []
    if weights.filter(pl.col("status") == "computed").height:
        items.append(_weights_table(weights))
    if shown["adjusted_balance"].height:
        items.append(_balance_table(shown["adjusted_balance"]))
        items.append(FigureSpec("adjusted_love", "Love plot: absolute standardised mean differences before (open) and "
                                f"after (filled) weighting; the dashed line is {BALANCE_LINE:g}.",
                                "Love plot of covariate balance before and after weighting",
                                love_figure(raw["adjusted_balance"])))
    if raw["adjusted_overlap"].height:
        withheld = (f" Bins of fewer than {suppress_below} patients are not drawn." if suppress_below > 0 else "")
        items.append(FigureSpec("adjusted_overlap", "Propensity overlap: patients of each arm by their propensity (one arm "
                                "above the axis, the other below)." + withheld,
                                "Histograms of the propensity by arm", overlap_figure(raw["adjusted_overlap"], suppress_below)))
    km = raw["adjusted_km"]
    for endpoint in km["endpoint"].unique(maintain_order=True).to_list():
        curves = km.filter(pl.col("endpoint") == endpoint)
        groups = curves["group"].unique(maintain_order=True).to_list()
        medians = {g: _median(curves.filter(pl.col("group") == g)) for g in groups}
        if suppress_below > 0:
            medians = {g: m for g, m in medians.items() if curves.filter(pl.col("group") == g)["n_risk"][0] >= suppress_below}
        label = ENDPOINT_LABELS.get(str(endpoint), str(endpoint))
        items.append(FigureSpec(f"adjusted_km_{endpoint}", f"{label} by arm: propensity-weighted Kaplan-Meier estimate "
                                "with 95% confidence bands; numbers of patients at risk under the axis.",
                                f"Weighted Kaplan-Meier curves of {label.lower()} by arm",
                                km_figure(curves, ylabel=label, groups=groups, medians=medians, ci_bands=True,
                                          suppress_below=suppress_below)))
    if shown["adjusted_survival"].height:
        items.append(_survival_table(shown["adjusted_survival"]))
    if cox.height:
        items.append(_cox_table(cox))
    return paragraphs, items


def competing_items(raw: Mapping[str, pl.DataFrame], shown: Mapping[str, pl.DataFrame], analysis: str, *,
                    suppress_below: int) -> list[DisplayTable | FigureSpec]:
    """The figure and tables of one competing-risks analysis, their keys ending in its name."""
    items: list[DisplayTable | FigureSpec] = []
    causes = _causes(raw, analysis)
    subject = _subject(raw, analysis)
    curves = _of(raw["competing_curves"], analysis)
    if curves.height:
        names = " and of ".join(_cause(c, causes).lower() for c in causes)
        by = _in_sentence(variable_label(str(curves["group_var"][0])))
        items.append(FigureSpec(f"competing_incidence_{analysis}", f"Cumulative incidence of {names} by {by} "
                                "(Aalen-Johansen), with Gray's tests.", f"Cumulative incidence curves of {subject}",
                                incidence_figure(curves, _of(raw["competing_tests"], analysis), suppress_below)))
    incidence = _of(shown["competing_incidence"], analysis)
    if incidence.height:
        months = incidence["months"].unique(maintain_order=True).to_list()
        header = ("Event", "Group", "Patients", "Events", *(f"{m:g} months, % (95% CI)" for m in months))
        rows: list[tuple[str, ...]] = []
        for (cause, group), part in incidence.group_by(["cause", "group"], maintain_order=True):
            first: dict[str, Any] = part.row(0, named=True)
            cells = [_cause(str(cause), causes), group_label(group, str(first["group_var"])),
                     _text(first["n"]), _text(first["events"])]
            for r in part.iter_rows(named=True):
                values: Sequence[Any] = (r["incidence"], r["lower"], r["upper"])
                cells.append("\u2013" if any(v is None or isinstance(v, str) for v in values)
                             else fmt_ci(*(100 * v for v in values)))
            rows.append(tuple(cells))
        items.append(DisplayTable(f"competing_incidence_{analysis}", f"Cumulative incidence at fixed times: {subject}",
                                  header, tuple(rows)))
    tests = _of(shown["competing_tests"], analysis)
    if tests.height:
        items.append(DisplayTable(f"competing_tests_{analysis}",
                                  f"Gray's tests of equal cumulative incidence across groups: {subject}",
                                  ("Event", "Chi-square", "df", "p"),
                                  tuple((_cause(r["cause"], causes), _text(r["statistic"]), _text(r["df"], 0),
                                         fmt_p(r["p_value"]).removeprefix("p = ")) for r in tests.iter_rows(named=True))))
    fine_gray = _of(shown["competing_fine_gray"], analysis)
    if fine_gray.height:
        items.append(_fine_gray_table(fine_gray, causes, analysis, subject))
    return items


def _fine_gray_table(fine_gray: pl.DataFrame, causes: Sequence[str], analysis: str, subject: str) -> DisplayTable:
    header = ("Event", "Comparison", "Patients", "Events", "Competing events", "Subdistribution HR (95% CI)", "p")
    rows = []
    for r in fine_gray.iter_rows(named=True):
        computed = r["status"] == "computed"
        group_var = str(r["group_var"])
        rows.append((_cause(r["cause"], causes),
                     f"{group_label(r['group'], group_var)} vs {group_label(r['reference'], group_var).lower()}",
                     _text(r["n"]), _text(r["events"]), _text(r["competing_events"]),
                     fmt_ci(r["hazard_ratio"], r["lower"], r["upper"], 2) if computed else "not computed",
                     fmt_p(r["p_value"]).removeprefix("p = ") if computed else "\u2013"))
    notes = "; ".join(f"{_cause(r['cause'], causes)}: not computed: {r['message']}"
                      for r in fine_gray.iter_rows(named=True) if r["status"] != "computed")
    return DisplayTable(f"competing_fine_gray_{analysis}",
                        f"Fine-Gray subdistribution hazard ratios of the groups (model-based 95% CI): {subject}",
                        header, tuple(rows), note=notes)
