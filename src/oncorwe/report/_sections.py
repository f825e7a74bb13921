"""The report's content: which figures and tables go in which section, in order, and the headline
figures. Tables are printed from the disclosed tables (``report._disclosure``: withheld counts and
estimates when the report is shareable); figures are drawn from the computed ones and withhold
what they print."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from oncorwe.analysis import agreement_counts
from oncorwe.report._adjusted import (
    adjusted_items,
    competing_items,
    competing_names,
    competing_title,
)
from oncorwe.report._flow import CRITERION_LABELS, flow_figure
from oncorwe.report._forest import forest_figure, term_label
from oncorwe.report._format import fmt_ci, fmt_num, group_label, variable_label
from oncorwe.report._km_plot import km_figure
from oncorwe.report._render import FigureSpec
from oncorwe.report._tables import (
    DisplayTable,
    cox_display,
    landmark_display,
    published_display,
    response_display,
    simple_display,
    subsequent_display,
    survival_display,
    table1_display,
    toxicity_display,
)

__all__ = ["FigureSpec", "Section", "build_sections", "headline"]

ENDPOINT_LABELS = {"pfs": "Progression-free survival", "os": "Overall survival"}


@dataclass
class Section:
    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[DisplayTable | FigureSpec] = field(default_factory=list)


def headline(tables: Mapping[str, pl.DataFrame], info: Mapping[str, Any]) -> list[dict[str, str]]:
    """The few numbers a reader looks for first (key, label, value)."""
    out = [{"key": "patients", "label": "Patients (centres)", "value": f"{info['n_patients']} ({info['n_centres']})"}]
    resp = tables["response"]
    if resp.height:
        for cat, label in (("ORR", "Objective response rate"), ("DCR", "Disease control rate")):
            r = resp.filter((pl.col("group_var") == "overall") & (pl.col("category") == cat))
            if r.height:
                row = r.row(0, named=True)
                out.append({"key": cat.lower(), "label": f"{label} (95% CI)",
                            "value": f"{fmt_num(row['percent'])}% ({fmt_num(row['lower'])}\u2013{fmt_num(row['upper'])})"})
    summary = tables["survival_summary"]
    for endpoint, label in (("pfs", "Median PFS, months (95% CI)"), ("os", "Median OS, months (95% CI)")):
        r = summary.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == "overall"))
        if r.height:
            row = r.row(0, named=True)
            out.append({"key": f"median_{endpoint}", "label": label,
                        "value": fmt_ci(row["median"], row["median_lower"], row["median_upper"])})
    desc = tables["descriptives"]
    fu = desc.filter(pl.col("measure") == "median_followup_months") if desc.height else desc
    if fu.height:
        out.append({"key": "followup", "label": "Median follow-up, months (reverse KM)",
                    "value": fmt_num(fu["value"][0])})
    pub = tables["published"]
    if pub.height:
        agree, counted = agreement_counts(pub)
        out.append({"key": "published_agreement", "label": "Published figures reproduced",
                    "value": f"{agree} of {counted}"})
    return out


def _km_figures(raw: Mapping[str, pl.DataFrame], shown: Mapping[str, pl.DataFrame], settings: Mapping[str, Any],
                suppress_below: int) -> list[FigureSpec]:
    curves, summary, logrank = raw["survival_curves"], shown["survival_summary"], shown["logrank"]
    specs = []
    for endpoint, label in ENDPOINT_LABELS.items():
        for group_var in ["overall", *settings.get("km_splits", [])]:
            sub = curves.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == group_var))
            if sub.height == 0:
                continue
            rows = summary.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == group_var))
            groups = [g for g in rows["group"].to_list() if g in set(sub["group"].to_list())]
            medians = {r["group"]: (r["median"], r["median_lower"], r["median_upper"]) for r in rows.iter_rows(named=True)
                       if not isinstance(r["n"], str)}  # a withheld group's median is withheld
            lr = logrank.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == group_var))
            p_value = lr["p_value"][0] if lr.height else None
            by = "" if group_var == "overall" else f" by {variable_label(group_var).lower()}"
            fig = km_figure(sub, ylabel=label, groups=groups, medians=medians, p_value=p_value,
                            ci_bands=len(groups) <= 3, suppress_below=suppress_below)
            under = ("; numbers at risk under the axis (curves stop where fewer than "
                     f"{suppress_below} remain at risk)." if suppress_below > 0
                     else "; numbers at risk, censored and with an event under the axis.")
            specs.append(FigureSpec(
                f"km_{endpoint}_{group_var}", f"{label}{by}: Kaplan-Meier estimate"
                + (" with 95% confidence bands" if len(groups) <= 3 else "") + under,
                f"Kaplan-Meier curves of {label.lower()}{by}", fig))
    return specs


def _centre_table(attrition: pl.DataFrame, labels: Mapping[str, str]) -> DisplayTable | None:
    per_centre = attrition.filter(pl.col("centre_id").is_not_null())
    if per_centre.height == 0:
        return None
    criteria = per_centre.sort("step")["criterion"].unique(maintain_order=True).to_list()
    excl = [c for c in criteria if c != "source_records"]
    header = ("Centre", "Patients in records", *({**CRITERION_LABELS, **labels}.get(c, group_label(c)) for c in excl), "Analysed")
    rows = []
    for centre in sorted(per_centre["centre_id"].unique().to_list()):
        block = per_centre.filter(pl.col("centre_id") == centre).sort("step")
        by_criterion = {r["criterion"]: r for r in block.iter_rows(named=True)}
        first, last = block.row(0, named=True), block.row(block.height - 1, named=True)
        rows.append((str(centre), str(first["n_before"]),
                     *(str(by_criterion[c]["n_excluded"]) if c in by_criterion else "\u2013" for c in excl),
                     str(last["n_after"])))
    return DisplayTable("attrition_by_centre", "Cohort attrition by centre (excluded at each criterion)",
                        header, tuple(rows))


def build_sections(raw: Mapping[str, pl.DataFrame], shown: Mapping[str, pl.DataFrame], info: Mapping[str, Any], *,
                   suppress_below: int) -> list[Section]:
    """Every section of the report, with its tables and figures, in reading order.

    ``raw`` are the analysis tables as computed, ``shown`` the same disclosed (equal to ``raw``
    unless the report is shareable; the reconciliation holds per-centre total rows, file null).
    Tables print ``shown``; figures draw ``raw`` and withhold what they print (``suppress_below``).
    """
    settings = info.get("settings", {})
    sections: list[Section] = []
    tables = shown

    federated = _federated(info)
    if federated is not None:
        sections.append(federated)

    cohort = Section("cohort", "Study population")
    if tables["attrition"].height:
        cohort.items.append(FigureSpec("flow", "Cohort flow (STROBE): patients at each eligibility step and why they were excluded.",
                                       "Flow diagram of the cohort selection",
                                       flow_figure(tables["attrition"], n_centres=info.get("n_centres"),
                                                   suppress_below=suppress_below,
                                                   labels=info.get("criterion_labels", {}))))
        centre_table = _centre_table(tables["attrition"], info.get("criterion_labels", {}))
        if centre_table:
            cohort.items.append(centre_table)
    if tables["reconciliation"].height:
        rec = tables["reconciliation"].filter(pl.col("file").is_null()).drop("file", "sheet", strict=False)
        cohort.items.append(simple_display("reconciliation", "Records read per centre: accepted, quarantined, merged",
                                           rec.sort("centre_id")))
    if tables["quarantine_summary"].height:
        cohort.items.append(simple_display("quarantine", "Quarantined values by field and reason", tables["quarantine_summary"]))
    if cohort.items:
        sections.append(cohort)

    baseline = Section("baseline", "Baseline characteristics")
    baseline.items.append(table1_display(tables["table1"], tables["table1_smd"]))
    if tables["regimens"].height:
        regs = tables["regimens"].with_columns(
            pl.col("regimen_class").map_elements(group_label, return_dtype=pl.String))
        baseline.items.append(simple_display("regimens", "Index chemotherapy: regimens as given", regs))
    sections.append(baseline)

    response = Section("response", "Response")
    for group_var in ["overall", *[g for g in tables["response"]["group_var"].unique(maintain_order=True).to_list() if g != "overall"]]:
        response.items.append(response_display(tables["response"], tables["response_tests"], group_var))
    response.paragraphs.append("Regimens were not randomised: per-regimen figures are descriptive.")
    sections.append(response)

    survival = Section("survival", "Survival")
    desc = tables["descriptives"]
    for r in desc.iter_rows(named=True):
        if r["measure"] == "median_followup_months":
            survival.paragraphs.append(f"Median follow-up (reverse Kaplan-Meier): {fmt_ci(r['value'], r['lower'], r['upper'])} months.")
        elif r["measure"] == "chemo_duration_weeks":
            spread = ("" if r["minimum"] is None or r["maximum"] is None  # single patients' values, withheld
                      else f" (range {fmt_num(r['minimum'])}\u2013{fmt_num(r['maximum'])})")
            survival.paragraphs.append(f"Duration of the index chemotherapy: median {fmt_num(r['value'])} weeks{spread}.")
    for endpoint, label in ENDPOINT_LABELS.items():
        survival.items.append(survival_display(tables["survival_summary"], tables["survival_rates"], tables["logrank"], endpoint, label))
    survival.items.extend(_km_figures(raw, tables, settings, suppress_below))
    sections.append(survival)

    responders = Section("landmark", "Overall survival by response: naive and landmark")
    responders.paragraphs.append(str(info.get("guarantee_time_note", "")))
    if tables["landmark"].height:
        responders.items.append(landmark_display(tables["landmark"]))
    sections.append(responders)

    cox = Section("cox", "Multivariable Cox models")
    if tables["cox"].height:
        cox.items.append(FigureSpec("forest", "Hazard ratios (95% CI) from the multivariable Cox models.",
                                    "Forest plot of hazard ratios",
                                    forest_figure(raw["cox"], endpoints=list(ENDPOINT_LABELS.items()),
                                                  references=settings.get("cox_reference"),
                                                  n_shown=_shown_n(tables["cox"]))))
    for endpoint, label in ENDPOINT_LABELS.items():
        cox.items.append(cox_display(tables["cox"], tables["cox_models"], endpoint, label, term_label))
    if tables["cox_ph_test"].height:
        cox.items.append(simple_display("cox_ph_test", "Proportional-hazards test (Grambsch-Therneau, as R's cox.zph)",
                                        tables["cox_ph_test"]))
    sections.append(cox)

    # --- the adjusted comparison and competing risks (issue 15; absent without the protocol's sections)
    if tables["adjusted_weights"].height:
        adjusted = Section("adjusted", "Adjusted comparison: propensity-weighted")
        adjusted.paragraphs, adjusted.items = adjusted_items(raw, tables, suppress_below=suppress_below)
        sections.append(adjusted)
    for name in competing_names(raw):  # a section per [[competing_risks]] analysis, in its order
        competing = Section(f"competing_{name}", competing_title(raw, name))
        competing.items = competing_items(raw, tables, name, suppress_below=suppress_below)
        sections.append(competing)
    # --- end of the adjusted comparison

    subsequent = Section("subsequent", "Subsequent therapies")
    subsequent.items.append(subsequent_display(tables["subsequent"]))
    sections.append(subsequent)

    toxicity_caption = info.get("toxicity_label")
    if toxicity_caption:  # the protocol has [adverse_events]
        toxicity = Section("toxicity", str(toxicity_caption))
        if tables["toxicity"].height:
            toxicity.items.append(toxicity_display(tables["toxicity"], str(toxicity_caption)))
        else:
            toxicity.paragraphs.append(
                "The toxicity table is not available in this report: it is made from the patients' adverse "
                "event terms, which only an analysis of the patient rows has (a federated analysis combines "
                "counts and leaves it out).")
        sections.append(toxicity)

    if tables["published"].height:
        published = Section("published", "Published versus reproduced")
        published.items.append(published_display(tables["published"]))
        sections.append(published)

    sections.append(_methods(info))
    return sections


def _federated(info: Mapping[str, Any]) -> Section | None:
    """What a federated result was made from (``oncorwe combine``): the centres' packages, whether
    they were exact, and every estimate disclosure control makes approximate."""
    fed = info.get("federated")
    if not fed:
        return None
    section = Section("federated", "Federated analysis")
    centres = fed.get("centres", [])
    section.paragraphs.append(
        f"Computed by oncorwe combine from the site packages of {len(centres)} centres: each centre ran the "
        "protocol on its own data and sent only counted aggregates; no patient-level record left a centre.")
    secure = fed.get("secure_aggregation")
    if fed.get("exact"):
        section.paragraphs.append("The packages are exact (no suppression or binning): not for release.")
    elif secure:
        section.paragraphs.append(
            f"Secure aggregation: each centre sent its counts over the same {int(secure.get('cells', 0)):,} cells, "
            "masked so that the masks cancel only in the sum of all centres (pairwise X25519 keys); the "
            "coordinator saw the network's totals alone, and disclosure control was applied to those totals. "
            f"The estimates read from the views listed below are approximate for that reason. Roster "
            f"{str(secure.get('roster_sha256', ''))[:16]}...; the quarantine summary stays at the centres.")
    else:
        section.paragraphs.append(
            "The packages are disclosure-controlled: the estimates read from the views listed below are "
            "approximate (times rounded up to the bin, small cells withheld, thin curve tails censored); "
            "docs/federation.md gives the differences measured on the synthetic study.")
    if fed.get("linkage"):
        section.paragraphs.append("Cross-centre duplicate referrals were found by privacy-preserving linkage "
                                  f"(keyed hashes; linkage {str(fed['linkage'])[:16]}...).")
    section.paragraphs.append(f"Cox model: {fed.get('cox', '')}.")
    rows = tuple((str(c["centre_id"]), str(c["n_patients"]), str(c["content_sha256"]),
                  "exact" if c.get("exact") else "masked" if secure else "disclosure-controlled") for c in centres)
    section.items.append(DisplayTable("federated_centres", "Site packages combined",
                                      ("Centre", "Patients", "Package sha256", "Package"), rows))
    approximate = fed.get("approximate", [])
    if approximate:
        section.items.append(DisplayTable(
            "federated_approximate", "Approximate because of disclosure control",
            ("Estimates", "Counted view", "Disclosure control applied, and what it cost"),
            tuple((str(a.get("estimates", "")), str(a["view"]), str(a["control"])) for a in approximate)))
    return section


def _methods(info: Mapping[str, Any]) -> Section:
    """The Methods paragraphs the analysis stage wrote from the protocol (``info["methods"]``)."""
    section = Section("methods", "Methods")
    section.paragraphs.extend(str(text) for text in info.get("methods", []))
    return section


def _shown_n(cox: pl.DataFrame) -> dict[tuple[str, str], object]:
    """The forest plot's n per (endpoint, term) as the shown Cox table has it (disclosure applied)."""
    if "n" not in cox.columns:
        return {}
    return {(r["endpoint"], r["term"]): r["n"] for r in cox.select("endpoint", "term", "n").iter_rows(named=True)}
