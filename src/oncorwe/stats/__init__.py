"""oncorwe.stats: survival and response statistics that equal R's ``survival``.

A library of its own (imports nothing else of oncorwe but the exception tree): plain functions over
validated arrays, immutable results with ``to_dict()`` and, where tabular, ``to_frame()`` (polars).

One name per concept across functions and results: ``time`` and ``event`` (inputs: arrays, or
column names for ``cox_ph``), ``statistic`` / ``df`` / ``p_value`` (every test), ``se`` (every
standard error), ``lower`` / ``upper`` (every interval), ``conf_level``, ``n`` and ``n_events``
(counts), ``groups`` (the compared groups' names, in result order).
"""

from oncorwe.stats._balance import Balance, balance
from oncorwe.stats._binomial import RateComparison, binomial_ci, compare_rates
from oncorwe.stats._competing import (
    CumulativeIncidence,
    FineGrayResult,
    cumulative_incidence,
    fine_gray,
    gray_test,
)
from oncorwe.stats._cox import CoxResult, cox_ph
from oncorwe.stats._cox_federated import (
    CoxResidualRequest,
    CoxResidualSums,
    CoxSiteSums,
    FederatedCoxResult,
    StratumHazards,
    StratumSums,
    cox_federated,
    cox_residual_request,
    cox_site_residual_sums,
    cox_site_sums,
    proportional_hazards_test_federated,
    robust_variance_federated,
)
from oncorwe.stats._evalue import EValue, e_value
from oncorwe.stats._km import (
    ConfType,
    KaplanMeier,
    RestrictedMean,
    kaplan_meier,
    reverse_km_followup,
)
from oncorwe.stats._landmark import LandmarkData, landmark
from oncorwe.stats._logrank import LogRankResult, logrank_test
from oncorwe.stats._rubin import RubinPooled, pool_rubin
from oncorwe.stats._types import Estimate, Test
from oncorwe.stats._weights import CovariateWarning, PropensityWeights, propensity_weights
from oncorwe.stats._zph import ProportionalHazardsTest, proportional_hazards_test

__all__ = [
    "Balance",
    "ConfType",
    "CovariateWarning",
    "CoxResidualRequest",
    "CoxResidualSums",
    "CoxResult",
    "CoxSiteSums",
    "CumulativeIncidence",
    "EValue",
    "Estimate",
    "FederatedCoxResult",
    "FineGrayResult",
    "KaplanMeier",
    "LandmarkData",
    "LogRankResult",
    "PropensityWeights",
    "ProportionalHazardsTest",
    "RateComparison",
    "RestrictedMean",
    "RubinPooled",
    "StratumHazards",
    "StratumSums",
    "Test",
    "balance",
    "binomial_ci",
    "compare_rates",
    "cox_federated",
    "cox_ph",
    "cox_residual_request",
    "cox_site_residual_sums",
    "cox_site_sums",
    "cumulative_incidence",
    "e_value",
    "fine_gray",
    "gray_test",
    "kaplan_meier",
    "landmark",
    "logrank_test",
    "pool_rubin",
    "propensity_weights",
    "proportional_hazards_test",
    "proportional_hazards_test_federated",
    "reverse_km_followup",
    "robust_variance_federated",
]
