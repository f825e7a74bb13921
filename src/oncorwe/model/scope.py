"""What a study reads from a source: the contract between the protocol and harmonisation.

A real CDM holds a whole hospital's population. Only persons with the study's condition, and only
drugs the study names, are in scope; the rest is out of scope (not quarantined, not a loss).
:class:`StudyScope` is built from the protocol (``Protocol.scope()``) and handed to
``harmonise.run``, which applies it in the engine before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StudyScope"]


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
    """

    condition_concept_ids: tuple[int, ...] = ()
    condition_words: tuple[str, ...] = ()
    files_have_condition: bool = True
    ingredients: tuple[str, ...] = ()
    ingredient_concept_ids: tuple[int, ...] = ()
