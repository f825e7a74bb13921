"""Adding the adverse events to a generated study changes no other file: they are drawn from a
stream of their own and written to files of their own (only centres.toml lists the new files); in
a workbook they are a sheet of their own (every other sheet keeps its cells), in a REDCap export
rows of their own instrument (every other row keeps its values)."""

from __future__ import annotations

import csv
import hashlib
import tomllib
from pathlib import Path

import openpyxl
import pytest

import oncorwe.synth._study as study_module
from oncorwe.synth import generate_study


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _sheets(path: Path, drop: str = "") -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets if ws.title != drop}
    finally:
        book.close()


def _rows(path: Path, drop: str = "") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["redcap_repeat_instrument"] != drop]


def test_every_other_generated_file_is_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_events = _hashes(generate_study("goldinger2022", tmp_path / "with", patients=300))
    written: list[str] = []

    def no_events(events: object, r: object, folder: Path) -> tuple[str, list[list[object]]]:
        written.append(folder.name)
        return "adverse_events.csv", []

    monkeypatch.setattr(study_module, "write_adverse_events", no_events)
    monkeypatch.setattr(study_module, "draw_adverse_events", lambda records, seed, centre_id: [])
    without = _hashes(generate_study("goldinger2022", tmp_path / "without", patients=300))
    assert written  # the CSV centres would have written one
    added = {name for name in with_events if name.rsplit("/", 1)[-1].startswith("adverse_events.")}
    assert added >= {f"{centre}/adverse_events.csv" for centre in written} - {
        f"{c}/adverse_events.csv" for c in written if f"{c}/adverse_events.tsv" in with_events}
    assert "_truth/adverse_events.csv" in added
    carriers = {name for name in with_events if name.endswith((".xlsx", "_DATA.csv", "_DataDictionary.csv"))}
    assert any(n.endswith(".xlsx") for n in carriers) and any(n.endswith("_DATA.csv") for n in carriers)
    for name, digest in without.items():
        if name in added or name == "centres.toml" or name in carriers:
            continue
        assert with_events[name] == digest, name
    for name in sorted(carriers):
        if name.endswith(".xlsx"):
            assert _sheets(tmp_path / "with" / name, drop="adverse_events") == _sheets(tmp_path / "without" / name, drop="adverse_events"), name
        elif name.endswith("_DATA.csv"):
            assert _rows(tmp_path / "with" / name, drop="adverse_event") == _rows(tmp_path / "without" / name, drop="adverse_event"), name
    manifest = tomllib.loads((tmp_path / "with" / "centres.toml").read_text(encoding="utf-8"))
    listed = {f"{c['id']}/{f}" for c in manifest["centre"] for f in c["files"]}
    assert {a for a in added if not a.startswith("_truth/")} <= listed
