"""oncorwe.stats: survival and response statistics that equal R's ``survival``.

A library of its own (imports nothing else of oncorwe but the exception tree): plain functions over
validated arrays, immutable results with ``to_dict()`` and, where tabular, ``to_frame()`` (polars).

One name per concept across functions and results: ``time`` and ``event`` (inputs: arrays, or
column names for ``cox_ph``), ``statistic`` / ``df`` / ``p_value`` (every test), ``se`` (every
standard error), ``lower`` / ``upper`` (every interval), ``conf_level``, ``n`` and ``n_events``
(counts), ``groups`` (the compared groups' names, in result order).
"""

from oncorwe.stats._binomial import RateComparison, binomial_ci, compare_rates
from oncorwe.stats._cox import CoxResult, cox_ph
from oncorwe.stats._km import (
    ConfType,
    KaplanMeier,
    RestrictedMean,
    kaplan_meier,
    reverse_km_followup,
)
from oncorwe.stats._landmark import LandmarkData, landmark
from oncorwe.stats._logrank import LogRankResult, logrank_test
from oncorwe.stats._types import Estimate, Test
from oncorwe.stats._zph import ProportionalHazardsTest, proportional_hazards_test

__all__ = [
    "ConfType",
    "CoxResult",
    "Estimate",
    "KaplanMeier",
    "LandmarkData",
    "LogRankResult",
    "ProportionalHazardsTest",
    "RateComparison",
    "RestrictedMean",
    "Test",
    "binomial_ci",
    "compare_rates",
    "cox_ph",
    "kaplan_meier",
    "landmark",
    "logrank_test",
    "proportional_hazards_test",
    "reverse_km_followup",
]
