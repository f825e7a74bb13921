"""Single cells -> canonical values. Each parser returns the value, or raises :class:`CellError`
whose message says what was expected (it becomes the quarantine reason).

Numbers: ``1.5`` and ``1,5`` (decimal comma) and thousands separators ``1'234``/``1 234``; non-finite
or absurdly large values are rejected. Coded words go through ``vocab/values.csv`` after the centre's
own code mapping (``overrides.codes.<field>``) and any legend in the header. LDH is converted to U/L
(``vocab/ldh_units.csv``: 1 µkat/L = 60 U/L).
"""

from __future__ import annotations

import math
import re

from oncorwe.harmonise._vocab import Ingredient, Vocabulary, normalise_word

__all__ = [
    "CellError",
    "parse_bool",
    "parse_code",
    "parse_drug",
    "parse_ecog",
    "parse_event",
    "parse_grade",
    "parse_int",
    "parse_number",
    "parse_response",
    "parse_year",
]

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d{1,3})?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([' \u2009\u202f]\d{3})+([.,]\d+)?$")
_MAX_ABS = 1e9


class CellError(ValueError):
    """A cell that does not hold what its column should; the message says what was expected."""


def parse_number(text: str, *, decimal: str | None = None) -> float:
    """A finite decimal number; ``decimal`` forces the decimal mark (``.`` or ``,``)."""
    value = text.strip().replace("\u2212", "-")
    if _THOUSANDS.match(value):
        value = re.sub(r"[' \u2009\u202f]", "", value)
    if not _NUMBER.match(value):
        raise CellError("expected a number")
    if decimal == "." and "," in value:
        raise CellError("expected a number with a decimal point (the centre declared '.')")
    number = float(value.replace(",", "."))
    if not math.isfinite(number) or abs(number) > _MAX_ABS:
        raise CellError("expected a finite number of plausible size")
    return number


def parse_int(text: str, *, low: int, high: int, what: str) -> int:
    """A whole number within [low, high]."""
    number = parse_number(text)
    if not number.is_integer() or not low <= number <= high:
        raise CellError(f"expected {what}: a whole number from {low} to {high}")
    return int(number)


def parse_year(text: str) -> int:
    """A four-digit year of birth (1890-2030); a full date gives its year."""
    match = re.match(r"^\s*(\d{4})(?:[-./]\d{1,2}[-./]\d{1,2})?\s*$", text) or re.match(
        r"^\s*\d{1,2}[-./]\d{1,2}[-./](\d{4})\s*$", text
    )
    if match:
        year = int(match[1])
        if 1890 <= year <= 2030:
            return year
    try:
        return parse_int(text, low=1890, high=2030, what="a year of birth")
    except CellError:
        raise CellError("expected a year of birth (1890-2030)") from None


def parse_ecog(text: str) -> int:
    """ECOG performance status 0-4 (``ECOG 1``, ``PS 2`` and ``1.0`` accepted)."""
    stripped = re.sub(r"^(ecog|ps|who)\s*", "", normalise_word(text))
    return parse_int(stripped, low=0, high=4, what="an ECOG performance status")


def parse_grade(text: str, vocab: Vocabulary, *, codes: dict[str, str]) -> int:
    """A CTCAE v5.0 grade, 1 (mild) to 5 (death related to the adverse event): a number, a roman
    numeral or a severity word (``values.csv`` field ``ae_grade``, the centre's codes first).

    Grade 0 and anything above 5 do not exist in CTCAE and are errors, not missing values.
    """
    word = normalise_word(text)
    if word in codes:
        word = normalise_word(codes[word])
    table = vocab.values.get("ae_grade", {})
    if word in table:
        return int(table[word])
    raise CellError("expected a CTCAE v5.0 grade: 1 to 5 (a number, a roman numeral or a severity word)")


def parse_code(
    text: str,
    field: str,
    vocab: Vocabulary,
    *,
    codes: dict[str, str],
    legend: dict[str, str] | None,
    allowed: tuple[str, ...] = (),
) -> str:
    """A coded value: the centre's code mapping, then the header legend, then ``values.csv``."""
    word = normalise_word(text)
    if word in codes:
        return codes[word]
    if legend and text.strip() in legend:
        word = normalise_word(legend[text.strip()])
    table = vocab.values.get(field, {})
    if word in table:
        return table[word]
    if allowed and text.strip() in allowed:
        return text.strip()
    known = ", ".join(sorted(set(table.values()))) or "a known code"
    raise CellError(f"unknown {field.replace('_', ' ')} word; expected one of {known}")


def parse_bool(text: str, vocab: Vocabulary, *, codes: dict[str, str], legend: dict[str, str] | None) -> bool:
    """Yes/no in any of the study's languages (and 1/0)."""
    return parse_code(text, "bool", vocab, codes=codes, legend=legend) == "true"


def parse_event(text: str, vocab: Vocabulary, *, codes: dict[str, str]) -> bool:
    """An event indicator: 1/0, yes/no, ``1:PROGRESSION``/``0:CENSORED`` (cBioPortal)."""
    word = normalise_word(text)
    if word in codes:
        return codes[word] in ("1", "true", "yes")
    for field in ("event_status", "bool"):
        found = vocab.values.get(field, {}).get(word)
        if found is not None:
            return found == "true"
    if re.match(r"^[01]\s*:", word):
        return word.startswith("1")
    raise CellError("expected an event indicator (1/0, yes/no, 1:EVENT/0:CENSORED)")


def parse_response(text: str, vocab: Vocabulary, *, codes: dict[str, str]) -> str:
    """A RECIST 1.1 category (CR, PR, SD, PD, NE) from a response word in any study language."""
    word = normalise_word(text)
    if word in codes:
        return codes[word]
    found = vocab.responses.get(word)
    if found is None:
        raise CellError("unknown response word; expected CR, PR, SD, PD or NE (in any study language)")
    return found


def parse_drug(text: str, vocab: Vocabulary, *, codes: dict[str, str]) -> tuple[Ingredient, ...]:
    """The ingredients a drug cell names (declared codes first, then ``drug_words.csv``)."""
    word = normalise_word(text)
    if word in codes:
        names = [n.strip() for n in codes[word].split("+")]
        unknown = [n for n in names if n not in vocab.ingredients]
        if unknown:
            raise CellError(f"the centre's drug mapping names unknown ingredients {unknown}")
        return tuple(vocab.ingredients[n] for n in sorted(names))
    found = vocab.drug(text)
    if found is None:
        raise CellError("unknown drug name; add it to the centre's overrides.codes.drug or the vocabulary")
    return found


def ldh_factor(unit: str, vocab: Vocabulary) -> float:
    """The factor that converts an LDH value in ``unit`` to U/L."""
    factor = vocab.ldh_units.get(normalise_word(unit))
    if factor is None:
        raise CellError(f"unknown LDH unit; expected one of {', '.join(sorted(vocab.ldh_units))}")
    return factor
