"""Eligibility criteria: typed, composable, applied in the protocol's order.

Each criterion has an ``id`` (the exclusion reason written in the attrition table), a ``kind``
(what it checks, below) and a ``label`` (its wording in the flow diagram: "Excluded: <label>").
A patient's exclusion reason is the first criterion, in protocol order, they fail. The rules are
in ``docs/definitions.md`` (Eligibility).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from oncorwe.protocol._types import Frozen, Label, Name

__all__ = [
    "ConditionPresent",
    "Criterion",
    "DuplicateReferral",
    "HasLine",
    "IndexDateWithin",
    "LineBeforeLine",
    "ObservationIn",
    "ObservationNotIn",
    "ProgressionOnPriorLine",
]


class _Criterion(Frozen):
    id: Name
    label: Label


class DuplicateReferral(_Criterion):
    """The record is a cross-centre duplicate of another patient's (merged by harmonisation)."""

    kind: Literal["duplicate_referral"]


class ConditionPresent(_Criterion):
    """The patient has a condition record of the protocol's ``[condition]`` (concept or word)."""

    kind: Literal["condition_present"]


class ObservationIn(_Criterion):
    """The patient's baseline value of an observation ``variable`` is one of ``values``
    (missing fails)."""

    kind: Literal["observation_in"]
    variable: Name
    values: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class ObservationNotIn(_Criterion):
    """The patient's baseline value of ``variable`` is not one of ``values`` (missing passes)."""

    kind: Literal["observation_not_in"]
    variable: Name
    values: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class HasLine(_Criterion):
    """The patient has a line of therapy holding one of ``drug_classes``."""

    kind: Literal["has_line"]
    drug_classes: list[Name] = Field(min_length=1)


class LineBeforeLine(_Criterion):
    """A line holding one of ``before`` starts before a line holding one of ``after``."""

    kind: Literal["line_before_line"]
    before: list[Name] = Field(min_length=1)
    after: list[Name] = Field(min_length=1)


class ProgressionOnPriorLine(_Criterion):
    """Progression on a prior line (``index.prior_failure``) before an index line: the index exists."""

    kind: Literal["progression_on_prior_line"]


class IndexDateWithin(_Criterion):
    """The index date lies in [start, end] (both included)."""

    kind: Literal["index_date_within"]
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> IndexDateWithin:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


Criterion = Annotated[
    DuplicateReferral | ConditionPresent | ObservationIn | ObservationNotIn | HasLine | LineBeforeLine
    | ProgressionOnPriorLine | IndexDateWithin,
    Field(discriminator="kind"),
]
