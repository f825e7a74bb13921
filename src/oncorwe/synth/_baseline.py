"""Baseline draw: who the patients are, with the study's exact counts among the eligible ones.

Every eligible patient gets covariates (sex, BRAF, M stage, brain metastases, ECOG, LDH, age),
a regimen, a prior ICI class and a best response such that the counts of the targets file hold
exactly (scaled proportionally for another size). Responders are drawn preferring a good prognosis
(the prognostic score ``risk`` below), so covariates and outcome are associated as in real data.
Excluded records (about one in five on top) get the same kind of draw without exact counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.synth._allocate import choose_exact, gumbel_keys, scale_counts, split_exact, top_k
from oncorwe.synth._design import EPOCH, day_number, study_design

__all__ = ["EPOCH", "Cohort", "day_number", "draw_cohort", "stream"]

RESPONSES = ("CR", "PR", "SD", "PD", "NE")
N_UNIFORMS = 24  # the timeline builder uses u[0] .. u[21]


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per purpose, so adding one draw never shifts the others."""
    key = [ord(c) for c in name]
    return np.random.default_rng([seed, *key])


@dataclass(frozen=True)
class Cohort:
    """Patient-level arrays, one entry per generated (non-duplicate) record; eligible ones first."""

    n_eligible: int
    reason: npt.NDArray[np.object_]  # "" for eligible, else the exclusion reason
    male: npt.NDArray[np.bool_]
    braf: npt.NDArray[np.int8]  # 1 V600 mutant, 0 wild type, -1 unknown
    m_stage: npt.NDArray[np.object_]
    brain: npt.NDArray[np.bool_]
    ecog: npt.NDArray[np.int8]  # -1 = not recorded
    ldh_ratio: npt.NDArray[np.float64]  # NaN = not recorded
    primary_site: npt.NDArray[np.object_]
    age_years: npt.NDArray[np.float64]  # latent age at the index date
    stage: npt.NDArray[np.object_]
    regimen_class: npt.NDArray[np.object_]
    regimen: npt.NDArray[np.object_]  # chemotherapy ingredients, "+"-joined, sorted
    partner: npt.NDArray[np.object_]  # non-chemotherapy ingredients of the index line, or ""
    prior: npt.NDArray[np.object_]  # anti_pd1 | anti_ctla4 | combined | sequence
    bor: npt.NDArray[np.object_]
    index_day: npt.NDArray[np.int64]
    risk: npt.NDArray[np.float64]  # prognostic score (higher = worse)
    uniforms: npt.NDArray[np.float32]  # per-patient uniforms for the timeline builder
    # per regimen class, the key (log prognosis weight + Gumbel noise) a patient needs to respond:
    # the k-th largest key of the class's patients (exact counts), or the thresholds given
    response_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.reason.shape[0])

    @property
    def eligible(self) -> npt.NDArray[np.bool_]:
        return self.reason == ""


def _year_days(rng: np.random.Generator, weights: dict[str, Any], n: int) -> npt.NDArray[np.int64]:
    years = np.array([int(y) for y in weights], dtype=np.int64)
    p = np.array([float(w) for w in weights.values()])
    pick = rng.choice(years.shape[0], size=n, p=p / p.sum())
    starts = np.array([day_number(dt.date(int(y), 1, 1)) for y in years], dtype=np.int64)
    lengths = np.array([366 if int(y) % 4 == 0 else 365 for y in years], dtype=np.int64)
    return starts[pick] + np.floor(rng.random(n) * lengths[pick]).astype(np.int64)


def _labels(counts: dict[str, int]) -> npt.NDArray[np.object_]:
    return np.array([k for k, v in counts.items() for _ in range(v)], dtype=object)


def sickness(indication: dict[str, Any], *, latent_ecog: npt.NDArray[np.int8], ldh_elevated: npt.NDArray[np.bool_],
             brain: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """The score by which the treating physician chose the regimen (higher = sicker)."""
    return (indication["ecog_2_or_more"] * (latent_ecog >= 2) + indication["ldh_elevated"] * ldh_elevated
            + indication["brain_metastases"] * brain).astype(float)


def _by_indication(rng: np.random.Generator, eligible: npt.NDArray[np.bool_], counts: dict[str, int],
                   indication: dict[str, Any], **covariates: Any) -> npt.NDArray[np.object_]:
    """Exactly ``counts`` patients per regimen class, the classes of ``indication["healthier"]``
    drawn first with weights exp(-strength * sickness) (sicker patients more often get the others,
    the single agents), the rest at random among those left."""
    healthier = list(indication["healthier"])
    weight = np.exp(-float(indication["strength"]) * sickness(indication, **covariates))
    ordered = {**{k: counts[k] for k in healthier}, **{k: v for k, v in counts.items() if k not in healthier}}
    return split_exact(rng, eligible, ordered, {k: weight for k in healthier})


def _responders(rng: np.random.Generator, candidates: npt.NDArray[np.bool_], k: int, good: npt.NDArray[np.float64],
                threshold: float | None) -> tuple[npt.NDArray[np.bool_], float]:
    """The responders among ``candidates`` and the key a patient needed: key = log(good) + Gumbel
    noise (:func:`gumbel_keys`, as ``choose_exact`` draws them); without ``threshold`` the ``k`` largest keys
    (:func:`top_k`: the same patients as ``choose_exact``; the threshold is then the midpoint between the k-th
    and the (k+1)-th key), with one every candidate whose key exceeds it.

    The threshold makes a patient's response a function of the patient alone (prognosis, noise)
    and of the class, not of who else got the class: a large cohort drawn with the indication
    gives each class's threshold, and the randomised cohort of the true effect responds by them,
    so both worlds share one response model per class (issue 15, docs/synthetic-data.md).
    """
    keys = gumbel_keys(rng, candidates, good)
    if threshold is not None:
        return candidates & (keys > threshold), threshold
    out = top_k(keys, candidates, k)
    if k <= 0:
        return out, float("inf")
    kth = float(keys[out].min())
    rest = keys[~out & candidates]
    return out, (kth + float(rest.max())) / 2 if rest.size else kth


def draw_cohort(targets: dict[str, Any], n_eligible: int, excluded: dict[str, int], seed: int,
                response_thresholds: dict[str, float] | None = None) -> Cohort:
    """Draw the eligible patients (exact counts) and the excluded records (reasons as given).

    ``excluded`` must not include duplicate referrals (they are copies, made later).
    ``response_thresholds`` (per regimen class, ``Cohort.response_thresholds`` of another cohort):
    responders by those thresholds instead of the exact published counts (the true effect's
    randomised cohort, ``_adjusted_truth``).
    """
    pub = targets["published"]
    unp = targets["unpublished"]
    design = study_design(targets["study"]["name"])
    scale = n_eligible / targets["study"]["eligible"]
    rng = stream(seed, "baseline")
    n_ex = sum(excluded.values())
    n = n_eligible + n_ex
    elig = np.zeros(n, dtype=bool)
    elig[:n_eligible] = True
    reason = np.array([""] * n_eligible + [k for k, v in excluded.items() for _ in range(v)], dtype=object)

    def count(value: float) -> int:
        return round(value * scale)

    def marginal(k_eligible: int) -> npt.NDArray[np.bool_]:
        # exact among the eligible, same share among the excluded
        flags = choose_exact(rng, elig, k_eligible)
        flags[~elig] = rng.random(n_ex) < k_eligible / max(n_eligible, 1)
        return flags

    counts = pub["counts"]
    male = marginal(count(counts["male"]))
    braf_mut = marginal(count(counts["braf_v600"]))
    braf_unknown = choose_exact(rng, elig & ~braf_mut, count(unp["braf_unknown"]))
    braf = np.where(braf_mut, 1, np.where(braf_unknown, -1, 0)).astype(np.int8)
    m1c = marginal(count(counts["m1c_or_worse"]))
    brain = choose_exact(rng, elig & m1c, count(counts["brain_metastases"]))
    brain[~elig] = m1c[~elig] & (rng.random(n_ex) < counts["brain_metastases"] / counts["m1c_or_worse"])
    # AJCC 8 writes brain metastases as M1d; the centres of the era mostly wrote M1c (AJCC 7)
    m_stage = np.where(m1c, "M1c", np.where(rng.random(n) < 0.45, "M1a", "M1b")).astype(object)
    m_stage[brain & (rng.random(n) < 0.4)] = "M1d"
    stage = np.full(n, "IV", dtype=object)

    shares = np.array(unp["ecog_shares"], dtype=float)
    ecog = rng.choice(np.arange(len(shares)), size=n, p=shares / shares.sum()).astype(np.int8)
    latent_ecog = ecog.copy()  # what the patient has, recorded or not
    # missing at random: more often with brain metastases (recorded), the same share overall
    missing_odds = np.where(brain, float(unp.get("missing_share_ratio_brain_metastases", 1.0)), 1.0)
    missing_odds /= missing_odds.mean()
    ecog[rng.random(n) < unp["ecog_missing_share"] * missing_odds] = -1
    ldh_elevated = rng.random(n) < unp["ldh_elevated_share"]
    ldh_ratio = np.where(
        ldh_elevated, 1.0 + rng.lognormal(np.log(0.45), 0.8, n), rng.uniform(0.45, 0.99, n)
    )
    ldh_ratio[rng.random(n) < unp["ldh_missing_share"] * missing_odds] = np.nan
    sites = unp["primary_site_shares"]
    primary_site = rng.choice(np.array(list(sites), dtype=object), size=n, p=np.array(list(sites.values())) / sum(sites.values()))
    age = np.clip(rng.normal(targets["published"]["times"]["age_median_years"], unp["age_sd_years"], n), 21, 89)

    # the prognosis is the patient's, whether or not ECOG and LDH were recorded
    risk = (
        0.35 * brain
        + 0.25 * m1c
        + 0.45 * ldh_elevated
        + 0.5 * (latent_ecog >= 2)
        - 0.2 * (latent_ecog == 0)
    ).astype(float)

    # regimen class and the responders in each (exact), then CR among responders
    reg = pub["regimens"]
    reg_counts = scale_counts({k: v[0] for k, v in reg.items()}, n_eligible)
    regimen_class = np.empty(n, dtype=object)
    regimen_class[:n_eligible] = rng.permutation(_labels(reg_counts))
    regimen_class[~elig] = rng.choice(np.array(list(reg), dtype=object), size=n_ex, p=np.array([v[0] for v in reg.values()]) / sum(v[0] for v in reg.values()))
    indication = unp.get("indication")
    if indication:  # confounding by indication, drawn from its own stream (the other draws stay)
        regimen_class[:n_eligible] = _by_indication(
            stream(seed, "indication"), elig, reg_counts, indication,
            latent_ecog=latent_ecog, ldh_elevated=ldh_elevated, brain=brain)[:n_eligible]
    good = np.exp(-0.9 * risk)
    responder = np.zeros(n, dtype=bool)
    thresholds: dict[str, float] = {}
    for cls, (patients, resp) in reg.items():
        k = min(round(resp * reg_counts[cls] / patients) if patients else 0, reg_counts[cls])
        chosen, thresholds[cls] = _responders(
            rng, elig & (regimen_class == cls), k, good,
            None if response_thresholds is None else response_thresholds[cls])
        responder |= chosen
    bor_counts = scale_counts(dict(pub["best_response"]), n_eligible)
    n_resp = int(responder.sum())
    cr_pr = scale_counts({"CR": bor_counts["CR"], "PR": bor_counts["PR"]}, n_resp)
    non = scale_counts({k: bor_counts[k] for k in ("SD", "PD", "NE")}, n_eligible - n_resp)
    bor = np.empty(n, dtype=object)
    bor[responder] = split_exact(rng, responder, cr_pr)[responder]
    nonresp = elig & ~responder
    # taxane patients: enough SD for their longer published median PFS (unpublished split)
    tax_non = nonresp & (regimen_class == "taxane")
    tax_sd = choose_exact(rng, tax_non, min(count(unp["taxane_stable_disease"]), non["SD"], int(tax_non.sum())))
    bor[tax_sd] = "SD"
    # the other taxane non-responders progress at their first scan: the published lower CI bound
    # of the taxane median PFS (2.1 months in 40 patients) needs 15 or more events by then
    tax_pd = tax_non & ~tax_sd
    bor[tax_pd] = "PD"
    rest = nonresp & ~tax_sd & ~tax_pd
    bor[rest] = split_exact(
        rng, rest, {"NE": non["NE"], "SD": non["SD"] - int(tax_sd.sum()), "PD": non["PD"] - int(tax_pd.sum())},
        {"NE": np.exp(1.2 * risk), "SD": np.exp(-0.6 * risk)},
    )[rest]
    bor_share = np.array([pub["best_response"][r] for r in RESPONSES], dtype=float)
    bor[~elig] = rng.choice(np.array(RESPONSES, dtype=object), size=n_ex, p=bor_share / bor_share.sum())

    # regimen ingredients within class (exact split of each class's patients)
    regimen = np.empty(n, dtype=object)
    for cls, options in unp["regimen_ingredients"].items():
        in_cls = regimen_class == cls
        split = scale_counts({name: k for name, k in options}, int((in_cls & elig).sum()))
        regimen[in_cls & elig] = split_exact(rng, in_cls & elig, split)[in_cls & elig]
        names = np.array([name for name, _ in options], dtype=object)
        p = np.array([k for _, k in options], dtype=float)
        regimen[in_cls & ~elig] = rng.choice(names, size=int((in_cls & ~elig).sum()), p=p / p.sum())

    # prior ICI: PD-1 based (exact, with the published responders among them)
    k_pd1 = count(counts["prior_anti_pd1"])
    k_pd1_resp = min(count(counts["prior_anti_pd1_responders"]), n_resp)
    pd1 = choose_exact(rng, responder, k_pd1_resp) | choose_exact(rng, nonresp, k_pd1 - k_pd1_resp)
    pri = unp["prior_ici"]
    pd1_split = scale_counts(
        {"anti_pd1": pri["anti_pd1"], "combined": pri["anti_pd1_ctla4_combined"], "sequence": pri["anti_pd1_ctla4_sequence"]},
        int(pd1.sum()),
    )
    prior = np.full(n, "anti_ctla4", dtype=object)
    prior[pd1] = split_exact(rng, pd1, pd1_split)[pd1]
    prior_shares = design.excluded_prior_shares
    prior[~elig] = rng.choice(np.array(list(prior_shares), dtype=object), size=n_ex, p=list(prior_shares.values()))

    # combination partners in the index line (exact): the targeted one for BRAF mutants, the
    # anti-PD-1 one for anti-CTLA-4-only patients, the other one with its regimen
    partner = np.full(n, "", dtype=object)
    partners = design.partners
    parts = scale_counts(dict(unp["combination_partners"]), count(counts["combined_with_targeted_or_immuno"]))
    targeted = choose_exact(rng, elig & (braf == 1), parts["targeted"])
    partner[targeted] = partners["targeted"]
    partner[choose_exact(rng, elig & (prior == "anti_ctla4") & ~targeted, parts["anti_pd1"])] = partners["anti_pd1"]
    other = choose_exact(rng, elig & (regimen == design.partner_other_with) & (partner == ""), parts["other"])
    partner[other] = partners["other"]

    # index date: PD-1 based patients from the PD-1 era on
    index_day = np.where(
        np.isin(prior, ["anti_pd1", "combined", "sequence"]),
        _year_days(rng, unp["index_year_weights_pd1"], n),
        _year_days(rng, unp["index_year_weights_ctla4"], n),
    ).astype(np.int64)

    # excluded records: what makes them fail their criterion (see _records for the timelines)
    why = design.reasons
    outside = reason == why["index_date_within"]
    window = design.outside_window
    early = outside & (rng.random(n) < window.before_share)
    index_day[outside] = window.after + np.floor(rng.random(int(outside.sum())) * window.after_days).astype(np.int64)
    index_day[early] = window.before + np.floor(rng.random(int(early.sum())) * window.before_days).astype(np.int64)
    prior[early] = "anti_ctla4"
    not_iv = reason == why["observation_in"]
    stage[not_iv] = "III"
    m_stage[not_iv] = "M0"
    brain[not_iv] = False
    single = np.isin(reason, [why["progression_on_prior_line"], why["line_before_line"]])
    prior[single & np.isin(prior, ["combined", "sequence"])] = "anti_pd1"

    return Cohort(
        n_eligible=n_eligible,
        reason=reason,
        male=male,
        braf=braf,
        m_stage=m_stage,
        brain=brain,
        ecog=ecog,
        ldh_ratio=ldh_ratio,
        primary_site=primary_site,
        age_years=age,
        stage=stage,
        regimen_class=regimen_class,
        regimen=regimen,
        partner=partner,
        prior=prior,
        bor=bor,
        index_day=index_day,
        risk=risk,
        uniforms=rng.random((n, N_UNIFORMS), dtype=np.float32),  # float32: half the memory at scale
        response_thresholds=thresholds,
    )
