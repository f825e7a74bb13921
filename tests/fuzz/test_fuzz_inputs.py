"""Fuzzing the readers, harmonisation, ``centres.toml`` and ``oncorwe validate`` with random and
mutated bytes (issue 13): nothing but oncorwe's own errors ever escapes, and whenever a file is
read its records are accounted for, ``records_read = accepted + quarantined + merged``, with as many
records read as the reader found (nothing lost between reading and harmonising)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from fuzz_inputs import CASES, CENTRES_TOML, PATIENTS, TREATMENTS, fuzz_settings, mutated
from hypothesis import given
from hypothesis import strategies as st

from oncorwe import harmonise
from oncorwe.errors import OncorweError, SourceError
from oncorwe.sources import load_study_config, read_delimited


def _study(root: Path, *, patients: bytes = PATIENTS, treatments: bytes = TREATMENTS,
           centres: bytes = CENTRES_TOML) -> Path:
    (root / "xx-fuzz").mkdir(parents=True)
    (root / "centres.toml").write_bytes(centres)
    (root / "xx-fuzz" / "patients.csv").write_bytes(patients)
    (root / "xx-fuzz" / "treatments.csv").write_bytes(treatments)
    return root


def _reader_counts(root: Path) -> dict[str, int]:
    """Records the reader finds in each readable file centre xx-fuzz lists (with its overrides as
    centres.toml says them): the counts harmonisation must account for."""
    config = load_study_config(root)
    counts = {}
    for centre in config.centres:
        if centre.id != "xx-fuzz":
            continue
        o = centre.overrides
        for entry in centre.files:
            if entry.path not in ("patients.csv", "treatments.csv"):
                continue
            try:
                counts[entry.path] = read_delimited(
                    root / "xx-fuzz" / entry.path, centre_id="xx-fuzz", file=entry.path, encoding=o.encoding,
                    delimiter=o.delimiter, skip_rows=(o.header_row or 1) - 1).records_read
            except SourceError:
                continue
    return counts


def _accounted(model: harmonise.CanonicalModel, root: Path) -> None:
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all(), rec
    read = {r["file"]: r["records_read"] for r in rec.to_dicts()}
    unreadable = {line.split(", file ", 1)[1].split(":", 1)[0] for line in model.unreadable}
    for name, n in _reader_counts(root).items():
        if name not in unreadable:
            assert read.get(name, 0) == n, (name, read, n)


@fuzz_settings(400)
@given(data=st.one_of(st.binary(max_size=2000), mutated(PATIENTS), mutated(TREATMENTS)))
def test_any_bytes_through_the_text_reader_are_a_table_or_a_source_error(data: bytes) -> None:
    CASES["text reader"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(data)
        try:
            table = read_delimited(path, centre_id="xx", file="f.csv")
        except SourceError:
            return
    assert all(len(row) == len(table.columns) for row in table.rows)
    assert len(table.row_numbers) == len(table.rows)
    numbers = sorted([*table.row_numbers, *(b.row for b in table.bad_rows)])
    assert numbers == list(range(1, len(numbers) + 1))  # every record numbered once, none skipped


@fuzz_settings(150)
@given(patients=mutated(PATIENTS), treatments=st.one_of(st.just(TREATMENTS), mutated(TREATMENTS)))
def test_mutated_centre_files_are_accounted_for_or_refused(patients: bytes, treatments: bytes) -> None:
    CASES["centre files"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = _study(Path(tmp), patients=patients, treatments=treatments)
        try:
            model = harmonise.run(root)
        except OncorweError:
            return
        _accounted(model, root)


@fuzz_settings(150)
@given(centres=st.one_of(mutated(CENTRES_TOML), st.binary(max_size=400)))
def test_mutated_centres_toml_is_read_or_refused_with_oncorwes_error(centres: bytes) -> None:
    CASES["centres.toml"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = _study(Path(tmp), centres=centres)
        try:
            load_study_config(root)
            model = harmonise.run(root)
        except OncorweError:
            return
        _accounted(model, root)


@fuzz_settings(60)
@given(patients=mutated(PATIENTS), centres=st.one_of(st.just(CENTRES_TOML), mutated(CENTRES_TOML)))
def test_validate_exits_0_or_2_and_its_reconciliation_adds_up(
    patients: bytes, centres: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_runner import oncorwe

    CASES["validate"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = _study(Path(tmp) / "study", patients=patients, centres=centres)
        out = Path(tmp) / "out"
        code = oncorwe(monkeypatch, "validate", str(root), "--out", str(out))
        printed = capsys.readouterr()
        assert code in (0, 2), printed.err
        assert "Traceback" not in printed.err
        if code == 2:
            assert printed.err.startswith("error: ") and all(
                line.startswith("error: ") for line in printed.err.splitlines())
        if (out / "reconciliation.csv").is_file():
            rec = pl.read_csv(out / "reconciliation.csv")
            assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
