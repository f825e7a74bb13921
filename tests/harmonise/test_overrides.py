"""A data manager's declarations: column and code mappings in centres.toml or a mapping file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from oncorwe import harmonise


def _study(root: Path, entry: str, mapping: str | None = None) -> Path:
    (root / "xx-one").mkdir(parents=True)
    (root / "centres.toml").write_text(entry, encoding="utf-8")
    if mapping is not None:
        (root / "mappings").mkdir()
        (root / "mappings" / "xx-one.toml").write_text(mapping, encoding="utf-8")
    (root / "xx-one" / "pat.csv").write_text(
        "Kennung|Geschl.|Jahrgang|Bemerkung|Seltsam\nA|M|1950|ok|1\nB|W|1960|-|2\n", encoding="utf-8"
    )
    (root / "xx-one" / "ther.csv").write_text(
        "Kennung|Substanz|Start|Stopp|Antwort\nA|Prüfpräparat 7|2015-01-02|2015-02-03|\n", encoding="utf-8"
    )
    (root / "xx-one" / "resp.csv").write_text("Kennung|Datum|Befund\nA|2015-03-01|MR\n", encoding="utf-8")
    return root


MAPPING = """\
delimiter = "pipe"
columns = { Kennung = "patient_id", "Geschl." = "sex", Bemerkung = "ignore", Befund = "response", Stopp = "end_date" }
codes = { drug = { "Prüfpräparat 7" = "imatinib" }, response = { MR = "SD" } }
ignore_columns = ["Antwort"]
"""


def test_declared_columns_and_codes_from_a_mapping_file(tmp_path: Path) -> None:
    entry = '[centres.xx-one]\nfiles = ["pat.csv", "ther.csv", "resp.csv"]\nmapping = "mappings/xx-one.toml"\n'
    model = harmonise.run(_study(tmp_path / "s", entry, MAPPING))
    assert model.quarantine.height == 0
    assert model.patients.select("patient_id", "sex", "birth_year").rows() == [
        ("xx-one:A", "male", 1950), ("xx-one:B", "female", 1960)]
    exposure = model.drug_exposures.to_dicts()[0]
    assert (exposure["ingredient"], exposure["drug_class"], exposure["source_text"]) == ("imatinib", "other", "Prüfpräparat 7")
    assert exposure["end_date"] == dt.date(2015, 2, 3)
    assert model.assessments.select("assessment_date", "response").rows() == [(dt.date(2015, 3, 1), "SD")]
    how = dict(zip(model.column_map["column"], model.column_map["how"], strict=True))
    assert (how["Kennung"], how["Bemerkung"], how["Antwort"], how["Seltsam"]) == ("declared", "ignored", "ignored", "unknown")


def test_without_the_declarations_the_same_files_are_reported_not_guessed(tmp_path: Path) -> None:
    entry = '[centres.xx-one]\nfiles = ["pat.csv", "ther.csv", "resp.csv"]\n'
    model = harmonise.run(_study(tmp_path / "s", entry))
    # no column is a patient id: every row is quarantined and a problem line says what to declare
    assert model.patients.height == 0
    assert model.quarantine.height == 4
    assert set(model.quarantine["reason"]) == {"the table has no patient id column; declare it in overrides.columns"}
    assert len(model.problems) == 3 and all("overrides.columns" in p for p in model.problems)
    unknown = model.column_map.filter(pl.col("how") == "unknown")["column"].to_list()
    assert "Kennung" in unknown and "Seltsam" in unknown
