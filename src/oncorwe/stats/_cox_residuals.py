"""Residual-type quantities of a fitted Cox model: score residuals (for the robust variance) and the
time-weighted score and information of the proportional hazards test.

References
----------
Lin DY, Wei LJ (1989). The robust inference for the Cox proportional hazards model. JASA 84:1074-8.
Grambsch PM, Therneau TM (1994). Proportional hazards tests and diagnostics based on weighted
residuals. Biometrika 81:515-526. R package ``survival``: ``coxscore2.c``, ``zph1.c``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from oncorwe.stats._cox_core import (
    FitState,
    RiskSets,
    efron_sums,
    forward_cumsum,
    weighted_information,
)

__all__ = ["score_residuals", "time_weighted_score"]

FloatArray = npt.NDArray[np.float64]


def score_residuals(rs: RiskSets, x: FloatArray, state: FitState) -> FloatArray:
    """Score residuals per sorted row (n, p), as R's ``coxscore2`` (Efron or Breslow).

    For subject j: its own share of ``x_j - mean`` at its death, minus
    ``risk_j * sum (x_j - mean(t)) dLambda(t)`` over the death times it was at risk for; tied deaths
    at their own time carry the Efron weights ``1 - k/d``. With case weights the hazard increments
    carry the mean death weight of their group; the residuals stay per unit of weight (R multiplies
    them by the weights for the robust variance).
    """
    sums = state.sums
    s1, d1 = sums.s1, sums.d1
    gw = np.ones(sums.inv.size) if state.death_weight is None else state.death_weight
    hazard = gw * sums.inv
    hazard_mean = s1 * (gw * sums.inv2)[:, None] - d1 * (gw * sums.f_inv2)[:, None]
    own_hazard = gw * (sums.inv - sums.f_inv)
    own_hazard_mean = (
        s1 * (gw * (sums.inv2 - sums.f_inv2))[:, None]
        - d1 * (gw * (sums.f_inv2 - sums.ff_inv2))[:, None]
    )
    d = rs.deaths_per_group[rs.death_groups].astype(np.float64)
    mean_of_means = (s1 * sums.inv[:, None] - d1 * sums.f_inv[:, None]) / d[:, None]
    p = x.shape[1]
    dg = rs.death_groups
    h_group = np.zeros(rs.n_groups)
    h_group[dg] = hazard
    hm_group = np.zeros((rs.n_groups, p))
    hm_group[dg] = hazard_mean
    cum_h = rs.per_row(forward_cumsum(h_group, rs))
    cum_hm = rs.per_row(forward_cumsum(hm_group, rs))
    risk = state.risk
    resid = -risk[:, None] * (x * cum_h[:, None] - cum_hm)
    dead = rs.death_rows
    # index of each death's death group: death groups in order, d deaths each
    j = np.repeat(np.arange(dg.size), rs.deaths_per_group[dg])
    r_dead = risk[dead][:, None]
    x_dead = x[dead]
    # a death is not at risk with full weight at its own time: swap in the Efron-weighted term
    resid[dead] += r_dead * (x_dead * hazard[j][:, None] - hazard_mean[j])
    resid[dead] -= r_dead * (x_dead * own_hazard[j][:, None] - own_hazard_mean[j])
    resid[dead] += x_dead - mean_of_means[j]
    return resid


def time_weighted_score(
    rs: RiskSets, x: FloatArray, eta: FloatArray, group_time_weight: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Score (2p) and information (2p x 2p) of the model ``beta + gamma * g(t)`` at ``gamma = 0``.

    ``eta`` is the fitted linear predictor (sorted rows); ``group_time_weight`` is ``g(t)`` per
    (stratum, time) group. Blocks: ``I11`` as the fit, ``I12 = sum g * (...)``, ``I22 = sum g^2 (...)``,
    as R's ``zph1.c`` (Grambsch & Therneau 1994).
    """
    risk = np.exp(eta)
    sums = efron_sums(rs, x, risk)
    w = group_time_weight[rs.death_groups]
    dead = rs.death_rows
    death_weight = rs.per_row(group_time_weight)[dead]
    row_mean_sum = sums.s1 * sums.inv[:, None] - sums.d1 * sums.f_inv[:, None]
    u1 = x[dead].sum(axis=0) - row_mean_sum.sum(axis=0)
    u2 = (x[dead] * death_weight[:, None]).sum(axis=0) - (row_mean_sum * w[:, None]).sum(axis=0)
    i11 = weighted_information(rs, x, risk, sums, None)
    i12 = weighted_information(rs, x, risk, sums, w)
    i22 = weighted_information(rs, x, risk, sums, w * w)
    p = x.shape[1]
    info = np.empty((2 * p, 2 * p))
    info[:p, :p] = i11
    info[:p, p:] = i12
    info[p:, :p] = i12.T
    info[p:, p:] = i22
    return np.concatenate([u1, u2]), info
