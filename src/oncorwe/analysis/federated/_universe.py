"""The cell universe of secure aggregation: every cell a centre could count, known before any count.

Pairwise masks (``analysis.federated._secure``) only cancel when every centre adds them to a vector
of the same length whose cells mean the same thing. That vector is the **cell universe**, built
from the protocol, the disclosure settings and the roster of centres alone, never from a centre's
data:

- for each view of ``analysis.view_keys(protocol)``, every combination of its columns' values
  (a dense, row-major grid), each column's values being
  - a category column: null, then the protocol's levels (``Protocol.column_levels``);
  - a boolean column: null, false, true; an event column: null, 0, 1;
  - ``centre_id``: null, then the roster's centres;
  - ``regimen_ingredients``: null, then every "+"-joined sorted set of 1 to
    ``max_regimen_ingredients`` of the protocol's ingredients;
  - a time column (``TIME_COLUMN_DAYS``): null, then the bins 0, 1, ... ``ceil(horizon_days /
    time_bin_days)`` of ``time_bin_days`` each, a time being rounded up to its bin as
    ``_disclosure.control_view`` rounds it;
  - a value-binned column (age): null, then the middles of its bins over ``value_ranges`` (or
    ``default_value_range``); an integer column (ECOG): null, then the integers of that range;
- then, per view, two cells: the patients whose row was moved to fit (a time after the horizon,
  set to the horizon and censored there; a value outside its range, set to the nearest end), and
  the patients left out because a value has no cell (a regimen of more ingredients, a category
  the protocol does not name);
- then the flow (patients before, excluded, after each step), then the records read, accepted,
  quarantined and merged over the centre's files.

:func:`count_vector` gives a centre's counts over it; :meth:`CellUniverse.view_rows` turns a
network total back into counted rows (``analysis._views.count_rows``), which are exactly those of
the centres' binned views added up (``_disclosure.control_view`` with ``min_cell_count = 0``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from oncorwe.analysis._views import (
    COUNT_COLUMN,
    DERIVED_COLUMNS,
    TIME_COLUMN_DAYS,
    TableViews,
    derived_columns,
    view_keys,
)
from oncorwe.analysis.federated._disclosure import EVENT_OF_TIME, Disclosure
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = ["FLOW_COUNTS", "RECONCILIATION_COUNTS", "CellUniverse", "Domain", "ViewCells", "count_vector", "own_flow"]

#: The reconciliation counts a secure package sends, summed over the centre's files.
RECONCILIATION_COUNTS = ("records_read", "accepted", "quarantined", "merged")
#: The flow counts per step.
FLOW_COUNTS = ("n_before", "n_excluded", "n_after")

_EVENTS = frozenset(EVENT_OF_TIME.values())


@dataclass(frozen=True)
class Domain:
    """One view column's values: ``values[0]`` is null; ``kind`` says how a value finds its cell."""

    column: str
    kind: str  # "levels" | "time" | "bins" | "integers"
    values: tuple[Any, ...]
    #: time: the bin's width in the column's unit; bins: the bin width; integers: 1
    width: float = 0.0
    #: bins and integers: the first value's position (value = (start + k) * width ...)
    start: int = 0

    @property
    def size(self) -> int:
        return len(self.values)

    def index(self, column: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """The cell index of each value (-1: no cell), and whether it was moved to fit."""
        last = self.size - 1
        if self.kind == "levels":
            mapping = {v: i for i, v in enumerate(self.values) if v is not None}
            found = column.replace_strict(mapping, default=-1, return_dtype=pl.Int64)
            return pl.when(column.is_null()).then(0).otherwise(found), pl.lit(False)
        if self.kind == "time":
            k = (column.cast(pl.Float64) / self.width).ceil()
            raw = pl.when(k < 0).then(0).otherwise(k).cast(pl.Int64) + 1
        elif self.kind == "bins":
            raw = (column.cast(pl.Float64) / self.width).floor().cast(pl.Int64) - self.start + 1
        else:
            raw = column.cast(pl.Int64) - self.start + 1
        clipped = pl.min_horizontal(pl.max_horizontal(raw, pl.lit(1)), pl.lit(last))
        null = column.is_null() | (column.cast(pl.Float64).is_nan() if self.kind != "integers" else pl.lit(False))
        return (pl.when(null).then(0).otherwise(clipped),
                pl.when(null).then(False).otherwise(raw != clipped))

    def series(self, indices: np.ndarray, dtype: pl.DataType) -> pl.Series:
        """The values of these cell indices, as a column of ``dtype``."""
        if self.kind == "levels":
            return pl.Series(self.column, [self.values[i] for i in indices.tolist()], dtype=dtype, strict=False)
        k = indices.astype(np.int64) - 1
        if self.kind == "time":
            # as _disclosure._round_up: (t / width).ceil() * width, i.e. float(k) * width
            numbers = k.astype(np.float64) * self.width
        elif self.kind == "bins":
            # as _disclosure.control_view: floor(v / width) * width + width / 2
            numbers = (k + self.start).astype(np.float64) * self.width + self.width / 2
        else:
            numbers = (k + self.start).astype(np.float64)
        numbers[indices == 0] = np.nan
        return pl.Series(self.column, numbers, nan_to_null=True).cast(dtype)


@dataclass(frozen=True)
class ViewCells:
    """One view's block of the universe."""

    columns: tuple[str, ...]
    domains: tuple[Domain, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(d.size for d in self.domains)


@dataclass(frozen=True)
class CellUniverse:
    """The layout of a secure package's vector (see the module docstring)."""

    views: tuple[ViewCells, ...]
    flow_steps: tuple[str, ...]
    #: where the per-view (moved, left out) pairs start, then the flow, then the reconciliation
    fit_offset: int
    flow_offset: int
    reconciliation_offset: int
    size: int
    sha256: str

    @classmethod
    def of(cls, protocol: Protocol, centres: Sequence[str], disclosure: Disclosure,
           flow_steps: Sequence[str]) -> CellUniverse:
        """The universe of a protocol, a roster of centres and the disclosure settings."""
        if disclosure.time_bin_days <= 0:
            raise InputError("secure aggregation needs time bins (time_bin_days > 0): its cells are fixed in advance")
        views = []
        offset = 0
        for key in view_keys(protocol):
            domains = tuple(_domain(column, key, protocol, centres, disclosure) for column in key)
            cells = ViewCells(key, domains, offset)
            views.append(cells)
            offset += cells.size
        fit_offset = offset
        flow_offset = fit_offset + 2 * len(views)
        reconciliation_offset = flow_offset + len(FLOW_COUNTS) * len(flow_steps)
        size = reconciliation_offset + len(RECONCILIATION_COUNTS)
        described = {"views": [{"columns": list(v.columns), "domains": [
            {"kind": d.kind, "width": d.width, "start": d.start, "values": list(d.values)}
            for d in v.domains]} for v in views], "flow_steps": list(flow_steps),
            "reconciliation": list(RECONCILIATION_COUNTS)}
        from oncorwe.analysis.federated._package import canonical_json

        digest = hashlib.sha256(canonical_json(described)).hexdigest()
        return cls(tuple(views), tuple(flow_steps), fit_offset, flow_offset, reconciliation_offset, size, digest)

    def view_rows(self, vector: np.ndarray, cells: ViewCells, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """A view's counted rows (``count_rows`` layout: non-zero cells, sorted, nulls first) from
        its block of ``vector``."""
        block = vector[cells.offset:cells.offset + cells.size]
        flat = np.flatnonzero(block)
        shape = tuple(d.size for d in cells.domains)
        indices = np.unravel_index(flat, shape) if flat.size else tuple(np.zeros(0, dtype=np.int64) for _ in shape)
        columns = [d.series(np.asarray(i), schema.get(d.column, pl.Float64())) for d, i in
                   zip(cells.domains, indices, strict=True)]
        frame = pl.DataFrame([*columns, pl.Series(COUNT_COLUMN, block[flat].astype(np.int64), dtype=pl.Int64)])
        return frame.sort(list(cells.columns), nulls_last=False)


def own_flow(attrition: pl.DataFrame, centre_id: str) -> pl.DataFrame:
    """The centre's own rows of the flow (a centre's run also has the pooled rows, the same numbers)."""
    own = attrition.filter(pl.col("centre_id") == centre_id) if "centre_id" in attrition.columns else attrition
    return own.sort("step") if own.height else own


def count_vector(universe: CellUniverse, analysis_table: pl.DataFrame, protocol: Protocol, *, centre_id: str,
                 attrition: pl.DataFrame, reconciliation: pl.DataFrame) -> np.ndarray:
    """A centre's counts over the universe (uint64; see the module docstring)."""
    vector = np.zeros(universe.size, dtype=np.uint64)
    table = analysis_table.with_columns(
        [pl.col(c).fill_nan(None) for c, t in analysis_table.schema.items() if t in (pl.Float64, pl.Float32)])
    views = TableViews(table, derived_columns(protocol))
    for position, cells in enumerate(universe.views):
        frame = views.frame(cells.columns)
        indexed = [d.index(pl.col(d.column)) for d in cells.domains]
        frame = frame.with_columns(
            *(ix.alias(f"__i{n}") for n, (ix, _m) in enumerate(indexed)),
            *(moved.alias(f"__m{n}") for n, (_ix, moved) in enumerate(indexed)))
        frame = _censor_moved_times(frame, cells)
        left_out = pl.any_horizontal([pl.col(f"__i{n}") < 0 for n in range(len(cells.domains))])
        moved_any = pl.any_horizontal([pl.col(f"__m{n}") for n in range(len(cells.domains))])
        n_left_out = int(frame.select(left_out.sum()).item())
        kept = frame.filter(~left_out)
        n_moved = int(kept.select(moved_any.sum()).item())
        flat = np.zeros(kept.height, dtype=np.int64)
        for n, domain in enumerate(cells.domains):
            flat = flat * domain.size + kept[f"__i{n}"].to_numpy().astype(np.int64)
        vector[cells.offset:cells.offset + cells.size] += np.bincount(flat, minlength=cells.size).astype(np.uint64)
        vector[universe.fit_offset + 2 * position] = n_moved
        vector[universe.fit_offset + 2 * position + 1] = n_left_out
    flow = own_flow(attrition, centre_id)
    steps = tuple(flow["criterion"].to_list()) if flow.height else ()
    if steps != universe.flow_steps:
        raise InputError(f"secure package: the centre's flow has steps {list(steps)}, the universe {list(universe.flow_steps)}")
    for s, row in enumerate(flow.iter_rows(named=True)):
        for c, name in enumerate(FLOW_COUNTS):
            vector[universe.flow_offset + len(FLOW_COUNTS) * s + c] = int(row[name] or 0)
    for c, name in enumerate(RECONCILIATION_COUNTS):
        total = reconciliation[name].sum() if name in reconciliation.columns and reconciliation.height else 0
        vector[universe.reconciliation_offset + c] = int(total or 0)
    return vector


def _censor_moved_times(frame: pl.DataFrame, cells: ViewCells) -> pl.DataFrame:
    """A time moved back to the horizon is a censoring there: its event cell becomes 0."""
    columns = list(cells.columns)
    for time, event in EVENT_OF_TIME.items():
        if time in columns and event in columns:
            t, e = columns.index(time), columns.index(event)
            frame = frame.with_columns(
                pl.when(pl.col(f"__m{t}") & (pl.col(f"__i{e}") > 0)).then(1)  # index 1 is the value 0
                .otherwise(pl.col(f"__i{e}")).alias(f"__i{e}"))
    return frame


def _domain(column: str, key: tuple[str, ...], protocol: Protocol, centres: Sequence[str],
            disclosure: Disclosure) -> Domain:
    spec = protocol.federation
    schema = {**protocol.analysis_schema(), **{c: pl.Float64() for c in DERIVED_COLUMNS}}
    dtype = schema.get(column)
    if column == "centre_id":
        return Domain(column, "levels", (None, *sorted(centres)))
    if column == "regimen_ingredients":
        names = sorted(protocol.ingredient_classes())
        sets = ("+".join(c) for n in range(1, spec.max_regimen_ingredients + 1)
                for c in itertools.combinations(names, n))
        return Domain(column, "levels", (None, *sets))
    if column in TIME_COLUMN_DAYS:
        width = disclosure.time_bin_days / TIME_COLUMN_DAYS[column]
        n_bins = math.ceil(spec.horizon_days / disclosure.time_bin_days)
        return Domain(column, "time", (None, *range(n_bins + 1)), width=width)
    if column in _EVENTS:
        return Domain(column, "levels", (None, 0, 1))
    if dtype == pl.Boolean:
        return Domain(column, "levels", (None, False, True))
    levels = protocol.column_levels(column)
    if levels is not None and dtype == pl.String:
        return Domain(column, "levels", (None, *levels))
    low, high = spec.value_ranges.get(column, spec.default_value_range)
    if not low < high:
        raise InputError(f"protocol [federation] value_ranges.{column}: the range's low end {low} is not below its high end {high}")
    if column in disclosure.value_bins:
        width = float(disclosure.value_bins[column])
        start, stop = math.floor(low / width), math.ceil(high / width)
        return Domain(column, "bins", (None, *range(start, stop)), width=width, start=start)
    if dtype is not None and dtype.is_integer():
        start, stop = math.floor(low), math.floor(high)
        return Domain(column, "integers", (None, *range(start, stop + 1)), width=1.0, start=start)
    raise InputError(f"secure aggregation: the view ({', '.join(key)}) column {column} has no cell universe "
                     "(a number that is neither binned nor an integer, or a text without the protocol's levels)")
