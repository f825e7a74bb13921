"""Dates: one format per column, from the whole column; ambiguity stops with a clear error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from oncorwe import harmonise
from oncorwe.errors import DataError, InputError

D = dt.date


@pytest.fixture(scope="module")
def vocab() -> harmonise.Vocabulary:
    return harmonise.load_vocabulary()


def test_a_day_above_12_settles_day_first_for_the_whole_column(vocab: harmonise.Vocabulary) -> None:
    result = harmonise.infer_date_column(["03.04.2012", "25.12.2013", None], vocab)
    assert (result.order, result.ambiguous) == ("DMY", False)
    assert result.dates == (D(2012, 4, 3), D(2013, 12, 25), None)


def test_a_day_above_12_in_second_place_settles_month_first(vocab: harmonise.Vocabulary) -> None:
    result = harmonise.infer_date_column(["03/04/2012", "12/25/2013"], vocab)
    assert result.order == "MDY"
    assert result.dates == (D(2012, 3, 4), D(2013, 12, 25))


def test_never_two_orders_in_one_column(vocab: harmonise.Vocabulary) -> None:
    # 25/12 reads only day-first and 12/26 only month-first: one order wins, the other is unreadable
    result = harmonise.infer_date_column(["25/12/2013", "01/02/2014", "12/26/2013", "13/01/2014"], vocab)
    assert result.order == "DMY"
    assert result.unreadable == (2,)
    assert result.dates[1] == D(2014, 2, 1)


def test_iso_month_names_and_invalid_days(vocab: harmonise.Vocabulary) -> None:
    iso = harmonise.infer_date_column(["2015-12-31", "2016-02-30", "2016-01-05 00:00:00"], vocab)
    assert iso.order == "YMD" and iso.unreadable == (1,)
    assert iso.dates[2] == D(2016, 1, 5)
    named = harmonise.infer_date_column(["31-Dec-2015", "01-Mär-2016", "5 janvier 2017", "02-Okt-2014"], vocab)
    assert named.dates == (D(2015, 12, 31), D(2016, 3, 1), D(2017, 1, 5), D(2014, 10, 2))
    assert harmonise.infer_date_column(["32-Nov-2014", "01-Dec-2014"], vocab).unreadable == (0,)


def test_every_value_reading_the_same_either_way_is_not_ambiguous(vocab: harmonise.Vocabulary) -> None:
    result = harmonise.infer_date_column(["01/01/2012", "05/05/2013"], vocab)
    assert not result.ambiguous
    assert result.dates == (D(2012, 1, 1), D(2013, 5, 5))


def test_an_ambiguous_column_is_settled_by_the_declared_order(vocab: harmonise.Vocabulary) -> None:
    values = ["03/04/2012", "05/06/2013"]
    assert harmonise.infer_date_column(values, vocab).ambiguous
    declared = harmonise.infer_date_column(values, vocab, declared="MDY")
    assert declared.dates == (D(2012, 3, 4), D(2013, 5, 6))
    by_centre = harmonise.infer_date_column(values, vocab, centre_orders=["DMY"])
    assert not by_centre.ambiguous and by_centre.dates == (D(2012, 4, 3), D(2013, 6, 5))


def _one_centre(root: Path, patients: str, treatments: str, overrides: str = "") -> Path:
    (root / "xx-one").mkdir(parents=True)
    (root / "centres.toml").write_text(
        f'[centres.xx-one]\nfiles = ["patients.csv", "treatments.csv"]\n{overrides}', encoding="utf-8"
    )
    (root / "xx-one" / "patients.csv").write_text(patients, encoding="utf-8")
    (root / "xx-one" / "treatments.csv").write_text(treatments, encoding="utf-8")
    return root


PATIENTS = "patient_id,sex,diagnosis_date\n1,m,03/04/2012\n2,f,05/06/2013\n"
TREATMENTS = "patient_id,drug,start_date,end_date\n1,DTIC,02/01/2014,03/01/2014\n2,TMZ,04/01/2014,05/01/2014\n"


def test_ambiguous_columns_stop_together_naming_centre_file_column_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        harmonise.run(_one_centre(tmp_path / "s", PATIENTS, TREATMENTS))
    problems = caught.value.problems
    assert len(problems) == 3  # diagnosis_date, start_date, end_date: all reported at once
    assert all("centre xx-one" in p and "date_order" in p for p in problems)
    assert any("patients.csv" in p and "'diagnosis_date'" in p for p in problems)


def test_the_centre_declares_the_order_once(tmp_path: Path) -> None:
    study = _one_centre(tmp_path / "s", PATIENTS, TREATMENTS, '[centres.xx-one.overrides]\ndate_order = "MDY"\n')
    model = harmonise.run(study)
    assert model.patients["diagnosis_date"].to_list() == [D(2012, 3, 4), D(2013, 5, 6)]


def test_another_column_of_the_centre_settles_an_ambiguous_one(tmp_path: Path) -> None:
    treatments = TREATMENTS + "2,DTIC,06/25/2014,07/20/2014\n"  # month-first, settled
    model = harmonise.run(_one_centre(tmp_path / "s", PATIENTS, treatments))
    assert model.patients["diagnosis_date"].to_list() == [D(2012, 3, 4), D(2013, 5, 6)]


def test_excel_serial_day_numbers_are_read_when_the_whole_column_is_so(vocab: harmonise.Vocabulary) -> None:
    result = harmonise.infer_date_column(["42370", "42005.0", None], vocab)
    assert result.order == "SERIAL"
    assert result.dates == (D(2016, 1, 1), D(2015, 1, 1), None)


def test_a_strftime_format_declares_the_order(tmp_path: Path) -> None:
    overrides = '[centres.xx-one.overrides]\ndate_formats = { diagnosis_date = "%m/%d/%Y" }\ndate_format = "%m/%d/%Y"\n'
    model = harmonise.run(_one_centre(tmp_path / "s", PATIENTS, TREATMENTS, overrides))
    assert model.patients["diagnosis_date"].to_list() == [D(2012, 3, 4), D(2013, 5, 6)]
    bad = '[centres.xx-one.overrides]\ndate_format = "%Y/%d/%m"\n'
    with pytest.raises(InputError, match="date_format"):
        harmonise.run(_one_centre(tmp_path / "t", PATIENTS, TREATMENTS, bad))


def _dated_study(root: Path, preamble: str = "") -> Path:
    (root / "xx-one").mkdir(parents=True)
    (root / "centres.toml").write_text(
        f'{preamble}[centres.xx-one]\nfiles = ["patients.csv", "treatments.csv"]\n', encoding="utf-8"
    )
    (root / "xx-one" / "patients.csv").write_text(
        "patient_id,sex,diagnosis_date\n1,m,0001-01-01\n2,f,1800-05-03\n3,m,2090-01-01\n4,f,2012-05-06\n",
        encoding="utf-8",
    )
    (root / "xx-one" / "treatments.csv").write_text(
        "patient_id,drug,start_date,end_date\n1,DTIC,2014-01-02,2014-03-04\n2,DTIC,1800-05-03,2090-01-01\n"
        "3,DTIC,2014-01-02,2090-01-01\n4,DTIC,2018-06-01,0001-01-01\n",
        encoding="utf-8",
    )
    return root


def _quarantined(model: harmonise.CanonicalModel) -> dict[tuple[str, int, str], tuple[str, str]]:
    return {(q["file"], q["row"], q["field"]): (q["raw_value"], q["reason"] + " / " + q["action"])
            for q in model.quarantine.to_dicts()}


def test_dates_before_1900_or_in_the_future_are_quarantined_naming_file_row_and_field(tmp_path: Path) -> None:
    model = harmonise.run(_dated_study(tmp_path / "s"))
    today = dt.date.today().isoformat()
    quarantine = _quarantined(model)
    assert quarantine[("patients.csv", 1, "diagnosis_date")][1].startswith(
        "implausible date 0001-01-01: before 1900-01-01")
    assert quarantine[("patients.csv", 2, "diagnosis_date")][0] == "1800-05-03"
    assert quarantine[("patients.csv", 3, "diagnosis_date")][1] == (
        f"implausible date 2090-01-01: after the day of the run {today} (no data_cut in centres.toml) / value_nulled")
    # a start date that cannot be true makes the course unusable; an end date is nulled, the course kept
    assert quarantine[("treatments.csv", 2, "start_date")][1].endswith("before 1900-01-01 / rejected")
    assert quarantine[("treatments.csv", 3, "end_date")][1].endswith("/ value_nulled")
    assert quarantine[("treatments.csv", 4, "end_date")][0] == "0001-01-01"
    assert quarantine[("treatments.csv", 2, "end_date")][0] == "2090-01-01"
    assert len(quarantine) == 7  # nothing else: two implausible dates in a row are no "shifted row"
    assert model.patients["diagnosis_date"].to_list() == [None, None, None, D(2012, 5, 6)]
    exposures = model.drug_exposures.sort("source")
    assert exposures["end_date"].to_list() == [D(2014, 3, 4), None, None]
    rec = model.reconciliation.to_dicts()
    assert all(r["records_read"] == r["accepted"] + r["quarantined"] + r["merged"] for r in rec)


def test_the_data_cut_of_centres_toml_bounds_the_dates(tmp_path: Path) -> None:
    model = harmonise.run(_dated_study(tmp_path / "s", "data_cut = 2016-12-31\n"))
    quarantine = _quarantined(model)
    assert quarantine[("treatments.csv", 4, "start_date")][1] == (
        "implausible date 2018-06-01: after the data cut 2016-12-31 / rejected")
    assert quarantine[("patients.csv", 3, "diagnosis_date")][1].startswith(
        "implausible date 2090-01-01: after the data cut 2016-12-31")
    with pytest.raises(InputError, match="data_cut"):
        harmonise.run(_dated_study(tmp_path / "t", 'data_cut = "end of 2016"\n'))
