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

__all__ = ["KEYS", "find_duplicates", "merges_of_pairs"]


_MERGES = {"kept_patient_id": pl.String(), "merged_patient_id": pl.String(), "rule": pl.String()}
RULE = "same sex, birth year, diagnosis date and a drug started the same day"
#: what a pair of records must share, besides a drug start (ingredient and start date)
KEYS = ("sex", "birth_year", "diagnosis_date")


def find_duplicates(patients: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """Records of one patient across centres -> merges (kept_patient_id, merged_patient_id, rule)."""
    keys = list(KEYS)
    known = patients.select("patient_id", "centre_id", *keys).drop_nulls(keys)
    # a pair shares the three keys and a drug start: joined on all five at once, so that only such
    # pairs are ever formed (pairing on the three keys first, then their drugs, makes every pair of a
    # crowded birth year and day, times their drugs: gigabytes at 10^5 patients)
    starts = exposures.select("patient_id", "ingredient", "start_date").unique().join(known, on="patient_id")
    shared = (
        starts.join(starts, on=[*keys, "ingredient", "start_date"], suffix="_b")
        .filter((pl.col("centre_id") != pl.col("centre_id_b")) & (pl.col("patient_id") < pl.col("patient_id_b")))
        .select("patient_id", "patient_id_b")
        .unique()
    )
    return merges_of_pairs(shared, known)


def merges_of_pairs(shared: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """The merges of the record pairs the rule matched (``shared``: ``patient_id`` < ``patient_id_b``),
    grouped transitively: of each group the record with the earliest diagnosis date is kept (then
    the first centre, then the first id). ``known`` gives ``patient_id``, ``centre_id`` and
    ``diagnosis_date`` of (at least) every record of a pair."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    pairs = sorted(shared.select("patient_id", "patient_id_b").rows())
    for a, b in pairs:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[str, list[str]] = {}
    for pid in sorted({p for pair in pairs for p in pair}):
        groups.setdefault(find(pid), []).append(pid)
    members = [p for group in groups.values() for p in group]
    info = {r["patient_id"]: r for r in known.filter(pl.col("patient_id").is_in(members)).to_dicts()}
    merges: list[dict[str, str]] = []
    for group in groups.values():
        kept = min(group, key=lambda p: (info[p]["diagnosis_date"] or dt.date.max, info[p]["centre_id"], p))
        merges.extend({"kept_patient_id": kept, "merged_patient_id": pid, "rule": RULE}
                      for pid in group if pid != kept)
    return pl.DataFrame(merges, schema=_MERGES).sort(["kept_patient_id", "merged_patient_id"])
