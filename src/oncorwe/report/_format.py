"""Display labels and number formatting shared by the report's tables and figures."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType

__all__ = [
    "CATEGORY_LABELS",
    "SPLIT_LABELS",
    "fmt_ci",
    "fmt_count_pct",
    "fmt_num",
    "fmt_p",
    "group_label",
    "split_label",
    "study_labels",
    "variable_label",
]

#: How the values every study shares print (the study's own classes and levels are worded by its
#: protocol: :func:`study_labels`). Anything else prints as written, underscores as spaces.
CATEGORY_LABELS: dict[str, str] = {
    "all": "All patients",
    "yes": "Yes",
    "no": "No",
    "male": "Male",
    "female": "Female",
    "other": "Other",
    "none": "None",
    "any": "Any subsequent therapy",
    "unclassified": "Unclassified",
    "PD_NE": "PD or not evaluable",
    "ORR": "Objective response (CR + PR)",
    "DCR": "Disease control (CR + PR + SD)",
    "CR": "Complete response",
    "PR": "Partial response",
    "SD": "Stable disease",
    "PD": "Progressive disease",
    "NE": "Not evaluable",
}

#: The fixed columns of the analysis table (the same in every study).
VARIABLE_LABELS: dict[str, str] = {
    "overall": "Overall",
    "regimen_class": "Regimen",
    "responder": "Responder (CR/PR)",
    "sex": "Sex",
    "age_years": "Age (per year)",
}

#: The study's wording (``AnalysisResult.info["column_labels"]``): column -> label and
#: "column=value" -> label; set by the report for the time it writes one study's outputs.
_STUDY: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("study_labels", default=MappingProxyType({}))


@contextlib.contextmanager
def study_labels(labels: Mapping[str, str]) -> Iterator[None]:
    """Word the report's columns, classes and levels as ``labels`` (the protocol's) inside."""
    token = _STUDY.set(dict(labels))
    try:
        yield
    finally:
        _STUDY.reset(token)


def group_label(value: object, variable: str | None = None) -> str:
    """A group or category value as printed: the study's label of ``variable=value`` (or of the
    value in any column), else the shared wording, else the value with underscores as spaces."""
    text = "" if value is None else str(value)
    labels = _STUDY.get()
    if variable is not None and f"{variable}={text}" in labels:
        return labels[f"{variable}={text}"]
    if text in CATEGORY_LABELS:
        return CATEGORY_LABELS[text]
    for key, label in labels.items():
        if key.endswith(f"={text}"):
            return label
    spaced = text.replace("_", " ")
    return spaced[:1].upper() + spaced[1:]


#: How the levels of yes/no splits of the fixed columns print in legends and survival tables.
SPLIT_LABELS: dict[tuple[str, str], str] = {
    ("responder", "yes"): "Responders (CR/PR)",
    ("responder", "no"): "Non-responders",
}


def split_label(group_var: str, group: str) -> str:
    """A group of a split as printed: "Responders (CR/PR)", "Regimen: Taxane alone", ..."""
    if (group_var, group) in SPLIT_LABELS:
        return SPLIT_LABELS[(group_var, group)]
    if group == "yes":
        return variable_label(group_var)
    if group == "no":
        return f"No {variable_label(group_var)[:1].lower()}{variable_label(group_var)[1:]}"
    return group_label(group, group_var)


def variable_label(name: str) -> str:
    """A grouping or covariate column as printed."""
    labels = _STUDY.get()
    if name in labels:
        return labels[name]
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
