"""The report's files: every table as CSV, every figure as PNG/SVG/PDF, PNGs not blank with the
numbers at risk under the Kaplan-Meier plots, no patient identifier anywhere, byte-identical
reruns, small-cell suppression, the manifest, and atomic replacement."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from fake_analysis_table import fake_analysis_table
from matplotlib.image import imread
from report_helpers import attrition_for, hostile_table, protocol_with_splits

import oncorwe.analysis as analysis
import oncorwe.report as report


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tables_and_figures_written(report_dir: Path) -> None:
    for name in analysis.TABLE_NAMES:
        assert (report_dir / "tables" / f"{name}.csv").is_file(), name
    stems = {p.stem for p in (report_dir / "figures").iterdir()}
    assert stems == {"flow", "forest", *(f"km_{e}_{s}" for e in ("pfs", "os") for s in ("overall", "regimen_class", "responder")),
                     "adjusted_love", "adjusted_overlap", "adjusted_km_pfs", "adjusted_km_os",
                     "competing_incidence_subsequent_therapy_by_arm"}
    for stem in stems:
        for ext in ("png", "svg", "pdf"):
            assert (report_dir / "figures" / f"{stem}.{ext}").stat().st_size > 5_000, (stem, ext)
        assert (report_dir / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_png_figures_are_not_blank_and_have_numbers_at_risk(report_dir: Path) -> None:
    for path in sorted((report_dir / "figures").glob("*.png")):
        pixels = imread(path)[..., :3]
        assert pixels.shape[1] >= 85 / 25.4 * 300 - 2, path.name  # at least column width at 300 dpi
        assert pixels.std() > 0.05, path.name
        if path.stem.startswith("km_"):
            # The lowest quarter of a KM figure is the numbers-at-risk table: ink, not empty paper.
            lower = pixels[int(pixels.shape[0] * 0.75):]
            assert lower.std() > 0.03 and (lower < 0.5).mean() > 0.002, path.name


def test_km_figure_risk_table_matches_curve(report_result: analysis.AnalysisResult) -> None:
    curves = report_result["survival_curves"].filter((pl.col("endpoint") == "os") & (pl.col("group_var") == "responder"))
    fig = report.km_figure(curves, ylabel="Overall survival", groups=["no", "yes"],
                           medians={"no": (6.0, 5.0, 7.0), "yes": (16.0, 12.0, None)}, p_value=1e-6)
    table_axes = fig.axes[1]
    texts = [t.get_text() for t in table_axes.texts]
    for label in ("Responders (CR/PR)", "Non-responders", "At risk", "Censored", "Events"):
        assert label in texts
    ticks = fig.axes[0].get_xticks()
    at_risk, censored, events = report.risk_table(curves.filter(pl.col("group") == "yes"), ticks)
    assert at_risk[0] == 58 and censored[0] == 0 and events[0] == 0
    for a, c, e in zip(at_risk, censored, events, strict=True):
        assert a + c + e == 58
    numbers = [t for t in texts if t.isdigit()]
    assert [str(v) for v in at_risk] == numbers[len(ticks) * 3: len(ticks) * 4]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[1].startswith("Responders (CR/PR): median 16.0 (12.0") and "NR" in legend[1]
    assert any(t.get_text() == "Log-rank p < 0.0001" for t in fig.axes[0].texts)


def test_risk_table_by_hand() -> None:
    # times 1, 2 (censored), 4, 4 ; ticks at 0, 3, 6
    curve = pl.DataFrame({"time": [1.0, 2.0, 4.0], "n_risk": [4, 3, 2], "n_event": [1, 0, 2], "n_censor": [0, 1, 0]})
    assert report.risk_table(curve, [0.0, 3.0, 6.0]) == ((4, 2, 0), (0, 1, 1), (0, 1, 3))


def test_no_patient_identifier_in_any_output(report_dir: Path, report_table: pl.DataFrame) -> None:
    ids = report_table["patient_id"].to_list()
    local_ids = {pid.split(":", 1)[1] for pid in ids}
    for path in sorted(report_dir.rglob("*")):
        if not path.is_file() or path.suffix in (".png", ".pdf"):
            continue
        text = path.read_text(encoding="utf-8")
        for local in local_ids:
            assert local not in text, (path.name, local)
    assert "patient_id" not in (report_dir / "report.html").read_text(encoding="utf-8")


def test_rerun_is_byte_identical(shareable_dir: Path, tmp_path: Path) -> None:
    # the fixture saved its figures in two worker processes; this rerun saves them in this one
    again = tmp_path / "again"
    report.run(_small_result(), again, shareable=True, workers=1)
    assert _digest(again) == _digest(shareable_dir)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_run_rejects_a_bad_number_of_workers(workers: object, report_result: analysis.AnalysisResult,
                                             tmp_path: Path) -> None:
    from oncorwe.errors import InputError

    with pytest.raises(InputError, match="workers"):
        report.run(report_result, tmp_path / "x", workers=workers)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_manifest_lists_outputs_and_versions(report_dir: Path) -> None:
    manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    listed = {entry["file"]: entry["sha256"] for entry in manifest["outputs"]}
    on_disk = {k: v for k, v in _digest(report_dir).items() if k != "manifest.json"}
    assert listed == on_disk
    assert manifest["provenance"] == {"seed": 7}
    assert manifest["analysis"]["settings"]["landmark_weeks"] == 12.0
    assert {"python", "oncorwe", "numpy", "polars", "matplotlib"} <= set(manifest["versions"])


def _small_result() -> analysis.AnalysisResult:
    table = hostile_table()
    return analysis.run(table, protocol_with_splits("responder"), attrition=attrition_for(table))


@pytest.fixture(scope="module")
def shareable_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("share") / "report"
    report.run(_small_result(), out, shareable=True, workers=2)  # forked workers, even under xdist
    return out


def test_shareable_report_suppresses_small_cells(shareable_dir: Path) -> None:
    response = pl.read_csv(shareable_dir / "tables" / "response.csv", infer_schema_length=None)
    cr = response.filter((pl.col("group_var") == "overall") & (pl.col("category") == "CR")).row(0, named=True)
    assert cr["n"] == "<5" and cr["percent"] is None and cr["lower"] is None
    overall = dict(response.filter(pl.col("group_var") == "overall").select("category", "n").iter_rows())
    assert "*" in (overall["PR"], overall["ORR"])  # else CR = ORR - PR
    for name in ("table1", "response", "subsequent", "attrition", "regimens"):
        frame = pl.read_csv(shareable_dir / "tables" / f"{name}.csv", infer_schema_length=None)
        for column in ("n", "n_excluded", "responders"):
            if column in frame.columns:
                values = frame[column].cast(pl.String).drop_nulls().to_list()
                assert not any(v in {"1", "2", "3", "4"} for v in values), (name, column)
    html = (shareable_dir / "report.html").read_text(encoding="utf-8")
    assert "&lt;5" in html and "counts below 5 are suppressed" in html


def test_failed_write_leaves_the_previous_report(shareable_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "report"
    target.mkdir()
    (target / "report.html").write_text("previous", encoding="utf-8")

    def broken(folder: Path) -> None:
        (folder / "half.csv").write_text("a,b\n", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        report.write_atomically(target, broken)
    assert (target / "report.html").read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no half-written folder left


def test_run_rejects_what_is_not_a_result(tmp_path: Path) -> None:
    from oncorwe.errors import InputError

    with pytest.raises(InputError, match="AnalysisResult"):
        report.run(fake_analysis_table(), tmp_path / "x")  # type: ignore[arg-type]


def test_criterion_wording_comes_from_the_protocol(report_dir: Path, report_result: analysis.AnalysisResult) -> None:
    from report_helpers import PROGRESSION_LABEL

    labels = report_result.info["criterion_labels"]
    assert labels["no_progression_on_ici"] == PROGRESSION_LABEL
    assert labels["chemotherapy_outside_window"] == "Chemotherapy started outside 2007-2017"  # from [calendar]
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    escaped = PROGRESSION_LABEL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<th scope=\"col\">{escaped}</th>" in html  # the per-centre attrition table's column
    assert PROGRESSION_LABEL not in html
    assert "No progression on the checkpoint inhibitor" not in html  # the generic wording gave way


def _formula_cells(path: Path) -> list[str]:
    """The cells of a CSV file a spreadsheet would evaluate: starting with = + - @ tab or CR and not
    a plain number."""
    import csv
    import re

    from oncorwe.model.spreadsheet_csv import FORMULA_START

    with path.open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]

    def number(cell: str) -> bool:
        return re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", cell) is not None

    return [cell for cell in cells if cell.startswith(FORMULA_START) and not number(cell)]


def test_csv_tables_show_a_formula_named_centre_as_text(report_dir: Path) -> None:
    from report_helpers import FORMULA

    for path in sorted((report_dir / "tables").glob("*.csv")):
        assert _formula_cells(path) == [], path.name
    centres = pl.read_csv(report_dir / "tables" / "attrition.csv", infer_schema=False)["centre_id"].to_list()
    assert "'" + FORMULA in centres
    assert FORMULA not in centres


def test_a_report_without_the_toxicity_table_says_it_is_not_available(
        report_result: analysis.AnalysisResult, tmp_path: Path) -> None:
    # as ``oncorwe combine`` makes it: the protocol has [adverse_events], the counts have no terms
    tables = {name: frame for name, frame in report_result.tables.items() if name != "toxicity"}
    combined = analysis.AnalysisResult(info=report_result.info, tables=tables)
    html = report.run(combined, tmp_path / "r", provenance={"seed": 7}).read_text(encoding="utf-8")
    assert 'id="toxicity"' in html and "The toxicity table is not available in this report" in html
    # every declared table is exported, an empty one without rows
    assert len((tmp_path / "r" / "tables" / "toxicity.csv").read_text(encoding="utf-8").splitlines()) <= 1
    full = (report_result["toxicity"].height, report_result.info["toxicity_label"])
    assert full[0] > 0 and full[1] == "Grade >= 3 adverse events by regimen"


def test_a_shareable_report_without_the_patient_level_tables(report_result: analysis.AnalysisResult,
                                                            tmp_path: Path) -> None:
    # as ``oncorwe combine --shareable`` makes it: no adjusted, competing-risks or toxicity tables
    tables = {n: f for n, f in report_result.tables.items() if n not in analysis.PATIENT_LEVEL_TABLES}
    combined = analysis.AnalysisResult(info=report_result.info, tables=tables)
    html = report.run(combined, tmp_path / "r", shareable=True, workers=1).read_text(encoding="utf-8")
    assert 'id="competing_' not in html and 'id="adjusted"' not in html
    assert not list((tmp_path / "r" / "figures").glob("competing_*"))
