"""The narrow views of the analysis table that the analyses read, and their row counts.

Every analysis except the Cox model is a function of a few columns of the per-patient table only
(Table 1 of one variable by group, Kaplan-Meier of one endpoint by one split, ...). :func:`view_keys`
lists those column sets for a protocol; an analysis asks a :class:`Views` for one and gets a frame
with exactly those columns. Two kinds of views answer:

- :class:`TableViews`, on the pooled analysis table (``oncorwe run``): the columns as they are;
- :class:`CountViews`, on counted rows (``oncorwe combine``): each distinct row of a view with the
  number of patients who have it, summed over the centres' packages and expanded back into rows.

A view's rows counted (:func:`count_rows`) are sufficient for every analysis that reads it, so the
pooled and the federated analyses are one code path and give the same numbers when nothing is
suppressed or binned. The Cox model reads the joint covariates of each patient, which never leave a
centre: it is fitted by distributed Newton-Raphson instead (``oncorwe.analysis.federated``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from oncorwe.analysis._settings import table1_variables
from oncorwe.analysis._survival import ENDPOINTS
from oncorwe.errors import InputError
from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK
from oncorwe.protocol import Protocol

__all__ = [
    "COUNT_COLUMN",
    "DERIVED_COLUMNS",
    "TIME_COLUMN_DAYS",
    "CountViews",
    "TableViews",
    "Views",
    "count_rows",
    "derived_columns",
    "landmark_key",
    "response_groups",
    "view_keys",
]

ViewKey = tuple[str, ...]

#: The column that holds a counted row's number of patients.
COUNT_COLUMN = "n_patients"

#: Columns a view may hold that the analysis table does not (defined by :func:`derived_columns`).
DERIVED_COLUMNS = ("response_by_landmark",)


def derived_columns(protocol: Protocol) -> dict[str, pl.Expr]:
    """The derived columns' definitions on the analysis table's columns, for this protocol.

    ``response_by_landmark`` is what the landmark analysis needs of the time of response, and no
    more: 0 for a responder whose first CR/PR came by the landmark, the patient's OS time for a
    responder whose response came later (a time after the landmark, so not a responder at it),
    null for a non-responder or a responder whose response date is unknown. The time of response
    itself (``pfs_months - duration_of_response_months``: PFS runs from the index, duration of
    response from the response, to the same date) never leaves a centre.
    """
    landmark_months = float(protocol.analysis.landmark_weeks) * DAYS_PER_WEEK / DAYS_PER_MONTH
    response = pl.col("pfs_months") - pl.col("duration_of_response_months")
    return {"response_by_landmark": (
        pl.when(~pl.col("responder").fill_null(False)).then(None)
        .when(response.is_null() | response.is_nan()).then(None)
        .when(response <= landmark_months).then(pl.lit(0.0))
        .otherwise(pl.col("os_months").cast(pl.Float64))
    )}


#: Time columns of the views and the days one unit of each holds (for event-time binning).
TIME_COLUMN_DAYS: dict[str, float] = {
    "pfs_months": 365.25 / 12,
    "os_months": 365.25 / 12,
    "response_by_landmark": 365.25 / 12,
    "chemo_duration_weeks": 7.0,
}


def response_groups(protocol: Protocol) -> list[str]:
    """The protocol's response groupings, then the survival splits that are not response-derived,
    so that a subgroup's ORR sits beside its Kaplan-Meier estimates (e.g. prior anti-PD-1)."""
    spec = protocol.analysis
    derived = {"responder", "disease_control", "best_response"}
    extra = [c for c in spec.km_splits if c not in spec.response_by and c not in derived]
    return [*spec.response_by, *extra]


def landmark_key() -> ViewKey:
    """The landmark analysis's view: OS, responder status and whether the response came by the landmark."""
    return ("os_months", "os_event", "responder", "response_by_landmark")


def view_keys(protocol: Protocol) -> list[ViewKey]:
    """Every view the protocol's analyses read (except the Cox model's), each once, in a fixed order."""
    spec = protocol.analysis
    by = spec.table1_by
    keys: list[ViewKey] = [("centre_id",)]
    for variable in table1_variables(protocol):
        keys.append((variable.column,) if by is None or variable.column == by else (by, variable.column))
    keys.append(("best_response",))
    keys.extend((group, "best_response") for group in response_groups(protocol))
    for time, event, _label in ENDPOINTS.values():
        keys.append((time, event))
        keys.extend((time, event, split) for split in spec.km_splits)
    keys.append(("chemo_duration_weeks",))
    keys.append(landmark_key())
    keys.append(("subsequent_therapy", "subsequent_therapy_class", "subsequent_responder"))
    keys.append(("regimen_class", "regimen_ingredients"))
    seen: set[ViewKey] = set()
    return [k for k in keys if not (k in seen or seen.add(k))]  # type: ignore[func-returns-value]


class Views:
    """Frames of a few columns of the analysis table, on request (see the module docstring)."""

    def frame(self, columns: Sequence[str]) -> pl.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class TableViews(Views):
    """Views of the pooled per-patient analysis table: its columns, and the ``derived`` ones
    (:func:`derived_columns`)."""

    table: pl.DataFrame
    derived: Mapping[str, pl.Expr] = field(default_factory=dict)

    def frame(self, columns: Sequence[str]) -> pl.DataFrame:
        def computed(c: str) -> bool:
            return c in self.derived and c not in self.table.columns

        needed = {c for c in columns if not computed(c)} | {
            name for c in columns if computed(c) for name in self.derived[c].meta.root_names()}
        missing = sorted(needed - set(self.table.columns))
        if missing:
            raise InputError(f"analysis: column(s) {', '.join(missing)} missing from the analysis table")
        return self.table.select([self.derived[c].alias(c) if computed(c) else pl.col(c) for c in _unique(columns)])


@dataclass(frozen=True)
class CountViews(Views):
    """Views rebuilt from counted rows: each distinct row repeated as many times as it was counted.

    ``counts`` maps a view's columns to its counted rows (:func:`count_rows`, summed over centres);
    ``schema`` gives every column's type. A view that was not counted is an error naming it.
    """

    counts: Mapping[ViewKey, pl.DataFrame]
    schema: Mapping[str, pl.DataType] = field(default_factory=dict)

    def frame(self, columns: Sequence[str]) -> pl.DataFrame:
        key = tuple(_unique(columns))
        counted = self.counts.get(key)
        if counted is None:
            raise InputError(f"no counts for the view ({', '.join(key)}) in the centres' packages")
        repeated = counted.select(pl.all().exclude(COUNT_COLUMN).repeat_by(counted[COUNT_COLUMN].cast(pl.UInt32))) \
            .explode(list(key)) if counted.height else counted.drop(COUNT_COLUMN)
        return repeated.select(list(key)).cast({c: self.schema[c] for c in key if c in self.schema})  # type: ignore[arg-type]


def count_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Each distinct row of ``frame`` (nulls and NaN included as values) with its number of patients,
    sorted by every column (nulls first), so that the counts of the same rows are the same bytes."""
    columns = list(frame.columns)
    if not columns:
        raise InputError("count_rows: a view needs at least one column")
    counted = frame.group_by(columns).len(name=COUNT_COLUMN).with_columns(pl.col(COUNT_COLUMN).cast(pl.Int64))
    return counted.sort(columns, nulls_last=False)


def sum_counts(parts: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Counted rows of several centres added up (one row per distinct row), sorted as :func:`count_rows`."""
    frames = [p for p in parts if p.height]
    if not frames:
        raise InputError("sum_counts: no counted rows")
    stacked = pl.concat(frames, how="vertical_relaxed")
    columns = [c for c in stacked.columns if c != COUNT_COLUMN]
    summed = stacked.group_by(columns).agg(pl.col(COUNT_COLUMN).sum().cast(pl.Int64))
    return summed.sort(columns, nulls_last=False)


def _unique(columns: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [c for c in columns if not (c in seen or seen.add(c))]  # type: ignore[func-returns-value]
