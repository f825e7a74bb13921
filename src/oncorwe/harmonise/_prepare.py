"""Column-level preparation of a centre's tables, before the row loop: how each column is mapped
(for the column map), which missing-value codes the centre uses, and every date column read in one
order (the centre's other date columns settle an ambiguous one; else a fatal problem).
"""

from __future__ import annotations

from collections.abc import Sequence

from oncorwe.harmonise._columns import FIELDS, ColumnMap
from oncorwe.harmonise._dates import ColumnDates, infer_date_column
from oncorwe.harmonise._rows import Accumulator
from oncorwe.harmonise._vocab import Vocabulary, normalise_column, normalise_word
from oncorwe.sources import CentreConfig, RawTable

__all__ = ["centre_missing_tokens", "infer_dates", "record_columns"]


def centre_missing_tokens(
    tables: Sequence[RawTable], maps: Sequence[ColumnMap], vocab: Vocabulary
) -> frozenset[str]:
    """Missing-value codes (99, x, ...) that the centre uses in its coded columns.

    A centre writes "missing" one way: a code such as 99 found in a coded column (sex, stage, ECOG)
    means missing in its measured columns (LDH) too; elsewhere 99 U/L stays a value.
    """
    found: set[str] = set()
    for table, cmap in zip(tables, maps, strict=True):
        for position, name in cmap.fields.items():
            if FIELDS.get(name) not in ("code", "bool", "ecog", "response"):
                continue
            for row in table.rows:
                text = row[position]
                if text is not None and normalise_word(text) in vocab.missing_coded:
                    found.add(normalise_word(text))
    return frozenset(found)


def record_columns(table: RawTable, cmap: ColumnMap, acc: Accumulator) -> None:
    for position, name in enumerate(table.columns):
        acc.columns.append({
            "centre_id": table.centre_id, "file": table.file, "sheet": table.sheet, "column": name,
            "field": cmap.fields.get(position),
            "how": cmap.how.get(position) or ("ignored" if name in cmap.ignored else "unknown"),
        })


def infer_dates(
    tables: Sequence[RawTable], maps: Sequence[ColumnMap], centre: CentreConfig, vocab: Vocabulary,
    acc: Accumulator,
) -> list[dict[int, ColumnDates]]:
    """Dates of every date column; ambiguous columns fall back to the centre's settled order."""
    overrides = centre.overrides
    default_order, column_orders = overrides.orders()
    declared_cols = {normalise_column(k): v for k, v in column_orders.items()}
    first: list[dict[int, ColumnDates]] = []
    settled: list[str] = []
    for table, cmap in zip(tables, maps, strict=True):
        out: dict[int, ColumnDates] = {}
        for position, name in cmap.fields.items():
            if FIELDS.get(name) != "date":
                continue
            declared = declared_cols.get(normalise_column(table.columns[position]), default_order)
            result = infer_date_column([r[position] for r in table.rows], vocab, declared=declared)
            out[position] = result
            if result.order and not result.ambiguous:
                settled.append(result.order)
        first.append(out)
    final: list[dict[int, ColumnDates]] = []
    for table, out in zip(tables, first, strict=True):
        for position, result in list(out.items()):
            if not result.ambiguous:
                continue
            again = infer_date_column([r[position] for r in table.rows], vocab, centre_orders=sorted(set(settled)))
            out[position] = again
            if again.ambiguous:
                acc.fatal.append(
                    f"centre {centre.id}, file {table.label}, column {table.columns[position]!r}: "
                    "dates read both day-first and month-first (no day above 12); declare the order "
                    f"in centres.toml: [centres.{centre.id}.overrides] date_order = \"DMY\" (or \"MDY\"), "
                    f"or date_orders = {{\"{table.columns[position]}\" = \"DMY\"}}"
                )
        final.append(out)
    return final
