"""A realistic per-patient analysis table for tests of analysis and report (tests only, never shipped).

463 patients from 24 centres with the published regimen allocation, response counts and survival of
the Goldinger study's order of magnitude; seeded, so every call gives the same table.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from oncorwe import protocol

REGIMENS = {  # class: (patients, responders)
    "carboplatin_paclitaxel": (147, 21),
    "dacarbazine": (118, 12),
    "temozolomide": (71, 2),
    "taxane": (40, 10),
    "fotemustine": (29, 3),
    "other": (58, 10),
}

def goldinger_schema() -> dict[str, pl.DataType]:
    """The flagship protocol's analysis table columns (fixed endpoints, then its covariates)."""
    return protocol.load("goldinger2022").analysis_schema()


def fake_analysis_table(seed: int = 7, *, n_centres: int = 24) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    regimen = np.concatenate([[name] * n for name, (n, _) in REGIMENS.items()])
    n = regimen.size
    responder = np.zeros(n, dtype=bool)
    start = 0
    for _name, (count, resp) in REGIMENS.items():
        idx = rng.choice(np.arange(start, start + count), size=resp, replace=False)
        responder[idx] = True
        start += count
    order = rng.permutation(n)
    regimen, responder = regimen[order], responder[order]
    cr = np.zeros(n, dtype=bool)
    cr[rng.choice(np.flatnonzero(responder), size=2, replace=False)] = True
    best = np.where(cr, "CR", np.where(responder, "PR", "PD"))
    non = np.flatnonzero(~responder)
    sd = rng.choice(non, size=96, replace=False)
    best[sd] = "SD"
    rest = np.setdiff1d(non, sd)
    best[rng.choice(rest, size=20, replace=False)] = "NE"

    pfs = rng.exponential(3.7, n) * np.where(responder, 3.0, 1.0)
    os_ = pfs + rng.exponential(6.0, n) * np.where(responder, 1.8, 1.0)
    admin_censor = rng.uniform(6, 60, n)
    os_event = (os_ <= admin_censor).astype(np.int8)
    os_months = np.minimum(os_, admin_censor)
    pfs_event = (pfs <= os_months).astype(np.int8)
    pfs_months = np.minimum(pfs, os_months)
    time_to_response = np.where(responder, np.minimum(rng.uniform(1.5, 4.0, n), pfs_months * 0.8), np.nan)
    dor = np.where(responder, pfs_months - time_to_response, np.nan)

    sex = np.where(rng.random(n) < 0.6, "male", "female")
    prior = rng.choice(["anti_pd1", "anti_ctla4", "anti_pd1_ctla4"], size=n, p=[0.3, 0.44, 0.26])
    ecog = rng.choice([0, 1, 2, 3], size=n, p=[0.35, 0.4, 0.2, 0.05]).astype(float)
    ecog[rng.random(n) < 0.05] = np.nan
    ldh_ratio = rng.lognormal(0.1, 0.5, n)
    ldh_ratio[rng.random(n) < 0.08] = np.nan
    braf = (rng.random(n) < 0.15).astype(float)
    braf[rng.random(n) < 0.04] = np.nan
    m_stage = rng.choice(["M1a", "M1b", "M1c", "M1d"], size=n, p=[0.06, 0.08, 0.57, 0.29])
    brain = m_stage == "M1d"
    sub = rng.random(n) < 0.48
    sub_class = np.where(sub, rng.choice(
        ["pd1_with_or_without_ipilimumab", "ipilimumab_alone", "ici_after_other", "targeted", "other"],
        size=n, p=[0.5, 0.05, 0.1, 0.15, 0.2]), None)
    sub_resp = np.where(sub, rng.random(n) < 0.13, None)
    centre = np.array([f"C{(i % n_centres) + 1:02d}" for i in range(n)])
    index_date = [dt.date(2012, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 2000, n)]
    # the next line starts between the progression and the end of follow-up (a stream of its own, so
    # the columns above stay as they were)
    sub_months = np.where(sub, pfs_months + np.random.default_rng(seed + 1).random(n) * (os_months - pfs_months), np.nan)

    def nullable(values: np.ndarray) -> list[object]:
        return [None if (isinstance(v, float) and np.isnan(v)) else v for v in values.tolist()]

    data = {
        "patient_id": [f"{c}:PT{i:04d}" for i, c in enumerate(centre)],
        "centre_id": centre.tolist(),
        "index_date": index_date,
        "age_years": np.round(rng.normal(59, 13, n), 1).tolist(),
        "sex": sex.tolist(),
        "primary_site": rng.choice(["cutaneous", "acral", "mucosal", "unknown_primary"], size=n).tolist(),
        "m_stage": m_stage.tolist(),
        "m1c_or_worse": np.isin(m_stage, ["M1c", "M1d"]).tolist(),
        "brain_metastases": brain.tolist(),
        "braf_v600": [None if np.isnan(b) else bool(b) for b in braf],
        "ecog": [None if np.isnan(e) else int(e) for e in ecog],
        "ldh_ratio": nullable(ldh_ratio),
        "ldh_elevated": [None if np.isnan(r) else bool(r > 1) for r in ldh_ratio],
        "prior_ici_class": prior.tolist(),
        "prior_anti_pd1": np.isin(prior, ["anti_pd1", "anti_pd1_ctla4"]).tolist(),
        "regimen_class": regimen.tolist(),
        "regimen_ingredients": regimen.tolist(),
        "combined_with_targeted_or_immuno": (rng.random(n) < 0.06).tolist(),
        "best_response": best.tolist(),
        "best_response_source": ["derived"] * n,
        "responder": responder.tolist(),
        "disease_control": np.isin(best, ["CR", "PR", "SD"]).tolist(),
        "pfs_months": pfs_months.tolist(),
        "pfs_event": pfs_event.tolist(),
        "os_months": os_months.tolist(),
        "os_event": os_event.tolist(),
        "duration_of_response_months": nullable(dor),
        "duration_of_response_event": [int(e) if r else None for e, r in zip(pfs_event, responder, strict=True)],
        "chemo_duration_weeks": np.round(rng.gamma(2.0, 4.5, n), 1).tolist(),
        "subsequent_therapy": sub.tolist(),
        "subsequent_therapy_months": nullable(sub_months),
        "subsequent_therapy_class": sub_class.tolist(),
        "subsequent_best_response": [None if s is None else ("PR" if r else "PD") for s, r in zip(sub_class, sub_resp, strict=True)],
        "subsequent_responder": sub_resp.tolist(),
    }
    # toxicity (issue 16), from a stream of its own so that no other column moves: the odd-numbered
    # centres report adverse events, the others do not (null)
    ae_rng = np.random.default_rng([seed, 16])
    terms = ["Neutrophil count decreased", "Platelet count decreased", "Fatigue", "Nausea"]
    reporting = np.array([int(c[1:]) % 2 == 1 for c in centre])
    severe = ae_rng.random(n) < 0.3
    picked = [sorted(set(ae_rng.choice(terms, size=int(ae_rng.integers(1, 3))).tolist())) for _ in range(n)]
    data["severe_adverse_event"] = [bool(s) if r else None for s, r in zip(severe, reporting, strict=True)]
    data["severe_adverse_event_terms"] = ["; ".join(t) if r and s else None
                                          for t, s, r in zip(picked, severe, reporting, strict=True)]
    schema = goldinger_schema()
    return pl.DataFrame(data, schema={c: schema[c] for c in data}).select(list(schema))
