"""The report's tables as printed: header and rows of strings, built from the analysis tables
(already suppressed for a shareable report). Table 1 is laid out as gtsummary prints it: one column
per group with "n (%)" for categories and "median (Q1, Q3)" for continuous variables, an
"Unknown" row with the missing count, and the standardised mean difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from oncorwe.report._format import (
    SPLIT_LABELS,
    fmt_ci,
    fmt_count_pct,
    fmt_num,
    fmt_p,
    group_label,
    split_label,
    variable_label,
)

__all__ = [
    "DisplayTable",
    "cox_display",
    "landmark_display",
    "published_display",
    "response_display",
    "subsequent_display",
    "survival_display",
    "table1_display",
    "toxicity_display",
]


@dataclass(frozen=True)
class DisplayTable:
    """A printed table: caption, column headers, rows (first cell is the row label), notes.

    ``row_classes`` marks rows for styling ("heading", "sub", "agrees", "differs", ...).
    """

    key: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_classes: tuple[str, ...] = ()
    note: str = ""


def _n_label(n: object) -> str:
    return f"N = {n}"


def table1_display(table1: pl.DataFrame, smd: pl.DataFrame) -> DisplayTable:
    groups = table1.select("group_var", "group", "group_n").unique(maintain_order=True).rows()
    columns = [(gv, g) for gv, g, _ in groups]
    header = ("Characteristic", *(f"{group_label(g)} ({_n_label(n)})" for _gv, g, n in groups))
    smd_by_var = {r["variable"]: r["smd"] for r in smd.iter_rows(named=True)} if smd.height else {}
    if smd_by_var:
        header = (*header, "SMD")
    rows: list[tuple[str, ...]] = []
    classes: list[str] = []
    for variable in table1["variable"].unique(maintain_order=True).to_list():
        block = table1.filter(pl.col("variable") == variable)
        label = block["label"][0]
        continuous = (block["row_kind"] == "continuous").any()
        cells = {(r["group_var"], r["group"], r["row_kind"], r["level"]): r for r in block.iter_rows(named=True)}
        smd_value = smd_by_var.get(variable)
        smd_cell = (("" if smd_value is None else fmt_num(smd_value, 2)),) if smd_by_var else ()
        if continuous:
            rows.append((f"{label}, median (Q1, Q3)", *(
                _median_cell(cells.get((gv, g, "continuous", None))) for gv, g in columns), *smd_cell))
            classes.append("heading")
        else:
            rows.append((f"{label}, n (%)", *("" for _ in columns), *smd_cell))
            classes.append("heading")
            levels = block.filter(pl.col("row_kind") == "level")["level"].unique(maintain_order=True).to_list()
            for level in levels:
                rows.append((group_label(level), *(
                    _level_cell(cells.get((gv, g, "level", level))) for gv, g in columns), *("" for _ in smd_cell)))
                classes.append("sub")
        missing = [cells.get((gv, g, "missing", None)) for gv, g in columns]
        if any(m is not None and m["n"] not in (0, "0") for m in missing):
            rows.append(("Unknown", *(_plain(m["n"] if m else None) for m in missing), *("" for _ in smd_cell)))
            classes.append("sub missing")
    return DisplayTable(
        "table1", "Table 1. Baseline characteristics", header, tuple(rows), tuple(classes),
        note="n (%) of patients with a known value; Unknown = missing. SMD: standardised mean difference "
             "(Yang & Dalton 2012), averaged over all pairs of groups as tableone prints it.",
    )


def _plain(value: object) -> str:
    return "\u2013" if value is None else str(value)


def _median_cell(row: dict[str, object] | None) -> str:
    if row is None or row.get("median") is None:
        return "\u2013"
    return f"{fmt_num(row['median'])} ({fmt_num(row['q1'])}, {fmt_num(row['q3'])})"


def _level_cell(row: dict[str, object] | None) -> str:
    if row is None:
        return "\u2013"
    return fmt_count_pct(row["n"], row["percent"], 0)


def response_display(response: pl.DataFrame, tests: pl.DataFrame, group_var: str) -> DisplayTable:
    sub = response.filter(pl.col("group_var").is_in(["overall", group_var]))
    groups = sub.select("group_var", "group", "denominator").unique(maintain_order=True).rows()
    header = ("Best overall response", *(f"{group_label(g)} ({_n_label(d)})" for _gv, g, d in groups))
    rows, classes = [], []
    for category in sub["category"].unique(maintain_order=True).to_list():
        cells = []
        for gv, g, _d in groups:
            r = sub.filter((pl.col("group_var") == gv) & (pl.col("group") == g) & (pl.col("category") == category)).row(0, named=True)
            if category in ("ORR", "DCR"):
                cells.append(f"{fmt_count_pct(r['n'], r['percent'])}; 95% CI {fmt_num(r['lower'])}\u2013{fmt_num(r['upper'])}"
                             if not isinstance(r["n"], str) else r["n"])
            else:
                cells.append(fmt_count_pct(r["n"], r["percent"]))
        rows.append((group_label(category), *cells))
        classes.append("heading" if category in ("ORR", "DCR") else "")
    note = "Percentages of all patients of the group (not only evaluable ones); exact (Clopper-Pearson) 95% CIs."
    if group_var != "overall":
        for t in tests.filter(pl.col("group_var") == group_var).iter_rows(named=True):
            note += f" {t['measure']} across groups: {t['method']}, {fmt_p(t['p_value'])}."
    caption = "Best overall response (RECIST 1.1)" + ("" if group_var == "overall" else f" by {variable_label(group_var).lower()}")
    return DisplayTable(f"response_{group_var}", caption, header, tuple(rows), tuple(classes), note)


def survival_display(summary: pl.DataFrame, rates: pl.DataFrame, logrank: pl.DataFrame,
                     endpoint: str, label: str) -> DisplayTable:
    sub = summary.filter(pl.col("endpoint") == endpoint)
    months = sorted(set(rates.filter(pl.col("endpoint") == endpoint)["months"].to_list()))
    header = ("Group", "N", "Events", "Median, months (95% CI)", *(f"{m:g}-month rate, % (95% CI)" for m in months), "Log-rank")
    rows, classes = [], []
    shown_tests: set[str] = set()
    for r in sub.iter_rows(named=True):
        rate_cells = []
        for m in months:
            match = rates.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == r["group_var"])
                                 & (pl.col("group") == r["group"]) & (pl.col("months") == m))
            if match.height:
                rate, lower, upper = match.select("rate", "lower", "upper").row(0)
                rate_cells.append(fmt_ci(rate, lower, upper, decimals=0))
            else:
                rate_cells.append("\u2013")
        test = ""
        if r["group_var"] != "overall" and r["group_var"] not in shown_tests:
            shown_tests.add(r["group_var"])
            lr = logrank.filter((pl.col("endpoint") == endpoint) & (pl.col("group_var") == r["group_var"]))
            test = fmt_p(lr["p_value"][0]) if lr.height else "\u2013"
        if r["group_var"] == "overall":
            name = group_label(r["group"])
        elif (r["group_var"], r["group"]) in SPLIT_LABELS:
            name = SPLIT_LABELS[(r["group_var"], r["group"])]  # already says what the group is
        else:
            name = f"{variable_label(r['group_var'])}: {split_label(r['group_var'], r['group'])}"
        small = isinstance(r["n"], str)  # a withheld group size: its estimates are withheld too
        median = "\u2013" if small else fmt_ci(r["median"], r["median_lower"], r["median_upper"])
        rows.append((name, str(r["n"]), str(r["events"]), median,
                     *(["\u2013"] * len(rate_cells) if small else rate_cells), test))
        classes.append("heading" if r["group_var"] == "overall" else "")
    return DisplayTable(f"survival_{endpoint}", f"{label}: Kaplan-Meier estimates", header, tuple(rows), tuple(classes),
                        "NR: not reached or not estimable. CIs: log transformation (R's survfit default); "
                        "medians' CIs by Brookmeyer-Crowley.")


def _unless_withheld(group_size: object, text: str) -> str:
    """``text``, or a dash when the group's size is withheld (its estimates are withheld with it)."""
    return "\u2013" if isinstance(group_size, str) else text


def landmark_display(landmark: pl.DataFrame) -> DisplayTable:
    header = ("", "Naive (from the start of chemotherapy)", "Landmark")
    rows_by = {r["analysis"]: r for r in landmark.iter_rows(named=True)}
    naive, lm = rows_by.get("naive", {}), rows_by.get("landmark", {})

    def both(fn: object) -> tuple[str, str]:
        return (fn(naive) if naive else "\u2013", fn(lm) if lm else "\u2013")  # type: ignore[operator]

    weeks = lm.get("landmark_weeks")
    rows = [
        ("Patients analysed", *both(lambda r: str(r["n"]))),
        ("Excluded (died or censored before the landmark)", *both(lambda r: str(r["n_excluded"]))),
        ("Responders / non-responders", *both(lambda r: f"{r['n_responders']} / {r['n_nonresponders']}")),
        ("Median OS, responders (95% CI), months", *both(lambda r: _unless_withheld(r["n_responders"], fmt_ci(r["median_responders"], r["median_responders_lower"], r["median_responders_upper"])))),
        ("Median OS, non-responders (95% CI), months", *both(lambda r: _unless_withheld(r["n_nonresponders"], fmt_ci(r["median_nonresponders"], r["median_nonresponders_lower"], r["median_nonresponders_upper"])))),
        ("Hazard ratio, responders vs non-responders (95% CI)", *both(lambda r: _unless_withheld(r["n_responders"], fmt_ci(r["hazard_ratio"], r["hr_lower"], r["hr_upper"], 2)))),
        ("Log-rank", *both(lambda r: _unless_withheld(r["n_responders"], fmt_p(r["logrank_p"])))),
    ]
    caption = "Overall survival by response: naive and landmark" + (f" ({weeks:g} weeks)" if weeks else "")
    note = "Landmark: survival measured from the landmark, response achieved by the landmark."
    for label, r in (("naive", naive), ("landmark", lm)):
        if r.get("hr_note"):
            note += f" Hazard ratio, {label} analysis: {r['hr_note']}."
    return DisplayTable("landmark", caption, header, tuple(rows), note=note)


def cox_display(cox: pl.DataFrame, models: pl.DataFrame, endpoint: str, label: str,
                term_labeller: object) -> DisplayTable:
    header = ("Term", "HR (95% CI)", "p")
    rows = []
    for r in cox.filter(pl.col("endpoint") == endpoint).iter_rows(named=True):
        rows.append((term_labeller(r["term"], r["variable"]),  # type: ignore[operator]
                     fmt_ci(r["hazard_ratio"], r["lower"], r["upper"], 2), fmt_p(r["p_value"]).removeprefix("p = ")))
    model = models.filter(pl.col("endpoint") == endpoint)
    note = ""
    if model.height:
        m = model.row(0, named=True)
        if m["status"] == "not computed":
            return DisplayTable(f"cox_{endpoint}", f"Cox model, {label}", header, tuple(rows),
                                note=f"The model was {m['message']}.")
        note = (f"{m['n']} patients, {m['events']} events; {m['n_missing']} left out for a missing value "
                f"(complete-case analysis). Efron ties.")
        if m["status"] != "fitted":
            note = f"The model could not be fitted: {m['message']}"
    return DisplayTable(f"cox_{endpoint}", f"Cox model, {label}", header, tuple(rows), note=note)


def subsequent_display(subsequent: pl.DataFrame) -> DisplayTable:
    header = ("First therapy after the index chemotherapy", "Patients, n (% of all)", "Responders, n (% of class; 95% CI)")
    rows = []
    for r in subsequent.iter_rows(named=True):
        resp = (r["responders"] if isinstance(r["responders"], str)
                else f"{r['responders']} ({fmt_num(r['response_percent'])}%; {fmt_num(r['response_lower'])}\u2013{fmt_num(r['response_upper'])})"
                if r["response_percent"] is not None else str(r["responders"]))
        rows.append((group_label(r["therapy_class"]), fmt_count_pct(r["n"], r["percent"]), resp))
    return DisplayTable("subsequent", "Subsequent therapies and their responses", header, tuple(rows))


def toxicity_display(toxicity: pl.DataFrame, caption: str) -> DisplayTable:
    """Patients with a severe adverse event of the index line: one row per regimen class (then all
    classes), a column for any term and one per most frequent term, ``n (% of reported)``."""
    terms = list(dict.fromkeys(toxicity["term"].to_list()))
    header = ("Regimen", "Patients reported (not reported)",
              *("Any term" if t == "any" else t for t in terms))
    rows, classes = [], []
    for regimen in dict.fromkeys(toxicity["regimen_class"].to_list()):
        part = {r["term"]: r for r in toxicity.filter(pl.col("regimen_class") == regimen).iter_rows(named=True)}
        first = part[terms[0]]
        reported = f"{_plain(first['n_reported'])} ({_plain(first['n_not_reported'])})"
        label = "All regimens" if regimen == "all" else group_label(regimen, "regimen_class")
        rows.append((label, reported, *(fmt_count_pct(part[t]["n_patients"], part[t]["percent"]) for t in terms)))
        classes.append("total" if regimen == "all" else "")
    return DisplayTable("toxicity", caption, header, tuple(rows), tuple(classes),
                        "Patients with at least one event, n (% of the patients reported); CTCAE v5.0 terms.")


def published_display(published: pl.DataFrame) -> DisplayTable:
    header = ("Figure", "Published", "Reproduced", "Difference", "Agreement")
    rows, classes = [], []
    for r in published.iter_rows(named=True):
        diff = "" if r["difference"] is None or r["decimals"] is None else f"{r['difference']:+.{r['decimals']}f}"
        reproduced = r["reproduced_rounded"] or ""
        if reproduced and r["unit"] == "%":
            reproduced += "%"
        elif reproduced and r["unit"]:
            reproduced += f" {r['unit']}"
        label = r["label"] + (f" \u2014 {r['note']}" if r["note"] else "")
        status = r["status"] or "withheld"  # its source count is withheld in a shareable report
        rows.append((label, r["published_text"], reproduced or "\u2013", diff, status))
        classes.append(status.replace(" ", "-"))
    return DisplayTable("published", "Published versus reproduced", header, tuple(rows), tuple(classes),
                        "Agreement at the published precision: counts exactly, percentages, medians and rates "
                        "after rounding half up to the printed decimals, p-values below the printed threshold.")


def simple_display(key: str, caption: str, frame: pl.DataFrame, columns: Sequence[str] | None = None) -> DisplayTable:
    """Any frame as a plain table (values as text)."""
    cols = list(columns or frame.columns)
    rows = tuple(tuple("" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v)) for v in row)
                 for row in frame.select(cols).rows())
    return DisplayTable(key, caption, tuple(c.replace("_", " ") for c in cols), rows)
