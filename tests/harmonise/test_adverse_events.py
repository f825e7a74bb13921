"""Adverse events from centre files: CTCAE terms through the vocabulary, grades as numbers, roman
numerals and words, onset dates in the column's order, and a quarantine reason for every record
that cannot be an adverse event of the study (impossible grade, unknown term, onset before any
treatment, onset after the data cut, missing onset)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from oncorwe import harmonise

PATIENTS = "patient_id,sex,birth_year,diagnosis_date\nP1,m,1950,2012-05-06\nP2,f,1960,2013-01-01\n"
TREATMENTS = "patient_id,drug,start_date,end_date\nP1,dacarbazine,2014-01-02,2014-03-04\nP2,paclitaxel,2015-02-01,2015-05-01\n"
#: (row, term, grade, onset): rows 1-4 readable, 5-10 each quarantined for one reason
ADVERSE = [
    ("P1", "Neutropenie", "III", "2014-01-20"),
    ("P1", "nausea", "grade 2", "2014-02-01"),
    ("P2", "Thrombozytopenie", "4", "2015-03-01"),
    ("P2", "Müdigkeit", "schwer", "2015-03-15"),
    ("P1", "neutropenia", "7", "2014-01-25"),            # impossible grade
    ("P1", "hiccups of doom", "3", "2014-01-25"),        # unknown term
    ("P2", "anemia", "3", "2015-01-10"),                 # before the first treatment started
    ("P2", "anemia", "3", "2031-01-10"),                 # after the data cut
    ("P2", "diarrhoea", "3", ""),                        # no onset date
    ("P2", "diarrhoea", "0", "2015-03-01"),              # grade 0 is not a CTCAE grade
]


def _study(root: Path, adverse_header: str = "patient_id,toxicity,grade,onset_date") -> Path:
    (root / "xx-a").mkdir(parents=True)
    (root / "centres.toml").write_text('data_cut = 2020-01-01\n[centres.xx-a]\nfiles = ["p.csv", "t.csv", "ae.csv"]\n', encoding="utf-8")
    (root / "xx-a" / "p.csv").write_text(PATIENTS, encoding="utf-8")
    (root / "xx-a" / "t.csv").write_text(TREATMENTS, encoding="utf-8")
    lines = [adverse_header, *(",".join(r) for r in ADVERSE)]
    (root / "xx-a" / "ae.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_adverse_events_are_read_and_every_bad_one_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    model = harmonise.run(_study(tmp_path))
    events = model.adverse_events
    assert events.schema["grade"] == pl.Int8()
    assert events.select("patient_id", "ctcae_term", "grade", "onset_date").rows() == [
        ("xx-a:P1", "Neutrophil count decreased", 3, dt.date(2014, 1, 20)),
        ("xx-a:P1", "Nausea", 2, dt.date(2014, 2, 1)),
        ("xx-a:P2", "Platelet count decreased", 4, dt.date(2015, 3, 1)),
        ("xx-a:P2", "Fatigue", 3, dt.date(2015, 3, 15)),
    ]
    assert events["source"].to_list() == [f"xx-a/ae.csv:{r}" for r in (1, 2, 3, 4)]
    q = model.quarantine.filter(pl.col("file") == "ae.csv").sort("row")
    reasons = {row: (field, reason) for row, field, reason in q.select("row", "field", "reason").rows()}
    assert reasons[5][0] == "ae_grade" and "CTCAE v5.0 grade: 1 to 5" in reasons[5][1]
    assert reasons[6][0] == "ae_term" and reasons[6][1].startswith("unknown ae term word")
    assert reasons[7] == ("ae_onset_date", "onset before the patient's first treatment (2015-02-01)")
    assert reasons[8][0] == "ae_onset_date" and "2020-01-01" in reasons[8][1]
    assert reasons[9] == ("ae_onset_date", "an adverse event needs an onset date")
    assert reasons[10][0] == "ae_grade"
    assert set(q["action"]) == {"rejected"}
    rec = model.reconciliation.filter(pl.col("file") == "ae.csv").to_dicts()[0]
    assert (rec["records_read"], rec["accepted"], rec["quarantined"], rec["merged"]) == (10, 4, 6, 0)


def test_a_generic_date_column_beside_a_term_is_the_onset(tmp_path: Path) -> None:
    model = harmonise.run(_study(tmp_path, "patient_id,ctcae_term,ctcae_grade,date"))
    assert model.adverse_events.height == 4
    how = model.column_map.filter((pl.col("file") == "ae.csv") & (pl.col("column") == "date"))
    assert how.select("field", "how").row(0) == ("ae_onset_date", "generic date beside an adverse event")


@pytest.mark.parametrize("text, grade", [("1", 1), ("V", 5), ("Grad 3", 3), ("life-threatening", 4), ("G2", 2)])
def test_grade_words(text: str, grade: int) -> None:
    from oncorwe.harmonise._cells import parse_grade
    from oncorwe.harmonise._vocab import load_vocabulary

    assert parse_grade(text, load_vocabulary(), codes={}) == grade
