"""The report in headless Chromium: headline figures visible as text, every image loaded, no console
errors, data text escaped (a centre called <script> prints as text and runs nothing)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from playwright.sync_api import sync_playwright
from report_helpers import SCRIPT

import oncorwe.analysis as analysis

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def test_report_opens_in_chromium(report_dir: Path, report_result: analysis.AnalysisResult,
                                  chromium_path: str, tmp_path: Path) -> None:
    orr = report_result["response"].filter((pl.col("group_var") == "overall") & (pl.col("category") == "ORR")).row(0, named=True)
    pfs = report_result["survival_summary"].filter((pl.col("endpoint") == "pfs") & (pl.col("group_var") == "overall")).row(0, named=True)
    console_errors: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto((report_dir / "report.html").as_uri())
            page.wait_for_load_state("load")
            headline = page.locator("#headline").inner_text()
            assert f"{orr['percent']:.1f}%" in headline  # 12.5%
            assert f"{pfs['median']:.1f}" in headline
            assert "463 (24)" in headline
            assert page.locator("#headline").is_visible()
            images = page.locator("img")
            # flow, 6 Kaplan-Meier figures, forest; love plot, overlap, 2 weighted Kaplan-Meier, incidence
            assert images.count() == 13
            sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            assert all(complete and width > 0 for complete, width in sizes), sizes
            body = page.locator("body").inner_text()
            assert SCRIPT in body  # printed as text
            assert "Published versus reproduced" in body and "guarantee-time bias" in body
            # the adjusted comparison and competing risks (issue 15)
            adjusted = page.locator("#adjusted")
            competing_section = page.locator("#competing_subsequent_therapy_by_arm")
            assert adjusted.is_visible() and competing_section.is_visible()
            for name in ("adjusted_love", "adjusted_overlap", "adjusted_km_pfs", "adjusted_km_os"):
                assert adjusted.locator(f"#figure-{name} img").count() == 1, name
            text = adjusted.inner_text()
            assert "Love plot" in text and "Effective sample size" in text and "E-value" in text
            assert "Weighted, multiple imputation (pooled)" in text
            competing = competing_section.inner_text()
            assert "Gray's tests" in competing
            assert "Competing risks: Subsequent therapy and death before subsequent therapy, by arm" in competing
            assert "Fine-Gray subdistribution hazard ratios" in competing
            assert "Combination chemotherapy vs single-agent chemotherapy" in competing
            assert competing_section.locator("#figure-competing_incidence_subsequent_therapy_by_arm img").count() == 1
            # the toxicity table (issue 16), as the analysis counted it
            toxicity = page.locator("#toxicity")
            assert toxicity.is_visible()
            shown = toxicity.inner_text()
            assert "Grade >= 3 adverse events by regimen" in shown and "Any term" in shown
            every = report_result["toxicity"].filter((pl.col("regimen_class") == "all") & (pl.col("term") == "any"))
            every_row = every.row(0, named=True)
            assert f"{every_row['n_patients']} ({every_row['percent']:.1f}%)" in shown
            methods = page.locator("#methods").inner_text()
            assert "CTCAE v5.0" in methods
            assert "Rubin's rules" in methods and "Aalen-Johansen" in methods
            assert "start of a subsequent therapy" in methods and "Fine-Gray models" in methods
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            page.emulate_media(media="print")
            page.pdf(path=str(tmp_path / "report.pdf"), format="A4")
        finally:
            browser.close()
    assert console_errors == []
    assert dialogs == []  # nothing from the data ran
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert (tmp_path / "report.pdf").stat().st_size > 50_000


def test_data_text_is_escaped_in_html(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 0  # the report runs no script at all
