"""Canonical tables of oncorwe: names, columns and types (the contract between stages).

Every stage from ``cohort`` on reads these tables and nothing else. Values are canonical:
drugs are RxNorm ingredient names (lower case) with their OMOP concept ids, responses are RECIST 1.1
categories, dates are dates, LDH is held with its upper limit of normal in the same unit.

Conventions
-----------
- ``patient_id`` is ``"<centre_id>:<the centre's own pseudonymous id>"`` (see :func:`make_patient_id`),
  unique across the study. It never leaves a centre in aggregate exports or reports.
- ``source`` columns hold provenance as ``"<centre_id>/<file>:<row>"`` (row is the 1-based data row
  of the file or the primary key of the OMOP table), so every derived value can be traced back.
- Months are days / (365.25 / 12); weeks are days / 7.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

__all__ = [
    "ADVERSE_EVENTS_SCHEMA",
    "ASSESSMENTS_SCHEMA",
    "ATTRITION_SCHEMA",
    "CANONICAL_TABLES",
    "COLUMN_MAP_SCHEMA",
    "CONCEPT_ANCESTOR_SCHEMA",
    "CONDITIONS_SCHEMA",
    "DAYS_PER_MONTH",
    "DAYS_PER_WEEK",
    "DRUG_EXPOSURES_SCHEMA",
    "ENDPOINT_SCHEMA",
    "EVENTS_SCHEMA",
    "OBSERVATIONS_SCHEMA",
    "PATIENTS_SCHEMA",
    "PERSON_SCHEMA",
    "QUARANTINE_SCHEMA",
    "RECONCILIATION_SCHEMA",
    "RESPONSES",
    "CanonicalModel",
    "empty_frame",
    "make_patient_id",
]

DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_WEEK = 7.0

#: RECIST 1.1 categories, best first. NE = not evaluable.
RESPONSES = ("CR", "PR", "SD", "PD", "NE")

#: patients: one row per patient (after cross-centre duplicates are merged).
PATIENTS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "centre_id": pl.String(),
    "sex": pl.String(),  # "male" | "female" | null
    "birth_year": pl.Int32(),  # null when the centre sent an age instead
    "reported_age_years": pl.Float64(),  # age as the centre wrote it (at chemotherapy start), or null
    "diagnosis_date": pl.Date(),  # diagnosis of the study's disease
    "primary_site": pl.String(),  # cutaneous | acral | mucosal | uveal | unknown_primary | null
    "stage": pl.String(),  # "IV" | "III_unresectable" | "III" | "II" | "I" | null, at chemotherapy start
    "m_stage": pl.String(),  # "M0" | "M1a" | "M1b" | "M1c" | "M1d" | null
    "brain_metastases": pl.Boolean(),
    "braf_v600": pl.Boolean(),  # True = BRAF V600 mutant, False = wild type, null = unknown
    "ecog": pl.Int8(),  # 0-4
    "ldh_value": pl.Float64(),  # in U/L (converted from µkat/L: 1 µkat/L = 60 U/L)
    "ldh_uln": pl.Float64(),  # the centre's upper limit of normal, in U/L
    # The centre's own LDH elevated (True) / normal (False) flag, as some analysis-ready sources give
    # it without a value or an upper limit of normal (Liu 2019 ``LDH_Elevated``); null when not given.
    # ``endpoints`` uses it only when the value and the ULN are not both known.
    "ldh_elevated": pl.Boolean(),
    "source": pl.String(),
}

#: drug_exposures: one row per ingredient per course (CRF) or per administration (OMOP).
#: Lines of therapy are derived from these by ``cohort``.
DRUG_EXPOSURES_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "ingredient": pl.String(),  # RxNorm ingredient name, lower case (the vocabulary's)
    "ingredient_concept_id": pl.Int64(),  # OMOP standard id, or a local id > 2_000_000_000
    "drug_class": pl.String(),  # chemotherapy | anti_pd1 | anti_ctla4 | anti_lag3 | braf_mek | other
    "start_date": pl.Date(),
    "end_date": pl.Date(),  # null = ongoing / unknown
    "reason_stopped": pl.String(),  # progression | toxicity | completed | death | other | null
    "source_line": pl.Int32(),  # line number the centre wrote, if any
    "source_text": pl.String(),  # the drug as the centre wrote it
    "source": pl.String(),
}

#: assessments: tumour assessments. kind "timepoint" (a scan's overall response) or "best_overall"
#: (the centre only reported a best overall response; assessment_date is then the date it was
#: recorded, or null).
ASSESSMENTS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "assessment_date": pl.Date(),
    "response": pl.String(),  # one of RESPONSES
    "kind": pl.String(),  # "timepoint" | "best_overall"
    "source": pl.String(),
}

#: events: progression (clinical or radiological, outside assessments), death, last contact.
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "event_type": pl.String(),  # "progression" | "death" | "last_contact"
    "event_date": pl.Date(),
    "source": pl.String(),
}

#: adverse_events: one row per adverse event a centre recorded (CTCAE v5.0). Which line of therapy
#: an event is attributed to is derived by ``endpoints`` (the protocol's attribution window), not
#: taken from the source.
ADVERSE_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "ctcae_term": pl.String(),  # the CTCAE v5.0 term (harmonise/vocab/ctcae_terms.csv)
    "grade": pl.Int8(),  # CTCAE grade 1-5
    "onset_date": pl.Date(),
    "source": pl.String(),
}

#: --- The generic canonical model (issue 12), the contract harmonisation moves to. ---
#: person: demographics only; nothing disease-specific.
PERSON_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "centre_id": pl.String(),
    "sex": pl.String(),  # "male" | "female" | null
    "birth_year": pl.Int32(),
    "reported_age_years": pl.Float64(),  # age as the centre wrote it (at the index treatment), or null
    "source": pl.String(),
}

#: conditions: one row per recorded diagnosis of a person in scope.
CONDITIONS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "condition_concept_id": pl.Int64(),  # OMOP standard concept (after 'Maps to'), null for CRF words
    "condition_text": pl.String(),  # the source value or CRF word, lower case, or null
    "start_date": pl.Date(),
    "source": pl.String(),
}

#: observations: every measurement / observation / CRF baseline field of a person in scope, one
#: row each, so that a new covariate needs no schema change. ``variable`` is the canonical name the
#: vocabulary files give (e.g. a CRF column mapped to "ecog"), or null when only a concept is known.
OBSERVATIONS_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "variable": pl.String(),
    "concept_id": pl.Int64(),  # OMOP measurement/observation concept (after 'Maps to'), or null
    "value_text": pl.String(),  # canonical category (vocabulary) or value concept name, lower case
    "value_concept_id": pl.Int64(),
    "value_number": pl.Float64(),  # in ``unit``
    "unit": pl.String(),  # canonical unit (e.g. "U/L"), converted by the vocabulary
    "reference_high": pl.Float64(),  # upper limit of normal in ``unit``, or null
    "observation_date": pl.Date(),
    "source": pl.String(),
}

#: concept_ancestor: (ancestor, descendant) pairs of the concepts a protocol categorises by (e.g.
#: histology below the study's condition), from the CDMs' vocabularies; empty for CRF-only studies.
CONCEPT_ANCESTOR_SCHEMA: dict[str, pl.DataType] = {
    "ancestor_concept_id": pl.Int64(),
    "descendant_concept_id": pl.Int64(),
}

#: What harmonisation hands to the model: CRF patients in the wide ``patients`` shape (melted into
#: person, conditions and observations by ``model.store``), CDM persons already in the generic
#: tables, and the event tables of both.
CANONICAL_TABLES: dict[str, dict[str, pl.DataType]] = {
    "patients": PATIENTS_SCHEMA,
    "person": PERSON_SCHEMA,
    "conditions": CONDITIONS_SCHEMA,
    "observations": OBSERVATIONS_SCHEMA,
    "concept_ancestor": CONCEPT_ANCESTOR_SCHEMA,
    "drug_exposures": DRUG_EXPOSURES_SCHEMA,
    "assessments": ASSESSMENTS_SCHEMA,
    "events": EVENTS_SCHEMA,
    "adverse_events": ADVERSE_EVENTS_SCHEMA,
}

#: quarantine: every rejected or doubtful source value, with where it came from and why.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "centre_id": pl.String(),
    "file": pl.String(),
    "row": pl.Int64(),  # 1-based data row (header excluded); OMOP: the table's primary key
    "field": pl.String(),
    "raw_value": pl.String(),
    "reason": pl.String(),
    "action": pl.String(),  # "rejected" (record dropped) | "value_nulled" (record kept, value null)
    "sheet": pl.String(),  # XLSX sheet or OMOP table, else null (added by harmonise)
}

#: reconciliation: per centre and file, records_read = accepted + quarantined + merged.
RECONCILIATION_SCHEMA: dict[str, pl.DataType] = {
    "centre_id": pl.String(),
    "file": pl.String(),
    "records_read": pl.Int64(),
    "accepted": pl.Int64(),
    "quarantined": pl.Int64(),
    "merged": pl.Int64(),
    "sheet": pl.String(),  # XLSX sheet or OMOP table, else null (added by harmonise)
}

#: column_map: how each column of each source table was mapped (field null = not used), so a data
#: manager sees unknown columns (added by harmonise).
COLUMN_MAP_SCHEMA: dict[str, pl.DataType] = {
    "centre_id": pl.String(),
    "file": pl.String(),
    "sheet": pl.String(),
    "column": pl.String(),
    "field": pl.String(),
    "how": pl.String(),  # declared | name | generic date beside a response | ignored | unknown
}

#: attrition: one row per criterion step (in protocol order), overall (centre_id null) and per centre.
ATTRITION_SCHEMA: dict[str, pl.DataType] = {
    "step": pl.Int32(),
    "criterion": pl.String(),  # a criterion id of the protocol, or "source_records" for step 0
    "centre_id": pl.String(),  # null for the overall rows
    "n_before": pl.Int64(),
    "n_excluded": pl.Int64(),
    "n_after": pl.Int64(),
}

#: The fixed columns of the per-patient analysis table (one row per patient of the analysis set),
#: whatever the study; the protocol's covariates follow them (``Protocol.analysis_schema()``). The
#: only patient-level table that comes into Python for the statistics. Produced by ``endpoints``,
#: read by ``analysis``.
ENDPOINT_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "centre_id": pl.String(),
    "index_date": pl.Date(),  # start of the index line
    "age_years": pl.Float64(),  # at the index date
    "sex": pl.String(),
    "regimen_class": pl.String(),  # the protocol's regimen class of the index line, or its fallback
    "regimen_ingredients": pl.String(),  # "+"-joined sorted ingredients of the index line
    "combined_with_targeted_or_immuno": pl.Boolean(),  # the index line holds a drug of another class
    "best_response": pl.String(),  # CR | PR | SD | PD | NE
    "best_response_source": pl.String(),  # "derived" (from time-point responses) | "reported"
    "responder": pl.Boolean(),  # CR or PR
    "disease_control": pl.Boolean(),  # CR, PR or SD
    "pfs_months": pl.Float64(),
    "pfs_event": pl.Int8(),  # 1 progression or death, 0 censored
    "os_months": pl.Float64(),
    "os_event": pl.Int8(),  # 1 death, 0 censored
    "duration_of_response_months": pl.Float64(),  # responders only
    "duration_of_response_event": pl.Int8(),
    "chemo_duration_weeks": pl.Float64(),  # start to end of the index line
    "subsequent_therapy": pl.Boolean(),
    "subsequent_therapy_months": pl.Float64(),  # index to the start of the next line; null without one
    "subsequent_therapy_class": pl.String(),  # the protocol's subsequent-therapy class, or null
    "subsequent_best_response": pl.String(),
    "subsequent_responder": pl.Boolean(),
}


def make_patient_id(centre_id: str, local_id: str) -> str:
    """The study-wide patient id: ``"<centre_id>:<local id>"`` (whitespace stripped)."""
    return f"{centre_id.strip()}:{str(local_id).strip()}"


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty polars frame with the given schema."""
    return pl.DataFrame(schema=schema)


@dataclass(frozen=True)
class CanonicalModel:
    """The canonical tables of one study, plus what was quarantined and the reconciliation.

    ``patients`` holds the CRF patients (wide); ``person``, ``conditions`` and ``observations``
    the CDM persons in scope (generic); ``model.store.write_model`` writes them as one set of
    generic tables.

    ``merges`` lists cross-centre duplicates: one row per merged record (kept_patient_id,
    merged_patient_id, rule). ``column_map`` says how each source column was mapped and
    ``problems`` holds non-fatal problem lines (a file that could not be read, ...).
    """

    patients: pl.DataFrame
    drug_exposures: pl.DataFrame
    assessments: pl.DataFrame
    events: pl.DataFrame
    person: pl.DataFrame = field(default_factory=lambda: empty_frame(PERSON_SCHEMA))
    conditions: pl.DataFrame = field(default_factory=lambda: empty_frame(CONDITIONS_SCHEMA))
    observations: pl.DataFrame = field(default_factory=lambda: empty_frame(OBSERVATIONS_SCHEMA))
    concept_ancestor: pl.DataFrame = field(default_factory=lambda: empty_frame(CONCEPT_ANCESTOR_SCHEMA))
    adverse_events: pl.DataFrame = field(default_factory=lambda: empty_frame(ADVERSE_EVENTS_SCHEMA))
    quarantine: pl.DataFrame = field(default_factory=lambda: empty_frame(QUARANTINE_SCHEMA))
    reconciliation: pl.DataFrame = field(default_factory=lambda: empty_frame(RECONCILIATION_SCHEMA))
    merges: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"kept_patient_id": pl.String(), "merged_patient_id": pl.String(), "rule": pl.String()}
        )
    )
    column_map: pl.DataFrame = field(default_factory=lambda: empty_frame(COLUMN_MAP_SCHEMA))
    #: non-fatal problems, one line each (unreadable files, tables without a patient id column)
    problems: tuple[str, ...] = ()
    #: the files and databases that could not be read at all, one line each (also in ``problems``):
    #: their records are not counted, so the command line stops on them (exit 2)
    unreadable: tuple[str, ...] = ()

    def tables(self) -> dict[str, pl.DataFrame]:
        """The canonical tables by name."""
        return {name: getattr(self, name) for name in CANONICAL_TABLES}
