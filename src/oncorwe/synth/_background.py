"""The background population of a synthetic OMOP centre: the hospital's other patients.

A real CDM holds everyone the hospital saw, not only a study's cohort (issue 12). The groups,
their conditions and drugs are read from ``data/background.toml``; none of the persons has a
study's condition, but some receive a study's drugs for another disease. Persons are drawn and
written in chunks with NumPy, so twenty background persons per study record stay cheap at 10^6.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import numpy as np

from oncorwe.synth._baseline import stream
from oncorwe.synth._cdm_writer import insert_columns, table_schema
from oncorwe.synth._vocabulary import concept_named

__all__ = ["BACKGROUND_PERSON_BASE", "BackgroundPlan", "background_spec", "write_background"]

#: Background person ids start here (a study's own persons are numbered below it).
BACKGROUND_PERSON_BASE = 50_000_000
CHUNK = 200_000
_EHR = concept_named("EHR").concept_id
_MALE, _FEMALE = concept_named("MALE").concept_id, concept_named("FEMALE").concept_id
_OUTPATIENT, _INPATIENT = concept_named("Outpatient Visit").concept_id, concept_named("Inpatient Visit").concept_id


@dataclass(frozen=True)
class BackgroundPlan:
    """How many background persons a centre gets per study record, when they are observed (day
    numbers), the share of their drug exposures recorded as a clinical drug, and the seed."""

    multiple: int
    seed: int
    first_day: int
    last_day: int
    clinical_share: float


@dataclass(frozen=True)
class _Drug:
    ingredient: int
    clinical: tuple[int, ...]
    word: str
    every_days: int
    times: tuple[int, int]
    oral: bool
    share: float


@dataclass(frozen=True)
class _Group:
    name: str
    share: float
    male_only: bool
    conditions: tuple[tuple[int, str], ...]
    drugs: tuple[_Drug, ...]


@dataclass(frozen=True)
class BackgroundSpec:
    """``data/background.toml`` with concept names resolved to ids."""

    birth_years: tuple[int, int]
    visits_mean: float
    visits_max: int
    inpatient_share: float
    groups: tuple[_Group, ...]


@cache
def background_spec() -> BackgroundSpec:
    with resources.files("oncorwe.synth.data").joinpath("background.toml").open("rb") as handle:
        raw: dict[str, Any] = tomllib.load(handle)
    groups = tuple(
        _Group(
            name=g["name"],
            share=float(g["share"]),
            male_only=bool(g.get("male_only", False)),
            conditions=tuple((concept_named(c).concept_id, c) for c in g.get("conditions", [])),
            drugs=tuple(
                _Drug(concept_named(d["ingredient"]).concept_id, tuple(concept_named(c).concept_id for c in d.get("clinical", [])),
                      d["ingredient"], int(d["every_days"]), (int(d["times"][0]), int(d["times"][1])), bool(d.get("oral", False)),
                      float(d.get("share", 1.0)))
                for d in g.get("drugs", [])
            ),
        )
        for g in raw["group"]
    )
    return BackgroundSpec((int(raw["birth_years"][0]), int(raw["birth_years"][1])), float(raw["visits_mean"]),
                          int(raw["visits_max"]), float(raw["inpatient_share"]), groups)


def write_background(con: duckdb.DuckDBPyConnection, *, persons: int, seed: int, centre_id: str, first_day: int,
                     last_day: int, clinical_share: float, ids: dict[str, int]) -> dict[str, int]:
    """Append ``persons`` background persons observed within [first_day, last_day] (day numbers).

    ``ids`` holds the last id used per table (observation_period, visit_occurrence,
    condition_occurrence, drug_exposure) and is advanced; returns the rows written per table.
    ``clinical_share`` of drug exposures are recorded as a clinical drug, the rest as the ingredient.
    """
    spec = background_spec()
    schemas = {t: table_schema(con, t) for t in ("person", "observation_period", "visit_occurrence",
                                                   "condition_occurrence", "drug_exposure", "death")}
    written = dict.fromkeys(schemas, 0)
    shares = np.array([g.share for g in spec.groups])
    for chunk_no, start in enumerate(range(0, persons, CHUNK)):
        n = min(CHUNK, persons - start)
        rng = stream(seed, f"background:{centre_id}:{chunk_no}")
        pid = BACKGROUND_PERSON_BASE + start + np.arange(n, dtype=np.int64)
        group = rng.choice(len(spec.groups), size=n, p=shares / shares.sum())
        male = rng.random(n) < 0.48
        male |= np.isin(group, [k for k, g in enumerate(spec.groups) if g.male_only])
        birth = rng.integers(spec.birth_years[0], spec.birth_years[1] + 1, size=n)
        span = max(last_day - first_day - 365, 1)
        obs_start = first_day + (rng.random(n) * span).astype(np.int64)
        obs_end = np.minimum(obs_start + 365 + rng.exponential(900, n).astype(np.int64), last_day)
        written["person"] += insert_columns(con, "person", {
            "person_id": pid, "gender_concept_id": np.where(male, _MALE, _FEMALE), "year_of_birth": birth,
            "race_concept_id": np.zeros(n, dtype=np.int64), "ethnicity_concept_id": np.zeros(n, dtype=np.int64),
            "person_source_value": pid.astype(str).tolist(), "gender_source_value": np.where(male, "M", "F").tolist()},
            schemas["person"])
        written["observation_period"] += insert_columns(con, "observation_period", {
            "observation_period_id": ids["observation_period"] + 1 + np.arange(n), "person_id": pid,
            "observation_period_start_date": obs_start, "observation_period_end_date": obs_end,
            "period_type_concept_id": np.full(n, _EHR)}, schemas["observation_period"])
        ids["observation_period"] += n

        visits = 1 + np.minimum(rng.poisson(spec.visits_mean, n), spec.visits_max - 1)
        who = np.repeat(np.arange(n), visits)
        day = obs_start[who] + (rng.random(who.shape[0]) * (obs_end[who] - obs_start[who] + 1)).astype(np.int64)
        inpatient = rng.random(who.shape[0]) < spec.inpatient_share
        stay = np.where(inpatient, 1 + rng.integers(0, 9, who.shape[0]), 0)
        written["visit_occurrence"] += insert_columns(con, "visit_occurrence", {
            "visit_occurrence_id": ids["visit_occurrence"] + 1 + np.arange(who.shape[0]), "person_id": pid[who],
            "visit_concept_id": np.where(inpatient, _INPATIENT, _OUTPATIENT), "visit_start_date": day,
            "visit_end_date": np.minimum(day + stay, obs_end[who]), "visit_type_concept_id": np.full(who.shape[0], _EHR),
            "visit_source_value": np.where(inpatient, "IP", "OP").tolist()}, schemas["visit_occurrence"])
        ids["visit_occurrence"] += who.shape[0]

        cond_cols: dict[str, list[Any]] = {k: [] for k in ("person_id", "condition_concept_id", "condition_start_date", "condition_source_value")}
        drug_cols: dict[str, list[Any]] = {k: [] for k in ("person_id", "drug_concept_id", "drug_exposure_start_date",
                                                              "drug_exposure_end_date", "days_supply", "drug_source_value")}
        for k, g in enumerate(spec.groups):
            members = np.flatnonzero(group == k)
            if members.shape[0] == 0:
                continue
            for concept, name in g.conditions:
                cday = obs_start[members] + (rng.random(members.shape[0]) * (obs_end[members] - obs_start[members] + 1) * 0.5).astype(np.int64)
                cond_cols["person_id"].append(pid[members])
                cond_cols["condition_concept_id"].append(np.full(members.shape[0], concept))
                cond_cols["condition_start_date"].append(cday)
                cond_cols["condition_source_value"].append(np.full(members.shape[0], name[:50], dtype=object))
            for d in g.drugs:
                takers = members[rng.random(members.shape[0]) < d.share]
                if takers.shape[0] == 0:
                    continue
                times = rng.integers(d.times[0], d.times[1] + 1, takers.shape[0])
                room = np.maximum(obs_end[takers] - obs_start[takers] - d.every_days * times, 0)
                first = obs_start[takers] + (rng.random(takers.shape[0]) * (room + 1)).astype(np.int64)
                clinical = rng.random(takers.shape[0]) < clinical_share if d.clinical else np.zeros(takers.shape[0], dtype=bool)
                which = rng.integers(0, max(len(d.clinical), 1), takers.shape[0])
                drug_concept = np.where(clinical, np.asarray(d.clinical or (d.ingredient,))[which], d.ingredient)
                row_of = np.repeat(np.arange(takers.shape[0]), times)
                step = np.arange(row_of.shape[0]) - np.repeat(np.cumsum(times) - times, times)
                dday = first[row_of] + step * d.every_days
                keep = dday <= obs_end[takers][row_of]
                row_of, dday = row_of[keep], dday[keep]
                supply = 30 if d.oral else 1
                drug_cols["person_id"].append(pid[takers][row_of])
                drug_cols["drug_concept_id"].append(drug_concept[row_of])
                drug_cols["drug_exposure_start_date"].append(dday)
                drug_cols["drug_exposure_end_date"].append(dday + supply - 1)
                drug_cols["days_supply"].append(np.full(row_of.shape[0], supply))
                drug_cols["drug_source_value"].append(np.full(row_of.shape[0], d.word, dtype=object))
        if cond_cols["person_id"]:
            c = {k: np.concatenate(v) for k, v in cond_cols.items()}
            m = c["person_id"].shape[0]
            written["condition_occurrence"] += insert_columns(con, "condition_occurrence", {
                "condition_occurrence_id": ids["condition_occurrence"] + 1 + np.arange(m), "person_id": c["person_id"],
                "condition_concept_id": c["condition_concept_id"], "condition_start_date": c["condition_start_date"],
                "condition_type_concept_id": np.full(m, _EHR), "condition_source_value": c["condition_source_value"].tolist(),
                "condition_source_concept_id": np.zeros(m, dtype=np.int64)}, schemas["condition_occurrence"])
            ids["condition_occurrence"] += m
        if drug_cols["person_id"]:
            c = {k: np.concatenate(v) for k, v in drug_cols.items()}
            m = c["person_id"].shape[0]
            written["drug_exposure"] += insert_columns(con, "drug_exposure", {
                "drug_exposure_id": ids["drug_exposure"] + 1 + np.arange(m), "person_id": c["person_id"],
                "drug_concept_id": c["drug_concept_id"], "drug_exposure_start_date": c["drug_exposure_start_date"],
                "drug_exposure_end_date": c["drug_exposure_end_date"], "drug_type_concept_id": np.full(m, _EHR),
                "days_supply": c["days_supply"], "drug_source_value": c["drug_source_value"].tolist(),
                "drug_source_concept_id": np.zeros(m, dtype=np.int64)}, schemas["drug_exposure"])
            ids["drug_exposure"] += m
        dead = np.flatnonzero(rng.random(n) < 0.03)
        written["death"] += insert_columns(con, "death", {
            "person_id": pid[dead], "death_date": obs_end[dead], "death_type_concept_id": np.full(dead.shape[0], _EHR)},
            schemas["death"])
    return written
