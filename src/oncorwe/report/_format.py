"""Display labels and number formatting shared by the report's tables and figures."""

from __future__ import annotations

import math

__all__ = [
    "CATEGORY_LABELS",
    "SPLIT_LABELS",
    "fmt_ci",
    "fmt_count_pct",
    "fmt_num",
    "fmt_p",
    "group_label",
    "split_label",
    "variable_label",
]

#: How canonical values print. Anything else prints as written with underscores as spaces.
CATEGORY_LABELS: dict[str, str] = {
    "all": "All patients",
    "yes": "Yes",
    "no": "No",
    "male": "Male",
    "female": "Female",
    "carboplatin_paclitaxel": "Carboplatin + paclitaxel",
    "dacarbazine": "Dacarbazine",
    "temozolomide": "Temozolomide",
    "taxane": "Taxane alone",
    "fotemustine": "Fotemustine",
    "other": "Other",
    "anti_pd1": "Anti-PD-1",
    "anti_ctla4": "Anti-CTLA-4",
    "anti_pd1_ctla4": "Anti-PD-1 and anti-CTLA-4",
    "none": "None",
    "pd1_with_or_without_ipilimumab": "PD-1 antibody alone or with ipilimumab",
    "ipilimumab_alone": "Ipilimumab alone",
    "ici_after_other": "ICI after other therapies",
    "targeted": "BRAF/MEK inhibitors",
    "any": "Any subsequent therapy",
    "any_ici": "Any subsequent ICI",
    "unclassified": "Unclassified",
    "unknown_primary": "Unknown primary",
    "cutaneous": "Cutaneous",
    "acral": "Acral",
    "mucosal": "Mucosal",
    "uveal": "Uveal",
    "PD_NE": "PD or not evaluable",
    "ORR": "Objective response (CR + PR)",
    "DCR": "Disease control (CR + PR + SD)",
    "CR": "Complete response",
    "PR": "Partial response",
    "SD": "Stable disease",
    "PD": "Progressive disease",
    "NE": "Not evaluable",
}

VARIABLE_LABELS: dict[str, str] = {
    "overall": "Overall",
    "regimen_class": "Regimen",
    "responder": "Responder (CR/PR)",
    "prior_anti_pd1": "Prior PD-1-based ICI",
    "prior_ici_class": "Prior ICI",
    "sex": "Sex",
    "age_years": "Age (per year)",
    "ecog": "ECOG (per point)",
    "ldh_elevated": "LDH > ULN",
    "m1c_or_worse": "M1c or worse",
    "brain_metastases": "Brain metastases",
    "braf_v600": "BRAF V600",
}


def group_label(value: object) -> str:
    """A group or category value as printed."""
    text = "" if value is None else str(value)
    return CATEGORY_LABELS.get(text, text.replace("_", " "))


#: How the levels of yes/no splits print in figure legends and survival tables.
SPLIT_LABELS: dict[tuple[str, str], str] = {
    ("responder", "yes"): "Responders (CR/PR)",
    ("responder", "no"): "Non-responders",
    ("prior_anti_pd1", "yes"): "Prior PD-1-based ICI",
    ("prior_anti_pd1", "no"): "No prior PD-1-based ICI",
}


def split_label(group_var: str, group: str) -> str:
    """A group of a split as printed: "Responders (CR/PR)", "Regimen: Taxane alone", ..."""
    if (group_var, group) in SPLIT_LABELS:
        return SPLIT_LABELS[(group_var, group)]
    if group in ("yes", "no"):
        return f"{variable_label(group_var)}: {group}"
    return group_label(group)


def variable_label(name: str) -> str:
    """A grouping or covariate column as printed."""
    return VARIABLE_LABELS.get(name, name.replace("_", " ").capitalize())


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_num(value: object, decimals: int = 1) -> str:
    """A number at ``decimals`` places; "NR" (not reached / not estimable) when missing."""
    if _missing(value):
        return "NR"
    return f"{float(value):.{decimals}f}"  # type: ignore[arg-type]


def fmt_ci(value: object, lower: object, upper: object, decimals: int = 1) -> str:
    """``value (lower-upper)`` with NR for bounds that are not reached."""
    return f"{fmt_num(value, decimals)} ({fmt_num(lower, decimals)}\u2013{fmt_num(upper, decimals)})"


def fmt_count_pct(n: object, percent: object, decimals: int = 1) -> str:
    """``n (pct%)``; a suppressed count prints as given (e.g. "<5") without a percentage."""
    if isinstance(n, str):
        return n
    if _missing(n):
        return "\u2013"
    if _missing(percent):
        return f"{n}"
    return f"{n} ({float(percent):.{decimals}f}%)"  # type: ignore[arg-type]


def fmt_p(p: object) -> str:
    """A p-value as journals print it: p < 0.001, else three decimals (two when >= 0.1)."""
    if _missing(p):
        return "\u2013"
    value = float(p)  # type: ignore[arg-type]
    if value < 0.0001:
        return "p < 0.0001"
    if value < 0.001:
        return "p < 0.001"
    return f"p = {value:.3f}" if value < 0.1 else f"p = {value:.2f}"
