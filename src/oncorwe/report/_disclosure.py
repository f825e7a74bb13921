"""Disclosure control of every shareable output, from one declaration (``results_spec.toml``).

Each table an output may hold is declared once, each column with its disclosure class, together
with the arithmetic that ties its counts together (row sums, group sums, margins, equal repeats,
attrition chains). :func:`disclose` turns the computed tables into the tables a shareable output
may show:

1. *Primary suppression*: a count ``0 < n < k`` (``k`` = the protocol's ``min_cell_count``) prints
   as ``"<k"``; zero discloses nobody and is shown (as in OHDSI's ``enforceMinCellValue``).
2. *Complementary suppression*: a count that could be recovered from the counts left visible, by
   any combination of the declared relations and the bounds a reader knows (a ``"<k"`` cell lies
   in 1..k-1, a ``"*"`` cell in k.. upwards), is protected by withholding the smallest other count
   of one of its relations (printed ``"*"``), until no withheld cell is determined. Where none is
   left, a small count fixed by its neighbours' bounds prints ``"*"`` (its upper bound unknown), or a
   shown zero beside a cell fixed by equations is withheld (``_last_resort``). Whether a
   cell is determined is decided exactly for the linear relaxation: the minimum and the maximum
   of the cell over all tables consistent with what is shown (two linear programmes, HiGHS) must
   differ by at least one.
3. Values derived from a withheld count (its percentages and CIs) are blanked; estimates of a
   group smaller than ``k`` (medians, rates, means) are blanked; single patients' values
   (minimum, maximum) are withheld; per-event curve counts are dropped.
4. Curves are read at fixed times (the report's axis ticks) with the number at risk only, and cut
   where fewer than ``k`` remain at risk (tail truncation), as OHDSI's shareable KM tables.

The relations are only used where they hold on the computed numbers (an attacker would use those
that hold). :func:`recoverable_cells` is the attacker: it lists every withheld count that the
shown tables determine, and is what the tests assert to be empty.

References: Hundepool A et al., *Statistical Disclosure Control* (Wiley 2012), ch. 4 (cell
suppression and the audit by linear programming); OHDSI CohortMethod ``enforceMinCellValue``.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from oncorwe.errors import AnalysisError

__all__ = [
    "COMPLEMENTARY",
    "ColumnSpec",
    "Disclosed",
    "Relation",
    "ResultsSpec",
    "TableSpec",
    "disclose",
    "recoverable_cells",
    "results_spec",
    "shareable_curves",
]

#: How a count withheld to protect another one prints.
COMPLEMENTARY = "*"

ColumnClass = Literal["key", "text", "count", "size", "derived", "estimate", "statistic", "individual", "time",
                      "dropped", "source"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ColumnSpec(_Frozen):
    """One column's disclosure class (see the header of ``results_spec.toml``)."""

    klass: ColumnClass = Field(alias="class")
    derived_from: tuple[str, ...] = Field(default=(), alias="from")
    group_size: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ColumnSpec:
        if self.klass == "derived" and not self.derived_from:
            raise ValueError("a derived column names the counts it is derived from ('from')")
        if self.klass == "estimate" and not self.group_size:
            raise ValueError("an estimate names the count that is its group's size ('group_size')")
        return self


class WhereOp(_Frozen):
    """A row filter other than equality: ``not`` in a list, or ``null`` (true/false)."""

    not_in: tuple[str, ...] | None = Field(default=None, alias="not")
    null: bool | None = None


WhereValue = str | list[str] | WhereOp


class Relation(_Frozen):
    """Arithmetic that ties counts together (see the header of ``results_spec.toml``)."""

    kind: Literal["row_sum", "group_sum", "margin", "equal", "chain"]
    total: str | None = None
    parts: tuple[str, ...] = ()
    within: tuple[str, ...] = ()
    column: str | None = None
    total_column: str | None = None
    total_where: dict[str, WhereValue] | None = None
    parts_where: dict[str, WhereValue] = Field(default_factory=dict)
    total_known: bool = False
    split: str | None = None
    overall: str | None = None
    match: tuple[str, ...] = ()
    order: str | None = None
    after: str | None = None
    before: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Relation:
        needs = {
            "row_sum": ("total", "parts"),
            "group_sum": ("column",),
            "margin": ("split", "overall", "column"),
            "equal": ("column", "within"),
            "chain": ("within", "order", "after", "before"),
        }[self.kind]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} relation needs {', '.join(missing)}")
        if self.kind == "group_sum" and sum(map(bool, (self.total_column, self.total_where, self.total_known))) != 1:
            raise ValueError("a group_sum relation has one total: total_column, total_where or total_known")
        return self


class TableSpec(_Frozen):
    """One table: its description, every column's class, its relations; ``curve`` for KM curves."""

    description: str
    columns: dict[str, ColumnSpec]
    relations: tuple[Relation, ...] = ()
    curve: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short_columns(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            data = {**data, "columns": {name: {"class": spec} if isinstance(spec, str) else spec
                                        for name, spec in data["columns"].items()}}
        return data

    @model_validator(mode="after")
    def _names_resolve(self) -> TableSpec:
        problems = []
        for name, spec in self.columns.items():
            problems += [f"column {name}: derived from unknown column {d!r}" for d in spec.derived_from
                         if d not in self.columns]
            if spec.group_size and "." not in spec.group_size and spec.group_size not in self.columns:
                problems.append(f"column {name}: group_size {spec.group_size!r} is not a column")
        for relation in self.relations:
            named = [relation.total, *relation.parts, *relation.within, relation.column, relation.total_column,
                     *(relation.total_where or {}), *relation.parts_where, relation.split, *relation.match,
                     relation.order, relation.after, relation.before]
            problems += [f"relation {relation.kind}: unknown column {n!r}" for n in named
                         if n is not None and n not in self.columns]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ResultsSpec(_Frozen):
    """Every table an output may hold."""

    tables: dict[str, TableSpec]

    def counts(self, table: str) -> list[str]:
        """The count columns of a table (group sizes included), in declaration order."""
        return [n for n, c in self.tables[table].columns.items() if c.klass in ("count", "size")]

    def sizes(self) -> set[tuple[str, str]]:
        """(table, column) of every group-size column."""
        return {(t, n) for t, spec in self.tables.items() for n, c in spec.columns.items() if c.klass == "size"}


@cache
def results_spec() -> ResultsSpec:
    """The results spec shipped with oncorwe (``report/results_spec.toml``), validated."""
    text = (resources.files("oncorwe.report") / "results_spec.toml").read_text(encoding="utf-8")
    return ResultsSpec.model_validate(tomllib.loads(text))


# --------------------------------------------------------------------------------------------------
# Cells and the linear relations between them

Cell = tuple[str, int, str]  # (table, row index, column)


@dataclass(frozen=True)
class Equation:
    """``sum(coef * cell) = constant`` over cells of the computed tables."""

    terms: tuple[tuple[Cell, int], ...]
    constant: int = 0
    #: the parts' sum is printed elsewhere: ``constant`` is taken from the computed numbers
    known_total: bool = False


def _mask(frame: pl.DataFrame, where: Mapping[str, WhereValue]) -> np.ndarray:
    keep = np.ones(frame.height, dtype=bool)
    for column, wanted in where.items():
        values = frame[column].cast(pl.String)
        if isinstance(wanted, WhereOp):
            if wanted.null is not None:
                keep &= (values.is_null() == wanted.null).to_numpy()
            if wanted.not_in is not None:
                keep &= (~values.is_in(list(wanted.not_in)).fill_null(False)).to_numpy()
        elif isinstance(wanted, list):
            keep &= values.is_in(wanted).fill_null(False).to_numpy()
        else:
            keep &= (values == wanted).fill_null(False).to_numpy()
    return keep


def _groups(frame: pl.DataFrame, keys: Sequence[str]) -> list[np.ndarray]:
    if not keys:
        return [np.arange(frame.height)]
    indexed = frame.select(list(keys)).with_row_index("_i")
    return [g["_i"].to_numpy() for g in indexed.partition_by(list(keys), maintain_order=True)]


def _equations(name: str, frame: pl.DataFrame, spec: TableSpec) -> list[Equation]:
    """Every instance of the table's relations, as equations between its cells."""
    out: list[Equation] = []

    def cell(row: int, column: str) -> Cell:
        return (name, int(row), column)

    for rel in spec.relations:
        if rel.kind == "row_sum":
            assert rel.total is not None
            for row in range(frame.height):
                out.append(Equation(((cell(row, rel.total), 1), *((cell(row, p), -1) for p in rel.parts))))
        elif rel.kind == "equal":
            assert rel.column is not None
            for rows in _groups(frame, rel.within):
                out += [Equation(((cell(rows[0], rel.column), 1), (cell(r, rel.column), -1))) for r in rows[1:]]
        elif rel.kind == "chain":
            assert rel.order and rel.after and rel.before
            for rows in _groups(frame, rel.within):
                ordered = rows[np.argsort(frame[rel.order].to_numpy()[rows], kind="stable")]
                out += [Equation(((cell(a, rel.after), 1), (cell(b, rel.before), -1)))
                        for a, b in itertools.pairwise(ordered)]
        elif rel.kind == "group_sum":
            assert rel.column is not None
            parts_mask = _mask(frame, rel.parts_where)
            total_mask = _mask(frame, rel.total_where) if rel.total_where else None
            for rows in _groups(frame, rel.within):
                parts = rows[parts_mask[rows]]
                if parts.size == 0:
                    continue
                terms = [(cell(r, rel.column), -1) for r in parts]
                if rel.total_known:
                    out.append(Equation(tuple((c, 1) for c, _ in terms), known_total=True))
                    continue
                if rel.total_column:
                    total = cell(parts[0], rel.total_column)
                else:
                    assert total_mask is not None
                    totals = rows[total_mask[rows]]
                    if totals.size != 1:
                        continue
                    total = cell(totals[0], rel.column)
                out.append(Equation(((total, 1), *terms)))
        elif rel.kind == "margin":
            assert rel.split and rel.column
            split = frame[rel.split].cast(pl.String).to_numpy()
            keys = frame.select(list(rel.match)).rows() if rel.match else [()] * frame.height
            overall_rows = {keys[r]: r for r in range(frame.height) if split[r] == rel.overall}
            by_split: dict[tuple[str, tuple[Any, ...]], list[int]] = defaultdict(list)
            for r in range(frame.height):
                if split[r] != rel.overall:
                    by_split[(split[r], keys[r])].append(r)
            for (_, key), rows_list in by_split.items():
                if key in overall_rows:
                    out.append(Equation(((cell(overall_rows[key], rel.column), 1),
                                         *((cell(r, rel.column), -1) for r in rows_list))))
    return out


def _value(tables: Mapping[str, pl.DataFrame], cell: Cell) -> int | None:
    value = tables[cell[0]][cell[2]][cell[1]]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _holding(equations: Iterable[Equation], raw: Mapping[str, pl.DataFrame], k: int) -> list[Equation]:
    """The equations that hold on the computed numbers (a known total gets its constant here)."""
    out = []
    for eq in equations:
        values = [_value(raw, c) for c, _ in eq.terms]
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            continue
        total = sum(coef * v for (_, coef), v in zip(eq.terms, known, strict=True))
        if eq.known_total:
            # a total printed elsewhere is a group size, and a size below k prints "<k" there too:
            # the reader knows only that the parts add up to 1..k-1, which their own bounds say
            if 0 < abs(total) < k:
                continue
            out.append(Equation(eq.terms, constant=total))
        elif total == eq.constant:
            out.append(eq)
    return out


# --------------------------------------------------------------------------------------------------
# The attacker: which withheld cells do the shown cells determine?

def _determined(
    equations: Sequence[Equation], raw: Mapping[str, pl.DataFrame], withheld: Mapping[Cell, str], k: int,
    *, cache: dict[Any, list[Cell]] | None = None, exact: bool = True,
) -> list[Cell]:
    """Withheld cells whose value the shown cells and the relations fix.

    A cell is fixed when the equations alone fix it (its row of the null space of the equations over
    the withheld cells is zero) or, with ``exact``, when the bounds every withheld value is known to
    keep (a primary count 1..k-1, a complementary one >= k) leave it less than one unit of room: its
    minimum and maximum by linear programming (HiGHS) over the relaxation. ``cache`` keeps each
    component's answer between calls (same unknowns, bounds and equations: same answer)."""
    from scipy.linalg import null_space
    from scipy.optimize import linprog

    reduced: list[tuple[dict[Cell, int], int]] = []
    for eq in equations:
        unknown: dict[Cell, int] = {}
        rhs = eq.constant
        for cell, coef in eq.terms:
            if cell in withheld:
                unknown[cell] = unknown.get(cell, 0) + coef
            else:
                rhs -= coef * (_value(raw, cell) or 0)
        unknown = {c: v for c, v in unknown.items() if v}
        if unknown:
            reduced.append((unknown, rhs))
    # components of unknowns linked by equations
    parent: dict[Cell, Cell] = {}

    def find(c: Cell) -> Cell:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for unknown, _ in reduced:
        first, *rest = unknown
        for other in rest:
            parent[find(other)] = find(first)
    components: dict[Cell, list[int]] = defaultdict(list)
    for i, (unknown, _) in enumerate(reduced):
        components[find(next(iter(unknown)))].append(i)

    found: list[Cell] = []
    for eq_ids in components.values():
        cells = sorted({c for i in eq_ids for c in reduced[i][0]})
        index = {c: j for j, c in enumerate(cells)}
        a = np.zeros((len(eq_ids), len(cells)))
        b = np.zeros(len(eq_ids))
        for row, i in enumerate(eq_ids):
            unknown, rhs = reduced[i]
            for c, coef in unknown.items():
                a[row, index[c]] = coef
            b[row] = rhs
        bounds = [_bounds(withheld[c], k) for c in cells]
        key = (exact, tuple(cells), tuple(b), tuple(bounds), a.tobytes())
        if cache is not None and key in cache:
            found += cache[key]
            continue
        basis = null_space(a)
        free = np.abs(basis).max(axis=1) > 1e-9 if basis.size else np.zeros(len(cells), dtype=bool)
        mine = [c for j, c in enumerate(cells) if not free[j]]
        # Feasible tables seen so far (the computed one, then every LP's optimum): a cell that two of
        # them give values at least one apart is not determined, and needs no LP of its own. Most
        # free cells are settled so; the answer is the one the two LPs per cell would give.
        points = _feasible_start(a, b, bounds, [_value(raw, c) for c in cells]) if exact else []
        for j, c in enumerate(cells):
            if not exact or not free[j] or _spread(points, j) >= 1 + _SPREAD_MARGIN:
                continue
            objective = np.zeros(len(cells))
            objective[j] = 1.0
            low = linprog(objective, A_eq=a, b_eq=b, bounds=bounds, method="highs")
            if low.status != 0:
                continue  # the relaxation is loose: not determined
            points.append(low.x)
            if _spread(points, j) >= 1 + _SPREAD_MARGIN:
                continue
            high = linprog(-objective, A_eq=a, b_eq=b, bounds=bounds, method="highs")
            if high.status != 0:
                continue  # unbounded above: not determined
            points.append(high.x)
            if -high.fun - low.fun < 1 - 1e-9:
                mine.append(c)
        if cache is not None:
            cache[key] = mine
        found += mine
    return found


#: how far apart two feasible tables must put a cell to settle it without an LP: above the solvers'
#: feasibility tolerance (1e-7), so that a cell is never passed over on a rounding error
_SPREAD_MARGIN = 1e-6


def _feasible_start(a: np.ndarray, b: np.ndarray, bounds: Sequence[tuple[int, int | None]],
                    values: Sequence[int | None]) -> list[np.ndarray]:
    """The computed values of a component's cells, as the first feasible table, when they are one
    (they satisfy the equations that hold and, as a rule, the bounds the reader knows)."""
    if any(v is None for v in values):
        return []
    x = np.asarray(values, dtype=float)
    low = np.array([lo for lo, _ in bounds], dtype=float)
    high = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype=float)
    if np.all(x >= low) and np.all(x <= high) and np.allclose(a @ x, b, rtol=0, atol=1e-9):
        return [x]
    return []


def _spread(points: Sequence[np.ndarray], j: int) -> float:
    """The range of cell ``j`` over the feasible tables ``points`` (0 without two of them)."""
    if len(points) < 2:
        return 0.0
    values = [p[j] for p in points]
    return float(max(values) - min(values))


def _bounds(why: str, k: int) -> tuple[int, int | None]:
    """What a reader knows of a withheld count: a ``"<k"`` count lies in 1..k-1; a ``"*"`` count
    withheld to protect another is a shown-size count (k or more, as the protector chose it); a
    small count or a zero printed ``"*"`` because nothing else could protect it (``escalated``,
    ``zero``) is known only to be at least 1, or 0."""
    return {"primary": (1, k - 1), "complementary": (k, None), "escalated": (1, None)}.get(why, (0, None))


def _all_equations(raw: Mapping[str, pl.DataFrame], spec: ResultsSpec, k: int) -> list[Equation]:
    equations: list[Equation] = []
    for name, frame in raw.items():
        table = spec.tables.get(name)
        if table is None or frame.height == 0 or not table.relations:
            continue
        if any(c not in frame.columns for rel in table.relations
               for c in (rel.total, *rel.parts, rel.column, rel.total_column) if c):
            continue
        equations += _holding(_equations(name, frame, table), raw, k)
    return equations


def _primary(raw: Mapping[str, pl.DataFrame], spec: ResultsSpec, k: int) -> dict[Cell, str]:
    withheld: dict[Cell, str] = {}
    for name, frame in raw.items():
        if name not in spec.tables:
            continue
        for column in spec.counts(name):
            if column not in frame.columns:
                continue
            values = frame[column].to_numpy()
            for row in np.flatnonzero((values > 0) & (values < k)):
                withheld[(name, int(row), column)] = "primary"
    return withheld


def _complementary(raw: Mapping[str, pl.DataFrame], equations: Sequence[Equation], withheld: dict[Cell, str],
                   k: int, *, public: set[tuple[str, str]] = frozenset()) -> dict[Cell, str]:  # type: ignore[assignment]
    """Withhold further counts until no withheld count is determined by what is shown.

    Cells that an equation makes equal (a denominator repeated on every row of a group, one
    criterion's "after" and the next one's "before") are one quantity: they are withheld together.
    """
    parent: dict[Cell, Cell] = {}

    def find(c: Cell) -> Cell:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    def is_equality(eq: Equation) -> bool:
        return len(eq.terms) == 2 and eq.constant == 0 and sorted(coef for _, coef in eq.terms) == [-1, 1]

    for eq in equations:
        if is_equality(eq):
            a, b = (find(c) for c, _ in eq.terms)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[Cell, list[Cell]] = defaultdict(list)
    for cell in {c for eq in equations for c, _ in eq.terms} | set(withheld):
        members[find(cell)].append(cell)
    state: dict[Cell, str] = {}
    for cell, why in withheld.items():
        state[find(cell)] = "primary" if why == "primary" or state.get(find(cell)) == "primary" else why
    reduced: list[Equation] = []
    seen: set[tuple[tuple[tuple[Cell, int], ...], int]] = set()
    for eq in equations:
        if is_equality(eq):
            continue
        terms: dict[Cell, int] = defaultdict(int)
        for cell, coef in eq.terms:
            terms[find(cell)] += coef
        key = (tuple(sorted((c, v) for c, v in terms.items() if v)), eq.constant)
        if key[0] and key not in seen:
            seen.add(key)
            reduced.append(Equation(key[0], eq.constant))
    by_cell: dict[Cell, list[Equation]] = defaultdict(list)
    for eq in reduced:
        for cell, _ in eq.terms:
            by_cell[cell].append(eq)
    cache: dict[Any, list[Cell]] = {}

    def is_public(rep: Cell) -> bool:
        return any((c[0], c[2]) in public for c in members.get(rep, [rep]))

    # Cells the public numbers (sizes, zeros) fix whatever else is withheld, such as a denominator
    # equal to a public group size minus a zero: withholding them protects nothing, never chosen.
    pinned = _pinned(reduced, {rep for rep in members if rep not in state and (
        is_public(rep) or (_value(raw, rep) or 0) == 0)})

    def choosable(rep: Cell) -> bool:
        return rep not in state and rep not in pinned

    for _ in range(10_000):
        # the equations alone first (fast); the bounds (linear programmes) once those are met
        determined = _determined(reduced, raw, state, k, cache=cache, exact=False) or _determined(
            reduced, raw, state, k, cache=cache)
        if not determined:
            return {cell: why for rep, why in state.items() for cell in members.get(rep, [rep])}
        added: set[Cell] = set()
        for cell in determined:
            if any(c in added for eq in by_cell[cell] for c, _ in eq.terms):
                continue  # a cell withheld this round already sits beside it: look again first
            choice = _complement_for(cell, by_cell, state, choosable, raw)
            if choice is not None:
                state[choice] = "complementary"
                added.add(choice)
        if not added:
            added = _last_resort(determined, by_cell, state, raw)
        if not added:
            raise _unprotectable(determined[0], k, "every count beside it is withheld already")
    raise _unprotectable(None, k, "complementary suppression did not settle")


def _unprotectable(cell: Cell | None, k: int, why: str) -> AnalysisError:
    """No shareable version: a withheld count stays fixed by what would be shown (nothing is written)."""
    where = f"table {cell[0]}, row {cell[1] + 1}, column {cell[2]}" if cell is not None else "the tables"
    return AnalysisError(
        f"shareable outputs: a withheld count ({where}) would still follow from the numbers shown at "
        f"min_cell_count {k} ({why}); nothing is written: share the outputs at another min_cell_count, "
        "or without the smallest groups")




def _last_resort(determined: Sequence[Cell], by_cell: Mapping[Cell, Sequence[Equation]], state: dict[Cell, str],
                 raw: Mapping[str, pl.DataFrame]) -> set[Cell]:
    """When no shown count is left to withhold beside a fixed cell: a small count fixed by the bounds
    of its neighbours (four "<5" parts of a "<5" total are 1 each) prints ``"*"`` instead of
    ``"<k"``, so that its upper bound is unknown; a cell fixed by the equations loses a shown zero
    beside it (printed ``"*"``). Returns the cells changed."""
    changed: set[Cell] = set()
    for cell in determined:
        if state.get(cell) == "primary":
            state[cell] = "escalated"
            changed.add(cell)
            continue
        zeros = sorted(c for eq in by_cell.get(cell, ()) for c, _ in eq.terms
                       if c not in state and (_value(raw, c) or 0) == 0)
        if zeros:
            state[zeros[0]] = "zero"
            changed.add(zeros[0])
    return changed


#: equations around a fixed cell that the choice of its complement looks at
_NEIGHBOURHOOD = 60


def _complement_for(cell: Cell, by_cell: Mapping[Cell, Sequence[Equation]], state: Mapping[Cell, str],
                    choosable: Any, raw: Mapping[str, pl.DataFrame], tries: int = 40) -> Cell | None:
    """The count to withhold next so that ``cell`` is no longer fixed by what is shown: the nearest
    (fewest equations away), then smallest, shown count whose withholding makes ``cell`` linearly
    undetermined (its unit vector leaves the row space of the equations over the withheld cells);
    the nearest smallest shown count when none does (``cell`` is then fixed by the bounds only)."""
    distance = {cell: 0}
    frontier = [cell]
    equations: dict[int, Equation] = {}
    # the neighbourhood only: the choice is a heuristic (the caller checks its effect on the whole
    # component), and a component's full matrix makes each choice an SVD of thousands of cells
    while frontier and len(equations) < _NEIGHBOURHOOD:
        nxt = []
        for c in frontier:
            for eq in by_cell.get(c, ()):
                if len(equations) >= _NEIGHBOURHOOD and id(eq) not in equations:
                    break
                equations[id(eq)] = eq
                for other, _ in eq.terms:
                    if other not in distance:
                        distance[other] = distance[c] + 1
                        nxt.append(other)
        frontier = nxt
    candidates = sorted((distance[c], _value(raw, c) or 0, c) for c in distance
                        if choosable(c) and (_value(raw, c) or 0) > 0)
    if not candidates:
        # nothing but public sizes left beside it (a group whose every count is fixed by its size
        # and the bounds): the group's size is withheld too
        candidates = sorted((distance[c], _value(raw, c) or 0, c) for c in distance
                            if c not in state and (_value(raw, c) or 0) > 0)
    if not candidates:
        return None
    cells = sorted(distance)
    index = {c: j for j, c in enumerate(cells)}
    a = np.zeros((len(equations), len(cells)))
    for i, eq in enumerate(equations.values()):
        for c, v in eq.terms:
            a[i, index[c]] += v
    # ``cell`` is fixed: every null vector of the equations over the withheld columns W is 0 there.
    # Withholding y as well adds the null vectors (v, 1) with A_W v = -a_y: they exist when a_y is in
    # the column space of A_W, and move ``cell`` when the particular solution does.
    withheld = [index[c] for c in cells if c in state]
    a_w = a[:, withheld]
    pseudo = np.linalg.pinv(a_w)
    at = withheld.index(index[cell])
    for _, _, candidate in candidates[:tries]:
        a_y = a[:, index[candidate]]
        shift = -pseudo @ a_y
        if np.allclose(a_w @ shift, -a_y, atol=1e-8) and abs(shift[at]) > 1e-9:
            return candidate
    return candidates[0][2]

def _pinned(equations: Sequence[Equation], known: set[Cell]) -> set[Cell]:
    """``known`` and the cells that linear combinations of the equations fix from them alone: a
    cell is fixed when its unit vector lies in the row space of the equations over the unknowns
    (its row of the null space is zero)."""
    from scipy.linalg import null_space

    parent: dict[Cell, Cell] = {}

    def find(c: Cell) -> Cell:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    rows = [[(c, v) for c, v in eq.terms if c not in known] for eq in equations]
    rows = [r for r in rows if r]
    for r in rows:
        for c, _ in r[1:]:
            parent[find(c)] = find(r[0][0])
    components: dict[Cell, list[list[tuple[Cell, int]]]] = defaultdict(list)
    for r in rows:
        components[find(r[0][0])].append(r)
    fixed = set(known)
    for comp in components.values():
        cells = sorted({c for r in comp for c, _ in r})
        index = {c: j for j, c in enumerate(cells)}
        a = np.zeros((len(comp), len(cells)))
        for i, r in enumerate(comp):
            for c, v in r:
                a[i, index[c]] += v
        basis = null_space(a)
        if basis.size == 0:
            fixed.update(cells)
            continue
        free = np.abs(basis).max(axis=1) > 1e-9
        fixed.update(c for c, j in index.items() if not free[j])
    return fixed


def recoverable_cells(raw: Mapping[str, pl.DataFrame], shown: Mapping[str, pl.DataFrame], min_cell_count: int,
                      spec: ResultsSpec | None = None) -> list[Cell]:
    """Every withheld count of ``shown`` (printed ``"<k"`` or ``"*"``) that the shown counts and
    the results spec's relations determine, given the computed tables ``raw``. Empty for the
    output of :func:`disclose`."""
    spec = spec or results_spec()
    withheld: dict[Cell, str] = {}
    for name, frame in shown.items():
        if name not in spec.tables:
            continue
        for column in spec.counts(name):
            if column not in frame.columns or frame[column].dtype != pl.String:
                continue
            values = raw[name][column].to_list() if name in raw and column in raw[name].columns else []
            for row, text in enumerate(frame[column].to_list()):
                if text == COMPLEMENTARY:
                    # the strongest reader: one who knows which "*" hides a shown-size count
                    value = values[row] if row < len(values) else None
                    withheld[(name, row, column)] = ("complementary" if value is None or value >= min_cell_count
                                                     else "escalated" if value > 0 else "zero")
                elif isinstance(text, str) and text.startswith("<"):
                    withheld[(name, row, column)] = "primary"
    common = {n: raw[n] for n in shown if n in raw}
    with _one_blas_thread():
        return _determined(_all_equations(common, spec, min_cell_count), common, withheld, min_cell_count)


def _one_blas_thread() -> Any:
    """The audit is thousands of SVDs and LPs of matrices of tens to hundreds of cells: threaded BLAS
    only adds overhead there, and on a busy machine it made disclosure 6x slower (53 s against 8 s
    on a 69-patient study, load 10 on 2 cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# --------------------------------------------------------------------------------------------------
# Curves read at fixed times

def shareable_curves(curves: pl.DataFrame, min_cell_count: int, times: Sequence[float] | None = None) -> pl.DataFrame:
    """Kaplan-Meier curves read at fixed times: per group, at each time t the number at risk
    (time >= t) and the estimate (and its SE and CI) just before t; rows from where fewer than
    ``min_cell_count`` remain at risk are cut. Per-event counts are not carried. ``times`` default
    to the report's axis ticks (every 3, 6 or 12 months) over the whole follow-up."""
    from oncorwe.report._km_plot import time_ticks

    if not curves.columns:  # a table the run did not make (a combined result has no competing_curves)
        return curves
    # the competing-risks curves of several analyses share a table, told apart by `analysis`
    keys = [*(["analysis"] if "analysis" in curves.columns else []), "endpoint", "group_var", "group"]
    estimates = [c for c in ("survival", "incidence", "se", "lower", "upper") if c in curves.columns]
    # a survival curve starts at 1, a cumulative incidence curve (competing risks) at 0
    start_at = {"survival": 1.0, "se": 0.0, "lower": 1.0, "upper": 1.0} if "incidence" not in curves.columns \
        else {"incidence": 0.0, "se": 0.0, "lower": 0.0, "upper": 0.0}
    schema: dict[str, pl.DataType] = {k: curves.schema[k] for k in keys}
    schema["time"], schema["n_risk"] = pl.Float64(), pl.Int64()
    for c in estimates:
        schema[c] = pl.Float64()
    if curves.height == 0:
        return pl.DataFrame(schema=schema)
    grid = np.asarray(times if times is not None else time_ticks(float(np.max(curves["time"].to_numpy()))), dtype=float)
    rows: list[dict[str, Any]] = []
    # the analyses stay in their (the protocol's) order; within one, the curves are sorted
    analyses = [curves] if "analysis" not in keys else curves.partition_by("analysis", maintain_order=True)
    for group in (g for part in analyses for g in part.sort([*keys, "time"]).partition_by(keys, maintain_order=True)):
        time = group["time"].to_numpy()
        n_risk = group["n_risk"].to_numpy()
        values = {c: group[c].to_numpy().astype(float) for c in estimates}
        for t in grid:
            later = np.flatnonzero(time >= t)
            at_risk = int(n_risk[later[0]]) if later.size else 0
            if at_risk < max(min_cell_count, 1):
                break
            before = np.flatnonzero(time < t)
            row: dict[str, Any] = {k: group[k][0] for k in keys}
            row.update(time=float(t), n_risk=at_risk)
            for c in estimates:
                row[c] = float(values[c][before[-1]]) if before.size else start_at[c]
            rows.append(row)
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------------------------------
# Putting it together

@dataclass(frozen=True)
class Disclosed:
    """The tables a shareable output may show, and what was done to them.

    ``withheld`` maps each withheld count (table, row, column) to "primary" (printed ``"<k"``),
    or "complementary", "escalated" (a small count) or "zero" (all printed ``"*"``);
    ``undeclared`` lists the columns left out because the results spec does not declare them.
    """

    tables: Mapping[str, pl.DataFrame]
    withheld: Mapping[Cell, str]
    undeclared: tuple[str, ...]


def _source_withheld(shown: Mapping[str, pl.DataFrame], source: str | None) -> bool:
    """Whether a published figure's source cell (``table|col=value|...|column``) is withheld or blank."""
    if not source:
        return False
    table, *filters, column = source.split("|")
    frame = shown.get(table)
    if frame is None or column not in frame.columns:
        return True
    for item in filters:
        key, _, value = item.partition("=")
        if key not in frame.columns:
            return True
        frame = frame.filter(pl.col(key).cast(pl.String) == value)
    if frame.height != 1:
        return True
    value = frame[column][0]
    return value is None or (isinstance(value, str) and (value == COMPLEMENTARY or value.startswith("<"))) \
        or (isinstance(value, float) and math.isnan(value))


def disclose(raw: Mapping[str, pl.DataFrame], min_cell_count: int, spec: ResultsSpec | None = None) -> Disclosed:
    """The shareable version of the computed tables ``raw`` (see the module docstring).

    With ``min_cell_count`` 0 nothing is withheld but single patients' values and undeclared
    columns still follow the spec only when ``min_cell_count`` > 0: 0 returns ``raw`` as it is.
    """
    spec = spec or results_spec()
    k = int(min_cell_count)
    if k <= 0:
        return Disclosed(dict(raw), {}, ())
    tables = {name: (shareable_curves(frame, k) if name in spec.tables and spec.tables[name].curve else frame)
              for name, frame in raw.items()}
    equations = _all_equations(tables, spec, k)
    with _one_blas_thread():
        withheld = _complementary(tables, equations, _primary(tables, spec, k), k, public=spec.sizes())
    undeclared: list[str] = []
    shown: dict[str, pl.DataFrame] = {}
    marker = f"<{k}"
    # figures read from other tables (``source`` columns) inherit their withholding: done last
    order = sorted(tables, key=lambda n: n in spec.tables and any(
        c.klass == "source" for c in spec.tables[n].columns.values()))
    for name in order:
        frame = tables[name]
        table = spec.tables.get(name)
        if table is None:
            undeclared += [f"{name}.{c}" for c in frame.columns]
            shown[name] = frame.clear()  # an undeclared table leaves nothing
            continue
        out = frame
        undeclared += [f"{name}.{c}" for c in frame.columns if c not in table.columns]
        keep = [c for c in frame.columns if c in table.columns and table.columns[c].klass != "dropped"]
        blank: dict[str, np.ndarray] = {}
        for column in keep:
            if table.columns[column].klass not in ("count", "size"):
                continue
            mine = [(row, why) for (t, row, c), why in withheld.items() if t == name and c == column]
            mask = np.zeros(frame.height, dtype=bool)
            text = frame[column].cast(pl.String).to_list()
            for row, why in mine:
                mask[row] = True
                text[row] = marker if why == "primary" else COMPLEMENTARY
            blank[column] = mask
            out = out.with_columns(pl.Series(column, text, dtype=pl.String))
        for column in keep:
            col_spec = table.columns[column]
            hide = np.zeros(frame.height, dtype=bool)
            if col_spec.klass == "individual":
                hide[:] = True
            elif col_spec.klass == "derived":
                for source in col_spec.derived_from:
                    if table.columns[source].klass == "source":
                        hide |= np.array([_source_withheld(shown, s) for s in frame[source].to_list()], dtype=bool)
                    else:
                        hide |= blank.get(source, np.zeros(frame.height, dtype=bool))
            elif col_spec.klass == "estimate":
                hide |= _small_group(col_spec.group_size or "", name, frame, tables, k)
            if hide.any():
                out = out.with_columns(pl.when(pl.Series(hide)).then(None).otherwise(pl.col(column)).alias(column))
        shown[name] = out.select(keep)
    return Disclosed({name: shown[name] for name in tables}, withheld, tuple(undeclared))


def _small_group(group_size: str, name: str, frame: pl.DataFrame, tables: Mapping[str, pl.DataFrame],
                 k: int) -> np.ndarray:
    """Rows whose group (the count ``group_size``, here or ``table.column`` matched on the shared key
    columns) has fewer than ``k`` members."""
    if "." not in group_size:
        sizes = frame[group_size].cast(pl.Float64).fill_null(0).to_numpy()
        return sizes < k
    other_name, column = group_size.split(".", 1)
    other = tables.get(other_name)
    if other is None or column not in other.columns:
        return np.ones(frame.height, dtype=bool)
    keys = [c for c in frame.columns if c in other.columns and c != column
            and results_spec().tables[other_name].columns.get(c, ColumnSpec.model_validate({"class": "text"})).klass == "key"]
    joined = frame.select(keys).with_row_index("_i").join(
        other.select(*keys, pl.col(column).alias("_size")), on=keys, how="left", nulls_equal=True).sort("_i")
    return joined["_size"].cast(pl.Float64).fill_null(0).to_numpy() < k
