"""The vocabularies (data files in ``harmonise/vocab/``) and the lookups over them.

Every word is compared after :func:`normalise_word`: Unicode NFC, case folded, whitespace collapsed,
surrounding punctuation and quotes removed. The files, one row per word:

- ``ingredients.csv``   ingredient, OMOP concept id (standard, or local > 2,000,000,000), drug class
- ``drug_words.csv``    drug names, brands, abbreviations (en, de, fr, it, nl, ...) -> ingredients
- ``responses.csv``     response words -> RECIST 1.1 category
- ``ctcae_terms.csv``   adverse event words -> CTCAE v5.0 term (read as the coded field ``ae_term``)
- ``values.csv``        coded fields (sex, yes/no, BRAF, primary site, stage, M stage, reasons, ...)
- ``missing_tokens.csv`` tokens meaning "no value" (scope ``any``, or ``coded``: not in measurements)
- ``ldh_units.csv``     LDH units and their factor to U/L (1 µkat/L = 60 U/L)
- ``months.csv``        month names and abbreviations for dates such as 31-Dec-2015
- ``columns.csv``       column names centres use -> canonical field
- ``omop_concepts.csv`` the study's OMOP concept ids with their public sources
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["Ingredient", "Vocabulary", "load_vocabulary", "normalise_word"]

LOCAL_CONCEPT_MIN = 2_000_000_000


def normalise_word(text: str) -> str:
    """The form words are compared in: case folded, accents dropped (``Déticène`` = ``deticene``),
    inner whitespace single, surrounding quotes and punctuation trimmed; µ and Greek mu are one."""
    text = text.replace("\u00a0", " ").replace("\u03bc", "\u00b5").casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" \"'`.;:")


@dataclass(frozen=True)
class Ingredient:
    """A drug ingredient: RxNorm name, OMOP concept id and the study's drug class."""

    name: str
    concept_id: int
    drug_class: str


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("oncorwe.harmonise").joinpath("vocab", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@dataclass(frozen=True)
class Vocabulary:
    """All vocabularies, as plain lookups keyed by normalised word."""

    ingredients: dict[str, Ingredient]
    ingredient_by_concept: dict[int, Ingredient]
    drug_words: dict[str, tuple[str, ...]]
    responses: dict[str, str]
    values: dict[str, dict[str, str]]
    missing_any: frozenset[str]
    missing_coded: frozenset[str]
    ldh_units: dict[str, float]
    months: dict[str, int]
    columns: dict[str, str]
    #: an undated yes/no field of a prior therapy -> (the ingredient it means, days before the index)
    prior_flags: dict[str, tuple[str, int]]

    def drug(self, word: str) -> tuple[Ingredient, ...] | None:
        """The ingredients a drug word stands for, or ``None`` when the word is unknown.

        A whole-word match wins; else the text is split at ``/ + & , ;`` and words such as "und",
        "et", "e", "en", "and", "plus" (then at ``-``), and every part must be known.
        """
        key = normalise_word(word)
        found = self._lookup(key)
        if found is not None:
            return found
        for pattern in (r"\s*(?:[/+&,;]|\band\b|\bund\b|\bet\b|\be\b|\ben\b|\bplus\b|\bwith\b|\bmit\b|\bavec\b|\bcon\b|\bmet\b)\s*", r"\s*-\s*"):
            parts = [p for p in re.split(pattern, key) if p]
            if len(parts) < 2:
                continue
            resolved = [self._lookup(p) for p in parts]
            if all(r is not None for r in resolved):
                out: dict[str, Ingredient] = {}
                for group in resolved:
                    for ingredient in group or ():
                        out[ingredient.name] = ingredient
                return tuple(out[name] for name in sorted(out))
        return None

    def _lookup(self, key: str) -> tuple[Ingredient, ...] | None:
        names = self.drug_words.get(key)
        if names is None and key in self.ingredients:
            names = (key,)
        if names is None:
            return None
        return tuple(self.ingredients[n] for n in names)

    def is_missing(self, text: str | None, *, coded: bool) -> bool:
        """True for an empty cell or a missing-value token (``coded`` adds codes such as 99)."""
        if text is None:
            return True
        key = normalise_word(text)
        if key in self.missing_any or (not key and not text.strip()):
            return True
        return coded and key in self.missing_coded


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """Read the vocabulary files shipped in the package (once per process)."""
    ingredients: dict[str, Ingredient] = {}
    for row in _rows("ingredients.csv"):
        concept = int(row["concept_id"])
        ingredients[row["ingredient"]] = Ingredient(row["ingredient"], concept, row["drug_class"])
    drug_words = {
        normalise_word(r["word"]): tuple(sorted(r["ingredients"].split("+"))) for r in _rows("drug_words.csv")
    }
    for names in drug_words.values():
        unknown = [n for n in names if n not in ingredients]
        if unknown:
            raise RuntimeError(f"vocab/drug_words.csv names ingredients not in ingredients.csv: {unknown}")
    values: dict[str, dict[str, str]] = {}
    for field_name in dict.fromkeys(r["field"] for r in _rows("values.csv")):
        values[field_name] = _one_meaning(f"values.csv (field {field_name})", [
            (normalise_word(r["word"]), r["value"]) for r in _rows("values.csv") if r["field"] == field_name])
    for r in _rows("ctcae_terms.csv"):
        values.setdefault("ae_term", {})[normalise_word(r["word"])] = r["term"]
    missing = _rows("missing_tokens.csv")
    columns = _one_meaning("columns.csv", [(normalise_column(r["column"]), r["field"]) for r in _rows("columns.csv")])
    return Vocabulary(
        ingredients=ingredients,
        ingredient_by_concept={i.concept_id: i for i in ingredients.values()},
        drug_words=drug_words,
        responses=_one_meaning("responses.csv", [(normalise_word(r["word"]), r["response"]) for r in _rows("responses.csv")]),
        values=values,
        missing_any=frozenset(normalise_word(r["token"]) for r in missing if r["scope"] == "any"),
        missing_coded=frozenset(normalise_word(r["token"]) for r in missing if r["scope"] == "coded"),
        ldh_units={normalise_word(r["unit"]): float(r["factor_to_u_per_l"]) for r in _rows("ldh_units.csv")},
        months={normalise_word(r["word"]): int(r["month"]) for r in _rows("months.csv")},
        columns=columns,
        prior_flags={r["field"]: (r["ingredient"], int(r["days_before_index"])) for r in _rows("prior_flags.csv")},
    )


def _one_meaning(file: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """``pairs`` as a mapping, refusing a word that two rows give different meanings.

    Without the check the later row would silently win: a centre's column or word would change
    meaning with the order of the vocabulary file's rows.
    """
    mapping: dict[str, str] = {}
    clashes: dict[str, set[str]] = {}
    for word, meaning in pairs:
        if word in mapping and mapping[word] != meaning:
            clashes.setdefault(word, {mapping[word]}).add(meaning)
        mapping.setdefault(word, meaning)
    if clashes:
        named = "; ".join(f"{word!r} -> {', '.join(sorted(meanings))}" for word, meanings in sorted(clashes.items()))
        raise RuntimeError(f"vocab/{file}: a word (after normalisation) has more than one meaning: {named}")
    return mapping


def normalise_column(name: str) -> str:
    """A column name as matched against ``columns.csv``: words joined by single underscores."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-zµμ]+", "_", text).strip("_")
