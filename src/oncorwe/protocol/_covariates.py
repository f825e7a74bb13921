"""Covariates: named definitions of the analysis table's baseline columns (Table 1, splits, Cox).

A covariate reads the ``observations`` table (by the canonical ``variable`` the vocabulary gives a
CRF field, or by OMOP ``concept_ids``), or the patient's lines of therapy before the index date,
or another covariate. The baseline value of an observation is the latest one dated on or before
the index date (undated values count as baseline, after dated ones); ties go to the first source in
alphabetical order (``docs/definitions.md``, Baseline covariates).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from oncorwe.protocol._types import Frozen, Label, Level, Name, StrictBool, StrictInt

__all__ = [
    "AboveReferenceHigh",
    "BooleanCovariate",
    "CategoricalCovariate",
    "ConditionCategory",
    "ConditionCategoryLevel",
    "Covariate",
    "InSet",
    "NumericCovariate",
    "PriorClass",
    "PriorTherapy",
    "PriorTherapyLevel",
    "RatioToReferenceHigh",
]


class _Observed(Frozen):
    """A covariate read from ``observations``: by ``variable``, by ``concept_ids``, or both."""

    label: Label
    variable: Name | None = None
    concept_ids: list[Annotated[StrictInt, Field(gt=0)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_source(self) -> _Observed:
        if self.variable is None and not self.concept_ids:
            raise ValueError("a covariate needs a source: 'variable' (an observation variable) or 'concept_ids'")
        return self


class NumericCovariate(_Observed):
    """``value_number`` (in ``unit`` when given: values in another unit are not used)."""

    kind: Literal["numeric"]
    unit: str | None = None
    integer: StrictBool = False
    #: how Table 1 shows it: the median and quartiles, or a row per value (a score such as ECOG)
    summary: Literal["median", "levels"] = "median"


class CategoricalCovariate(_Observed):
    """``value_text`` mapped to a category through ``categories`` (value -> category); a value not
    in the map is missing."""

    kind: Literal["categorical"]
    categories: dict[Annotated[str, Field(min_length=1)], Level] = Field(min_length=1)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.categories.values()))


class BooleanCovariate(_Observed):
    """``value_number`` (non-zero is true) or ``value_text`` ("true" / "false")."""

    kind: Literal["boolean"]


class RatioToReferenceHigh(_Observed):
    """``value_number / reference_high`` (e.g. a lab value over its upper limit of normal)."""

    kind: Literal["ratio_to_reference_high"]


class AboveReferenceHigh(_Observed):
    """``value_number > reference_high`` when both are known; else the boolean observation
    ``fallback_variable`` when given (a centre's own elevated / normal flag)."""

    kind: Literal["above_reference_high"]
    fallback_variable: Name | None = None


class InSet(Frozen):
    """Whether the categorical covariate ``of`` is one of ``values`` (missing stays missing)."""

    kind: Literal["in_set"]
    label: Label
    of: Name
    values: list[Level] = Field(min_length=1)


class PriorClass(Frozen):
    """Whether a line holding one of ``drug_classes`` started before the index date."""

    kind: Literal["prior_class"]
    label: Label
    drug_classes: list[Name] = Field(min_length=1)


class PriorTherapyLevel(Frozen):
    """A level of a :class:`PriorTherapy`: the lines before the index hold every class of ``all_of``."""

    name: Name
    all_of: list[Name] = Field(min_length=1)
    #: how the report words the level (default: its name)
    label: Label | None = None


class PriorTherapy(Frozen):
    """The drug classes of the lines before the index date as a category: the first of ``levels``
    whose classes were all given before the index, else ``otherwise`` (a category, not missing)."""

    kind: Literal["prior_therapy"]
    label: Label
    levels: list[PriorTherapyLevel] = Field(min_length=1)
    otherwise: Name
    otherwise_label: Label | None = None

    @property
    def level_names(self) -> tuple[str, ...]:
        return (*(level.name for level in self.levels), self.otherwise)


class ConditionCategoryLevel(Frozen):
    """A category of a :class:`ConditionCategory`: a condition concept or any of its descendants."""

    concept_ids: list[Annotated[StrictInt, Field(gt=0)]] = Field(min_length=1)
    category: Level


class ConditionCategory(Frozen):
    """The category of the patient's condition records of the study's disease (e.g. histology):
    the first of ``categories`` (in protocol order) one of whose concepts is the standard concept of
    a condition record (after 'Maps to') or one of its ancestors (``concept_ancestor``); missing
    when none matches (CRF records carry no condition concept)."""

    kind: Literal["condition_category"]
    label: Label
    categories: list[ConditionCategoryLevel] = Field(min_length=1)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(level.category for level in self.categories))


Covariate = Annotated[
    NumericCovariate | CategoricalCovariate | BooleanCovariate | RatioToReferenceHigh | AboveReferenceHigh
    | InSet | PriorClass | PriorTherapy | ConditionCategory,
    Field(discriminator="kind"),
]
