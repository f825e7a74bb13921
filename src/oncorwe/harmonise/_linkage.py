"""Cross-centre duplicates found without pooling: privacy-preserving record linkage.

The duplicate rule (``_duplicates``: same sex, birth year and diagnosis date, and a drug of the
same ingredient started the same day) is applied to keyed hashes instead of the values. Each centre
sends, for each of its patients the rule can match (those values all known), an ordinal (the
patient's rank by id among them: order only, no id) and one token per drug start: the HMAC-SHA256,
under a key the centres share and the coordinator does not hold, of those values. Two patients of
different centres share a token exactly when the rule matches them, so the coordinator forms the
same groups as the pooled rule, keeps the same record (the alphabetically first centre, then the
first id: within a group the diagnosis dates are equal) and tells each centre which of its patients
are merged into another centre's record. The centre then leaves them out as the pooled run would.

The coordinator learns how many matchable patients and drug starts each centre has, and which
tokens coincide; without the key it cannot test a guessed birth year or date against a token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

import polars as pl

from oncorwe.errors import InputError
from oncorwe.harmonise._duplicates import RULE

__all__ = ["KEY_MIN_BYTES", "link_centres", "linkage_candidates", "linkage_tokens", "linked_merges"]

#: A linkage key shorter than this is refused (a short key can be guessed, and with it every token).
KEY_MIN_BYTES = 16
_KEYS = ["sex", "birth_year", "diagnosis_date"]


def linkage_candidates(referrals: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """The patients the duplicate rule can match, each with its drug starts, numbered by id.

    Columns patient_id, ordinal (0, 1, ... by patient_id), sex, birth_year, diagnosis_date,
    ingredient, start_date: one row per distinct drug start.
    """
    known = referrals.select("patient_id", *_KEYS).drop_nulls(_KEYS)
    starts = exposures.select("patient_id", "ingredient", "start_date").drop_nulls().unique()
    rows = known.join(starts, on="patient_id")
    ids = rows.select("patient_id").unique().sort("patient_id").with_row_index("ordinal")
    return rows.join(ids, on="patient_id").with_columns(pl.col("ordinal").cast(pl.Int64)).sort(
        ["ordinal", "ingredient", "start_date"])


def linkage_tokens(candidates: pl.DataFrame, key: bytes) -> list[dict[str, object]]:
    """Each candidate's ordinal and its tokens (hex HMAC-SHA256 of the rule's values), sorted."""
    if len(key) < KEY_MIN_BYTES:
        raise InputError(f"linkage key: {len(key)} bytes; at least {KEY_MIN_BYTES} random bytes are needed")
    out: dict[int, list[str]] = {}
    for row in candidates.iter_rows(named=True):
        message = "|".join(str(row[c]) for c in (*_KEYS, "ingredient", "start_date")).encode()
        out.setdefault(int(row["ordinal"]), []).append(hmac.new(key, message, hashlib.sha256).hexdigest())
    return [{"ordinal": ordinal, "tokens": sorted(set(tokens))} for ordinal, tokens in sorted(out.items())]


def link_centres(tokens: Mapping[str, Sequence[Mapping[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """The coordinator's linkage: centre -> its merged records, each
    ``{"ordinal": i, "kept_centre": c, "kept_ordinal": j}`` (the record it is merged into)."""
    owners: dict[str, list[tuple[str, int]]] = {}
    for centre, records in tokens.items():
        for record in records:
            for token in record["tokens"]:  # type: ignore[attr-defined]
                owners.setdefault(str(token), []).append((centre, int(record["ordinal"])))  # type: ignore[call-overload]
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    paired: set[tuple[str, int]] = set()
    for holders in owners.values():
        for a in holders:
            for b in holders:
                if a[0] != b[0] and a < b:
                    paired.update((a, b))
                    root_a, root_b = find(a), find(b)
                    if root_a != root_b:
                        parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for member in sorted(paired):
        groups.setdefault(find(member), []).append(member)
    out: dict[str, list[dict[str, object]]] = {centre: [] for centre in tokens}
    for members in groups.values():
        kept = min(members)
        for centre, ordinal in members:
            if (centre, ordinal) != kept:
                out[centre].append({"ordinal": ordinal, "kept_centre": kept[0], "kept_ordinal": kept[1]})
    return {centre: sorted(rows, key=lambda r: int(r["ordinal"])) for centre, rows in out.items()}  # type: ignore[call-overload]


def linked_merges(candidates: pl.DataFrame, merged: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    """The coordinator's answer for this centre as merges (kept_patient_id, merged_patient_id, rule):
    the kept record is named by its centre and ordinal (its id never left its centre)."""
    ids = dict(candidates.select("ordinal", "patient_id").unique().iter_rows())
    rows = []
    for record in merged:
        ordinal = int(record["ordinal"])  # type: ignore[call-overload]
        if ordinal not in ids:
            raise InputError(f"linkage: record {ordinal} is not one of this centre's {len(ids)} linkable patients "
                             "(the linkage was made from other data)")
        rows.append({"kept_patient_id": f"{record['kept_centre']}#{record['kept_ordinal']}",
                     "merged_patient_id": ids[ordinal], "rule": RULE})
    return pl.DataFrame(rows, schema={"kept_patient_id": pl.String(), "merged_patient_id": pl.String(),
                                      "rule": pl.String()})
