"""The toxicity table (issue 16): every count is a direct count on the analysis table, patients of
centres that sent no adverse events are counted apart, and the table obeys its declared relations."""

from __future__ import annotations

import polars as pl

import oncorwe.analysis as analysis
from oncorwe import protocol
from oncorwe.analysis._toxicity import toxicity_table


def test_counts_are_direct_counts_on_the_analysis_table(table: pl.DataFrame, result: analysis.AnalysisResult,
                                                        goldinger_protocol: protocol.Protocol) -> None:
    tox = result["toxicity"]
    assert tox.height > 0
    rules = goldinger_protocol.adverse_events
    assert rules is not None
    terms = [t for t in dict.fromkeys(tox["term"]) if t != "any"]
    assert len(terms) == rules.top_terms or len(terms) == len(
        {t for v in table["severe_adverse_event_terms"].drop_nulls() for t in v.split("; ")})
    for row in tox.iter_rows(named=True):
        part = table if row["regimen_class"] == "all" else table.filter(pl.col("regimen_class") == row["regimen_class"])
        reported = part.filter(pl.col("severe_adverse_event").is_not_null())
        if row["term"] == "any":
            expected = reported.filter(pl.col("severe_adverse_event")).height
        else:
            expected = reported.filter(pl.col("severe_adverse_event_terms").str.split("; ").list.contains(row["term"])).height
        assert row["n_class"] == part.height
        assert row["n_reported"] == reported.height
        assert row["n_not_reported"] == part.height - reported.height
        assert row["n_patients"] == expected, row
        assert row["percent"] == (100.0 * expected / reported.height if reported.height else None)
    # the "all" rows are the sums of the classes' rows (the relation the results spec declares)
    for term in dict.fromkeys(tox["term"]):
        rows = tox.filter(pl.col("term") == term)
        assert rows.filter(pl.col("regimen_class") == "all")["n_patients"].item() == \
            rows.filter(pl.col("regimen_class") != "all")["n_patients"].sum()


def test_most_frequent_terms_first_ties_by_name() -> None:
    frame = pl.DataFrame({
        "regimen_class": ["a", "a", "b", "b"],
        "severe_adverse_event": [True, True, False, None],
        "severe_adverse_event_terms": ["Zeta; Alpha", "Zeta", None, None],
    })
    tox = toxicity_table(frame, classes=["b", "a"], top_terms=5)
    assert list(dict.fromkeys(tox["regimen_class"])) == ["b", "a", "all"]
    assert list(dict.fromkeys(tox["term"])) == ["any", "Zeta", "Alpha"]
    b_any = tox.filter((pl.col("regimen_class") == "b") & (pl.col("term") == "any")).row(0, named=True)
    assert (b_any["n_class"], b_any["n_reported"], b_any["n_not_reported"], b_any["n_patients"]) == (2, 1, 1, 0)
    assert toxicity_table(frame, classes=["a", "b"], top_terms=1)["term"].unique().sort().to_list() == ["Zeta", "any"]


def test_no_table_without_the_protocol_section(table: pl.DataFrame, goldinger_protocol: protocol.Protocol) -> None:
    data = goldinger_protocol.to_dict()
    data.pop("adverse_events")
    plain = protocol.from_data(data)
    assert "severe_adverse_event" not in plain.analysis_schema()
    out = analysis.run(table.select(list(plain.analysis_schema())), plain)
    assert out["toxicity"].height == 0 and "toxicity_label" not in out.info
