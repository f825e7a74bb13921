"""Small value types shared by every estimator: an estimate with its interval, a test."""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Estimate", "Test"]


class Estimate(NamedTuple):
    """A point estimate with its confidence interval (``nan`` bounds where R prints NA)."""

    value: float
    lower: float
    upper: float

    def __repr__(self) -> str:
        return f"Estimate(value={_fmt(self.value)}, lower={_fmt(self.lower)}, upper={_fmt(self.upper)})"


class Test(NamedTuple):
    """A test statistic with its degrees of freedom and p-value."""

    statistic: float
    df: float
    p_value: float

    def __repr__(self) -> str:
        return f"Test(statistic={_fmt(self.statistic)}, df={_fmt(self.df)}, p_value={self.p_value:.4g})"


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.6g}"
