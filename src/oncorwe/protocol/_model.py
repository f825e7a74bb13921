"""The study protocol as data: pydantic models, frozen, strict, unknown keys rejected.

A protocol is what a clinician reviews, and everything a study is: the condition (a concept set),
the drug classes (ingredient lists), how lines of therapy are built, the index line and the prior
failure it must follow, the eligibility criteria in the order they are applied, the regimen
classes, the covariates, the subsequent-therapy classes, the RECIST 1.1 response rules, the
endpoint conventions and the analyses. No value has a default that is some study's choice: the
protocol file states them. The rules that turn these parameters into derived values are in
``docs/definitions.md``; the keys are described in ``docs/protocol.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from oncorwe.model.schema import ENDPOINT_SCHEMA
from oncorwe.model.scope import ObservationRule, StudyScope
from oncorwe.protocol._adjusted import (
    AdjustedComparison,
    CompetingRisks,
    Imputation,
    adjusted_problems,
)
from oncorwe.protocol._covariates import (
    AboveReferenceHigh,
    BooleanCovariate,
    CategoricalCovariate,
    ConditionCategory,
    Covariate,
    InSet,
    NumericCovariate,
    PriorClass,
    PriorTherapy,
    RatioToReferenceHigh,
)
from oncorwe.protocol._criteria import (
    Criterion,
    HasLine,
    IndexDateWithin,
    LineBeforeLine,
    ProgressionOnPriorLine,
)
from oncorwe.protocol._types import Days, Frozen, Label, Months, Name, StrictBool, StrictInt, Weeks
from oncorwe.protocol._vocabulary import known_concept_ids, known_ingredients

__all__ = [
    "AdverseEventRules",
    "AnalysisSpec",
    "Condition",
    "DrugClass",
    "EndpointRules",
    "IndexRule",
    "LineRules",
    "PriorFailure",
    "Protocol",
    "Reference",
    "RegimenClass",
    "ResponseRules",
    "SubsequentClass",
    "SubsequentTherapy",
]

Ingredient = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9 .,/()+-]*$", max_length=100)]


class Reference(Frozen):
    """The publication the protocol reproduces, and the file of its published figures."""

    citation: Label = Field(max_length=2000)
    doi: str = ""
    #: a TOML file in the protocol's folder (the published-vs-reproduced table)
    published: str | None = None


class Condition(Frozen):
    """The study's disease: OMOP standard concepts (descendants included through
    ``concept_ancestor``) and words naming it in source values and CRF diagnosis fields."""

    label: Label
    concept_ids: list[Annotated[StrictInt, Field(gt=0)]] = Field(default_factory=list)
    words: list[Annotated[str, Field(min_length=3, pattern=r"^[a-z0-9 -]+$")]] = Field(default_factory=list)
    #: a centre's CRF files are taken to be of patients with the condition (a disease registry's)
    files_have_condition: StrictBool

    @model_validator(mode="after")
    def _named(self) -> Condition:
        if not self.concept_ids and not self.words:
            raise ValueError("a condition needs concept_ids or words")
        return self


class OmopObservation(Frozen):
    """How a CDM records what a CRF holds as a field: the records of ``domain`` whose standard
    concept (after 'Maps to') is one of ``concept_ids``, or whose source value contains
    ``source_word``, become observations of ``variable``. Their value is ``value`` when given, else
    the record's value words translated through the vocabulary field ``value_field`` (e.g.
    ``braf_v600``), else the record's number (converted to ``unit`` through the vocabulary's unit
    table when ``unit`` is given) and value concept name. ``absent_value``: the value a person of a
    CDM that has the domain's table gets when no such record exists (a metastasis that is not
    coded is taken as absent)."""

    domain: Literal["measurement", "observation", "condition"]
    concept_ids: list[Annotated[StrictInt, Field(gt=0)]] = Field(default_factory=list)
    source_word: Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[a-z0-9 %/.-]+$")] | None = None
    variable: Name
    value: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    value_field: Name | None = None
    unit: Literal["U/L"] | None = None
    absent_value: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    #: (domain "condition") the records of the study's own condition, whatever their concept
    study_condition: StrictBool = False

    @model_validator(mode="after")
    def _matches_something(self) -> OmopObservation:
        if not self.concept_ids and self.source_word is None and not self.study_condition:
            raise ValueError("an omop_observations entry needs concept_ids, source_word or study_condition")
        if self.study_condition and self.domain != "condition":
            raise ValueError("study_condition = true needs domain = \"condition\"")
        if self.value is not None and self.value_field is not None:
            raise ValueError("give value or value_field, not both")
        return self


class DrugClass(Frozen):
    """A drug class: RxNorm ingredient names (lower case) and, optionally, OMOP ingredient concepts."""

    label: Label
    ingredients: list[Ingredient] = Field(min_length=1)


class LineRules(Frozen):
    """How lines of therapy are built from drug records (``docs/definitions.md``, Lines of therapy)."""

    regimen_window_days: Days
    max_gap_days: Annotated[StrictInt, Field(ge=1, le=3653)]
    substitutions: list[list[Ingredient]]

    @field_validator("substitutions")
    @classmethod
    def _disjoint_groups(cls, groups: list[list[str]]) -> list[list[str]]:
        seen: set[str] = set()
        for group in groups:
            if len(group) < 2:
                raise ValueError(f"a substitution group needs at least two ingredients, got {group}")
            for name in group:
                if name in seen:
                    raise ValueError(f"ingredient {name!r} appears in two substitution groups")
                seen.add(name)
        return groups


class PriorFailure(Frozen):
    """The prior-therapy requirement: the index line is the first ``index.drug_class`` line after a
    line of one of ``drug_classes`` with progression from its start up to
    ``progression_window_days`` after its end."""

    drug_classes: list[Name] = Field(min_length=1)
    label: Label
    progression_window_days: Days


class IndexRule(Frozen):
    """The index line: the first line holding ``drug_class`` (after the prior failure, if any)."""

    drug_class: Name
    #: how the Methods text names time zero, e.g. "the start of the first chemotherapy line"
    label: Label
    prior_failure: PriorFailure | None = None


class RegimenClass(Frozen):
    """A regimen class: the index line's ingredients of the index class hold one ingredient of each
    group in ``all_of``; with ``only`` no other ingredient of the index class is allowed."""

    name: Name
    label: Label
    all_of: list[list[Ingredient]] = Field(min_length=1)
    only: StrictBool

    @field_validator("all_of")
    @classmethod
    def _not_empty(cls, groups: list[list[str]]) -> list[list[str]]:
        if any(not group for group in groups):
            raise ValueError("an all_of group must list at least one ingredient")
        return groups


class SubsequentClass(Frozen):
    """A class of subsequent therapy: the first line after the index line (``line = "next"``) or any
    later line (``"later"``, after the next one) holds one of ``drug_classes``."""

    name: Name
    label: Label
    line: Literal["next", "later"]
    drug_classes: list[Name] = Field(min_length=1)


class SubsequentTherapy(Frozen):
    """Subsequent-therapy classes in order of precedence; ``otherwise`` for any other next line;
    ``groups`` are extra rows of the subsequent-therapy table (a name -> the classes it sums)."""

    classes: list[SubsequentClass]
    otherwise: Name
    otherwise_label: Label
    groups: dict[Name, list[Name]] = Field(default_factory=dict)


class ResponseRules(Frozen):
    """RECIST 1.1 best overall response (section 4.4)."""

    confirmation: StrictBool
    confirmation_min_days: Annotated[StrictInt, Field(ge=1, le=3653)]
    sd_min_days: Days


class EndpointRules(Frozen):
    """Conventions of the time-to-event endpoints."""

    pfs_censoring: Literal["last_evaluable_assessment", "last_contact"]
    pfs_death_is_event: StrictBool
    os_censoring: Literal["last_contact"]


class AdverseEventRules(Frozen):
    """Toxicity of the index line (CTCAE v5.0 adverse events; ``docs/definitions.md``).

    An adverse event is attributed to the index line when its onset is on or after the line's
    start, no later than ``attribution_window_days`` after the line's last recorded end (its start
    when no end is recorded), and before the next line started. A patient has a *severe* adverse
    event when one attributed to the index line has a grade of at least ``grade_threshold``.
    ``top_terms`` is how many of the most frequent terms the report lists.
    """

    grade_threshold: Annotated[StrictInt, Field(ge=1, le=5)]
    attribution_window_days: Days
    top_terms: Annotated[StrictInt, Field(ge=1, le=20)]
    label: Label


class AnalysisSpec(Frozen):
    """The analyses the ``analysis`` stage runs on the per-patient analysis table."""

    table1: list[Name] = Field(min_length=1)
    table1_by: Name | None = None
    km_splits: list[Name]
    survival_rates_months: list[Months] = Field(min_length=1, max_length=20)
    landmark_weeks: Weeks
    response_by: list[Name]
    cox_covariates: list[Name]
    cox_reference: dict[Name, Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=dict)
    min_cell_count: Annotated[StrictInt, Field(ge=0, le=1000)]
    time_unit: Literal["months"]
    #: the study's wording of analysis-table columns (fixed endpoint columns and covariates)
    labels: dict[Name, Label] = Field(default_factory=dict)


class FederationSpec(Frozen):
    """Disclosure control of the site packages that leave a centre (``oncorwe site-export``), and
    what ``oncorwe combine`` refuses. The defaults are the usual statistical-disclosure settings;
    ``min_cell_count = 0`` and ``time_bin_days = 0`` give exact packages (not for release)."""

    #: a count of fewer patients (but more than none) is suppressed
    min_cell_count: Annotated[StrictInt, Field(ge=0, le=1000)] = 5
    #: event and censoring times are rounded up to a multiple of this many days
    time_bin_days: Annotated[StrictInt, Field(ge=0, le=366)] = 30
    #: continuous covariates become the middle of their bin of this width (their own unit)
    value_bins: dict[Name, Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]] = Field(default_factory=dict)
    #: the width for a continuous covariate value_bins does not name
    default_value_bin: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 5.0
    #: combine refuses fewer centres than this (an aggregate of two is the other's data)
    min_centres: Annotated[StrictInt, Field(ge=1, le=10_000)] = 3
    #: combine refuses a centre with fewer patients in the analysis set
    min_patients_per_centre: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 5
    # --- secure aggregation (``site-export --secure``): the cell universe every centre knows ---
    #: times are counted in bins of ``time_bin_days`` up to this horizon; a later time is set to
    #: the horizon (and censored there)
    horizon_days: Annotated[StrictInt, Field(ge=1, le=36_525)] = 3650
    #: the range of a continuous covariate's bins, or of an integer covariate's values (own unit);
    #: a value outside is set to the nearest end
    value_ranges: dict[Name, tuple[float, float]] = Field(default_factory=dict)
    #: the range for a covariate value_ranges does not name
    default_value_range: tuple[float, float] = (0.0, 120.0)
    #: the most ingredients a regimen's cell can name; a regimen of more is left out (and counted)
    max_regimen_ingredients: Annotated[StrictInt, Field(ge=1, le=8)] = 4


#: Fixed endpoint columns that hold categories, and their levels (None: the protocol's).
_BOOLEAN_ENDPOINTS = frozenset(n for n, t in ENDPOINT_SCHEMA.items() if t == pl.Boolean())
_SEXES = ("female", "male")


class Protocol(Frozen):
    """A study protocol: everything that defines the cohort, the endpoints and the analyses."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    title: Label
    reference: Reference
    condition: Condition
    drug_classes: dict[Name, DrugClass] = Field(min_length=1)
    lines: LineRules
    index: IndexRule
    criteria: list[Criterion] = Field(min_length=1)
    regimen_classes: list[RegimenClass] = Field(min_length=1)
    other_regimen_class: Name
    covariates: dict[Name, Covariate] = Field(default_factory=dict)
    #: how OMOP CDMs record the observation variables the criteria and covariates read by name
    omop_observations: list[OmopObservation] = Field(default_factory=list)
    subsequent_therapy: SubsequentTherapy
    response: ResponseRules
    endpoints: EndpointRules
    analysis: AnalysisSpec
    federation: FederationSpec = Field(default_factory=FederationSpec)
    #: optional analyses (issue 15): a propensity-weighted comparison, competing risks, imputation
    adjusted: AdjustedComparison | None = None
    #: ``[[competing_risks]]``: one cumulative-incidence analysis per entry, in this order
    competing_risks: list[CompetingRisks] = Field(default_factory=list, max_length=10)
    imputation: Imputation | None = None
    #: optional: adverse events of the index line and the toxicity table (issue 16)
    adverse_events: AdverseEventRules | None = None

    @field_validator("competing_risks", mode="before")
    @classmethod
    def _a_list_of_analyses(cls, value: Any) -> Any:
        # a single [competing_risks] table was the old form; say how to write it, not pydantic's dump
        if isinstance(value, dict):
            raise PydanticCustomError("single_table", "write [[competing_risks]] (a list of analyses)")
        return value

    @model_validator(mode="after")
    def _resolved(self) -> Protocol:
        problems = _unresolved(self)
        if problems:
            raise ValueError("\n".join(["", *problems]))
        return self

    # --- what the stages read -------------------------------------------------------------------
    @property
    def regimen_class_names(self) -> tuple[str, ...]:
        """All regimen classes in order of precedence, the fallback last."""
        return (*(c.name for c in self.regimen_classes), self.other_regimen_class)

    @property
    def criterion_ids(self) -> tuple[str, ...]:
        """The criteria's ids (exclusion reasons) in the order they are applied."""
        return tuple(c.id for c in self.criteria)

    def ingredient_classes(self) -> dict[str, str]:
        """Every ingredient the protocol names -> its drug class."""
        return {name: cls for cls, spec in self.drug_classes.items() for name in spec.ingredients}

    def scope(self) -> StudyScope:
        """What harmonisation needs: the condition and the drugs in scope."""
        ingredients = tuple(sorted(self.ingredient_classes()))
        concepts = known_ingredients()
        observed: set[int] = set()
        categories: set[int] = set()
        for spec in self.covariates.values():
            observed.update(getattr(spec, "concept_ids", ()) if not isinstance(spec, ConditionCategory) else ())
            if isinstance(spec, ConditionCategory):
                categories.update(c for level in spec.categories for c in level.concept_ids)
        rules = tuple(
            ObservationRule(domain=r.domain, concept_ids=tuple(r.concept_ids), source_word=r.source_word,
                            variable=r.variable, value=r.value, value_field=r.value_field, unit=r.unit,
                            absent_value=r.absent_value, study_condition=r.study_condition)
            for r in self.omop_observations
        )
        return StudyScope(
            condition_concept_ids=tuple(sorted(set(self.condition.concept_ids))),
            condition_words=tuple(self.condition.words),
            files_have_condition=self.condition.files_have_condition,
            ingredients=ingredients,
            ingredient_concept_ids=tuple(sorted({c for i in ingredients if (c := concepts.get(i))})),
            observation_concept_ids=tuple(sorted(observed)),
            category_concept_ids=tuple(sorted(categories)),
            observation_rules=rules,
        )

    def covariate_schema(self) -> dict[str, pl.DataType]:
        """The covariate columns of the analysis table, in protocol order, with their types."""
        return {name: _covariate_type(spec) for name, spec in self.covariates.items()}

    def adverse_event_schema(self) -> dict[str, pl.DataType]:
        """The toxicity columns of the analysis table, when the protocol has ``[adverse_events]``:
        ``severe_adverse_event`` (an event of at least the threshold grade attributed to the index
        line; null when the patient's centre sent no adverse event records at all) and
        ``severe_adverse_event_terms`` (their CTCAE terms, sorted, joined by "; ")."""
        if self.adverse_events is None:
            return {}
        return {"severe_adverse_event": pl.Boolean(), "severe_adverse_event_terms": pl.String()}

    def analysis_schema(self) -> dict[str, pl.DataType]:
        """The analysis table: the fixed endpoint columns, the toxicity columns (if any), then the
        protocol's covariates."""
        return {**ENDPOINT_SCHEMA, **self.adverse_event_schema(), **self.covariate_schema()}

    def column_levels(self, column: str) -> tuple[str, ...] | None:
        """The categories a column of the analysis table can hold (booleans: "yes"/"no"), or None
        for a numeric column or one whose categories are data (ingredients)."""
        return _levels(self, column)

    def column_label(self, column: str) -> str:
        """How a column of the analysis table is worded: the protocol's label, else generic."""
        if column in self.analysis.labels:
            return self.analysis.labels[column]
        spec = self.covariates.get(column)
        if spec is not None:
            return spec.label
        return column.replace("_", " ").capitalize()

    def to_dict(self) -> dict[str, Any]:
        """The protocol as plain JSON-compatible data (dates as ISO strings)."""
        return self.model_dump(mode="json")


def _covariate_type(spec: Any) -> pl.DataType:
    if isinstance(spec, NumericCovariate):
        return pl.Int64() if spec.integer else pl.Float64()
    if isinstance(spec, RatioToReferenceHigh):
        return pl.Float64()
    if isinstance(spec, CategoricalCovariate | PriorTherapy | ConditionCategory):
        return pl.String()
    return pl.Boolean()


def _levels(p: Protocol, column: str) -> tuple[str, ...] | None:
    if column == "regimen_class":
        return p.regimen_class_names
    if column == "sex":
        return _SEXES
    if column in ("best_response", "subsequent_best_response"):
        return ("CR", "PR", "SD", "PD", "NE")
    if column == "subsequent_therapy_class":
        return (*(c.name for c in p.subsequent_therapy.classes), p.subsequent_therapy.otherwise)
    if column == "centre_id":
        return None
    if column in _BOOLEAN_ENDPOINTS:
        return ("yes", "no")
    spec = p.covariates.get(column)
    if isinstance(spec, CategoricalCovariate | ConditionCategory):
        return spec.levels
    if isinstance(spec, PriorTherapy):
        return spec.level_names
    if spec is not None and _covariate_type(spec) == pl.Boolean():
        return ("yes", "no")
    return None


def _unresolved(p: Protocol) -> list[str]:
    """Every name the protocol uses that it does not define, one line each naming the key."""
    problems: list[str] = []
    classes = set(p.drug_classes)
    vocabulary = known_ingredients()
    concepts = known_concept_ids()

    def check_classes(key: str, names: list[str]) -> None:
        for name in names:
            if name not in classes:
                problems.append(f"{key}: drug class {name!r} is not defined in [drug_classes] "
                                f"(defined: {', '.join(sorted(classes))})")

    owner: dict[str, str] = {}
    for cls, spec in p.drug_classes.items():
        for ingredient in spec.ingredients:
            if ingredient not in vocabulary:
                problems.append(f"drug_classes.{cls}.ingredients: {ingredient!r} is not in the shipped "
                                "ingredient vocabulary (harmonise/vocab/ingredients.csv)")
            if ingredient in owner and owner[ingredient] != cls:
                problems.append(f"drug_classes.{cls}.ingredients: {ingredient!r} is also in class {owner[ingredient]!r}")
            owner[ingredient] = cls
    for concept in p.condition.concept_ids:
        if concept not in concepts:
            problems.append(f"condition.concept_ids: concept {concept} is not in the shipped vocabulary "
                            "(harmonise/vocab/omop_concepts.csv)")
    for i, group in enumerate(p.lines.substitutions):
        for ingredient in group:
            if ingredient not in owner:
                problems.append(f"lines.substitutions.{i}: {ingredient!r} is in no drug class")
    check_classes("index.drug_class", [p.index.drug_class])
    if p.index.prior_failure is not None:
        check_classes("index.prior_failure.drug_classes", p.index.prior_failure.drug_classes)
    index_ingredients = set(p.drug_classes[p.index.drug_class].ingredients) if p.index.drug_class in classes else set()
    for i, regimen in enumerate(p.regimen_classes):
        for group in regimen.all_of:
            for ingredient in group:
                if index_ingredients and ingredient not in index_ingredients:
                    problems.append(f"regimen_classes.{i}.all_of: {ingredient!r} is not an ingredient of the "
                                    f"index class {p.index.drug_class!r}")
    names = [c.name for c in p.regimen_classes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"regimen_classes: {name!r} listed twice")
    if p.other_regimen_class in names:
        problems.append(f"other_regimen_class: {p.other_regimen_class!r} is the fallback and cannot also be a listed class")

    ids = [c.id for c in p.criteria]
    for name in sorted({n for n in ids if ids.count(n) > 1}):
        problems.append(f"criteria: id {name!r} listed twice")
    progression = [c for c in p.criteria if isinstance(c, ProgressionOnPriorLine)]
    for i, criterion in enumerate(p.criteria):
        key = f"criteria.{i} ({criterion.id})"
        if isinstance(criterion, HasLine):
            check_classes(f"{key}.drug_classes", criterion.drug_classes)
        elif isinstance(criterion, LineBeforeLine):
            check_classes(f"{key}.before", criterion.before)
            check_classes(f"{key}.after", criterion.after)
        elif isinstance(criterion, ProgressionOnPriorLine) and p.index.prior_failure is None:
            problems.append(f"{key}: kind 'progression_on_prior_line' needs [index.prior_failure]")
    if p.index.prior_failure is not None and not progression:
        problems.append("criteria: [index.prior_failure] is set but no criterion of kind "
                        "'progression_on_prior_line' excludes the patients without it")
    if len([c for c in p.criteria if isinstance(c, IndexDateWithin)]) > 1:
        problems.append("criteria: more than one 'index_date_within' criterion")

    covariate_names = set(p.covariates)
    for name, covariate in p.covariates.items():
        key = f"covariates.{name}"
        if name in ENDPOINT_SCHEMA or name in p.adverse_event_schema():
            problems.append(f"{key}: {name!r} is a fixed column of the analysis table; choose another name")
        if isinstance(covariate, PriorClass):
            check_classes(f"{key}.drug_classes", covariate.drug_classes)
        elif isinstance(covariate, PriorTherapy):
            for j, level in enumerate(covariate.levels):
                check_classes(f"{key}.levels.{j}.all_of", level.all_of)
        elif isinstance(covariate, InSet):
            target = p.covariates.get(covariate.of)
            if not isinstance(target, CategoricalCovariate):
                problems.append(f"{key}.of: {covariate.of!r} is not a categorical covariate")
            else:
                for value in covariate.values:
                    if value not in target.levels:
                        problems.append(f"{key}.values: {value!r} is not a category of {covariate.of!r} "
                                        f"({', '.join(target.levels)})")
        if isinstance(covariate, NumericCovariate | CategoricalCovariate | BooleanCovariate | RatioToReferenceHigh
                      | AboveReferenceHigh):
            for concept in covariate.concept_ids:
                if concept not in concepts:
                    problems.append(f"{key}.concept_ids: concept {concept} is not in the shipped vocabulary "
                                    "(harmonise/vocab/omop_concepts.csv)")

    sub = p.subsequent_therapy
    sub_names = [c.name for c in sub.classes] + [sub.otherwise]
    for name in sorted({n for n in sub_names if sub_names.count(n) > 1}):
        problems.append(f"subsequent_therapy: class {name!r} listed twice")
    for i, sub_class in enumerate(sub.classes):
        check_classes(f"subsequent_therapy.classes.{i}.drug_classes", sub_class.drug_classes)
    for group_name, members in sub.groups.items():
        for member in members:
            if member not in sub_names:
                problems.append(f"subsequent_therapy.groups.{group_name}: {member!r} is not a subsequent-therapy class")

    columns = set(ENDPOINT_SCHEMA) | covariate_names
    a = p.analysis
    for key, used_columns in (("analysis.table1", a.table1), ("analysis.km_splits", a.km_splits),
                      ("analysis.response_by", a.response_by), ("analysis.cox_covariates", a.cox_covariates),
                      ("analysis.table1_by", [a.table1_by] if a.table1_by else []),
                      ("analysis.labels", list(a.labels))):
        for column in used_columns:
            if column not in columns:
                problems.append(f"{key}: {column!r} is neither a covariate nor a column of the analysis table")
    for key, used_columns in (("analysis.km_splits", a.km_splits), ("analysis.response_by", a.response_by),
                      ("analysis.table1_by", [a.table1_by] if a.table1_by else [])):
        for column in used_columns:
            if column in columns and _levels(p, column) is None:
                problems.append(f"{key}: {column!r} is not categorical (a split needs categories)")
    for column, reference_level in a.cox_reference.items():
        if column not in a.cox_covariates:
            problems.append(f"analysis.cox_reference.{column}: not among analysis.cox_covariates")
            continue
        levels = _levels(p, column)
        if levels is None:
            problems.append(f"analysis.cox_reference.{column}: a numeric covariate has no reference level")
        elif reference_level not in levels:
            problems.append(f"analysis.cox_reference.{column}: {reference_level!r} is not a level of {column!r} "
                            f"({', '.join(levels)})")
    problems.extend(adjusted_problems(
        adjusted=p.adjusted, competing=p.competing_risks, imputation=p.imputation, columns=columns,
        levels=lambda column: _levels(p, column),
        numeric_or_boolean=lambda column: _levels(p, column) in (None, ("yes", "no")),
        pfs_death_is_event=p.endpoints.pfs_death_is_event))
    return problems
