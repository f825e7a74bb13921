"""Small-cell suppression for shareable reports, declared per table (as OHDSI's
``enforceMinCellValue``): a count below the protocol's ``min_cell_count`` (zero excepted, it
discloses nobody) prints as ``"<k"``, and the values computed from it (its percentages) are
blanked so the count cannot be recovered from them.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

__all__ = ["COUNT_COLUMNS", "suppress"]

#: table -> {count column: columns derived from that count}.
COUNT_COLUMNS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "attrition": {"n_before": (), "n_excluded": (), "n_after": ()},
    "reconciliation": {"records_read": (), "accepted": (), "quarantined": (), "merged": ()},
    "quarantine_summary": {"n": ()},
    "table1": {"n": ("percent", "percent_all"), "denominator": (), "group_n": ()},
    "response": {"n": ("percent", "lower", "upper"), "denominator": ()},
    "survival_summary": {"n": (), "events": (), "n_missing": ()},
    "survival_curves": {"n_risk": (), "n_event": (), "n_censor": ()},
    "landmark": {"n": (), "n_excluded": (), "n_unknown_response_time": (), "n_responders": (),
                 "n_nonresponders": (), "events": ()},
    "cox_models": {"n": (), "events": (), "n_missing": ()},
    "subsequent": {"n": ("percent",), "responders": ("response_percent", "response_lower", "response_upper")},
    "descriptives": {"n": ()},
    "regimens": {"n": ("percent",)},
}


def suppress(name: str, frame: pl.DataFrame, min_cell_count: int) -> pl.DataFrame:
    """``frame`` with small counts replaced by ``"<min_cell_count>"`` (count columns become text)."""
    spec = COUNT_COLUMNS.get(name)
    if not spec or min_cell_count <= 0 or frame.height == 0:
        return frame
    marker = f"<{min_cell_count}"
    out = frame
    for column, derived in spec.items():
        if column not in out.columns:
            continue
        small = (pl.col(column) > 0) & (pl.col(column) < min_cell_count)
        out = out.with_columns(
            [pl.when(small.fill_null(False)).then(None).otherwise(pl.col(d)).alias(d)
             for d in derived if d in out.columns]
        ).with_columns(
            pl.when(small.fill_null(False)).then(pl.lit(marker))
            .otherwise(pl.col(column).cast(pl.String)).alias(column)
        )
    return out
