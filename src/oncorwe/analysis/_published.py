"""Published versus reproduced: every figure of the study's publication beside the value computed
from the analysis results, the difference, and whether they agree at the published precision.

The published figures are data (``protocol/studies/<study>_published.toml``): each names the result
table, the row (``where``: column = value) and the column holding the reproduced value. Agreement
rules by kind: ``count`` exact; ``percent``, ``median``, ``rate`` and ``ci_bound`` (a bound of a
published confidence interval) equal after rounding half up to the
published number of decimals; ``p_below`` the reproduced p-value is below the published threshold.
Figures that cannot be computed from the data (``compare = false``) are shown with their reason. A
figure marked ``likely_typo`` (a probable misprint, its note says why) is compared and shown as
printed; if it disagrees its status is "likely typo", and agreement counts (:func:`agreement_counts`)
leave it out, as they leave out figures not compared.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oncorwe.errors import ProtocolError

__all__ = [
    "COUNTED_STATUSES", "PUBLISHED_SCHEMA", "PublishedFigure", "PublishedFigures", "agreement_counts",
    "compare_published", "load_published",
]

#: the statuses that count in "N of M published figures reproduced"
COUNTED_STATUSES = ("agrees", "differs", "not computed")

Kind = Literal["count", "percent", "median", "rate", "ci_bound", "p_below", "statement"]


class PublishedFigure(BaseModel):
    """One published figure and where its reproduction is read from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    published: str  # as printed in the publication
    kind: Kind
    value: float | None = None  # the printed number (threshold for p_below)
    decimals: int = Field(default=0, ge=0, le=4)
    unit: str = ""
    table: str | None = None
    where: dict[str, str] = Field(default_factory=dict)
    column: str | None = None
    compare: bool = True
    likely_typo: bool = False  # the printed figure is likely a misprint (``note`` says why)
    note: str = ""


class PublishedFigures(BaseModel):
    """The published figures of one reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str
    doi: str = ""
    source: str = ""
    figure: tuple[PublishedFigure, ...]


PUBLISHED_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(),
    "label": pl.String(),
    "kind": pl.String(),
    "unit": pl.String(),
    "published_text": pl.String(),
    "published_value": pl.Float64(),
    "decimals": pl.Int64(),
    "reproduced_value": pl.Float64(),  # full precision
    "reproduced_rounded": pl.String(),  # at the published precision
    "difference": pl.Float64(),  # reproduced - published (rounded values; null for p_below)
    "status": pl.String(),  # "agrees" | "differs" | "likely typo" | "not computed" | "not compared"
    "note": pl.String(),
    # where the reproduced value is read from, "table|column=value|...|column" (shareable outputs
    # withhold a figure whose source cell they withhold)
    "source": pl.String(),
}


def load_published(path: str | Path) -> PublishedFigures:
    """Read and validate a published-figures TOML file (errors name the file and the key)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProtocolError(f"{path}: published-figures file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{path}: not valid TOML: {exc}") from exc
    try:
        figures = PublishedFigures.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError([
            f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]) from exc
    problems = []
    seen: set[str] = set()
    for i, fig in enumerate(figures.figure):
        where = f"{path}: figure[{i}] ({fig.key})"
        if fig.key in seen:
            problems.append(f"{where}: duplicate key")
        seen.add(fig.key)
        if fig.compare and (fig.table is None or fig.column is None or fig.value is None):
            problems.append(f"{where}: a compared figure needs value, table and column")
        if fig.kind == "statement" and fig.compare:
            problems.append(f"{where}: kind 'statement' cannot be compared (set compare = false)")
        if fig.likely_typo and not fig.note:
            problems.append(f"{where}: a likely typo needs a note saying why")
    if problems:
        raise ProtocolError(problems)
    return figures


def _round(value: float, decimals: int) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def compare_published(figures: PublishedFigures, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per published figure (:data:`PUBLISHED_SCHEMA`)."""
    rows = []
    for fig in figures.figure:
        row: dict[str, object] = {
            "key": fig.key, "label": fig.label, "kind": fig.kind, "unit": fig.unit,
            "published_text": fig.published, "published_value": fig.value, "decimals": fig.decimals,
            "note": fig.note or None,
            "source": _source(fig),
        }
        if not fig.compare:
            rows.append({**row, "status": "not compared"})
            continue
        value = _lookup(fig, tables)
        if value is None:
            rows.append({**row, "status": "not computed"})
            continue
        row["reproduced_value"] = value
        assert fig.value is not None  # checked by load_published
        if fig.kind == "p_below":
            row["reproduced_rounded"] = f"{value:.2g}"
            agrees = value < fig.value
        else:
            rounded, published = _round(value, fig.decimals), _round(fig.value, fig.decimals)
            row["reproduced_rounded"] = str(rounded)
            row["difference"] = float(rounded - published)
            agrees = rounded == published
        rows.append({**row, "status": "agrees" if agrees else "likely typo" if fig.likely_typo else "differs"})
    return pl.DataFrame(rows, schema=PUBLISHED_SCHEMA)


def agreement_counts(published: pl.DataFrame) -> tuple[int, int]:
    """(agreeing, counted) figures of a published-vs-reproduced table: statements, likely typos
    and rows a shareable report withholds (null status) are shown but not counted."""
    counted = published.filter(pl.col("status").is_in(COUNTED_STATUSES))
    return int((counted["status"] == "agrees").sum()), counted.height


def _source(fig: PublishedFigure) -> str | None:
    if fig.table is None or fig.column is None:
        return None
    return "|".join([fig.table, *(f"{k}={v}" for k, v in fig.where.items()), fig.column])


def _lookup(fig: PublishedFigure, tables: Mapping[str, pl.DataFrame]) -> float | None:
    assert fig.table is not None and fig.column is not None
    if fig.table not in tables:
        raise ProtocolError(f"published figure {fig.key}: no result table {fig.table!r} "
                            f"(tables: {', '.join(sorted(tables))})")
    table = tables[fig.table]
    unknown = [c for c in (*fig.where, fig.column) if c not in table.columns]
    if unknown:
        raise ProtocolError(f"published figure {fig.key}: table {fig.table!r} has no column(s) {', '.join(unknown)}")
    selected = table
    for column, wanted in fig.where.items():
        selected = selected.filter(pl.col(column).cast(pl.String) == wanted)
    if selected.height > 1:
        raise ProtocolError(f"published figure {fig.key}: {selected.height} rows of {fig.table!r} match "
                            f"{fig.where}; add keys to 'where' so that one row matches")
    if selected.height == 0:
        return None
    value = selected[fig.column][0]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)
