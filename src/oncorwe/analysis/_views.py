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
from oncorwe.protocol import Protocol

__all__ = [
    "COUNT_COLUMN",
    "DERIVED_COLUMNS",
    "TIME_COLUMN_DAYS",
    "CountViews",
    "TableViews",
    "Views",
    "count_rows",
    "landmark_key",
    "response_groups",
    "view_keys",
]

ViewKey = tuple[str, ...]

#: The column that holds a counted row's number of patients.
COUNT_COLUMN = "n_patients"

#: Columns a view may hold that the analysis table does not: their definition on its columns.
DERIVED_COLUMNS: dict[str, pl.Expr] = {
    # time from the index to the first CR/PR: PFS runs from the index, duration of response from the
    # response, to the same date (docs/definitions.md)
    "response_months": pl.col("pfs_months") - pl.col("duration_of_response_months"),
}

#: Time columns of the views and the days one unit of each holds (for event-time binning).
TIME_COLUMN_DAYS: dict[str, float] = {
    "pfs_months": 365.25 / 12,
    "os_months": 365.25 / 12,
    "response_months": 365.25 / 12,
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
    """The landmark analysis's view: OS, responder status and the time of response."""
    return ("os_months", "os_event", "responder", "response_months")


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
    """Views of the pooled per-patient analysis table: its columns (and :data:`DERIVED_COLUMNS`)."""

    table: pl.DataFrame

    def frame(self, columns: Sequence[str]) -> pl.DataFrame:
        needed = {c for c in columns if c not in DERIVED_COLUMNS} | {
            name for c in columns if c in DERIVED_COLUMNS and c not in self.table.columns
            for name in DERIVED_COLUMNS[c].meta.root_names()}
        missing = sorted(needed - set(self.table.columns))
        if missing:
            raise InputError(f"analysis: column(s) {', '.join(missing)} missing from the analysis table")
        return self.table.select([DERIVED_COLUMNS[c].alias(c) if c in DERIVED_COLUMNS and c not in self.table.columns
                                  else pl.col(c) for c in _unique(columns)])


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
