"""The study protocol as data: pydantic models, frozen, unknown keys rejected.

A protocol is what a clinician reviews: the population, the exposure sequence (an ICI line with
progression, then the first chemotherapy line after it), the calendar window, the order of the
eligibility criteria, how lines of therapy are built from drug records, the regimen classes and their
precedence, the RECIST 1.1 response rules, the endpoint conventions and the analyses to run. The rules
that turn these parameters into derived values are in ``docs/definitions.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oncorwe.model.schema import EXCLUSION_REASONS

__all__ = [
    "CRITERIA",
    "DRUG_CLASSES",
    "AnalysisSpec",
    "CalendarWindow",
    "Eligibility",
    "EndpointRules",
    "ExposureSequence",
    "LineRules",
    "Population",
    "Protocol",
    "Reference",
    "RegimenClass",
    "ResponseRules",
]

#: Drug classes of the canonical ``drug_exposures`` table.
DRUG_CLASSES = ("chemotherapy", "anti_pd1", "anti_ctla4", "anti_lag3", "braf_mek", "other")

#: Eligibility criteria a protocol may list (the canonical exclusion reasons, plus a primary-site
#: filter used only when ``population.primary_sites_excluded`` is not empty).
CRITERIA = (*EXCLUSION_REASONS, "primary_site_excluded")

DrugClass = Literal["chemotherapy", "anti_pd1", "anti_ctla4", "anti_lag3", "braf_mek", "other"]
Stage = Literal["IV", "III_unresectable", "III", "II", "I"]
PrimarySite = Literal["cutaneous", "acral", "mucosal", "uveal", "unknown_primary"]
Criterion = Literal[
    "duplicate_referral",
    "not_stage_iv_unresectable",
    "no_chemotherapy",
    "no_ici_before_chemotherapy",
    "no_progression_on_ici",
    "chemotherapy_outside_window",
    "primary_site_excluded",
]

#: What a criterion label may name: a criterion, or the source records (the flow diagram's first box).
LabelKey = Literal["source_records", Criterion]


def _stages() -> list[Stage]:
    return ["IV", "III_unresectable"]


def _all_classes() -> list[DrugClass]:
    return ["chemotherapy", "anti_pd1", "anti_ctla4", "anti_lag3", "braf_mek", "other"]


def _ici_classes() -> list[DrugClass]:
    return ["anti_pd1", "anti_ctla4", "anti_lag3"]


def _criteria() -> list[Criterion]:
    return [
        "duplicate_referral",
        "not_stage_iv_unresectable",
        "no_chemotherapy",
        "no_ici_before_chemotherapy",
        "no_progression_on_ici",
        "chemotherapy_outside_window",
    ]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reference(_Frozen):
    """The publication the protocol reproduces, and the file of its published figures."""

    citation: str
    doi: str = ""
    published: str | None = None  # a TOML file next to the protocol (published-vs-reproduced table)


class Population(_Frozen):
    """Who can enter: diagnosis, stage at chemotherapy start, primary sites."""

    diagnosis: str = "melanoma"
    stages: list[Stage] = Field(default_factory=_stages, min_length=1)
    primary_sites_excluded: list[PrimarySite] = Field(default_factory=list)


class LineRules(_Frozen):
    """How lines of therapy are built from drug records (``docs/definitions.md``, Lines of therapy)."""

    regimen_window_days: int = Field(default=28, ge=0)
    max_gap_days: int = Field(default=120, ge=1)
    substitutions: list[list[str]] = Field(
        default_factory=lambda: [["carboplatin", "cisplatin"], ["nab-paclitaxel", "paclitaxel"]]
    )
    antineoplastic_classes: list[DrugClass] = Field(default_factory=_all_classes)

    @field_validator("substitutions")
    @classmethod
    def _disjoint_groups(cls, groups: list[list[str]]) -> list[list[str]]:
        seen: set[str] = set()
        for group in groups:
            if len(group) < 2:
                raise ValueError(f"a substitution group needs at least two ingredients, got {group}")
            for name in group:
                if name != name.lower().strip():
                    raise ValueError(f"ingredient {name!r} must be a lower-case RxNorm name")
                if name in seen:
                    raise ValueError(f"ingredient {name!r} appears in two substitution groups")
                seen.add(name)
        return groups


class ExposureSequence(_Frozen):
    """The exposure sequence: an ICI line with progression, then the first chemotherapy after it."""

    ici_classes: list[DrugClass] = Field(default_factory=_ici_classes, min_length=1)
    index_class: DrugClass = "chemotherapy"
    progression_window_days: int = Field(default=90, ge=0)


class CalendarWindow(_Frozen):
    """The index line must start within [index_start, index_end] (both included)."""

    index_start: dt.date = dt.date(2007, 1, 1)
    index_end: dt.date = dt.date(2017, 12, 31)

    @model_validator(mode="after")
    def _ordered(self) -> CalendarWindow:
        if self.index_end < self.index_start:
            raise ValueError("index_end must not be before index_start")
        return self


class Eligibility(_Frozen):
    """The criteria in the order they are applied; a patient's reason is the first one failed.

    ``labels`` (optional) is the study's wording of a criterion in the report's flow diagram and
    attrition table ("Excluded: <label>"); ``source_records`` words the diagram's first box. A
    criterion without a label is worded generically (the calendar window from ``calendar``).
    An empty table is left out of the protocol's record, so files without one record as before.
    """

    criteria: list[Criterion] = Field(default_factory=_criteria, min_length=1)
    labels: dict[LabelKey, str] = Field(default_factory=dict, exclude_if=lambda labels: not labels)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, criteria: list[str]) -> list[str]:
        duplicated = sorted({c for c in criteria if criteria.count(c) > 1})
        if duplicated:
            raise ValueError(f"criteria listed twice: {', '.join(duplicated)}")
        return criteria

    @field_validator("labels")
    @classmethod
    def _worded(cls, labels: dict[str, str]) -> dict[str, str]:
        blank = sorted(key for key, text in labels.items() if not text.strip())
        if blank:
            raise ValueError(f"labels: empty wording for {', '.join(blank)}")
        return labels

    @model_validator(mode="after")
    def _labels_of_listed_criteria(self) -> Eligibility:
        # a label for a criterion the study does not apply is a slip (a typo or a removed criterion)
        unlisted = sorted(set(self.labels) - {*self.criteria, "source_records"})
        if unlisted:
            raise ValueError(f"labels: {', '.join(unlisted)} not among the criteria {', '.join(self.criteria)}")
        return self


class RegimenClass(_Frozen):
    """A regimen class: the index line's chemotherapy ingredients must hold one ingredient of each
    group in ``all_of``; with ``only`` no other chemotherapy ingredient is allowed."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    all_of: list[list[str]] = Field(min_length=1)
    only: bool = True

    @field_validator("all_of")
    @classmethod
    def _lower_case(cls, groups: list[list[str]]) -> list[list[str]]:
        for group in groups:
            if not group:
                raise ValueError("an all_of group must list at least one ingredient")
            for name in group:
                if name != name.lower().strip():
                    raise ValueError(f"ingredient {name!r} must be a lower-case RxNorm name")
        return groups


class ResponseRules(_Frozen):
    """RECIST 1.1 best overall response (section 4.4)."""

    confirmation: bool = False
    confirmation_min_days: int = Field(default=28, ge=1)
    sd_min_days: int = Field(default=42, ge=0)


class EndpointRules(_Frozen):
    """Conventions of the time-to-event endpoints."""

    pfs_censoring: Literal["last_evaluable_assessment", "last_contact"] = "last_evaluable_assessment"
    # Death without recorded progression ends PFS (the usual definition); some published tables
    # count progression only.
    pfs_death_is_event: bool = True
    os_censoring: Literal["last_contact"] = "last_contact"


class AnalysisSpec(_Frozen):
    """The analyses the ``analysis`` stage runs on the per-patient analysis table."""

    km_splits: list[str] = Field(default_factory=lambda: ["regimen_class", "responder", "prior_anti_pd1"])
    survival_rates_months: list[float] = Field(default_factory=lambda: [6.0, 12.0])
    landmark_weeks: float = Field(default=12.0, gt=0)
    response_by: list[str] = Field(default_factory=lambda: ["regimen_class", "prior_ici_class"])
    cox_covariates: list[str] = Field(
        default_factory=lambda: [
            "age_years", "sex", "ecog", "ldh_elevated", "m1c_or_worse", "brain_metastases",
            "braf_v600", "prior_ici_class", "regimen_class",
        ]
    )
    cox_reference: dict[str, str] = Field(
        default_factory=lambda: {"regimen_class": "dacarbazine", "prior_ici_class": "anti_ctla4", "sex": "female"}
    )
    min_cell_count: int = Field(default=5, ge=0)
    time_unit: Literal["months"] = "months"
    table1_by: str = "regimen_class"


class Protocol(_Frozen):
    """A study protocol: everything that defines the cohort, the endpoints and the analyses."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    reference: Reference
    population: Population = Field(default_factory=Population)
    lines: LineRules = Field(default_factory=LineRules)
    exposure: ExposureSequence = Field(default_factory=ExposureSequence)
    calendar: CalendarWindow = Field(default_factory=CalendarWindow)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    regimen_classes: list[RegimenClass] = Field(min_length=1)
    other_regimen_class: str = "other"
    response: ResponseRules = Field(default_factory=ResponseRules)
    endpoints: EndpointRules = Field(default_factory=EndpointRules)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @model_validator(mode="after")
    def _unique_classes(self) -> Protocol:
        names = [c.name for c in self.regimen_classes]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"regimen_classes: names listed twice: {', '.join(duplicated)}")
        if self.other_regimen_class in names:
            raise ValueError(
                f"other_regimen_class {self.other_regimen_class!r} is the fallback and cannot also be a listed class"
            )
        return self

    @property
    def regimen_class_names(self) -> tuple[str, ...]:
        """All regimen classes in order of precedence, the fallback last."""
        return (*(c.name for c in self.regimen_classes), self.other_regimen_class)

    def to_dict(self) -> dict[str, Any]:
        """The protocol as plain JSON-compatible data (dates as ISO strings)."""
        return self.model_dump(mode="json")
