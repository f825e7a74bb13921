"""Published versus reproduced: the agreement rules, and the shipped Goldinger figures file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import oncorwe.analysis as analysis
from oncorwe.errors import ProtocolError

TABLES = {
    "response": pl.DataFrame({"category": ["ORR", "CR"], "n": [58, 2], "percent": [12.45, 0.43196544]}),
    "survival_summary": pl.DataFrame({"endpoint": ["pfs"], "median": [2.649999], "median_upper": [None]},
                                     schema={"endpoint": pl.String, "median": pl.Float64, "median_upper": pl.Float64}),
    "logrank": pl.DataFrame({"group_var": ["responder"], "p_value": [3e-6]}),
}


def _figures(*figures: dict[str, object]) -> analysis.PublishedFigures:
    return analysis.PublishedFigures.model_validate({"reference": "Test 2022", "figure": list(figures)})


def _status(figures: analysis.PublishedFigures) -> dict[str, tuple[str, str | None]]:
    out = analysis.compare_published(figures, TABLES)
    return {r["key"]: (r["status"], r["reproduced_rounded"]) for r in out.iter_rows(named=True)}


def test_rules_by_kind() -> None:
    status = _status(_figures(
        {"key": "orr_n", "label": "ORR", "published": "58", "kind": "count", "value": 58, "table": "response",
         "where": {"category": "ORR"}, "column": "n"},
        # 12.45 rounds half up to 12.5 (banker's rounding would give 12.4)
        {"key": "orr_pct", "label": "ORR", "published": "12.5%", "kind": "percent", "value": 12.5, "decimals": 1,
         "table": "response", "where": {"category": "ORR"}, "column": "percent"},
        {"key": "cr_pct", "label": "CR", "published": "0.4%", "kind": "percent", "value": 0.4, "decimals": 1,
         "table": "response", "where": {"category": "CR"}, "column": "percent"},
        {"key": "pfs", "label": "PFS", "published": "2.7", "kind": "median", "value": 2.7, "decimals": 1,
         "table": "survival_summary", "where": {"endpoint": "pfs"}, "column": "median"},
        {"key": "pfs_up", "label": "PFS upper", "published": "3.0", "kind": "median", "value": 3.0, "decimals": 1,
         "table": "survival_summary", "where": {"endpoint": "pfs"}, "column": "median_upper"},
        {"key": "p", "label": "log-rank", "published": "P < .0001", "kind": "p_below", "value": 0.0001,
         "table": "logrank", "where": {"group_var": "responder"}, "column": "p_value"},
        {"key": "gone", "label": "absent group", "published": "1", "kind": "count", "value": 1,
         "table": "response", "where": {"category": "DCR"}, "column": "n"},
        {"key": "tox", "label": "toxicity", "published": "none unexpected", "kind": "statement", "compare": False},
    ))
    assert status["orr_n"] == ("agrees", "58")
    assert status["orr_pct"] == ("agrees", "12.5")
    assert status["cr_pct"] == ("agrees", "0.4")
    assert status["pfs"] == ("differs", "2.6")  # 2.649999 is 2.6 at one decimal, not 2.7
    assert status["pfs_up"] == ("not computed", None)  # upper bound not reached
    assert status["p"][0] == "agrees"
    assert status["gone"] == ("not computed", None)
    assert status["tox"] == ("not compared", None)


def test_ambiguous_or_unknown_lookups_raise() -> None:
    base = {"key": "x", "label": "x", "published": "1", "kind": "count", "value": 1}
    with pytest.raises(ProtocolError, match="2 rows"):
        _status(_figures({**base, "table": "response", "column": "n"}))
    with pytest.raises(ProtocolError, match="no result table 'nope'"):
        _status(_figures({**base, "table": "nope", "column": "n"}))
    with pytest.raises(ProtocolError, match="no column"):
        _status(_figures({**base, "table": "response", "where": {"category": "ORR"}, "column": "nope"}))


def test_invalid_file_names_key(tmp_path: Path) -> None:
    path = tmp_path / "published.toml"
    path.write_text('reference = "x"\n[[figure]]\nkey = "a"\nlabel = "a"\npublished = "1"\nkind = "cout"\n', encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"figure\.0\.kind"):
        analysis.load_published(path)
    path.write_text('reference = "x"\n[[figure]]\nkey = "a"\nlabel = "a"\npublished = "1"\nkind = "count"\n', encoding="utf-8")
    with pytest.raises(ProtocolError, match="needs value, table and column"):
        analysis.load_published(path)


def test_every_goldinger_figure_is_computed(result: analysis.AnalysisResult) -> None:
    """Each published figure of the shipped file finds exactly its row on a full analysis result."""
    published = result["published"]
    assert published.height >= 60
    compared = published.filter(pl.col("status") != "not compared")
    assert compared.filter(pl.col("status") == "not computed").height == 0, compared.filter(
        pl.col("status") == "not computed")["key"].to_list()
    # The fake table was built with the published response counts and regimen allocation.
    for key in ("orr_n", "cr_pct", "pd_ne_n", "taxane_n", "regimen_taxane_orr", "regimen_other_pct"):
        assert published.filter(pl.col("key") == key)["status"][0] == "agrees", key


def test_a_likely_typo_is_shown_as_printed_and_not_counted(tmp_path: Path) -> None:
    typo = {"key": "pfs_up", "label": "PFS upper", "published": "9.9", "kind": "ci_bound", "value": 9.9,
            "decimals": 1, "table": "survival_summary", "where": {"endpoint": "pfs"}, "column": "median",
            "likely_typo": True, "note": "a misprint"}
    right = {**typo, "key": "pfs", "published": "2.6", "value": 2.6, "likely_typo": False, "note": ""}
    wrong = {**right, "key": "pfs_wrong", "published": "2.7", "value": 2.7}
    out = analysis.compare_published(_figures(typo, right, wrong), TABLES)
    rows = {r["key"]: r for r in out.iter_rows(named=True)}
    assert (rows["pfs_up"]["status"], rows["pfs_up"]["published_text"], rows["pfs_up"]["reproduced_rounded"]) == (
        "likely typo", "9.9", "2.6")
    assert rows["pfs_up"]["note"] == "a misprint" and rows["pfs_up"]["difference"] == pytest.approx(-7.3)
    assert analysis.agreement_counts(out) == (1, 2)  # the typo is neither a failure nor counted
    # a likely typo that happens to agree agrees; one without a note is refused
    assert analysis.compare_published(_figures({**typo, "value": 2.6}), TABLES)["status"][0] == "agrees"
    path = tmp_path / "published.toml"
    path.write_text('reference = "x"\n[[figure]]\nkey = "a"\nlabel = "a"\npublished = "1"\nkind = "count"\n'
                    'value = 1\ntable = "t"\ncolumn = "n"\nlikely_typo = true\n', encoding="utf-8")
    with pytest.raises(ProtocolError, match="likely typo needs a note"):
        analysis.load_published(path)
