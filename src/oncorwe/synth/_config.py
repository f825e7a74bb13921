"""The generator's own knowledge, read from ``synth/data``: study targets, centre styles, words
(a study's drugs by role, its classes and concepts: ``_design``).

Nothing here is shared with ``sources`` or ``harmonise``: the generator keeps its own list of how
centres write things, so a mistake in the parser cannot be hidden by a shared table.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from oncorwe.errors import InputError

__all__ = [
    "CentreStyle",
    "Concept",
    "Words",
    "centre_styles",
    "concepts",
    "load_targets",
    "referral_pairs",
    "words",
]

_DATA = "oncorwe.synth.data"


def _read_toml(name: str) -> dict[str, Any]:
    with resources.files(_DATA).joinpath(name).open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class CentreStyle:
    """How one centre writes its export."""

    centre_id: str
    country: str
    format: str  # csv | xlsx | redcap | omop
    lang: str
    weight: float
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal_comma: bool = False
    missing: str = ""
    ldh_unit: str = "U/L"
    ldh_uln: float = 250.0
    sends_age: bool = False
    layout: str = "plain"


@dataclass(frozen=True)
class Concept:
    """One row of the vocabulary file copied from the shared OMOP concept list."""

    name: str
    domain: str
    vocabulary: str
    code: str
    concept_id: int


@dataclass(frozen=True)
class Words:
    """Centre words: drugs, regimens, responses and the small vocabulary of each language."""

    drugs: dict[str, dict[str, list[str]]]
    regimens: dict[str, dict[str, list[str]]]
    unknown_drugs: list[str]
    responses: dict[str, dict[str, list[str]]]
    unknown_responses: list[str]
    vocabulary: dict[str, dict[str, str]]


@cache
def load_targets(study: str) -> dict[str, Any]:
    """The calibration targets of ``study`` (raises InputError naming the study if unknown)."""
    name = f"{study}_targets.toml"
    if not resources.files(_DATA).joinpath(name).is_file():
        known = sorted(
            p.name.removesuffix("_targets.toml")
            for p in resources.files(_DATA).iterdir()
            if p.name.endswith("_targets.toml")
        )
        raise InputError(f"study: unknown study {study!r}; known studies: {', '.join(known)}")
    return _read_toml(name)


@cache
def centre_styles() -> tuple[CentreStyle, ...]:
    """The 24 centres, sorted by id."""
    raw = _read_toml("centre_styles.toml")["centre"]
    styles = [
        CentreStyle(
            centre_id=c["id"],
            country=c["country"],
            format=c["format"],
            lang=c["lang"],
            weight=float(c["weight"]),
            date_format=c.get("date", "%Y-%m-%d"),
            delimiter=c.get("delimiter", ","),
            encoding=c.get("encoding", "utf-8"),
            decimal_comma=bool(c.get("decimal_comma", False)),
            missing=c.get("missing", ""),
            ldh_unit=c.get("ldh_unit", "U/L"),
            ldh_uln=float(c.get("ldh_uln", 250.0)),
            sends_age=bool(c.get("age", False)),
            layout=c.get("layout", "plain"),
        )
        for c in raw
    ]
    return tuple(sorted(styles, key=lambda s: s.centre_id))


@cache
def referral_pairs() -> tuple[tuple[str, str], ...]:
    """(keeping centre, referring centre) pairs for duplicate referrals."""
    pairs = _read_toml("centre_styles.toml")["referrals"]["pairs"]
    return tuple((a, b) for a, b in pairs)


@cache
def words() -> Words:
    raw = _read_toml("centre_words.toml")
    regimens = dict(raw["regimens"])
    unknown_drugs = list(regimens.pop("unknown_drugs"))
    responses = dict(raw["responses"])
    unknown_responses = list(responses.pop("unknown"))
    return Words(
        drugs=raw["drugs"],
        regimens=regimens,
        unknown_drugs=unknown_drugs,
        responses=responses,
        unknown_responses=unknown_responses,
        vocabulary=raw["words"],
    )


@cache
def concepts() -> dict[str, Concept]:
    """Concept name -> concept, from the copied shared vocabulary file."""
    out: dict[str, Concept] = {}
    with resources.files(_DATA).joinpath("omop_concepts.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out[row["concept_name"]] = Concept(
                name=row["concept_name"],
                domain=row["domain"],
                vocabulary=row["vocabulary"],
                code=row["concept_code"],
                concept_id=int(row["concept_id"]),
            )
    return out
