"""Hand-written exports of five centres: every convention the issue lists, and every defect kind.

The expected values are worked out by hand from the files in ``study_builder.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study

from oncorwe import harmonise
from oncorwe.model import CanonicalModel
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    PATIENTS_SCHEMA,
    QUARANTINE_SCHEMA,
    RECONCILIATION_SCHEMA,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> CanonicalModel:
    return harmonise.run(write_study(tmp_path_factory.mktemp("fixture") / "study"))


def _patient(model: CanonicalModel, pid: str) -> dict:
    rows = model.patients.filter(pl.col("patient_id") == pid).to_dicts()
    assert len(rows) == 1, pid
    return rows[0]


def _quarantined(model: CanonicalModel, centre: str, file: str, row: int) -> list[dict]:
    return model.quarantine.filter(
        (pl.col("centre_id") == centre) & (pl.col("file") == file) & (pl.col("row") == row)
    ).to_dicts()


def test_tables_have_exactly_the_model_schemas(model: CanonicalModel) -> None:
    assert dict(model.patients.schema) == PATIENTS_SCHEMA
    assert dict(model.drug_exposures.schema) == DRUG_EXPOSURES_SCHEMA
    assert dict(model.assessments.schema) == ASSESSMENTS_SCHEMA
    assert dict(model.events.schema) == EVENTS_SCHEMA
    assert dict(model.quarantine.schema) == QUARANTINE_SCHEMA
    assert dict(model.reconciliation.schema) == RECONCILIATION_SCHEMA


def test_german_latin1_semicolon_decimal_comma_and_microkatal(model: CanonicalModel) -> None:
    k1 = _patient(model, "de-koeln:K001")
    assert (k1["sex"], k1["birth_year"], k1["diagnosis_date"]) == ("male", 1950, dt.date(2010, 5, 13))
    assert (k1["primary_site"], k1["stage"], k1["m_stage"]) == ("cutaneous", "IV", "M1c")
    assert (k1["brain_metastases"], k1["braf_v600"], k1["ecog"]) == (True, False, 1)
    # 4,5 µkat/L and ULN 4,13 µkat/L, at 60 U/L per µkat/L
    assert k1["ldh_value"] == pytest.approx(270.0)
    assert k1["ldh_uln"] == pytest.approx(247.8)
    k2 = _patient(model, "de-koeln:K002")
    assert k2["ldh_value"] is None  # "nicht bekannt"
    assert k2["braf_v600"] is True  # V600E
    k3 = _patient(model, "de-koeln:K003")
    assert (k3["stage"], k3["primary_site"], k3["diagnosis_date"]) == ("III_unresectable", "unknown_primary", None)


def test_xlsx_with_notes_row_and_merged_header_in_french(model: CanonicalModel) -> None:
    n1 = _patient(model, "fr-nice:N-01")
    assert (n1["sex"], n1["birth_year"], n1["diagnosis_date"]) == ("male", 1948, dt.date(2009, 11, 3))
    assert (n1["stage"], n1["m_stage"], n1["braf_v600"], n1["ecog"]) == ("IV", "M1c", True, 2)
    n2 = _patient(model, "fr-nice:N-02")
    assert (n2["sex"], n2["primary_site"], n2["ecog"], n2["ldh_value"]) == ("female", "mucosal", None, None)
    drugs = model.drug_exposures.filter(pl.col("patient_id") == "fr-nice:N-02")
    assert drugs["ingredient"].to_list() == ["ipilimumab", "fotemustine"]
    assert drugs["end_date"].to_list() == [dt.date(2013, 8, 1), None]
    events = model.events.filter(pl.col("patient_id") == "fr-nice:N-01").sort("event_type")
    assert events.select("event_type", "event_date").rows() == [
        ("death", dt.date(2016, 4, 2)), ("last_contact", dt.date(2016, 4, 2))]
    responses = model.assessments.filter(pl.col("patient_id") == "fr-nice:N-01")["response"].to_list()
    assert responses == ["PD", "PR"]  # MP, RP


def test_us_dates_month_first_age_and_bom(model: CanonicalModel) -> None:
    a1 = _patient(model, "us-austin:A1")
    assert (a1["diagnosis_date"], a1["reported_age_years"], a1["birth_year"]) == (dt.date(2011, 3, 25), 61.0, None)
    a2 = _patient(model, "us-austin:A2")
    # 11/02/2010 is read month-first like the rest of its column (03/25/2011 settles it)
    assert a2["diagnosis_date"] == dt.date(2010, 11, 2)
    assert (a2["reported_age_years"], a2["ecog"], a2["primary_site"]) == (None, None, "uveal")
    combo = model.drug_exposures.filter(pl.col("source") == "us-austin/treatments.csv:2")
    assert combo["ingredient"].to_list() == ["carboplatin", "paclitaxel"]
    assert set(combo["drug_class"]) == {"chemotherapy"}


def test_progression_dates_on_treatment_rows_become_events(model: CanonicalModel) -> None:
    progression = model.events.filter(pl.col("event_type") == "progression")
    assert progression.select("patient_id", "event_date").rows() == [
        ("us-austin:A1", dt.date(2013, 6, 20)), ("us-austin:A2", dt.date(2015, 4, 28))]


def test_redcap_repeating_instruments_decoded_with_the_dictionary(model: CanonicalModel) -> None:
    c7 = _patient(model, "ch-chur:C-7")
    assert (c7["sex"], c7["birth_year"], c7["stage"], c7["brain_metastases"]) == ("female", 1966, "IV", False)
    drugs = model.drug_exposures.filter(pl.col("patient_id") == "ch-chur:C-7")
    assert drugs.select("ingredient", "start_date").rows() == [
        ("nivolumab", dt.date(2015, 1, 5)), ("nab-paclitaxel", dt.date(2015, 7, 1))]
    assert drugs["ingredient_concept_id"].to_list()[1] > 2_000_000_000  # no confirmed standard id
    assert model.assessments.filter(pl.col("patient_id") == "ch-chur:C-7")["response"].to_list() == ["PD", "PR"]


def test_brands_and_abbreviations_in_five_languages_map_to_ingredients(model: CanonicalModel) -> None:
    texts = dict(zip(model.drug_exposures["source_text"], model.drug_exposures["ingredient"], strict=True))
    assert texts["Dacarbazin"] == "dacarbazine"
    assert texts["Déticène"] == "dacarbazine"
    assert texts["Muphoran"] == "fotemustine"
    assert texts["Keytruda"] == "pembrolizumab"
    ipi_nivo = model.drug_exposures.filter(pl.col("source_text") == "Ipi/Nivo")
    assert sorted(ipi_nivo["drug_class"]) == ["anti_ctla4", "anti_pd1"]


@pytest.mark.parametrize(
    ("centre", "file", "row", "field", "action"),
    [
        ("de-koeln", "therapien.csv", 3, "(row)", "rejected"),  # duplicated row
        ("de-koeln", "therapien.csv", 5, "end_date", "rejected"),  # end before start
        ("de-koeln", "therapien.csv", 6, "drug", "rejected"),  # unknown drug
        ("de-koeln", "therapien.csv", 7, "start_date", "rejected"),  # 31.02.2016
        ("de-koeln", "staging.csv", 4, "response", "rejected"),  # unknown response word
        ("de-koeln", "verlauf.csv", 4, "patient_id", "rejected"),  # patient not in the patient table
        ("de-koeln", "patienten.csv", 3, "ecog", "value_nulled"),  # ECOG 7
        ("us-austin", "treatments.csv", 4, "(row)", "rejected"),  # shifted row
        ("us-austin", "patients.csv", 3, "primary_site", "value_nulled"),  # unknown site
        ("us-austin", "treatments.csv", 5, "progression_date", "value_nulled"),  # before the start
    ],
)
def test_every_defect_is_quarantined_with_its_place_and_reason(
    model: CanonicalModel, centre: str, file: str, row: int, field: str, action: str
) -> None:
    entries = _quarantined(model, centre, file, row)
    assert [(e["field"], e["action"]) for e in entries] == [(field, action)]
    assert entries[0]["reason"]


def test_nothing_else_is_quarantined(model: CanonicalModel) -> None:
    # 10 defects above + 2 unreadable files
    assert model.quarantine.height == 12


def test_unreadable_files_are_reported_and_other_centres_load(model: CanonicalModel) -> None:
    broken = model.quarantine.filter(pl.col("centre_id") == "nl-broken")
    assert broken["field"].to_list() == ["(file)", "(file)"]
    assert any("crf.xlsx" in line and "XLSX" in line for line in model.problems)
    assert any("data.csv" in line and "not a text file" in line for line in model.problems)
    assert set(model.patients["centre_id"]) == {"de-koeln", "fr-nice", "us-austin", "ch-chur"}


def test_reconciliation_adds_up_for_every_file(model: CanonicalModel) -> None:
    rec = model.reconciliation
    assert (rec["records_read"] == rec["accepted"] + rec["quarantined"] + rec["merged"]).all()
    therapien = rec.filter(pl.col("file") == "therapien.csv").to_dicts()[0]
    assert (therapien["records_read"], therapien["accepted"], therapien["quarantined"]) == (7, 3, 4)
    # every accepted row is traceable in the canonical tables
    traced = [frame.select("source") for frame in model.tables().values() if "source" in frame.columns]
    sources = pl.concat(traced)["source"]
    assert "de-koeln/therapien.csv:4" in set(sources)


def test_same_input_gives_identical_output(tmp_path: Path, model: CanonicalModel) -> None:
    again = harmonise.run(write_study(tmp_path / "study"))
    for name, frame in model.tables().items():
        assert frame.equals(again.tables()[name]), name
    assert model.quarantine.equals(again.quarantine)


def test_rows_that_carry_nothing_but_a_patient_id_are_quarantined_not_accepted(tmp_path: Path) -> None:
    # a REDCap instrument the dictionary does not know: its rows reach no table, so they cannot be
    # counted as accepted (they were, silently)
    from oncorwe import harmonise

    (tmp_path / "ch-x").mkdir()
    (tmp_path / "centres.toml").write_text('[centres.ch-x]\nfiles = ["export.csv"]\n', encoding="utf-8")
    (tmp_path / "ch-x" / "export.csv").write_text(
        "record_id,redcap_repeat_instrument,redcap_repeat_instance,sex,yob,mystery_field\n"
        "R1,,,m,1950,\nR1,unknown_form,1,,,42\nR1,unknown_form,2,,,43\n", encoding="utf-8")
    model = harmonise.run(tmp_path)
    rec = model.reconciliation.to_dicts()
    assert [(r["records_read"], r["accepted"], r["quarantined"]) for r in rec] == [(3, 1, 2)]
    reasons = model.quarantine.filter(pl.col("row") > 1)["reason"].to_list()
    assert len(reasons) == 2 and all(r.startswith("no column of the table besides the patient id") for r in reasons)
    assert any("no column besides the patient id is recognised" in p for p in model.problems)


def test_a_repeated_header_name_is_a_problem_line_naming_both_columns(tmp_path: Path) -> None:
    from oncorwe import harmonise

    (tmp_path / "ch-x").mkdir()
    (tmp_path / "centres.toml").write_text('[centres.ch-x]\nfiles = ["p.csv"]\n', encoding="utf-8")
    (tmp_path / "ch-x" / "p.csv").write_text("patient_id,sex,Sex,birth_year\n1,m,f,1950\n", encoding="utf-8")
    model = harmonise.run(tmp_path)
    assert "centre ch-x, file p.csv: columns 2 and 3 are both named 'Sex'; only column 2 is read " \
           "(rename or remove the other)" in model.problems
    assert model.patients["sex"].to_list() == ["male"]
