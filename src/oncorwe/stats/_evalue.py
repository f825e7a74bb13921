"""E-values for unmeasured confounding (VanderWeele & Ding 2017).

The E-value of a risk ratio RR >= 1 is ``RR + sqrt(RR (RR - 1))``: the minimum strength of
association, on the risk-ratio scale, that an unmeasured confounder would need with both the treatment
and the outcome, above the measured covariates, to explain the estimate away. A ratio below 1 is
first inverted. Other measures are turned into approximate risk ratios first:

- ``"HR"``: with a rare outcome (``rare=True``, under about 15% by the end of follow-up) RR = HR;
  otherwise RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele 2020).
- ``"OR"``: RR = OR if rare, else sqrt(OR).

For the confidence interval, the E-value of the limit nearer the null; 1 when the interval includes 1.

References
----------
VanderWeele TJ, Ding P (2017). Sensitivity analysis in observational research: introducing the
E-value. Ann Intern Med 167:268-274.
VanderWeele TJ (2020). Optimal approximate conversions of odds ratios and hazard ratios to risk
ratios. Biometrics 76:746-752. R package ``EValue`` (``evalues.HR``, ``evalues.OR``, ``evalues.RR``).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Literal, NamedTuple

from oncorwe.errors import InputError

__all__ = ["EValue", "e_value"]

Measure = Literal["RR", "HR", "OR"]
_MEASURES = ("RR", "HR", "OR")


class EValue(NamedTuple):
    """E-values of an estimate and of its confidence limit nearer 1 (nan when no limits given).

    ``risk_ratio`` holds the (approximate) risk ratios of the estimate, lower and upper limit that
    the E-values were computed from.
    """

    estimate: float
    ci: float
    risk_ratio: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, suitable for JSON."""
        return {"estimate": self.estimate, "ci": self.ci, "risk_ratio": list(self.risk_ratio)}


def _check_ratio(value: Any, name: str) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}: must be a finite ratio > 0, got {value!r}")
    return float(value)


def _to_risk_ratio(value: float, measure: str, rare: bool) -> float:
    if measure == "RR" or rare:
        return value
    if measure == "OR":
        return math.sqrt(value)
    return (1 - 0.5 ** math.sqrt(value)) / (1 - 0.5 ** math.sqrt(1 / value))


def _e(rr: float) -> float:
    rr = 1 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1))


def e_value(
    estimate: float,
    *,
    lower: float | None = None,
    upper: float | None = None,
    measure: Measure = "HR",
    rare: bool = False,
) -> EValue:
    """E-value of a ratio estimate and of its confidence interval (see the module text).

    Parameters
    ----------
    estimate : float > 0
        The ratio (risk ratio, hazard ratio or odds ratio).
    lower, upper : float > 0, optional
        Its confidence limits (either or both); they must enclose the estimate.
    measure : {"RR", "HR", "OR"}
    rare : bool
        The outcome is rare (HR and OR then approximate the RR directly); ignored for "RR".

    Raises
    ------
    InputError
        Non-positive or non-finite ratios, limits on the wrong side, an unknown measure.
    """
    if measure not in _MEASURES:
        raise InputError(f"measure: must be one of {_MEASURES}, got {measure!r}")
    if not isinstance(rare, bool):
        raise InputError(f"rare: must be True or False, got {rare!r}")
    point = _check_ratio(estimate, "estimate")
    lo = None if lower is None else _check_ratio(lower, "lower")
    hi = None if upper is None else _check_ratio(upper, "upper")
    if lo is not None and lo > point:
        raise InputError(f"lower: {lo:g} is above the estimate {point:g}")
    if hi is not None and hi < point:
        raise InputError(f"upper: {hi:g} is below the estimate {point:g}")
    rr = _to_risk_ratio(point, measure, rare)
    rr_lo = math.nan if lo is None else _to_risk_ratio(lo, measure, rare)
    rr_hi = math.nan if hi is None else _to_risk_ratio(hi, measure, rare)
    if lo is None and hi is None:
        ci = math.nan
    elif rr >= 1:
        near = rr_lo if lo is not None else None
        ci = math.nan if near is None else (1.0 if near <= 1 else _e(near))
    else:
        near = rr_hi if hi is not None else None
        ci = math.nan if near is None else (1.0 if near >= 1 else _e(near))
    return EValue(_e(rr), ci, (rr, rr_lo, rr_hi))
