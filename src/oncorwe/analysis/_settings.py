"""What the analysis stage reads from the protocol: its ``[analysis]`` section and the column
definitions the tables need (Table 1 rows, subsequent-therapy classes, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.analysis._table1 import Table1Variable
from oncorwe.errors import InputError
from oncorwe.protocol import NumericCovariate, Protocol, published_file

__all__ = ["published_path", "require_protocol", "settings_record", "subsequent_classes", "table1_variables"]

_NUMERIC = (pl.Float64(), pl.Float32(), pl.Int64(), pl.Int32(), pl.Int16(), pl.Int8())


def require_protocol(protocol: Any) -> Protocol:
    """The protocol, checked to be a loaded one (``oncorwe.protocol.load``)."""
    if not isinstance(protocol, Protocol):
        raise InputError(f"protocol: expected an oncorwe.protocol.Protocol, got {type(protocol).__name__}")
    return protocol


def table1_variables(protocol: Protocol) -> list[Table1Variable]:
    """The protocol's Table 1 rows: a numeric column is continuous (median, quartiles) unless it is
    a numeric covariate summarised by ``levels`` (a score)."""
    schema = protocol.analysis_schema()
    out = []
    for column in protocol.analysis.table1:
        spec = protocol.covariates.get(column)
        continuous = schema[column] in _NUMERIC
        if isinstance(spec, NumericCovariate) and spec.summary == "levels":
            continuous = False
        out.append(Table1Variable(column, protocol.column_label(column), continuous=continuous))
    return out


def subsequent_classes(protocol: Protocol) -> list[str]:
    """The subsequent-therapy classes in print order, the fallback last."""
    rules = protocol.subsequent_therapy
    return [*(c.name for c in rules.classes), rules.otherwise]


def settings_record(protocol: Protocol) -> dict[str, Any]:
    """The ``[analysis]`` section as plain data, recorded with the results (the report's Methods)."""
    return protocol.analysis.model_dump(mode="json")


def published_path(protocol: Protocol, folder: Path | None = None) -> Path | None:
    """The published-figures file the protocol's reference names (inside the protocol's folder,
    ``folder``; the shipped studies' folder for a shipped protocol), or None."""
    return published_file(protocol, folder)
