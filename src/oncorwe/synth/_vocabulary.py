"""The generator's OMOP vocabulary subset (``data/cdm_vocabulary.csv``): concept, concept_ancestor
and concept_relationship rows, as a real CDM ships them for the concepts its data use.

Each row of the file is one concept with the public source of its id; ``parent_id`` builds the
hierarchy (a clinical drug under its ingredient, a histology under its disease) and ``maps_to_id``
the 'Maps to' link of a non-standard source concept to its standard one. ``concept_ancestor`` is
the transitive closure of the parent links, with the zero-level self rows of every standard
concept, as the OMOP vocabulary build writes it. Ids above 2,000,000,000 are site-specific (local)
concepts: OMOP reserves that range for them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["VocabularyConcept", "ancestor_rows", "cdm_concepts", "concept_named", "relationship_rows"]


@dataclass(frozen=True)
class VocabularyConcept:
    """One concept of the vocabulary subset."""

    concept_id: int
    name: str
    domain: str
    vocabulary: str
    concept_class: str
    standard: str | None
    code: str
    parent_id: int | None
    maps_to_id: int | None
    source: str


@cache
def cdm_concepts() -> tuple[VocabularyConcept, ...]:
    """Every concept of ``data/cdm_vocabulary.csv``, in file order (ids unique, links resolvable)."""
    out: list[VocabularyConcept] = []
    with resources.files("oncorwe.synth.data").joinpath("cdm_vocabulary.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.append(VocabularyConcept(
                concept_id=int(row["concept_id"]),
                name=row["concept_name"],
                domain=row["domain_id"],
                vocabulary=row["vocabulary_id"],
                concept_class=row["concept_class_id"],
                standard=row["standard_concept"] or None,
                code=row["concept_code"],
                parent_id=int(row["parent_id"]) if row["parent_id"] else None,
                maps_to_id=int(row["maps_to_id"]) if row["maps_to_id"] else None,
                source=row["source"],
            ))
    ids = [c.concept_id for c in out]
    if len(set(ids)) != len(ids):
        raise RuntimeError("synth data: cdm_vocabulary.csv repeats a concept_id")
    known = set(ids)
    for c in out:
        for link in (c.parent_id, c.maps_to_id):
            if link is not None and link not in known:
                raise RuntimeError(f"synth data: cdm_vocabulary.csv concept {c.concept_id} links to unknown {link}")
    return tuple(out)


@cache
def concept_named(name: str) -> VocabularyConcept:
    """The concept whose ``concept_name`` is ``name`` (a synth data file refers to concepts by name)."""
    for c in cdm_concepts():
        if c.name == name:
            return c
    raise RuntimeError(f"synth data: no concept named {name!r} in cdm_vocabulary.csv")


def ancestor_rows() -> list[tuple[int, int, int, int]]:
    """(ancestor, descendant, min levels, max levels): the closure of the parent links plus self rows."""
    parent = {c.concept_id: c.parent_id for c in cdm_concepts()}
    rows: list[tuple[int, int, int, int]] = []
    for c in cdm_concepts():
        if c.standard != "S":
            continue
        level = 0
        current: int | None = c.concept_id
        while current is not None:
            rows.append((current, c.concept_id, level, level))
            current, level = parent[current], level + 1
    return sorted(rows)


def relationship_rows() -> list[tuple[int, int, str]]:
    """'Maps to' from each source concept to its standard one and the reverse 'Mapped from';
    every standard concept also 'Maps to' itself, as in the OMOP vocabulary; a clinical drug
    'RxNorm has ing' its ingredient, a condition 'Is a' its parent (and the reverse links)."""
    rows: list[tuple[int, int, str]] = []
    for c in cdm_concepts():
        if c.maps_to_id is not None:
            rows += [(c.concept_id, c.maps_to_id, "Maps to"), (c.maps_to_id, c.concept_id, "Mapped from")]
        elif c.standard == "S":
            rows.append((c.concept_id, c.concept_id, "Maps to"))
        if c.parent_id is not None:
            up, down = ("RxNorm has ing", "RxNorm ing of") if c.domain == "Drug" else ("Is a", "Subsumes")
            rows += [(c.concept_id, c.parent_id, up), (c.parent_id, c.concept_id, down)]
    return sorted(rows)
