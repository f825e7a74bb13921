"""The canonical model: the typed tables every stage from cohort on reads, and nothing else.

See :mod:`oncorwe.model.schema` for the tables and their columns, and :mod:`oncorwe.model.store`
for putting them into (and reading them from) an engine through Ibis.
"""

from oncorwe.model.schema import (
    ATTRITION_SCHEMA,
    CANONICAL_TABLES,
    DAYS_PER_MONTH,
    DAYS_PER_WEEK,
    ENDPOINT_SCHEMA,
    QUARANTINE_SCHEMA,
    RECONCILIATION_SCHEMA,
    RESPONSES,
    CanonicalModel,
    empty_frame,
    make_patient_id,
)

__all__ = [
    "ATTRITION_SCHEMA",
    "CANONICAL_TABLES",
    "DAYS_PER_MONTH",
    "DAYS_PER_WEEK",
    "ENDPOINT_SCHEMA",
    "QUARANTINE_SCHEMA",
    "RECONCILIATION_SCHEMA",
    "RESPONSES",
    "CanonicalModel",
    "empty_frame",
    "make_patient_id",
]
