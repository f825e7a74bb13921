"""Toxicity of the index line: patients with a severe adverse event, by regimen class and term.

Read from the analysis table's ``severe_adverse_event`` (at least the protocol's grade, attributed
to the index line: ``protocol.AdverseEventRules``) and ``severe_adverse_event_terms``; a patient
whose centre sent no adverse event records at all has both null and is counted apart
(``n_not_reported``), never as a patient without toxicity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from oncorwe.analysis._common import require_columns

__all__ = ["ALL_REGIMENS", "ANY_TERM", "TOXICITY_SCHEMA", "toxicity_table"]

#: the row of every regimen class together, and the row of any term
ALL_REGIMENS = "all"
ANY_TERM = "any"
TERM_SEPARATOR = "; "

TOXICITY_SCHEMA: dict[str, pl.DataType] = {
    "regimen_class": pl.String(),  # a protocol class, its fallback, or "all"
    "term": pl.String(),  # "any", or a CTCAE v5.0 term (the most frequent ones overall)
    "n_class": pl.Int64(),  # patients of the regimen class
    "n_reported": pl.Int64(),  # of them, patients of centres that sent adverse event records
    "n_not_reported": pl.Int64(),  # n_class - n_reported
    "n_patients": pl.Int64(),  # patients with >= 1 such event (of the term; any term for "any")
    "percent": pl.Float64(),  # n_patients / n_reported
}


def toxicity_table(frame: pl.DataFrame, *, classes: Sequence[str], top_terms: int) -> pl.DataFrame:
    """Patients with a severe adverse event of the index line (:data:`TOXICITY_SCHEMA`).

    For each regimen class in ``classes`` order (a class without patients is left out), then
    "all": a row for any term, then one per term of the ``top_terms`` most frequent terms over
    all patients (by patients with the term, ties by name). Percentages are of the patients of
    centres that reported adverse events.
    """
    require_columns(frame, ["regimen_class", "severe_adverse_event", "severe_adverse_event_terms"],
                    what="the toxicity table")
    data = frame.select("regimen_class", "severe_adverse_event", _terms=pl.col("severe_adverse_event_terms")
                        .fill_null("").str.split(TERM_SEPARATOR).list.eval(pl.element().filter(pl.element() != "")))
    counts = Counter(data["_terms"].explode().drop_nulls().to_list())
    top = [term for term, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_terms]]
    rows: list[dict[str, object]] = []
    present = set(data["regimen_class"].drop_nulls())
    for regimen in [c for c in classes if c in present] + [ALL_REGIMENS]:
        part = data if regimen == ALL_REGIMENS else data.filter(pl.col("regimen_class") == regimen)
        reported = part.filter(pl.col("severe_adverse_event").is_not_null())
        n_reported = reported.height
        for term in (ANY_TERM, *top):
            if term == ANY_TERM:
                n = int(reported["severe_adverse_event"].sum())
            else:
                n = int(reported["_terms"].list.contains(term).sum())
            rows.append({"regimen_class": regimen, "term": term, "n_class": part.height, "n_reported": n_reported,
                         "n_not_reported": part.height - n_reported, "n_patients": n,
                         "percent": 100.0 * n / n_reported if n_reported else None})
    return pl.DataFrame(rows, schema=TOXICITY_SCHEMA)
