"""Ingredients -> regimen classes (HemOnc-style) and drug classes -> ICI classes, from data files.

``vocab/regimen_classes.csv``: each class lists its components (``;`` between components, ``|``
between ingredients that substitute for each other); a set of chemotherapy ingredients belongs to the
first class (in file order) whose components it covers exactly, one or more alternatives of each and
nothing else; ``*`` is the catch-all. ``vocab/ici_classes.csv`` maps the set of ICI drug classes
seen to the ICI class. These are the rules of docs/definitions.md ("regimen_class",
"prior_ici_class"); the protocol can override them for other studies.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

__all__ = ["ici_class", "regimen_class"]


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("oncorwe.harmonise").joinpath("vocab", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def _regimens() -> tuple[tuple[str, tuple[frozenset[str], ...] | None], ...]:
    out: list[tuple[str, tuple[frozenset[str], ...] | None]] = []
    for row in _rows("regimen_classes.csv"):
        spec = row["components"].strip()
        if spec == "*":
            out.append((row["regimen_class"], None))
            continue
        parts = tuple(frozenset(a.strip() for a in part.split("|")) for part in spec.split(";"))
        out.append((row["regimen_class"], parts))
    return tuple(out)


def regimen_class(chemotherapy_ingredients: Iterable[str]) -> str:
    """The regimen class of a line's chemotherapy ingredients (RxNorm names, lower case).

    Examples: {carboplatin, paclitaxel} and {cisplatin, nab-paclitaxel} -> carboplatin_paclitaxel;
    {dacarbazine} -> dacarbazine; {docetaxel} -> taxane; {dacarbazine, cisplatin} -> other.
    """
    ingredients = frozenset(chemotherapy_ingredients)
    for name, parts in _regimens():
        if parts is None:
            return name
        covered = all(ingredients & part for part in parts)
        if covered and ingredients <= frozenset().union(*parts):
            return name
    return "other"


@lru_cache(maxsize=1)
def _ici() -> dict[frozenset[str], str]:
    return {frozenset(r["drug_classes"].split("+")): r["ici_class"] for r in _rows("ici_classes.csv")}


def ici_class(drug_classes: Iterable[str]) -> str | None:
    """The ICI class of the ICI drug classes a patient received (``None`` without an ICI)."""
    seen = frozenset(c for c in drug_classes if c in ("anti_pd1", "anti_ctla4"))
    return _ici().get(seen)
