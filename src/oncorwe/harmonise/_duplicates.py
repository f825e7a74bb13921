"""Cross-centre duplicates: the same patient referred from one centre to another.

Rule (docs/definitions.md, eligibility step 1): two records of different centres are the same
patient when sex, birth year and diagnosis date agree (all known) and so does at least one drug
exposure (same ingredient, same start date). Sex, birth year and diagnosis date alone are not
enough (in a few hundred patients two different people share them by chance), and the centres'
pseudonymous ids are not evidence at all: centres number their patients 1, 2, 3 alike.
Of a group of such records the one with the earlier diagnosis date is kept (then the alphabetically
first centre, then the first id); the others are merged into it: their rows leave the canonical
tables, are counted as ``merged`` in the reconciliation, and each appears in ``merges`` with the
rule that matched.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

__all__ = ["find_duplicates"]


_MERGES = {"kept_patient_id": pl.String(), "merged_patient_id": pl.String(), "rule": pl.String()}
RULE = "same sex, birth year, diagnosis date and a drug started the same day"


def find_duplicates(patients: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """Records of one patient across centres -> merges (kept_patient_id, merged_patient_id, rule)."""
    keys = ["sex", "birth_year", "diagnosis_date"]
    known = patients.select("patient_id", "centre_id", *keys).drop_nulls(keys)
    pairs = known.join(known, on=keys, suffix="_b").filter(
        (pl.col("centre_id") != pl.col("centre_id_b")) & (pl.col("patient_id") < pl.col("patient_id_b"))
    )
    starts = exposures.select("patient_id", "ingredient", "start_date").unique()
    shared = (
        pairs.join(starts, on="patient_id")
        .join(starts.rename({"patient_id": "patient_id_b"}), on=["patient_id_b", "ingredient", "start_date"])
        .select("patient_id", "patient_id_b")
        .unique()
    )
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in sorted(shared.rows()):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[str, list[str]] = {}
    for pid in sorted({p for pair in shared.rows() for p in pair}):
        groups.setdefault(find(pid), []).append(pid)
    info = {r["patient_id"]: r for r in known.filter(pl.col("patient_id").is_in(list(parent) + list(groups))).to_dicts()}
    merges: list[dict[str, str]] = []
    for members in groups.values():
        kept = min(members, key=lambda p: (info[p]["diagnosis_date"] or dt.date.max, info[p]["centre_id"], p))
        merges.extend({"kept_patient_id": kept, "merged_patient_id": pid, "rule": RULE}
                      for pid in members if pid != kept)
    return pl.DataFrame(merges, schema=_MERGES).sort(["kept_patient_id", "merged_patient_id"])
