"""Hostile CSV cells (random unicode, huge numbers, formulas, embedded newlines and delimiters)
never crash a reader and never lose a row without a quarantine entry."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncorwe import harmonise

HOSTILE = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["=HYPERLINK(\"http://x\",\"y\")", "=1+1", "@SUM(A1)", "1e308", "-1e999", "NaN", "inf",
                     "9" * 40, "a,b;c\td|e", "line\nbreak", "\"quoted\"", "", " ", "NA", "99", "\ufeff", "\x00"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
PATIENT_COLUMNS = ["patient_id", "sex", "birth_year", "diagnosis_date", "stage", "ecog", "ldh", "ldh_uln"]
TREATMENT_COLUMNS = ["patient_id", "drug", "start_date", "end_date", "reason_stopped"]


def _csv(columns: list[str], rows: list[list[str]], delimiter: str) -> str:
    buffer = io.StringIO()
    # CRLF rows, as spreadsheets write them: csv then quotes cells holding a bare CR or LF too
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _records(rows: list[list[str]]) -> int:
    # a row of blank cells is layout, not a record
    return sum(1 for row in rows if any(cell.strip() for cell in row))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patient_cells=st.lists(st.lists(HOSTILE, min_size=6, max_size=6), min_size=1, max_size=8),
    treatment_cells=st.lists(st.lists(HOSTILE, min_size=3, max_size=3), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
)
def test_hostile_cells_never_crash_and_never_lose_a_row(
    patient_cells: list[list[str]], treatment_cells: list[list[str]], delimiter: str, encoding: str
) -> None:
    cleaned = [[c.replace("\x00", "") for c in row] for row in patient_cells]
    patients = [[f"P{i}", r[0], r[1], "2012-05-06", r[2], r[3], r[4], r[5]] for i, r in enumerate(cleaned)]
    treatments = [
        [f"P{i % len(patients)}", r[0].replace("\x00", ""), "2014-01-02", "2014-03-04", r[1].replace("\x00", "")]
        for i, r in enumerate(treatment_cells)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "xx-h").mkdir()
        (root / "centres.toml").write_text('[centres.xx-h]\nfiles = ["p.csv", "t.csv"]\n', encoding="utf-8")
        (root / "xx-h" / "p.csv").write_bytes(_csv(PATIENT_COLUMNS, patients, delimiter).encode(encoding))
        (root / "xx-h" / "t.csv").write_bytes(_csv(TREATMENT_COLUMNS, treatments, delimiter).encode(encoding))
        model = harmonise.run(root)
    rec = {r["file"]: r for r in model.reconciliation.to_dicts()}
    assert rec["p.csv"]["records_read"] == _records(patients)
    assert rec["t.csv"]["records_read"] == _records(treatments)
    for r in rec.values():
        assert r["records_read"] == r["accepted"] + r["quarantined"] + r["merged"]
    sources = set(pl.concat([t.select("source") for t in model.tables().values() if "source" in t.columns])["source"])
    rejected = {(q["file"], q["row"]) for q in model.quarantine.filter(pl.col("action") == "rejected").to_dicts()}
    for file, n in (("p.csv", rec["p.csv"]["records_read"]), ("t.csv", rec["t.csv"]["records_read"])):
        for row in range(1, n + 1):
            assert f"xx-h/{file}:{row}" in sources or (file, row) in rejected, (file, row)
