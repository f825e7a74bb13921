"""A patient's baseline value of an observation, as a portable Ibis expression.

Definition (``docs/definitions.md``, Baseline covariates): of the patient's observations of a
variable (by canonical ``variable``, or by OMOP ``concept_id`` for a row that no rule has named),
the latest one dated on or before the anchor date (the index date; every observation when the
patient has none); undated observations count as baseline after dated ones; on one date a named
row comes before a raw concept row (a protocol's ``[[omop_observations]]`` rule says what the
record means, so it is the better reading); remaining ties go to the first source in
alphabetical order. A row named for another variable never counts, even when it shares the
concept (one measurement can say both "M1c" and "stage IV").
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

__all__ = ["baseline_values"]

_UNDATED = ibis.date(1000, 1, 1)


def baseline_values(
    observations: ir.Table,
    anchors: ir.Table,
    *,
    variable: str | None,
    concept_ids: Sequence[int] = (),
    unit: str | None = None,
) -> ir.Table:
    """One row per patient of ``anchors`` (patient_id, anchor_date) with an observation: its
    ``value_text``, ``value_number``, ``reference_high`` and ``source``."""
    match = ibis.literal(False)
    if variable is not None:
        match = match | (observations.variable == variable)
    if concept_ids:
        match = match | (observations.variable.isnull() & observations.concept_id.isin(list(concept_ids)))
    rows = observations.filter(match)
    if unit is not None:
        rows = rows.filter(rows.unit.isnull() | (rows.unit == unit))
    rows = rows.join(anchors, "patient_id").select(rows, anchor_date=anchors.anchor_date)
    rows = rows.filter(rows.observation_date.isnull() | rows.anchor_date.isnull()
                       | (rows.observation_date <= rows.anchor_date))
    order = ibis.window(group_by=rows.patient_id, order_by=[
        ibis.desc(ibis.coalesce(rows.observation_date, _UNDATED)), rows.variable.isnull(), rows.source,
        rows.value_text, rows.value_number])
    ranked = rows.mutate(rank=ibis.row_number().over(order))
    first = ranked.filter(ranked["rank"] == 0)
    return first.select("patient_id", "value_text", "value_number", "reference_high", "source")
