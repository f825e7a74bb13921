"""What a study reads from a source: the contract between the protocol and harmonisation.

A real CDM holds a whole hospital's population. Only persons with the study's condition, and only
drugs the study names, are in scope; the rest is out of scope (not quarantined, not a loss).
:class:`StudyScope` is built from the protocol (``Protocol.scope()``) and handed to
``harmonise.run``, which applies it in the engine before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ObservationRule", "StudyScope"]


@dataclass(frozen=True)
class ObservationRule:
    """How a CDM records an observation variable (the protocol's ``[[omop_observations]]``): the
    records of ``domain`` ("measurement", "observation" or "condition") whose standard concept is
    one of ``concept_ids`` or whose source value contains ``source_word`` become observations of
    ``variable``, valued ``value``, or by the record's value words through the vocabulary field
    ``value_field``, or by its number (converted to ``unit``); ``absent_value`` is given to the
    persons of a CDM with that domain's table and no such record."""

    domain: str
    variable: str
    concept_ids: tuple[int, ...] = ()
    source_word: str | None = None
    value: str | None = None
    value_field: str | None = None
    unit: str | None = None
    absent_value: str | None = None
    #: the records of the study's own condition (domain "condition"), whatever their concept
    study_condition: bool = False


@dataclass(frozen=True)
class StudyScope:
    """The condition and drugs a study is about.

    Attributes
    ----------
    condition_concept_ids
        OMOP standard condition concepts of the study's disease; their descendants through
        ``concept_ancestor`` are included by harmonisation.
    condition_words
        Lower-case words (substrings) that name the disease in ``condition_source_value``, a concept
        name, or a CRF diagnosis field.
    files_have_condition
        CRF exports of a disease registry rarely name the disease: when true, every patient of a
        centre's files is taken to have the condition unless a diagnosis field names another one.
    ingredients
        RxNorm ingredient names (lower case) of every drug class the protocol names; other drugs are
        out of scope.
    ingredient_concept_ids
        Their OMOP ingredient concepts; drug concepts below the ingredient level (clinical drugs)
        are reached through ``concept_ancestor``.
    observation_concept_ids
        The measurement / observation concepts the covariates read: a CDM's records of them become
        observations (with the concept, the value, the value concept's name, the unit).
    category_concept_ids
        The condition concepts that categorise a diagnosis (e.g. histology): their descendants in
        the CDMs' ``concept_ancestor`` are kept in the model's ``concept_ancestor`` table.
    observation_rules
        :class:`ObservationRule` s: CDM records that carry a CRF field's variable.
    """

    condition_concept_ids: tuple[int, ...] = ()
    condition_words: tuple[str, ...] = ()
    files_have_condition: bool = True
    ingredients: tuple[str, ...] = ()
    ingredient_concept_ids: tuple[int, ...] = ()
    observation_concept_ids: tuple[int, ...] = ()
    category_concept_ids: tuple[int, ...] = ()
    observation_rules: tuple[ObservationRule, ...] = ()
