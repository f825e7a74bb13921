"""The Cox rounds through files (``combine --cox-rounds``) on released packages, not only on exact
ones: plain packages under the protocol's default disclosure control (times binned, small cells
withheld) and masked packages of secure aggregation.

The centres' answers bin their times as their packages did, so no exact event time leaves a
centre; the fit replayed from the files is then the distributed fit with the centres asked
directly (``federated_cox_tables`` with the same bin), to 1e-9, and not the exact fit: the report
says the Cox models come from binned times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.cli_runner import oncorwe

from oncorwe import pipeline, protocol
from oncorwe.analysis._views import TIME_COLUMN_DAYS
from oncorwe.analysis.federated import (
    Disclosure,
    build_package,
    build_secure_package,
    make_key_pair,
    read_roster,
)
from oncorwe.analysis.federated._cox_files import (
    answer_file_name,
    cox_answer_document,
    read_cox_request,
)
from oncorwe.analysis.federated._cox_rounds import cox_site_answer, federated_cox_tables

COX_TABLES = ("cox_models", "cox", "cox_ph_test")


def _default_disclosure(flagship: protocol.Protocol) -> Disclosure:
    spec = flagship.federation
    return Disclosure(spec.min_cell_count, spec.time_bin_days, {"age_years": spec.default_value_bin})


def _write(document: Any, path: Path) -> None:
    path.write_text(json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _drive(files: list[Path], sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
           base: Path) -> dict[str, Any]:
    """``combine --cox-rounds`` run until no request is left, every centre answering each round."""
    monkeypatch = pytest.MonkeyPatch()
    rounds_dir, report_dir = base / "rounds", base / "report"
    rounds_dir.mkdir()
    bins = set()
    try:
        for n in range(1, 60):
            assert oncorwe(monkeypatch, "combine", *map(str, files), "--cox-rounds", str(rounds_dir),
                           "--out", str(report_dir)) == 0
            pending = sorted(rounds_dir.glob(f"round-{n}.*.request.json"))
            if not pending:
                break
            (request_file,) = pending
            document = read_cox_request(json.loads(request_file.read_text(encoding="utf-8")), flagship,
                                        where=str(request_file))
            bins.add(int(document["request"].get("time_bin_days", 0)))
            for centre, site in sites.items():
                answer = cox_answer_document(site.endpoints.analysis_table, flagship, centre, document)
                _write(answer, rounds_dir / answer_file_name(document["request_sha256"], centre))
        else:
            pytest.fail("the Cox rounds did not end in 60 rounds")
    finally:
        monkeypatch.undo()
    tables = {name: pl.read_csv(report_dir / "tables" / f"{name}.csv") for name in COX_TABLES}
    return {"rounds": n - 1, "bins": bins, "tables": tables, "report_dir": report_dir}


def _asked_directly(sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
                    time_bin_days: int) -> dict[str, pl.DataFrame]:
    """The distributed fit with every centre answering at once, in the order of the file rounds."""
    ordered = [sites[c].endpoints.analysis_table for c in sorted(sites)]

    def ask(request: dict[str, Any]) -> list[dict[str, Any]]:
        return [cox_site_answer(table, flagship, request) for table in ordered]

    return federated_cox_tables(ask, flagship, schema=flagship.analysis_schema(), time_bin_days=time_bin_days)


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory: pytest.TempPathFactory, sites: dict[str, pipeline.Derived],
                flagship: protocol.Protocol, linkage: dict[str, Any]) -> list[Path]:
    folder = tmp_path_factory.mktemp("plain")
    return [build_package(site.endpoints.analysis_table, flagship, centre_id=c,
                          disclosure=_default_disclosure(flagship), attrition=site.cohort.attrition,
                          reconciliation=site.reconciliation,
                          quarantine_summary=pipeline.quarantine_summary(site.quarantine),
                          linkage_sha256=pipeline._json_sha256(linkage)).write(folder / f"{c}.json")
            for c, site in sites.items()]


@pytest.fixture(scope="module")
def masked_files(tmp_path_factory: pytest.TempPathFactory, sites: dict[str, pipeline.Derived],
                 flagship: protocol.Protocol, linkage: dict[str, Any], centres: list[str]) -> list[Path]:
    folder = tmp_path_factory.mktemp("masked")
    keys = {c: make_key_pair(c, flagship) for c in centres}
    roster = read_roster([(c, public) for c, (public, _private) in keys.items()], flagship)
    return [build_secure_package(site.endpoints.analysis_table, flagship, centre_id=c,
                                 disclosure=_default_disclosure(flagship), roster=roster,
                                 private_key=keys[c][1], attrition=site.cohort.attrition,
                                 reconciliation=site.reconciliation,
                                 linkage_sha256=pipeline._json_sha256(linkage)).write(folder / f"{c}.json")
            for c, site in sites.items()]


@pytest.fixture(scope="module")
def plain_rounds(plain_files: list[Path], sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _drive(plain_files, sites, flagship, tmp_path_factory.mktemp("plain-rounds"))


def test_masked_packages_ask_the_first_round_with_their_bin(masked_files: list[Path], flagship: protocol.Protocol,
                                                            centres: list[str], sites: dict[str, pipeline.Derived],
                                                            tmp_path: Path) -> None:
    """Masked packages start the same rounds (the fit itself is the plain packages' above: the
    centres answer on their own tables, binned alike; driving every round again costs minutes)."""
    monkeypatch = pytest.MonkeyPatch()
    rounds_dir = tmp_path / "rounds"
    rounds_dir.mkdir()
    try:
        assert oncorwe(monkeypatch, "combine", *map(str, masked_files), "--cox-rounds", str(rounds_dir),
                       "--out", str(tmp_path / "report")) == 0
    finally:
        monkeypatch.undo()
    (request_file,) = sorted(rounds_dir.glob("round-1.*.request.json"))
    document = read_cox_request(json.loads(request_file.read_text(encoding="utf-8")), flagship, where=str(request_file))
    assert document["request"]["time_bin_days"] == flagship.federation.time_bin_days > 0
    assert sorted(document["centres"]) == sorted(centres)
    # the design round's answer holds the binned event times only: every one a whole bin
    answer = cox_answer_document(sites[centres[0]].endpoints.analysis_table, flagship, centres[0], document)
    width = flagship.federation.time_bin_days / TIME_COLUMN_DAYS["os_months"]
    times = [t for part in answer["answer"].values() for t in part["event_times"]]
    assert times and all(abs(t / width - round(t / width)) < 1e-9 for t in times)



def test_the_rounds_bin_as_the_packages_and_equal_the_direct_fit(plain_rounds: dict[str, Any],
                                                                flagship: protocol.Protocol,
                                                                sites: dict[str, pipeline.Derived]) -> None:
    driven = plain_rounds
    bin_days = flagship.federation.time_bin_days
    assert bin_days > 0
    assert driven["bins"] == {bin_days}, "every request carries the packages' bin"
    assert driven["rounds"] > 2
    direct = _asked_directly(sites, flagship, bin_days)
    for name in COX_TABLES:
        got = driven["tables"][name]
        assert got.height == direct[name].height > 0, name
        expected = pl.read_csv(_as_csv(direct[name]))
        assert_frame_equal(got, expected, check_dtypes=False, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def _as_csv(frame: pl.DataFrame) -> bytes:
    """A table as the report's CSV would read back (lists and nested values as text)."""
    return frame.write_csv().encode()


def test_binned_rounds_differ_from_the_exact_fit(plain_rounds: dict[str, Any], sites: dict[str, pipeline.Derived],
                                                 flagship: protocol.Protocol) -> None:
    """The bin matters (the exact fit is not what released packages give), by a small amount."""
    exact = _asked_directly(sites, flagship, 0)["cox"]
    binned = plain_rounds["tables"]["cox"]
    assert binned.height == exact.height
    hr_binned, hr_exact = binned["hazard_ratio"].to_numpy(), exact["hazard_ratio"].to_numpy()
    assert (abs(hr_binned - hr_exact) > 1e-9).any()
    assert (abs(hr_binned / hr_exact - 1) < 0.05).all()


def test_the_report_says_the_cox_models_come_from_binned_times(plain_rounds: dict[str, Any],
                                                               flagship: protocol.Protocol) -> None:
    driven = plain_rounds
    manifest = json.loads((driven["report_dir"] / "manifest.json").read_text(encoding="utf-8"))
    federated = manifest["provenance"]["federated"]
    assert federated["cox"] == "fitted by distributed Newton-Raphson"
    rows = [a for a in federated["approximate"] if a["view"] == "Cox rounds"]
    assert rows == [{"view": "Cox rounds", "estimates": "Cox hazard ratios and the PH test",
                     "control": f"event times binned to {flagship.federation.time_bin_days} days at the centres"}]
    assert f"event times binned to {flagship.federation.time_bin_days} days" in \
        (driven["report_dir"] / "report.html").read_text(encoding="utf-8")
