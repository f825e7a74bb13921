"""Multicentre analysis without pooling (issue 14), on the 24 centres of the synthetic study.

Each centre is run alone (``pipeline.site_derive``: the one data path on its own files, with the
coordinator's linkage of cross-centre duplicates), packaged, and combined; the result is compared
with the pooled run of the same study folder.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.cli_runner import oncorwe

from oncorwe import analysis, pipeline, protocol
from oncorwe.analysis.federated import (
    Disclosure,
    SitePackage,
    build_package,
    combine,
    cox_site_answer,
    federated_cox_tables,
)
from oncorwe.errors import InputError

KEY = b"a shared key of the network, 32 bytes"
EXACT = Disclosure(0, 0, {})


def _package(site: pipeline.Derived, flagship: protocol.Protocol, centre: str, disclosure: Disclosure,
             linkage: dict[str, Any] | None) -> SitePackage:
    return build_package(
        site.endpoints.analysis_table, flagship, centre_id=centre, disclosure=disclosure,
        attrition=site.cohort.attrition, reconciliation=site.reconciliation,
        quarantine_summary=pipeline.quarantine_summary(site.quarantine),
        linkage_sha256=None if linkage is None else pipeline._json_sha256(linkage))


@pytest.fixture(scope="module")
def exact_files(tmp_path_factory: pytest.TempPathFactory, sites: dict[str, pipeline.Derived],
                flagship: protocol.Protocol, linkage: dict[str, Any]) -> list[Path]:
    folder = tmp_path_factory.mktemp("exact")
    return [_package(site, flagship, c, EXACT, linkage).write(folder / f"{c}.json") for c, site in sites.items()]


@pytest.fixture(scope="module")
def released(sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
             linkage: dict[str, Any]) -> list[SitePackage]:
    spec = flagship.federation
    disclosure = Disclosure(spec.min_cell_count, spec.time_bin_days, {"age_years": spec.default_value_bin})
    return [_package(site, flagship, c, disclosure, linkage) for c, site in sites.items()]


@pytest.fixture(scope="module")
def pooled(synthetic_study: Path, tmp_path_factory: pytest.TempPathFactory) -> pipeline.RunResult:
    return pipeline.run_study(protocol_ref="goldinger2022", data_dir=synthetic_study,
                              out_dir=tmp_path_factory.mktemp("pooled") / "report")


def _close(expected: pl.DataFrame, actual: pl.DataFrame, name: str) -> None:
    assert_frame_equal(expected, actual, check_exact=False, rel_tol=1e-9, abs_tol=1e-12, check_dtypes=False), name


# --- linkage ----------------------------------------------------------------------------------------


def test_linkage_finds_the_pooled_runs_cross_centre_duplicates(linkage: dict[str, Any],
                                                               pooled: pipeline.RunResult) -> None:
    flow = pooled.analysis.tables["attrition"]
    pooled_merged = flow.filter(pl.col("centre_id").is_null() & (pl.col("criterion") == "duplicate_referral"))
    merged = sum(len(v) for v in linkage["centres"].values())
    assert merged == pooled_merged["n_excluded"].item() > 0


def test_linkage_tokens_hold_no_value_of_the_rule(synthetic_study: Path, flagship: protocol.Protocol) -> None:
    document = pipeline.linkage_tokens(flagship, synthetic_study, "at-wien", KEY)
    text = json.dumps(document)
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}", text)  # no date of any kind
    assert "ATWI" not in text  # no patient id
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for r in document["records"] for t in r["tokens"])
    other_key = pipeline.linkage_tokens(flagship, synthetic_study, "at-wien", KEY + b"x")
    assert {t for r in document["records"] for t in r["tokens"]}.isdisjoint(
        {t for r in other_key["records"] for t in r["tokens"]})


def test_a_short_linkage_key_is_refused(synthetic_study: Path, flagship: protocol.Protocol) -> None:
    with pytest.raises(InputError, match="at least 16"):
        pipeline.linkage_tokens(flagship, synthetic_study, "at-wien", b"short")


# --- exact mode equals the pooled run ---------------------------------------------------------------


def test_exact_packages_give_every_pooled_table_but_cox(exact_files: list[Path], flagship: protocol.Protocol,
                                                        pooled: pipeline.RunResult) -> None:
    packages = [SitePackage.read(p) for p in exact_files]
    combined = combine(packages, flagship)
    assert combined.exact and not combined.approximate
    for name in analysis.TABLE_NAMES:
        if name in ("cox", "cox_models", "cox_ph_test", *analysis.PATIENT_LEVEL_TABLES):
            continue
        _close(pooled.analysis.tables[name], combined.result.tables[name], name)
    models = combined.result.tables["cox_models"]
    assert models["status"].to_list() == ["not computed", "not computed"]
    assert combined.result.tables["cox"].height == 0


def test_distributed_cox_rounds_equal_the_pooled_models(sites: dict[str, pipeline.Derived],
                                                        flagship: protocol.Protocol,
                                                        pooled: pipeline.RunResult) -> None:
    tables = [site.endpoints.analysis_table for site in sites.values()]
    rounds: list[str] = []

    def ask(request: Any) -> list[Any]:
        rounds.append(request["round"])
        wire = json.loads(json.dumps(request))  # what crosses the network is JSON, both ways
        return [json.loads(json.dumps(cox_site_answer(t, flagship, wire))) for t in tables]

    cox = federated_cox_tables(ask, flagship, schema=flagship.analysis_schema())
    assert rounds[0] == "design" and set(rounds[1:]) == {"sums"}
    for name in ("cox_models", "cox", "cox_ph_test"):
        _close(pooled.analysis.tables[name], cox[name], name)


def test_site_export_and_combine_through_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 synthetic_study: Path, linkage: dict[str, Any],
                                                 exact_files: list[Path], pooled: pipeline.RunResult) -> None:
    linkage_file = tmp_path / "linkage.json"
    linkage_file.write_text(json.dumps(linkage), encoding="utf-8")
    for centre in ("at-wien", "us-newyork"):
        out = tmp_path / f"{centre}.json"
        code = oncorwe(monkeypatch, "site-export", "--data", str(synthetic_study), "--centre", centre,
                       "--linkage", str(linkage_file), "--min-cell-count", "0", "--time-bin-days", "0",
                       "--out", str(out))
        assert code == 0
        made = next(p for p in exact_files if p.name == f"{centre}.json")
        assert out.read_bytes() == made.read_bytes()  # the CLI's package is the API's, byte for byte
    report_dir = tmp_path / "report"
    assert oncorwe(monkeypatch, "combine", *map(str, exact_files), "--out", str(report_dir)) == 0
    pooled_tables = pooled.report_path.parent / "tables"
    for csv in sorted(pooled_tables.glob("*.csv")):
        if csv.stem in ("cox", "cox_models", "cox_ph_test", *analysis.PATIENT_LEVEL_TABLES):
            continue
        _close(pl.read_csv(csv), pl.read_csv(report_dir / "tables" / csv.name), csv.name)
    manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    federated = manifest["provenance"]["federated"]
    assert federated["exact"] is True and len(federated["centres"]) == 24
    assert {c["content_sha256"] for c in federated["centres"]} == {SitePackage.read(p).content_sha256 for p in exact_files}
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "Federated analysis" in html and "not for release" in html


def test_inspect_prints_everything_the_package_holds(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     exact_files: list[Path]) -> None:
    assert oncorwe(monkeypatch, "site-export", "--inspect", str(exact_files[0])) == 0
    printed = capsys.readouterr().out
    package = SitePackage.read(exact_files[0])
    assert "EXACT PACKAGE" in printed and package.content_sha256 in printed
    for view in package.views.values():
        assert f"View ({', '.join(view.columns)}): {view.rows.height} rows" in printed
    n_rows = sum(v.rows.height for v in package.views.values())
    assert printed.count("\n    ") >= n_rows  # every counted row, one line each


# --- disclosure-controlled packages ----------------------------------------------------------------


def test_released_packages_hold_no_small_cell_and_no_exact_time(released: list[SitePackage]) -> None:
    for package in released:
        assert not package.exact
        for view in package.views.values():
            if not view.rows.height:
                continue
            km = any(c in view.columns for c in ("pfs_event", "os_event"))
            if not km:
                assert int(view.rows["n_patients"].min()) >= 5, (package.centre_id, view.columns)  # type: ignore[arg-type]
            for column in ("pfs_months", "os_months", "response_by_landmark"):
                if column in view.columns:
                    days = view.rows[column].drop_nulls() * (365.25 / 12)
                    assert ((days / 30).round(6) % 1 == 0).all(), (package.centre_id, column)
        excluded = package.attrition["n_excluded"].drop_nulls()
        assert not ((excluded > 0) & (excluded < 5)).any()


def test_released_combine_says_what_is_approximate(released: list[SitePackage], flagship: protocol.Protocol,
                                                   pooled: pipeline.RunResult) -> None:
    combined = combine(released, flagship)
    assert not combined.exact
    views = {a["view"] for a in combined.approximate}
    assert "pfs_months, pfs_event" in views and "regimen_class, age_years" in views
    by_view = {a["view"]: a for a in combined.approximate}
    assert by_view["best_response"]["estimates"] == "response rates"
    lost = int(re.search(r"(\d+) of 463 patients", by_view["best_response"]["control"]).group(1))  # type: ignore[union-attr]
    counted = combined.result.tables["response"].filter(
        (pl.col("group_var") == "overall") & (pl.col("category") == "ORR"))["denominator"].item()
    assert counted == 463 - lost  # the cost stated is the cost measured
    assert "times later by less than 30 days" in by_view["pfs_months, pfs_event"]["control"]
    overall = combined.result.tables["survival_summary"].filter(pl.col("group_var") == "overall")
    expected = pooled.analysis.tables["survival_summary"].filter(pl.col("group_var") == "overall")
    assert overall["n"].to_list() == expected["n"].to_list()  # times are binned, no patient is lost
    # binning by 30 days moves a median by less than one bin
    for got, want in zip(overall["median"].to_list(), expected["median"].to_list(), strict=True):
        assert abs(got - want) < 30 / (365.25 / 12)


# --- bad input and safety ---------------------------------------------------------------------------


def _document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _resealed(document: dict[str, Any]) -> dict[str, Any]:
    import hashlib

    from oncorwe.analysis.federated._package import canonical_json

    body = {k: v for k, v in document.items() if k != "content_sha256"}
    return {**body, "content_sha256": hashlib.sha256(canonical_json(body)).hexdigest()}


def _combine_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                 files: list[Path], *extra: str) -> tuple[int, str]:
    code = oncorwe(monkeypatch, "combine", *map(str, files), "--out", str(tmp_path / "out"), *extra)
    return code, capsys.readouterr().err


def test_a_tampered_package_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path, exact_files: list[Path]) -> None:
    document = _document(exact_files[3])
    document["n_patients"] += 1
    bad = tmp_path / exact_files[3].name
    bad.write_text(json.dumps(document), encoding="utf-8")
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, [*exact_files[:3], bad, *exact_files[4:]])
    assert code == 2
    assert "checksum" in err and document["centre_id"] in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_counts_that_contradict_each_other_are_refused(tmp_path: Path, exact_files: list[Path]) -> None:
    document = _document(exact_files[0])
    view = document["views"][1]
    view["rows"]["rows"][0][-1] += 3  # one view counts more patients than the analysis set
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_resealed(document)), encoding="utf-8")
    with pytest.raises(InputError, match="contradict"):
        SitePackage.read(path)


def _retype(document: dict[str, Any]) -> None:
    """A view's age column declared as text (its values written as words)."""
    view = next(v for v in document["views"] if "age_years" in v["columns"])
    position = view["rows"]["columns"].index("age_years")
    view["rows"]["types"][position] = "String"
    for row in view["rows"]["rows"]:
        row[position] = None if row[position] is None else f"about {row[position]}"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["protocol"].update(sha256="0" * 64), "another protocol"),
    (_retype, "holds age_years as String"),
    (lambda d: d.update(schema_version=99), "schema version 99"),
    (lambda d: d.update(format="something"), "not an oncorwe site package"),
])
def test_packages_of_another_protocol_or_schema_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                            exact_files: list[Path], change: Any,
                                                            message: str) -> None:
    document = _document(exact_files[0])
    change(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_resealed(document)), encoding="utf-8")
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, [bad, *exact_files[1:]])
    assert code == 2 and message in err and "Traceback" not in err


def test_a_centre_twice_too_few_centres_and_a_small_centre_are_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        exact_files: list[Path]) -> None:
    copy = tmp_path / "again.json"
    shutil.copy(exact_files[0], copy)
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, [*exact_files, copy])
    assert code == 2 and "two packages for the same centre" in err
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, exact_files[:2])
    assert code == 2 and "fewer than the minimum 3" in err
    assert _combine_cli(monkeypatch, capsys, tmp_path, exact_files[:2], "--min-centres", "2")[0] == 0
    smallest = min(SitePackage.read(p).n_patients for p in exact_files)
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, exact_files, "--min-patients", str(smallest + 1))
    assert code == 2 and "fewer than the minimum" in err and "--min-patients" in err


def test_packages_made_with_different_linkages_are_refused(exact_files: list[Path], flagship: protocol.Protocol,
                                                           sites: dict[str, pipeline.Derived]) -> None:
    packages = [SitePackage.read(p) for p in exact_files]
    centre = packages[0].centre_id
    unlinked = _package(sites[centre], flagship, centre, EXACT, None)
    with pytest.raises(InputError, match="another linkage"):
        combine([unlinked, *packages[1:]], flagship)


def test_not_a_package_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path, exact_files: list[Path]) -> None:
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\xff\xfe{not json")
    code, err = _combine_cli(monkeypatch, capsys, tmp_path, [junk, *exact_files[1:]])
    assert code == 2 and "junk.json" in err and "Traceback" not in err


def test_identifiers_planted_in_a_centre_never_reach_its_package(tmp_path: Path, synthetic_study: Path,
                                                                 flagship: protocol.Protocol) -> None:
    study = tmp_path / "study"
    shutil.copytree(synthetic_study, study)
    planted = "ZZSECRETPATIENT"
    dates: set[str] = set()
    for csv in (study / "at-wien").glob("*.csv"):
        text = csv.read_bytes().decode("latin-1")
        dates.update(re.findall(r"\d{2}\.\d{2}\.\d{4}", text))
        csv.write_bytes(text.replace("ATWI", planted).encode("latin-1"))
    for exact in (True, False):
        overrides = {"min_cell_count": 0, "time_bin_days": 0} if exact else {}
        package = pipeline.site_export(flagship, study, "at-wien", **overrides)  # type: ignore[arg-type]
        assert package.n_patients > 0
        text = json.dumps(package.to_json())
        assert planted not in text
        assert not any(d in text for d in dates)
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text)


def test_binned_cox_rounds_equal_the_pooled_fit_on_binned_times(sites: dict[str, pipeline.Derived],
                                                                flagship: protocol.Protocol,
                                                                pooled: pipeline.RunResult) -> None:
    from oncorwe.analysis._cox import cox_models

    tables = [site.endpoints.analysis_table for site in sites.values()]

    def ask(request: Any) -> list[Any]:
        return [cox_site_answer(t, flagship, request) for t in tables]

    cox = federated_cox_tables(ask, flagship, schema=flagship.analysis_schema(), time_bin_days=30)
    width = 30 / (365.25 / 12)
    binned = pooled.analysis_table.with_columns(
        [((pl.col(c) / width).ceil() * width).alias(c) for c in ("pfs_months", "os_months")])
    expected = cox_models(binned, covariates=list(flagship.analysis.cox_covariates),
                          reference=dict(flagship.analysis.cox_reference))
    for name in ("cox_models", "cox", "cox_ph_test"):
        _close(expected[name], cox[name], name)
    assert not cox["cox"].equals(pooled.analysis.tables["cox"])  # binning did change the fit
