"""The optional analysis sections of issue 15: the confounding-adjusted comparison (``[adjusted]``),
competing risks (``[[competing_risks]]``, a list of analyses) and multiple imputation of missing covariates
(``[imputation]``). Each is validated with the rest of the protocol, before any data is read; the
keys are described in ``docs/protocol.md`` and the methods in ``docs/adjusted.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, model_validator

from oncorwe.protocol._types import Frozen, Label, Level, Months, Name, StrictBool, StrictInt

__all__ = ["AdjustedComparison", "CompetingRisks", "Imputation", "adjusted_problems"]

Probability = Annotated[StrictFloat, Field(gt=0, lt=1, allow_inf_nan=False)]


class AdjustedComparison(Frozen):
    """A propensity-weighted comparison of treatment arms made of levels of an analysis-table column.

    The arms are groups of the ``treatment`` column's levels (a patient of a level in no arm is not
    in the comparison); the propensity model is a multinomial (binomial for two arms) logistic
    regression of the arm on ``covariates``; ``estimand`` chooses the weights (``stats.propensity_weights``).
    Hazard ratios compare every arm with ``reference``.
    """

    treatment: Name
    arms: dict[Name, list[Level]] = Field(min_length=2, max_length=10)
    arm_labels: dict[Name, Label]
    reference: Name
    covariates: list[Name] = Field(min_length=1, max_length=50)
    estimand: Literal["ATE", "ATT", "overlap"]
    #: the ATT's target arm (the arm whose covariate distribution the others are weighted to)
    target: Name | None = None
    stabilize: StrictBool
    #: drop patients with some propensity below this and refit (Crump et al. 2009); none: no trimming
    trim: Probability | None = None
    #: cap the weights at this quantile (Cole & Hernan 2008); none: no truncation
    truncate: Probability | None = None
    #: a weight above this is an error (a patient nearly never given their treatment)
    max_weight: Annotated[StrictInt | StrictFloat, Field(gt=1, le=1e6, allow_inf_nan=False)]
    outcomes: list[Literal["pfs", "os"]] = Field(min_length=1, max_length=2)
    #: times (months) at which the weighted survival and the numbers at risk are printed
    risk_table_months: list[Months] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> AdjustedComparison:
        problems = []
        if set(self.arm_labels) != set(self.arms):
            problems.append(f"arm_labels: give one label for each arm ({', '.join(self.arms)})")
        if self.reference not in self.arms:
            problems.append(f"reference: {self.reference!r} is not an arm ({', '.join(self.arms)})")
        if self.estimand == "ATT" and self.target not in self.arms:
            problems.append(f"target: the ATT needs its target arm, one of {', '.join(self.arms)}")
        if self.estimand != "ATT" and self.target is not None:
            problems.append(f"target: only used with estimand \"ATT\", not {self.estimand!r}")
        if self.stabilize and self.estimand != "ATE":
            problems.append(f"stabilize: defined for estimand \"ATE\" only, not {self.estimand!r}")
        if self.trim is not None and self.trim >= 1 / len(self.arms):
            problems.append(f"trim: must be below 1/{len(self.arms)} (one over the number of arms), got {self.trim}")
        if self.truncate is not None and self.truncate <= 0.5:
            problems.append(f"truncate: must be a quantile above 0.5, got {self.truncate}")
        seen: dict[str, str] = {}
        for arm, levels in self.arms.items():
            if not levels:
                problems.append(f"arms.{arm}: list at least one level of {self.treatment!r}")
            for level in levels:
                if level in seen:
                    problems.append(f"arms.{arm}: {level!r} is also in arm {seen[level]!r}")
                seen[level] = arm
        for name in sorted({c for c in self.covariates if self.covariates.count(c) > 1}):
            problems.append(f"covariates: {name!r} listed twice")
        if self.treatment in self.covariates:
            problems.append(f"covariates: the treatment {self.treatment!r} cannot also be a covariate")
        if len(set(self.outcomes)) != len(self.outcomes):
            problems.append("outcomes: an outcome is listed twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CompetingRisks(Frozen):
    """One competing-risks analysis (an entry of ``[[competing_risks]]``): the cumulative incidence of
    ``event`` with ``competing_event`` competing (Aalen-Johansen), by the adjusted comparison's arms
    (``by = "arm"``) or a categorical column, with Gray's test and the Fine-Gray subdistribution
    hazard ratios of the groups. ``name`` tells the analyses apart in the result tables (their
    ``analysis`` column) and names the report's figure and tables; a protocol's entries differ in
    name and in (``event``, ``by``).

    ``"progression"`` with ``"death"``: from the PFS and OS columns, a PFS event at the time of death
    is a death without progression (the competing event), any other PFS event a progression; this
    needs PFS to count deaths (``endpoints.pfs_death_is_event = true``).
    ``"subsequent_therapy"`` with ``"death"``: the start of the next line after the index line
    (``subsequent_therapy_months``) is the event; a death before it competes; otherwise censored at
    the OS censoring time.
    """

    name: Name
    event: Literal["progression", "subsequent_therapy"]
    competing_event: Literal["death"]
    by: Name
    #: times (months) at which the cumulative incidences are printed
    times_months: list[Months] = Field(min_length=1, max_length=20)


class Imputation(Frozen):
    """Multiple imputation by chained equations of the adjusted comparison's missing covariates
    (``covariates``), with the arm, the event indicators and the Nelson-Aalen cumulative hazards of
    the outcomes as predictors (White & Royston 2009): ``m`` imputed sets from ``seed``."""

    m: Annotated[StrictInt, Field(ge=2, le=200)]
    seed: Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
    #: rounds of the chained equations per imputed set
    max_iter: Annotated[StrictInt, Field(ge=1, le=100)]
    covariates: list[Name] = Field(min_length=1, max_length=50)


def adjusted_problems(
    *,
    adjusted: AdjustedComparison | None,
    competing: Sequence[CompetingRisks],
    imputation: Imputation | None,
    columns: set[str],
    levels: Callable[[str], tuple[str, ...] | None],
    numeric_or_boolean: Callable[[str], bool],
    pfs_death_is_event: bool,
) -> list[str]:
    """The names the three sections use that the protocol does not define, and the competing-risks
    analyses that repeat another's name or (event, by), one line each."""
    problems: list[str] = []
    if adjusted is not None:
        a = adjusted
        treatment_levels = levels(a.treatment) if a.treatment in columns else None
        if a.treatment not in columns:
            problems.append(f"adjusted.treatment: {a.treatment!r} is neither a covariate nor a column of the analysis table")
        elif treatment_levels is None:
            problems.append(f"adjusted.treatment: {a.treatment!r} is not categorical (arms are groups of its levels)")
        else:
            for arm, arm_levels in a.arms.items():
                for level in arm_levels:
                    if level not in treatment_levels:
                        problems.append(f"adjusted.arms.{arm}: {level!r} is not a level of {a.treatment!r} "
                                        f"({', '.join(treatment_levels)})")
        for covariate in a.covariates:
            if covariate not in columns:
                problems.append(f"adjusted.covariates: {covariate!r} is neither a covariate nor a column of the analysis table")
    first_named: dict[str, int] = {}
    first_of: dict[tuple[str, str], int] = {}
    for i, cr in enumerate(competing):
        key = f"competing_risks.{i}"
        if cr.name in first_named:
            problems.append(f"{key}.name: {cr.name!r} is also the name of competing_risks.{first_named[cr.name]}")
        first_named.setdefault(cr.name, i)
        if (cr.event, cr.by) in first_of:
            problems.append(f"{key}: event {cr.event!r} by {cr.by!r} repeats competing_risks.{first_of[cr.event, cr.by]} "
                            "(one analysis per event and grouping; list more times_months there)")
        first_of.setdefault((cr.event, cr.by), i)
        if cr.by == "arm":
            if adjusted is None:
                problems.append(f"{key}.by: \"arm\" needs the [adjusted] section (its arms)")
        elif cr.by not in columns:
            problems.append(f"{key}.by: {cr.by!r} is neither \"arm\", a covariate nor a column")
        elif levels(cr.by) is None:
            problems.append(f"{key}.by: {cr.by!r} is not categorical")
        if cr.event == "progression" and not pfs_death_is_event:
            problems.append(f"{key}: death as the competing event of progression needs "
                            "endpoints.pfs_death_is_event = true (PFS must record the deaths)")
    if imputation is not None:
        if adjusted is None:
            problems.append("imputation: imputes the [adjusted] section's covariates; that section is missing")
        else:
            for covariate in imputation.covariates:
                if covariate not in adjusted.covariates:
                    problems.append(f"imputation.covariates: {covariate!r} is not among adjusted.covariates")
                elif covariate in columns and not numeric_or_boolean(covariate):
                    problems.append(f"imputation.covariates: {covariate!r} is categorical with more than two "
                                    "levels; only numeric and yes/no covariates are imputed")
        for name in sorted({c for c in imputation.covariates if imputation.covariates.count(c) > 1}):
            problems.append(f"imputation.covariates: {name!r} listed twice")
    return problems
