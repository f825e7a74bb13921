"""The public API and CLI: determinism, input errors, scaled and OMOP-only studies."""

from __future__ import annotations

import filecmp
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from oncorwe.cli.app import app
from oncorwe.errors import InputError
from oncorwe.synth import generate_study


def all_files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_same_seed_same_bytes(synthetic_study: Path, tmp_path: Path) -> None:
    again = generate_study("goldinger2022", tmp_path / "again")
    assert again == tmp_path / "again"
    files = all_files(synthetic_study)
    assert files == all_files(again)
    _, mismatch, errors = filecmp.cmpfiles(synthetic_study, again, [str(f) for f in files], shallow=False)
    assert mismatch == [] and errors == []


def test_another_seed_another_study(synthetic_study: Path, tmp_path: Path) -> None:
    other = generate_study("goldinger2022", tmp_path / "other", seed=7, patients=300)
    assert (other / "_truth" / "patients.csv").read_bytes() != (synthetic_study / "_truth" / "patients.csv").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"study": "nope"}, "study"),
        ({"seed": -1}, "seed"),
        ({"seed": "1"}, "seed"),
        ({"patients": 10}, "patients"),
        ({"patients": 2.5}, "patients"),
    ],
)
def test_bad_input_is_named(kwargs: dict, names: str, tmp_path: Path) -> None:
    study = kwargs.pop("study", "goldinger2022")
    with pytest.raises(InputError, match=names):
        generate_study(study, tmp_path / "x", **kwargs)


def test_scaled_study_keeps_the_proportions(tmp_path: Path) -> None:
    out = generate_study("goldinger2022", tmp_path / "scaled", patients=300)
    truth = pl.read_csv(out / "_truth" / "patients.csv", infer_schema_length=None)
    assert truth.height == 300
    eligible = truth.filter(pl.col("eligible"))
    n = round(300 * 463 / 556)
    assert eligible.height == n
    scale = n / 463
    assert eligible.filter(pl.col("sex") == "male").height == round(278 * scale)
    assert eligible.filter(pl.col("brain_metastases")).height == round(134 * scale)
    assert abs(eligible.filter(pl.col("responder")).height - 58 * scale) <= 3


def test_omop_only_streams_every_centre_as_a_database(tmp_path: Path) -> None:
    out = generate_study("goldinger2022", tmp_path / "omop", patients=120, omop_only=True)
    databases = sorted(out.glob("*/omop.duckdb"))
    assert len(databases) == 24
    truth = pl.read_csv(out / "_truth" / "patients.csv", infer_schema_length=None)
    persons = 0
    for path in databases:
        con = duckdb.connect(str(path), read_only=True)
        persons += con.execute("SELECT count(*) FROM person").fetchone()[0]
        con.close()
    assert persons == truth.height
    assert not list(out.glob("_truth/.part-*"))


def test_cli_writes_a_study(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "cli"), "--patients", "120", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "centres.toml").is_file()
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "bad"), "--study", "nope"])
    assert bad.exit_code != 0
