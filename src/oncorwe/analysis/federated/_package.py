"""A centre's site package: the aggregates that leave the centre, and their verification.

One JSON document (``oncorwe site-export``) holding:

- ``format``, ``schema_version``, ``oncorwe_version``; the protocol's name and sha256 (of its
  canonical JSON, so the same protocol gives the same hash whatever its file looks like); the centre;
- ``disclosure``: the settings applied (``analysis.federated._disclosure``), ``exact`` when none;
- ``n_patients``: the centre's analysis set;
- ``attrition``: the centre's rows of the flow (patients per criterion), ``reconciliation`` (records
  per file) and ``quarantine_summary`` (quarantined values per field and generalised reason);
- ``views``: each view of ``analysis.view_keys(protocol)`` as counted rows, with what disclosure
  control withheld;
- ``content_sha256``: the sha256 of all of the above in canonical JSON.

No identifier, date or per-patient row is written: a view row is a combination of a few values and
the number of patients who have it. The content hash detects a damaged or edited package; it is not
a signature (a centre's package is authenticated by the channel it comes through).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe import __version__
from oncorwe.analysis._views import COUNT_COLUMN, TableViews, count_rows, derived_columns, view_keys
from oncorwe.analysis.federated._disclosure import Disclosure, control_view
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "PackageView",
    "SitePackage",
    "build_package",
    "canonical_json",
    "protocol_sha256",
]

FORMAT = "oncorwe-site-package"
SCHEMA_VERSION = 1
#: The largest package combine reads (a package of a large centre is a few megabytes).
MAX_PACKAGE_BYTES = 256 * 1024 * 1024

_TYPES: dict[str, pl.DataType] = {"String": pl.String(), "Int64": pl.Int64(), "Float64": pl.Float64(),
                                  "Boolean": pl.Boolean()}


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON (sorted keys, no spaces, UTF-8, no NaN): the bytes hashes are of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def protocol_sha256(protocol: Protocol) -> str:
    """The sha256 of the protocol's canonical JSON (``Protocol.to_dict``)."""
    return hashlib.sha256(canonical_json(protocol.to_dict())).hexdigest()


@dataclass(frozen=True)
class PackageView:
    """One view's counted rows as they left the centre."""

    columns: tuple[str, ...]
    rows: pl.DataFrame  # the columns and COUNT_COLUMN
    suppressed_cells: int = 0
    truncated: bool = False
    binned: bool = False

    @property
    def n_patients(self) -> int:
        return int(self.rows[COUNT_COLUMN].sum()) if self.rows.height else 0



def read_json_file(path: str | Path, what: str, *, max_bytes: int | None = None) -> Any:
    """One JSON document a coordinator or centre was given (a package, a key, a request, an answer,
    linkage tokens); :class:`InputError` naming ``what``, the file and the problem."""
    source = Path(path)
    try:
        size = source.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(f"{what} {source}: {size} bytes, more than it may hold ({max_bytes})")
        return json.loads(source.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{what} {source}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{what} {source}: not JSON ({exc})") from exc

@dataclass(frozen=True)
class SitePackage:
    """A verified site package (:func:`build_package`, :meth:`read`)."""

    centre_id: str
    protocol_name: str
    protocol_sha256: str
    oncorwe_version: str
    disclosure: Mapping[str, Any]
    n_patients: int
    attrition: pl.DataFrame
    reconciliation: pl.DataFrame
    quarantine_summary: pl.DataFrame
    views: Mapping[tuple[str, ...], PackageView]
    content_sha256: str
    #: the sha256 of the coordinator's linkage the centre applied (``oncorwe link``), or None
    linkage_sha256: str | None = None

    @property
    def exact(self) -> bool:
        return bool(self.disclosure.get("exact"))

    def content(self) -> dict[str, Any]:
        """Everything the content hash covers, as plain JSON data."""
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "oncorwe_version": self.oncorwe_version,
            "protocol": {"name": self.protocol_name, "sha256": self.protocol_sha256},
            "centre_id": self.centre_id,
            "disclosure": dict(self.disclosure),
            "n_patients": self.n_patients,
            "linkage_sha256": self.linkage_sha256,
            "attrition": _frame_json(self.attrition),
            "reconciliation": _frame_json(self.reconciliation),
            "quarantine_summary": _frame_json(self.quarantine_summary),
            "views": [{"columns": list(v.columns), "rows": _frame_json(v.rows), "suppressed_cells": v.suppressed_cells,
                       "truncated": v.truncated, "binned": v.binned} for v in self.views.values()],
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "content_sha256": self.content_sha256}

    def write(self, path: str | Path) -> Path:
        """Write the package (pretty JSON, same bytes for the same content) atomically; returns the path."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
                       + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def read(cls, path: str | Path) -> SitePackage:
        """Read and verify a package file; :class:`InputError` naming the file and the problem."""
        source = Path(path)
        return cls.from_json(read_json_file(source, "site package", max_bytes=MAX_PACKAGE_BYTES), where=str(source))

    @classmethod
    def from_json(cls, document: Any, *, where: str = "package") -> SitePackage:
        """A package from its JSON document, verified: format, schema version, checksum, shapes and
        counts that agree with each other."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InputError(f"{where}: not an oncorwe site package (format is not {FORMAT!r})")
        centre = document.get("centre_id")
        label = f"{where} (centre {centre})" if isinstance(centre, str) else where
        if document.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"{label}: package schema version {document.get('schema_version')!r}; this oncorwe "
                             f"reads version {SCHEMA_VERSION} (make the package again with oncorwe {__version__})")
        claimed = document.get("content_sha256")
        body = {k: v for k, v in document.items() if k != "content_sha256"}
        try:
            actual = hashlib.sha256(canonical_json(body)).hexdigest()
        except (TypeError, ValueError) as exc:
            raise InputError(f"{label}: not a valid package ({exc})") from exc
        if claimed != actual:
            raise InputError(f"{label}: content does not match its checksum (the package was changed or damaged "
                             "after it was made)")
        try:
            package = cls(
                centre_id=_text(centre, "centre_id"),
                protocol_name=_text(document["protocol"]["name"], "protocol.name"),
                protocol_sha256=_text(document["protocol"]["sha256"], "protocol.sha256"),
                oncorwe_version=_text(document["oncorwe_version"], "oncorwe_version"),
                disclosure=_disclosure(document["disclosure"]),
                n_patients=_count(document["n_patients"], "n_patients"),
                attrition=_frame(document["attrition"], "attrition"),
                reconciliation=_frame(document["reconciliation"], "reconciliation"),
                quarantine_summary=_frame(document["quarantine_summary"], "quarantine_summary"),
                views={tuple(v["columns"]): PackageView(
                    columns=tuple(_text(c, "view column") for c in v["columns"]),
                    rows=_frame(v["rows"], "view " + ",".join(map(str, v["columns"]))),
                    suppressed_cells=_count(v["suppressed_cells"], "suppressed_cells"),
                    truncated=bool(v["truncated"]), binned=bool(v["binned"]),
                ) for v in document["views"]},
                content_sha256=actual,
                linkage_sha256=_optional_text(document["linkage_sha256"], "linkage_sha256"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{label}: not a valid package (missing or malformed {exc})") from exc
        problems = package.contradictions()
        if problems:
            raise InputError(f"{label}: counts contradict each other: " + "; ".join(problems))
        return package

    def contradictions(self) -> list[str]:
        """Counts that cannot all be true: a view with more patients than the analysis set, an exact
        view with fewer, a flow that does not end at the analysis set, negative counts."""
        problems = []
        for view in self.views.values():
            if view.rows.height and int(view.rows[COUNT_COLUMN].min()) <= 0:  # type: ignore[arg-type]
                problems.append(f"view ({', '.join(view.columns)}) has a count below 1")
            total = view.n_patients
            if total > self.n_patients:
                problems.append(f"view ({', '.join(view.columns)}) counts {total} patients, the analysis set {self.n_patients}")
            elif total < self.n_patients and not view.suppressed_cells:
                problems.append(f"view ({', '.join(view.columns)}) counts {total} patients, the analysis set "
                                f"{self.n_patients}, and nothing was withheld")
        own = self.attrition
        if own.height and {"n_after", "step"} <= set(own.columns) and self.exact:
            last = own.sort("step")["n_after"][-1]
            if last is not None and int(last) != self.n_patients:
                problems.append(f"the flow ends with {last} patients, the analysis set has {self.n_patients}")
        return problems


def build_package(
    analysis_table: pl.DataFrame,
    protocol: Protocol,
    *,
    centre_id: str,
    disclosure: Disclosure,
    attrition: pl.DataFrame,
    reconciliation: pl.DataFrame,
    quarantine_summary: pl.DataFrame,
    linkage_sha256: str | None = None,
) -> SitePackage:
    """A centre's package from its analysis table (one centre's patients only) and audit tables."""
    if analysis_table.height and analysis_table["centre_id"].n_unique() > 1:
        raise InputError("site package: the analysis table holds more than one centre")
    table = analysis_table.with_columns(
        [pl.col(c).fill_nan(None) for c, t in analysis_table.schema.items() if t in (pl.Float64, pl.Float32)])
    views = TableViews(table, derived_columns(protocol))
    packaged: dict[tuple[str, ...], PackageView] = {}
    for key in view_keys(protocol):
        counted = count_rows(views.frame(key))
        controlled = control_view(counted, disclosure)
        packaged[key] = PackageView(key, controlled.rows, controlled.suppressed_cells,
                                    controlled.truncated_patients, controlled.binned)
    k = disclosure.min_cell_count
    own_attrition = attrition.filter(pl.col("centre_id") == centre_id) if "centre_id" in attrition.columns else attrition
    if k > 0:
        own_attrition = _control_flow(own_attrition, k)
    content = SitePackage(
        centre_id=centre_id, protocol_name=protocol.name, protocol_sha256=protocol_sha256(protocol),
        oncorwe_version=__version__, disclosure=disclosure.record(), n_patients=analysis_table.height,
        attrition=own_attrition, reconciliation=reconciliation, quarantine_summary=quarantine_summary,
        views=packaged, content_sha256="", linkage_sha256=linkage_sha256,
    )
    digest = hashlib.sha256(canonical_json(content.content())).hexdigest()
    return SitePackage(**{**content.__dict__, "content_sha256": digest})


def _control_flow(flow: pl.DataFrame, k: int) -> pl.DataFrame:
    """A step that excluded 1 to k-1 patients is withheld (and, when it is the only one, the next
    smallest step too); the numbers before and after each step are withheld except the first step's
    before and the last step's after, which would give the withheld ones back by subtraction."""
    flow = flow.sort("step")
    excluded = flow["n_excluded"].to_list()
    small = [i for i, n in enumerate(excluded) if n is not None and 0 < n < k]
    if len(small) == 1:
        others = sorted((n, i) for i, n in enumerate(excluded) if n and i not in small)
        small.extend(i for _n, i in others[:1])
    if not small:
        return flow
    position = pl.int_range(pl.len())
    # the last step's n_before and the first's n_after are as telling as the inner ones
    return flow.with_columns(
        pl.when(position.is_in(small)).then(None).otherwise(pl.col("n_excluded")).alias("n_excluded"),
        pl.when(position < pl.len() - 1).then(None).otherwise(pl.col("n_after")).alias("n_after"),
        pl.when(position > 0).then(None).otherwise(pl.col("n_before")).alias("n_before"),
    )


def _frame_json(frame: pl.DataFrame) -> dict[str, Any]:
    types = []
    for name, dtype in frame.schema.items():
        kind = str(dtype.base_type()) if dtype.base_type() is not dtype else str(dtype)
        if kind not in _TYPES:
            kind = "Int64" if dtype.is_integer() else "Float64" if dtype.is_float() else "String"
        types.append(kind)
        del name
    rows = [[_plain(v) for v in row] for row in frame.rows()]
    return {"columns": list(frame.columns), "types": types, "rows": rows}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _frame(document: Any, what: str) -> pl.DataFrame:
    columns, types, rows = document["columns"], document["types"], document["rows"]
    if not (isinstance(columns, list) and isinstance(types, list) and isinstance(rows, list)) or len(columns) != len(types):
        raise TypeError(f"table {what}")
    unknown = [t for t in types if t not in _TYPES]
    if unknown:
        raise TypeError(f"table {what}: column type {unknown[0]!r}")
    schema = {_text(c, f"{what} column"): _TYPES[t] for c, t in zip(columns, types, strict=True)}
    if any(not isinstance(r, list) or len(r) != len(columns) for r in rows):
        raise TypeError(f"table {what}: a row of another width")
    try:
        return pl.DataFrame(rows, schema=schema, orient="row", strict=True)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise TypeError(f"table {what}: {exc}") from exc


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 512:
        raise TypeError(what)
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(what)
    return value


def _disclosure(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("exact"), bool):
        raise TypeError("disclosure")
    return dict(value)


def view_total(views: Sequence[PackageView]) -> int:
    return sum(v.n_patients for v in views)
