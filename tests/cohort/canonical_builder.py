"""Hand-built canonical models for cohort and endpoint tests (no harmonise, no synth)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from oncorwe import cohort, endpoints, protocol
from oncorwe.model import store
from oncorwe.model.schema import (
    ASSESSMENTS_SCHEMA,
    DRUG_EXPOSURES_SCHEMA,
    EVENTS_SCHEMA,
    PATIENTS_SCHEMA,
    CanonicalModel,
)

D = dt.date
DEFAULT_INDEX = D(2014, 1, 1)

CLASSES = {
    "ipilimumab": "anti_ctla4",
    "nivolumab": "anti_pd1",
    "pembrolizumab": "anti_pd1",
    "relatlimab": "anti_lag3",
    "dabrafenib": "braf_mek",
    "trametinib": "braf_mek",
    "imatinib": "other",
}


def days(start: dt.date, n: int) -> dt.date:
    return start + dt.timedelta(days=n)


@dataclass
class Study:
    """Rows of the four canonical tables, added patient by patient."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    drugs: list[dict[str, Any]] = field(default_factory=list)
    scans: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, str]] = field(default_factory=list)

    def patient(self, pid: str, **values: Any) -> str:
        row: dict[str, Any] = {
            "patient_id": pid, "centre_id": pid.split(":")[0], "sex": "male", "birth_year": 1950,
            "reported_age_years": None, "diagnosis_date": D(2010, 1, 1), "primary_site": "cutaneous",
            "stage": "IV", "m_stage": "M1c", "brain_metastases": False, "braf_v600": False, "ecog": 1,
            "ldh_value": 300.0, "ldh_uln": 250.0, "source": f"{pid.split(':')[0]}/patients.csv:{len(self.patients) + 1}",
        }
        row.update(values)
        self.patients.append(row)
        return pid

    def drug(self, pid: str, ingredient: str, start: dt.date, end: dt.date | None = None,
             reason: str | None = None, drug_class: str | None = None) -> None:
        self.drugs.append({
            "patient_id": pid, "ingredient": ingredient, "ingredient_concept_id": 1,
            "drug_class": drug_class or CLASSES.get(ingredient, "chemotherapy"),
            "start_date": start, "end_date": end, "reason_stopped": reason, "source_line": None,
            "source_text": ingredient, "source": f"{pid.split(':')[0]}/treatments.csv:{len(self.drugs) + 1}",
        })

    def scan(self, pid: str, date: dt.date | None, response: str, kind: str = "timepoint") -> None:
        self.scans.append({
            "patient_id": pid, "assessment_date": date, "response": response, "kind": kind,
            "source": f"{pid.split(':')[0]}/assessments.csv:{len(self.scans) + 1}",
        })

    def event(self, pid: str, event_type: str, date: dt.date) -> None:
        self.events.append({
            "patient_id": pid, "event_type": event_type, "event_date": date,
            "source": f"{pid.split(':')[0]}/followup.csv:{len(self.events) + 1}",
        })

    def eligible(self, pid: str, index: dt.date = DEFAULT_INDEX, regimen: tuple[str, ...] = ("dacarbazine",),
                 chemo_days: int = 60, ici: str = "ipilimumab", last_contact: int | None = 400,
                 **values: Any) -> str:
        """A patient who fails an ICI (PD 30 days before ``index``) and starts ``regimen`` at ``index``."""
        self.patient(pid, **values)
        self.drug(pid, ici, days(index, -150), days(index, -60), "progression")
        self.scan(pid, days(index, -30), "PD")
        for name in regimen:
            self.drug(pid, name, index, days(index, chemo_days))
        if last_contact is not None:
            self.event(pid, "last_contact", days(index, last_contact))
        return pid

    def model(self) -> CanonicalModel:
        def frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
            return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)

        return CanonicalModel(
            patients=frame(self.patients, PATIENTS_SCHEMA),
            drug_exposures=frame(self.drugs, DRUG_EXPOSURES_SCHEMA),
            assessments=frame(self.scans, ASSESSMENTS_SCHEMA),
            events=frame(self.events, EVENTS_SCHEMA),
            merges=pl.DataFrame(self.merges, schema={"kept_patient_id": pl.String(), "merged_patient_id": pl.String(),
                                                     "rule": pl.String()}),
        )


def load_protocol(*, criteria: list[str] | None = None, **changes: Any) -> protocol.Protocol:
    """The flagship protocol, with sections replaced (e.g. ``response={"confirmation": True}``) and
    its criteria reordered or left out (``criteria``: their ids in the new order)."""
    base = protocol.load("goldinger2022").to_dict()
    for section, values in changes.items():
        base[section] = {**base[section], **values} if isinstance(values, dict) and base.get(section) else values
    if criteria is not None:
        by_id = {c["id"]: c for c in base["criteria"]}
        base["criteria"] = [by_id[i] for i in criteria]
    return protocol.from_data(base)


def run_study(study: Study, proto: protocol.Protocol | None = None, con: Any = None,
              prefix: str = "") -> tuple[cohort.CohortResult, endpoints.EndpointsResult]:
    """Write the study into a backend (in-memory DuckDB by default) and run cohort + endpoints."""
    proto = proto or protocol.load("goldinger2022")
    con = con if con is not None else store.connect(None)
    model = study.model()
    store.write_model(con, model, prefix=prefix)
    cohort_result = cohort.run(con, proto, prefix=prefix, merges=model.merges)
    return cohort_result, endpoints.run(con, cohort_result, proto, prefix=prefix)


def row(result: endpoints.EndpointsResult, pid: str) -> dict[str, Any]:
    """The analysis-table row of one patient."""
    rows = result.analysis_table.filter(pl.col("patient_id") == pid)
    assert rows.height == 1, f"{pid} not in the analysis set"
    return rows.row(0, named=True)
