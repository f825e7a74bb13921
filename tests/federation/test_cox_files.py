"""The Cox models through files, by replay (``oncorwe combine --cox-rounds``, ``oncorwe site-export
--cox-request``; docs/federation.md), on the 24 centres of the synthetic study.

One loop drives the rounds: ``combine`` through the CLI writes the next request, the 24 centres
answer it, until the report holds the fitted models. The centres' answers are made by the function
the CLI's ``site-export --cox-request`` calls after the centre's own run of the data path
(``cox_answer_document`` on ``pipeline.site_derive``'s table, here the shared fixture's, so the 24
centres are derived once); one centre answers the first round through the CLI as well, and its
answer is the same document. In round 2 one centre is first left out (the waiting report), then
its answer is tampered with (exit 2), then it answers.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.cli_runner import oncorwe

from oncorwe import pipeline, protocol
from oncorwe.analysis.federated import Disclosure, build_package
from oncorwe.analysis.federated._cox_files import (
    answer_file_name,
    cox_answer_document,
    read_cox_request,
)

EXACT = Disclosure(0, 0, {})
COX_TABLES = ("cox_models", "cox", "cox_ph_test")


def _write(document: Any, path: Path) -> None:
    path.write_text(json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def linkage_file(tmp_path_factory: pytest.TempPathFactory, linkage: dict[str, Any]) -> Path:
    path = tmp_path_factory.mktemp("linkage") / "linkage.json"
    _write(linkage, path)
    return path


@pytest.fixture(scope="module")
def exact_files(tmp_path_factory: pytest.TempPathFactory, sites: dict[str, pipeline.Derived],
                flagship: protocol.Protocol, linkage: dict[str, Any]) -> list[Path]:
    folder = tmp_path_factory.mktemp("exact")
    return [build_package(site.endpoints.analysis_table, flagship, centre_id=c, disclosure=EXACT,
                          attrition=site.cohort.attrition, reconciliation=site.reconciliation,
                          quarantine_summary=pipeline.quarantine_summary(site.quarantine),
                          linkage_sha256=pipeline._json_sha256(linkage)).write(folder / f"{c}.json")
            for c, site in sites.items()]


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory, synthetic_study: Path, sites: dict[str, pipeline.Derived],
           flagship: protocol.Protocol, exact_files: list[Path], linkage_file: Path) -> dict[str, Any]:
    """The rounds driven to the end, with what was seen on the way."""
    monkeypatch = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("rounds")
    rounds_dir, report_dir = base / "rounds", base / "report"
    rounds_dir.mkdir()
    seen: dict[str, Any] = {"rounds_dir": rounds_dir, "report_dir": report_dir}

    def combine() -> int:
        return oncorwe(monkeypatch, "combine", *map(str, exact_files), "--cox-rounds", str(rounds_dir),
                       "--out", str(report_dir))

    try:
        for n in range(1, 60):
            assert combine() == 0
            pending = sorted(rounds_dir.glob(f"round-{n}.*.request.json"))
            if not pending:
                seen["rounds"] = n - 1
                break
            (request_file,) = pending
            document = read_cox_request(json.loads(request_file.read_text(encoding="utf-8")), flagship,
                                        where=str(request_file))
            sha = document["request_sha256"]
            answers = {c: cox_answer_document(site.endpoints.analysis_table, flagship, c, document)
                       for c, site in sites.items()}
            if n == 1:  # one centre through the CLI: the same answer
                seen["first_models"] = pl.read_csv(report_dir / "tables" / "cox_models.csv")
                cli_answer = base / "cli-answer.json"
                seen["cli_code"] = oncorwe(monkeypatch, "site-export", "--data", str(synthetic_study),
                                           "--centre", "at-wien", "--cox-request", str(request_file),
                                           "--linkage", str(linkage_file), "--out", str(cli_answer))
                seen["cli_same"] = json.loads(cli_answer.read_text(encoding="utf-8")) == answers["at-wien"]
                seen["cli_answer"] = cli_answer
                seen["request_file"] = request_file
            held_back = "us-newyork" if n == 2 else None
            for centre, answer in answers.items():
                if centre != held_back:
                    _write(answer, rounds_dir / answer_file_name(sha, centre))
            if held_back is not None:
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    assert combine() == 0
                seen["waiting_printed"] = printed.getvalue()
                seen["waiting_models"] = pl.read_csv(report_dir / "tables" / "cox_models.csv")
                _write(answers[held_back], rounds_dir / answer_file_name(sha, held_back))
    finally:
        monkeypatch.undo()
    return seen


@pytest.fixture(scope="module")
def pooled(synthetic_study: Path, tmp_path_factory: pytest.TempPathFactory) -> pipeline.RunResult:
    return pipeline.run_study(protocol_ref="goldinger2022", data_dir=synthetic_study,
                              out_dir=tmp_path_factory.mktemp("pooled") / "report")


def test_the_file_rounds_end_with_the_pooled_cox_tables(driven: dict[str, Any], pooled: pipeline.RunResult) -> None:
    assert 3 <= driven["rounds"] <= 40  # the design round and the Newton-Raphson iterations
    for name in COX_TABLES:
        expected = pl.read_csv(pooled.report_path.parent / "tables" / f"{name}.csv")
        actual = pl.read_csv(driven["report_dir"] / "tables" / f"{name}.csv")
        assert_frame_equal(expected, actual, check_exact=False, rel_tol=1e-9, abs_tol=1e-12, check_dtypes=False)
    manifest = json.loads((driven["report_dir"] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["provenance"]["federated"]["cox"] == "fitted by distributed Newton-Raphson"


def test_unanswered_rounds_give_the_waiting_report(driven: dict[str, Any], centres: list[str]) -> None:
    first = driven["first_models"]
    assert first["status"].to_list() == ["not computed", "not computed"]
    every = ", ".join(sorted(centres))
    assert all(m.startswith(f"waiting for round 1 answers from centres {every} (") for m in first["message"])
    waiting = driven["waiting_models"]["message"].to_list()
    assert all(m.startswith("waiting for round 2 answers from centres us-newyork (request round-2.") for m in waiting)
    printed = driven["waiting_printed"]
    request = next(driven["rounds_dir"].glob("round-2.*.request.json"))
    sha = request.name.split(".")[1]
    assert f"--centre us-newyork --linkage LINKAGE.json --cox-request {request.name}" in printed
    assert f"--out {sha}.us-newyork.json" in printed and "at-wien" not in printed


def test_a_centre_answers_through_the_cli(driven: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert driven["cli_code"] == 0 and driven["cli_same"]
    assert oncorwe(monkeypatch, "site-export", "--inspect", str(driven["cli_answer"])) == 0
    out = capsys.readouterr().out
    assert "Cox answer of centre at-wien to round 1" in out and "complete cases" in out


def test_a_tampered_answer_is_refused(driven: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      synthetic_study: Path, exact_files: list[Path], centres: list[str]) -> None:
    rounds_dir = tmp_path / "rounds"
    shutil.copytree(driven["rounds_dir"], rounds_dir)
    sha = driven["request_file"].name.split(".")[1]
    answer_file = rounds_dir / answer_file_name(sha, centres[5])
    tampered = json.loads(answer_file.read_text(encoding="utf-8"))
    tampered["answer"]["os"]["events"] += 1
    _write(tampered, answer_file)
    code = oncorwe(monkeypatch, "combine", *map(str, exact_files), "--cox-rounds", str(rounds_dir),
                   "--out", str(tmp_path / "report"))
    err = capsys.readouterr().err
    assert code == 2 and f"centre {centres[5]}" in err and answer_file.name in err and "checksum" in err
    assert not (tmp_path / "report").exists()
    request = json.loads(driven["request_file"].read_text(encoding="utf-8"))
    request["protocol_sha256"] = "0" * 64
    other = tmp_path / "other.request.json"
    _write(request, other)
    code = oncorwe(monkeypatch, "site-export", "--data", str(synthetic_study), "--centre", "at-wien",
                   "--cox-request", str(other), "--out", str(tmp_path / "a.json"))
    err = capsys.readouterr().err
    assert code == 2 and "another protocol" in err and "Traceback" not in err
