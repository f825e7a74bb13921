"""The shipped vocabulary a protocol's names are checked against (read-only, cached).

The ingredient list (``harmonise/vocab/ingredients.csv``: name, OMOP concept id) and the OMOP
concepts oncorwe ships (``harmonise/vocab/omop_concepts.csv``). Read as files, without importing
the harmonise stage.
"""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

__all__ = ["known_concept_ids", "known_ingredients"]


def _rows(name: str) -> list[dict[str, str]]:
    text = (resources.files("oncorwe") / "harmonise" / "vocab" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@functools.cache
def known_ingredients() -> dict[str, int | None]:
    """Ingredient name -> its OMOP concept id (None for a local id above 2,000,000,000)."""
    out: dict[str, int | None] = {}
    for row in _rows("ingredients.csv"):
        concept = int(row["concept_id"]) if row.get("concept_id", "").strip().isdigit() else None
        out[row["ingredient"].strip().lower()] = concept if concept is not None and concept < 2_000_000_000 else None
    return out


@functools.cache
def known_concept_ids() -> frozenset[int]:
    """Every concept id of the shipped vocabulary (concepts and ingredients)."""
    ids = {int(row["concept_id"]) for row in _rows("omop_concepts.csv") if row.get("concept_id", "").strip().isdigit()}
    ids.update(int(row["concept_id"]) for row in _rows("ingredients.csv") if row.get("concept_id", "").strip().isdigit())
    return frozenset(ids)
