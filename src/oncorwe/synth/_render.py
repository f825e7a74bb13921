"""Rendering canonical values the way one centre writes them (dates, numbers, words, gaps)."""

from __future__ import annotations

import datetime as dt
import zlib

from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._config import CentreStyle, words
from oncorwe.synth._records import Course

__all__ = ["Renderer", "pick"]


def pick(options: list[str], *key: object) -> str:
    """A deterministic choice among ``options`` keyed by ``key`` (stable across runs and sizes)."""
    digest = zlib.crc32("|".join(map(str, key)).encode("utf-8"))
    return options[digest % len(options)]


class Renderer:
    """Writes canonical values in one centre's conventions."""

    def __init__(self, style: CentreStyle) -> None:
        self.style = style
        self.words = words()
        self.vocab = self.words.vocabulary[style.lang]
        self._drug_words: dict[str, list[str]] = {}

    def date(self, day: int | None, field: str = "") -> str:
        if day is None:
            return self.missing(field)
        return (EPOCH + dt.timedelta(days=day)).strftime(self.style.date_format)

    def missing(self, field: str = "") -> str:
        # "99" is a missing code for coded fields only; elsewhere that centre leaves the cell empty
        if self.style.missing == "99" and field not in ("ecog", "braf", "brain_metastases"):
            return ""
        return self.style.missing

    def number(self, value: float | None, decimals: int, field: str = "") -> str:
        if value is None:
            return self.missing(field)
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.style.decimal_comma else text

    def word(self, key: str) -> str:
        return self.vocab[key]

    def response(self, response: str, *key: object) -> str:
        return pick(self.words.responses[self.style.lang][response], self.style.centre_id, *key)

    def drug(self, ingredient: str, *key: object) -> str:
        options = self._drug_words.get(ingredient)
        if options is None:
            table = self.words.drugs[ingredient]
            options = self._drug_words[ingredient] = list(table[self.style.lang]) + list(table.get("all", []))
        return pick(options, self.style.centre_id, ingredient, *key)

    def course_rows(self, course: Course, *key: object) -> list[tuple[str, tuple[str, ...]]]:
        """The drug words of one course: one row for a regimen word, else one row per ingredient."""
        name = "+".join(course.ingredients)
        regimen = self.words.regimens.get(name)
        if regimen is not None and pick(["one", "split"], self.style.centre_id, name, *key) == "one":
            return [(pick(regimen[self.style.lang], self.style.centre_id, *key), course.ingredients)]
        return [(self.drug(x, *key), (x,)) for x in course.ingredients]
