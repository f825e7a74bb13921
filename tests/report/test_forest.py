"""The forest plot prints the journal text columns: n, "HR (95% CI)" and p per term, beside each panel."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from oncorwe.report._forest import forest_figure, hr_text, p_text
from oncorwe.report._style import save_figure


def _cox() -> pl.DataFrame:
    rows = [
        {"endpoint": endpoint, "term": "ldh_elevated", "variable": "ldh_elevated",
         "hazard_ratio": 1.3, "lower": 1.05, "upper": 1.6, "p_value": p, "n": n}
        for endpoint, p, n in (("pfs", 0.0132, 212), ("os", 0.00002, 208))
    ]
    return pl.DataFrame(rows)


def test_text_columns_format() -> None:
    assert hr_text(0.8, 0.6, 1.05) == "0.80 (0.60\u20131.05)"
    assert hr_text(None, None, None) == "NR (NR\u2013NR)"
    assert p_text(0.0132) == "0.013"
    assert p_text(0.12) == "0.12"
    assert p_text(0.0004) == "<0.001"
    assert p_text(0.00002) == "<0.001"
    assert p_text(None) == "\u2013"


def test_forest_figure_prints_hr_and_p_per_panel() -> None:
    fig = forest_figure(_cox(), endpoints=[("pfs", "PFS"), ("os", "OS")])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("HR (95% CI)") == 2 and texts.count("p") == 2
    assert texts.count("1.30 (1.05\u20131.60)") == 2
    assert "0.013" in texts and "<0.001" in texts
    assert texts.count("n") == 2 and "212" in texts and "208" in texts  # n per row, per panel


def test_forest_n_is_the_shown_one() -> None:
    """A shareable report's suppressed count reaches the plot as the table prints it."""
    fig = forest_figure(_cox(), endpoints=[("pfs", "PFS"), ("os", "OS")],
                        n_shown={("pfs", "ldh_elevated"): "<5"})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "<5" in texts and "\u2013" in texts and "212" not in texts and "208" not in texts


def test_cox_table_counts_patients_per_term() -> None:
    from oncorwe.analysis._cox import term_counts

    complete = pl.DataFrame({"age": [50.0, 60.0, 70.0], "sex": ["male", "female", "male"], "brain": [1, 0, 1]})
    assert term_counts(complete, ["age", "sex", "brain"], boolean={"brain"}) == {
        "age": 3, "sex=male": 2, "sex=female": 1, "brain": 2}


def test_forest_figure_is_byte_deterministic(tmp_path: Path) -> None:
    def render(directory: Path) -> list[bytes]:
        directory.mkdir()
        paths = save_figure(forest_figure(_cox(), endpoints=[("pfs", "PFS"), ("os", "OS")]), directory / "forest")
        return [path.read_bytes() for path in paths]

    assert render(tmp_path / "a") == render(tmp_path / "b")
