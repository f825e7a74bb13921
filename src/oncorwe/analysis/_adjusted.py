"""The protocol's confounding-adjusted comparison (``[adjusted]``, ``[imputation]``): propensity
weights, balance before and after weighting with effective sample sizes, propensity overlap,
weighted Kaplan-Meier curves, weighted Cox hazard ratios with robust confidence intervals and
E-values; complete-case, and (with ``[imputation]``) on every imputed set pooled by Rubin's rules.

Definitions (docs/adjusted.md): the arms are groups of the ``treatment`` column's levels; the
analysis set is the patients of an arm with a known time and status of every outcome. The
propensity model is a logistic (multinomial for more than two arms) regression of the arm on the
covariates (``stats.propensity_weights``); the balance is the standardised mean difference of each
covariate (indicator) between arms, the weighted mean difference over the pooled unweighted SD
(``stats.balance``, as cobalt); the effective sample size is Kish's (sum w)^2 / sum w^2. The
hazard ratio of each arm against the reference is that of a Cox model of the outcome on the arm
alone, weighted, with the robust (sandwich) variance (``stats.cox_ph(weights=, robust=True)``, R's
``coxph(weights = w, robust = TRUE)``); the unadjusted one is unweighted on all patients of the
analysis set. E-values (VanderWeele & Ding 2017) treat the outcome as common (HR -> RR by
(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))). Under imputation, each imputed set gets its own
propensity model and weights; the log hazard ratios and robust variances are pooled by Rubin's
rules with Barnard-Rubin degrees of freedom (``stats.pool_rubin``, ``mice::pool``); balance and
effective sample sizes are averaged over the sets.

A propensity model that cannot be fitted (perfect separation, a weight above ``max_weight``, an arm
emptied by trimming) does not stop the run: its tables say "not computed" with the reason naming
the covariate, and the report prints it. A covariate constant within an arm is a warning printed
with the tables.

References
----------
Austin PC, Stuart EA (2015). Moving towards best practice when using inverse probability of
treatment weighting (IPTW) using the propensity score. Stat Med 34:3661-79.
VanderWeele TJ, Ding P (2017). Sensitivity analysis in observational research: introducing the
E-value. Ann Intern Med 167:268-274.
Rubin DB (1987). Multiple imputation for nonresponse in surveys. Wiley.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._imputation import impute
from oncorwe.analysis._survival import CURVE_SCHEMA, ENDPOINTS
from oncorwe.errors import ConvergenceError, InputError
from oncorwe.protocol import AdjustedComparison, Protocol

__all__ = ["ADJUSTED_TABLES", "ARM", "adjusted_analyses", "adjusted_frame", "adjusted_methods"]

#: The column holding each patient's arm in the adjusted analysis set.
ARM = "arm"
_WEIGHT = "__weight"

#: Tables of the adjusted comparison, in report order (empty when the protocol has no [adjusted]).
ADJUSTED_TABLES = ("adjusted_weights", "adjusted_balance", "adjusted_overlap", "adjusted_km",
                   "adjusted_survival", "adjusted_cox")

WEIGHTS_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "arm": pl.String(), "n": pl.Int64(), "n_trimmed": pl.Int64(),
    "ess": pl.Float64(), "weight_min": pl.Float64(), "weight_max": pl.Float64(),
    "imputations": pl.Int64(), "status": pl.String(), "message": pl.String(),
}
BALANCE_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(), "covariate": pl.String(), "level_a": pl.String(), "level_b": pl.String(),
    "smd_unweighted": pl.Float64(), "smd_weighted": pl.Float64(),
}
OVERLAP_SCHEMA: dict[str, pl.DataType] = {
    "propensity_of": pl.String(), "arm": pl.String(), "bin_lower": pl.Float64(), "bin_upper": pl.Float64(),
    "n": pl.Int64(),
}
SURVIVAL_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(), "arm": pl.String(), "months": pl.Float64(), "n_risk": pl.Int64(),
    "survival": pl.Float64(), "lower": pl.Float64(), "upper": pl.Float64(),
}
COX_SCHEMA: dict[str, pl.DataType] = {
    "endpoint": pl.String(), "analysis": pl.String(), "arm": pl.String(), "reference": pl.String(),
    "n": pl.Int64(), "events": pl.Int64(), "hazard_ratio": pl.Float64(), "lower": pl.Float64(),
    "upper": pl.Float64(), "p_value": pl.Float64(), "e_value": pl.Float64(), "e_value_ci": pl.Float64(),
    "fmi": pl.Float64(), "status": pl.String(), "message": pl.String(),
}
#: propensity histogram bins
_BINS = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class _Fit:
    """One propensity-weighted fit: the weights (kept rows only) and the frame they belong to."""

    frame: pl.DataFrame
    weights: stats.PropensityWeights


def adjusted_frame(table: pl.DataFrame, spec: AdjustedComparison) -> pl.DataFrame:
    """The adjusted analysis set: patients of an arm with every outcome's time and status known,
    with their arm in column :data:`ARM`, the covariates and the outcome columns."""
    arm_of = {level: arm for arm, levels in spec.arms.items() for level in levels}
    outcome_columns = [c for o in spec.outcomes for c in ENDPOINTS[o][:2]]
    missing = [c for c in [spec.treatment, *spec.covariates, *outcome_columns] if c not in table.columns]
    if missing:
        raise InputError(f"adjusted: column(s) {', '.join(missing)} missing from the analysis table")
    treatment = table[spec.treatment].cast(pl.String)
    frame = table.select([*dict.fromkeys([*spec.covariates, *outcome_columns])]).with_columns(
        treatment.replace_strict(arm_of, default=None, return_dtype=pl.String).alias(ARM))
    known = pl.col(ARM).is_not_null()
    for column in outcome_columns:
        known &= pl.col(column).is_not_null()
    return frame.filter(known)


def _fit(frame: pl.DataFrame, spec: AdjustedComparison) -> tuple[_Fit | None, str, list[str]]:
    """The propensity weights of ``frame``, or None with the reason; and the covariate warnings."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.CovariateWarning)  # carried in the result's warnings
            weights = stats.propensity_weights(
                frame, treatment=ARM, covariates=list(spec.covariates), estimand=spec.estimand,
                reference=spec.target, stabilize=spec.stabilize, trim=spec.trim, truncate=spec.truncate,
                max_weight=float(spec.max_weight))
    except (InputError, ConvergenceError) as exc:
        return None, str(exc), []
    return _Fit(frame, weights), "", list(weights.warnings)


def _balance_rows(fit: _Fit, covariates: Sequence[str]) -> pl.DataFrame:
    kept = fit.frame.filter(pl.Series(fit.weights.kept))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.CovariateWarning)
        before = stats.balance(fit.frame, treatment=ARM, covariates=list(covariates)).table
        after = stats.balance(kept, treatment=ARM, covariates=list(covariates),
                              weights=fit.weights.weights[fit.weights.kept]).table
    return before.select("covariate", "level_a", "level_b", pl.col("smd").alias("smd_unweighted")).join(
        after.select("covariate", "level_a", "level_b", pl.col("smd").alias("smd_weighted")),
        on=["covariate", "level_a", "level_b"], how="left", maintain_order="left")


def _weighted_frame(fit: _Fit) -> pl.DataFrame:
    return fit.frame.with_columns(pl.Series(_WEIGHT, fit.weights.weights)).filter(pl.Series(fit.weights.kept))


def _arm_log_hr(frame: pl.DataFrame, endpoint: str, reference: str, *, weighted: bool) -> dict[str, tuple[float, float]]:
    """Each non-reference arm's log hazard ratio and its (robust when weighted) variance."""
    time, event, _label = ENDPOINTS[endpoint]
    result = stats.cox_ph(frame, time=time, event=event, covariates=[ARM], reference={ARM: reference},
                          weights=_WEIGHT if weighted else None, robust=weighted)
    table = result.to_frame()
    out = {}
    for row in table.iter_rows(named=True):
        arm = str(row["term"]).removeprefix(f"{ARM}=")
        se = row["robust_se"] if weighted else row["se"]
        out[arm] = (float(row["coef"]), float(se) ** 2)
    return out


def _e_values(hr: float, lower: float, upper: float) -> tuple[float, float]:
    value = stats.e_value(hr, lower=lower, upper=upper, measure="HR", rare=False)
    return float(value.estimate), float(value.ci)


def _cox_row(endpoint: str, analysis: str, arm: str, reference: str, frame: pl.DataFrame,
             log_hr: float, variance: float, *, lower: float | None = None, upper: float | None = None,
             p_value: float | None = None, fmi: float | None = None) -> dict[str, Any]:
    z = 1.959963984540054
    se = math.sqrt(variance)
    lo = lower if lower is not None else log_hr - z * se
    hi = upper if upper is not None else log_hr + z * se
    if p_value is None:
        p_value = float(math.erfc(abs(log_hr / se) / math.sqrt(2))) if se > 0 else float("nan")
    hr = math.exp(log_hr)
    e, e_ci = _e_values(hr, math.exp(lo), math.exp(hi))
    event = ENDPOINTS[endpoint][1]
    in_pair = frame.filter(pl.col(ARM).is_in([arm, reference]))
    return {"endpoint": endpoint, "analysis": analysis, "arm": arm, "reference": reference,
            "n": in_pair.height, "events": int(in_pair[event].sum()), "hazard_ratio": hr,
            "lower": math.exp(lo), "upper": math.exp(hi), "p_value": p_value, "e_value": e, "e_value_ci": e_ci,
            "fmi": fmi, "status": "computed", "message": ""}


def _not_computed(endpoint: str, analysis: str, arms: Sequence[str], reference: str, message: str) -> list[dict[str, Any]]:
    return [{"endpoint": endpoint, "analysis": analysis, "arm": arm, "reference": reference, "n": None,
             "events": None, "hazard_ratio": None, "lower": None, "upper": None, "p_value": None,
             "e_value": None, "e_value_ci": None, "fmi": None, "status": "not computed", "message": message}
            for arm in arms]


def _weights_rows(analysis: str, fits: Sequence[_Fit], arms: Sequence[str], message: str) -> list[dict[str, Any]]:
    if not fits:
        return [{"analysis": analysis, "arm": arm, "n": None, "n_trimmed": None, "ess": None, "weight_min": None,
                 "weight_max": None, "imputations": None, "status": "not computed", "message": message}
                for arm in arms]
    rows = []
    for arm in arms:
        ess = [f.weights.effective_sample_size()[arm] for f in fits]
        in_arm = [f.weights.treatment == arm for f in fits]
        kept = [f.weights.weights[a & f.weights.kept] for f, a in zip(fits, in_arm, strict=True)]
        rows.append({"analysis": analysis, "arm": arm, "n": int(in_arm[0].sum()),
                     "n_trimmed": int(np.mean([int((a & ~f.weights.kept).sum()) for f, a in zip(fits, in_arm, strict=True)])),
                     "ess": float(np.mean(ess)), "weight_min": float(min(k.min() for k in kept)),
                     "weight_max": float(max(k.max() for k in kept)),
                     "imputations": len(fits) if analysis == "imputed" else None,
                     "status": "computed", "message": message})
    return rows


def _overlap(fit: _Fit, arms: Sequence[str], reference: str) -> pl.DataFrame:
    """Histogram counts of each non-reference arm's propensity, per arm (bins of 0.05)."""
    rows: list[dict[str, Any]] = []
    levels = list(fit.weights.levels)
    treatment = fit.weights.treatment
    for of in [a for a in arms if a != reference]:
        p = fit.weights.propensity[:, levels.index(of)]
        for arm in arms:
            values = p[(treatment == arm) & fit.weights.kept]
            counts, _ = np.histogram(values, bins=_BINS)
            rows.extend({"propensity_of": of, "arm": arm, "bin_lower": float(_BINS[i]), "bin_upper": float(_BINS[i + 1]),
                         "n": int(c)} for i, c in enumerate(counts))
    return pl.DataFrame(rows, schema=OVERLAP_SCHEMA)


def _km(fit: _Fit, spec: AdjustedComparison) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Weighted Kaplan-Meier curves per arm (numbers at risk, events and censorings unweighted),
    and the weighted survival with the number at risk at the protocol's months."""
    curves, fixed = [], []
    weighted = _weighted_frame(fit)
    for endpoint in spec.outcomes:
        time_column, event_column, _label = ENDPOINTS[endpoint]
        for arm in spec.arms:
            part = weighted.filter(pl.col(ARM) == arm)
            if part.height == 0:
                continue
            t = part[time_column].cast(pl.Float64).to_numpy()
            e = part[event_column].cast(pl.Float64).to_numpy()
            km = stats.kaplan_meier(t, e, weights=part[_WEIGHT].to_numpy(), robust=True)
            ordered = np.sort(t)
            n_risk = t.size - np.searchsorted(ordered, km.time, side="left")
            n_event = np.array([int(e[t == x].sum()) for x in km.time], dtype=np.int64)
            n_exit = np.searchsorted(ordered, km.time, side="right") - np.searchsorted(ordered, km.time, side="left")
            curves.append(pl.DataFrame({
                "endpoint": endpoint, "group_var": ARM, "group": arm, "time": km.time, "n_risk": n_risk,
                "n_event": n_event, "n_censor": n_exit - n_event, "survival": km.survival, "se": km.se,
                "lower": km.lower, "upper": km.upper}, schema=CURVE_SCHEMA))
            for months in spec.risk_table_months:
                before = np.flatnonzero(km.time <= months)
                j = before[-1] if before.size else None
                fixed.append({"endpoint": endpoint, "arm": arm, "months": float(months),
                              "n_risk": int((t >= months).sum()),
                              "survival": 1.0 if j is None else float(km.survival[j]),
                              "lower": 1.0 if j is None else float(km.lower[j]),
                              "upper": 1.0 if j is None else float(km.upper[j])})
    return (pl.concat(curves) if curves else pl.DataFrame(schema=CURVE_SCHEMA),
            pl.DataFrame(fixed, schema=SURVIVAL_SCHEMA))


def adjusted_analyses(table: pl.DataFrame, protocol: Protocol) -> dict[str, pl.DataFrame]:
    """Every table of :data:`ADJUSTED_TABLES` for the protocol's ``[adjusted]`` section (none without it)."""
    spec = protocol.adjusted
    if spec is None:
        return {}
    arms = list(spec.arms)
    reference = spec.reference
    compared = [a for a in arms if a != reference]
    frame = adjusted_frame(table, spec)
    empty = [a for a in arms if frame.filter(pl.col(ARM) == a).height == 0]
    complete = frame.drop_nulls(list(spec.covariates))
    weights_rows: list[dict[str, Any]] = []
    balance: list[pl.DataFrame] = []
    cox_rows: list[dict[str, Any]] = []
    tables: dict[str, pl.DataFrame] = {}

    for endpoint in spec.outcomes:  # unadjusted: every patient of the analysis set, unweighted
        if empty:
            cox_rows.extend(_not_computed(endpoint, "unadjusted", compared, reference,
                                          f"arm(s) {', '.join(empty)} have no patient in the analysis set"))
            continue
        for arm, (log_hr, var) in _arm_log_hr(frame, endpoint, reference, weighted=False).items():
            cox_rows.append(_cox_row(endpoint, "unadjusted", arm, reference, frame, log_hr, var))

    fit, message, warned = (None, f"arm(s) {', '.join(empty)} have no patient in the analysis set", []) if empty \
        else _fit(complete, spec)
    note = "; ".join(warned)
    weights_rows.extend(_weights_rows("complete_case", [fit] if fit else [], arms, message or note))
    if fit is not None:
        balance.append(_balance_rows(fit, spec.covariates).with_columns(pl.lit("complete_case").alias("analysis")))
        tables["adjusted_overlap"] = _overlap(fit, arms, reference)
        tables["adjusted_km"], tables["adjusted_survival"] = _km(fit, spec)
        weighted = _weighted_frame(fit)
        for endpoint in spec.outcomes:
            for arm, (log_hr, var) in _arm_log_hr(weighted, endpoint, reference, weighted=True).items():
                cox_rows.append(_cox_row(endpoint, "weighted_complete_case", arm, reference, weighted, log_hr, var))
    else:
        for endpoint in spec.outcomes:
            cox_rows.extend(_not_computed(endpoint, "weighted_complete_case", compared, reference, message))

    if protocol.imputation is not None and not empty:
        cox_rows.extend(_imputed(frame, protocol, weights_rows, balance))

    tables["adjusted_weights"] = pl.DataFrame(weights_rows, schema=WEIGHTS_SCHEMA)
    tables["adjusted_balance"] = (pl.concat(balance).select(list(BALANCE_SCHEMA)) if balance
                                  else pl.DataFrame(schema=BALANCE_SCHEMA))
    tables["adjusted_cox"] = pl.DataFrame(cox_rows, schema=COX_SCHEMA)
    tables.setdefault("adjusted_overlap", pl.DataFrame(schema=OVERLAP_SCHEMA))
    tables.setdefault("adjusted_km", pl.DataFrame(schema=CURVE_SCHEMA))
    tables.setdefault("adjusted_survival", pl.DataFrame(schema=SURVIVAL_SCHEMA))
    return {name: tables[name] for name in ADJUSTED_TABLES}


def _imputed(frame: pl.DataFrame, protocol: Protocol, weights_rows: list[dict[str, Any]],
             balance: list[pl.DataFrame]) -> list[dict[str, Any]]:
    """The weighted analysis on every imputed set, pooled by Rubin's rules (rows of adjusted_cox)."""
    spec, imp = protocol.adjusted, protocol.imputation
    assert spec is not None and imp is not None
    arms, reference = list(spec.arms), spec.reference
    compared = [a for a in arms if a != reference]
    others = [c for c in spec.covariates if c not in imp.covariates]
    usable = frame.drop_nulls(others)  # covariates that are not imputed must be known
    outcomes = [ENDPOINTS[o][:2] for o in spec.outcomes]
    try:
        sets = impute(usable, impute_columns=list(imp.covariates), other_columns=[*others, ARM], outcomes=outcomes,
                      m=imp.m, seed=imp.seed, max_iter=imp.max_iter)
    except InputError as exc:
        weights_rows.extend(_weights_rows("imputed", [], arms, str(exc)))
        return [r for e in spec.outcomes for r in _not_computed(e, "weighted_imputed", compared, reference, str(exc))]
    fits: list[_Fit] = []
    warned: list[str] = []
    for i, imputed in enumerate(sets, start=1):
        fit, message, notes = _fit(imputed, spec)
        if fit is None:
            reason = f"imputed set {i} of {imp.m}: {message}"
            weights_rows.extend(_weights_rows("imputed", [], arms, reason))
            return [r for e in spec.outcomes for r in _not_computed(e, "weighted_imputed", compared, reference, reason)]
        fits.append(fit)
        warned.extend(n for n in notes if n not in warned)
    weights_rows.extend(_weights_rows("imputed", fits, arms, "; ".join(warned)))
    per_set = [_balance_rows(f, spec.covariates) for f in fits]
    keys = ["covariate", "level_a", "level_b"]
    balance.append(pl.concat(per_set).group_by(keys, maintain_order=True)
                   .agg(pl.col("smd_unweighted").mean(), pl.col("smd_weighted").mean())
                   .with_columns(pl.lit("imputed").alias("analysis")))
    rows = []
    for endpoint in spec.outcomes:
        estimates: dict[str, list[tuple[float, float]]] = {a: [] for a in compared}
        for fit in fits:
            for arm, value in _arm_log_hr(_weighted_frame(fit), endpoint, reference, weighted=True).items():
                estimates[arm].append(value)
        for arm in compared:
            pooled = stats.pool_rubin([v[0] for v in estimates[arm]], [v[1] for v in estimates[arm]],
                                      n=usable.height)
            rows.append(_cox_row(endpoint, "weighted_imputed", arm, reference, usable, pooled.estimate,
                                 pooled.variance, lower=pooled.lower, upper=pooled.upper,
                                 p_value=pooled.p_value, fmi=pooled.fmi))
    return rows


def adjusted_methods(protocol: Protocol) -> list[str]:
    """The Methods sentences of the adjusted comparison, competing risks and imputation, written
    from the protocol (every name, number and choice is the protocol's)."""
    out = []
    spec = protocol.adjusted
    if spec is not None:
        arms = [f"{spec.arm_labels[a].lower()} ({', '.join(_level_label(protocol, spec.treatment, lv) for lv in levels)})"
                for a, levels in spec.arms.items()]
        estimand = {"ATE": "the average treatment effect (inverse probability of treatment weights"
                           + (", stabilised by the arm's share" if spec.stabilize else "") + ")",
                    "ATT": f"the average effect in the {spec.arm_labels.get(spec.target or '', '').lower()} arm "
                           "(weights p_target / p_arm)",
                    "overlap": "the overlap population (generalised overlap weights, Li & Li 2019)"}[spec.estimand]
        extra = []
        if spec.trim is not None:
            extra.append(f"patients with a propensity below {spec.trim:g} were trimmed and the model refitted")
        if spec.truncate is not None:
            extra.append(f"weights were truncated at their {spec.truncate:g} quantile")
        extra.append(f"a weight above {spec.max_weight:g} stops the analysis")
        outcomes = " and ".join(ENDPOINTS[o][2].lower() for o in spec.outcomes)
        out.append(
            f"Adjusted comparison of {_join(arms)}: the propensity of each arm was estimated by "
            + ("logistic" if len(spec.arms) == 2 else "multinomial logistic")
            + f" regression on {_join([protocol.column_label(c) for c in spec.covariates])}, and patients were weighted "
            f"for {estimand}; " + "; ".join(extra) + ". Balance is the standardised mean difference (weighted mean "
            "difference over the pooled unweighted standard deviation; |SMD| < 0.1 taken as balanced), with Kish's "
            f"effective sample size per arm. {outcomes[0].upper() + outcomes[1:]}: weighted Kaplan-Meier curves "
            "(robust standard errors) and hazard ratios against "
            f"{spec.arm_labels[spec.reference].lower()} from a weighted Cox model of the arm alone with the robust "
            "(sandwich) variance; the unadjusted hazard ratio is the unweighted Cox model on all patients of the arms. "
            "E-values (VanderWeele & Ding 2017, outcome taken as common) give the strength of unmeasured "
            "confounding that would explain the hazard ratio (and its confidence limit) away.")
    imp = protocol.imputation
    if imp is not None and spec is not None:
        out.append(
            f"Missing {_join([protocol.column_label(c) for c in imp.covariates])} were imputed by chained equations "
            f"({imp.m} imputed sets, seed {imp.seed}, {imp.max_iter} rounds each; scikit-learn's IterativeImputer with "
            "Bayesian ridge regression and draws from the posterior predictive distribution), the model including the "
            "other covariates, the arm, and for each outcome the event indicator and the Nelson-Aalen cumulative "
            "hazard (White & Royston 2009). The weighted analysis was repeated on every imputed set and the log "
            "hazard ratios pooled by Rubin's rules (Barnard-Rubin degrees of freedom); the complete-case analysis "
            "is shown beside it. Weighted Kaplan-Meier curves are of the complete cases.")
    for cr in protocol.competing_risks:  # a sentence per analysis, in the protocol's order
        by = "arm" if cr.by == "arm" else _in_sentence(protocol.column_label(cr.by))
        event = {"progression": "progression, with death without progression as the competing event (a PFS event "
                                "at the time of death)",
                 "subsequent_therapy": "the start of a subsequent therapy (the next line after the index line), with "
                                       "death before it as the competing event and censoring at the last contact"}[cr.event]
        reference = (f"against {protocol.adjusted.arm_labels[protocol.adjusted.reference].lower()}"
                     if cr.by == "arm" and protocol.adjusted is not None else "against the first group")
        out.append(
            f"Competing risks: the cumulative incidence of {event}, was estimated by the Aalen-Johansen estimator "
            f"by {by}, and compared by Gray's test (1988), with subdistribution hazard ratios {reference} from "
            "Fine-Gray models (1999) of the group alone; a Kaplan-Meier complement would overstate it.")
    return out


def _in_sentence(label: str) -> str:
    """A label inside a sentence: its first letter in lower case, unless it starts an acronym ("LDH ...")."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def _level_label(protocol: Protocol, column: str, level: str) -> str:
    if column == "regimen_class":
        for c in protocol.regimen_classes:
            if c.name == level:
                return c.label
    return level.replace("_", " ")


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"
