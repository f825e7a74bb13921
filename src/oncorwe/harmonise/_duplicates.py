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
from typing import Any

from oncorwe.harmonise._rows import Accumulator

__all__ = ["find_duplicates"]


def find_duplicates(acc: Accumulator) -> list[dict[str, str]]:
    """Groups of records of one patient across centres -> merges (kept, merged, rule)."""
    by_key: dict[tuple[Any, Any], list[str]] = {}
    for pid, record in acc.patients.items():
        if record["sex"] is not None and record["birth_year"] is not None:
            by_key.setdefault((record["sex"], record["birth_year"]), []).append(pid)
    starts: dict[str, set[tuple[str, dt.date]]] = {}
    for exposure in acc.exposures:
        starts.setdefault(exposure["patient_id"], set()).add((exposure["ingredient"], exposure["start_date"]))
    parent: dict[str, str] = {}
    rules: dict[tuple[str, str], str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for candidates in by_key.values():
        if len(candidates) < 2:
            continue
        candidates.sort()
        for i, a in enumerate(candidates):
            for b in candidates[i + 1 :]:
                ra, rb = acc.patients[a], acc.patients[b]
                if ra["centre_id"] == rb["centre_id"]:
                    continue
                rule = None
                if (
                    ra["diagnosis_date"] is not None
                    and ra["diagnosis_date"] == rb["diagnosis_date"]
                    and starts.get(a, set()) & starts.get(b, set())
                ):
                    rule = "same sex, birth year, diagnosis date and a drug started the same day"
                if rule:
                    rules[(a, b)] = rule
                    parent[find(b)] = find(a)
    groups: dict[str, list[str]] = {}
    for pid in {p for pair in rules for p in pair}:
        groups.setdefault(find(pid), []).append(pid)
    merges: list[dict[str, str]] = []
    for members in groups.values():
        kept = min(members, key=lambda p: (acc.patients[p]["diagnosis_date"] or dt.date.max,
                                           acc.patients[p]["centre_id"], p))
        for pid in sorted(members):
            if pid == kept:
                continue
            rule = next((r for (a, b), r in rules.items() if pid in (a, b)), "")
            merges.append({"kept_patient_id": kept, "merged_patient_id": pid, "rule": rule})
    return sorted(merges, key=lambda m: (m["kept_patient_id"], m["merged_patient_id"]))
