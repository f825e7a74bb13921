"""Adding the adverse events to a generated study changes no other file: they are drawn from a
stream of their own and written to files of their own (only centres.toml lists the new files)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

import oncorwe.synth._study as study_module
from oncorwe.synth import generate_study


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_other_generated_file_is_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_events = _hashes(generate_study("goldinger2022", tmp_path / "with", patients=300))
    written: list[str] = []

    def no_events(events: object, r: object, folder: Path) -> tuple[str, list[list[object]]]:
        written.append(folder.name)
        return "adverse_events.csv", []

    monkeypatch.setattr(study_module, "write_adverse_events", no_events)
    without = _hashes(generate_study("goldinger2022", tmp_path / "without", patients=300))
    assert written  # the CSV centres would have written one
    added = {name for name in with_events if name.rsplit("/", 1)[-1].startswith("adverse_events.")}
    assert added >= {f"{centre}/adverse_events.csv" for centre in written} - {
        f"{c}/adverse_events.csv" for c in written if f"{c}/adverse_events.tsv" in with_events}
    assert "_truth/adverse_events.csv" in added
    for name, digest in without.items():
        if name in added or name == "centres.toml":
            continue
        assert with_events[name] == digest, name
    manifest = tomllib.loads((tmp_path / "with" / "centres.toml").read_text(encoding="utf-8"))
    listed = {f"{c['id']}/{f}" for c in manifest["centre"] for f in c["files"]}
    assert {a for a in added if not a.startswith("_truth/")} <= listed
