"""Writing a stage's result to a folder and reading it back: one Parquet file per frame plus
``<stage>.json`` (metadata and the list of frames written), so any stage can be rerun or
inspected alone (ARCHITECTURE.md: "a Result is a frozen object that can be written out and read
back")."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.errors import SourceError

__all__ = ["read_stage_result", "write_stage_result"]


def write_stage_result(
    folder: str | Path, stage: str, meta: Mapping[str, Any], frames: Mapping[str, pl.DataFrame]
) -> Path:
    """Write ``frames`` as ``<name>.parquet`` and ``meta`` (plus the stage and frame names) as
    ``<stage>.json`` into ``folder`` (created); returns the folder. Bytes depend only on the data
    (no Parquet statistics, sorted JSON keys)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}.parquet", statistics=False)
    document = {**meta, "stage": stage, "frames": list(frames)}
    (out / f"{stage}.json").write_text(
        json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return out


def read_stage_result(
    folder: str | Path,
    stage: str,
    schemas: Mapping[str, Mapping[str, pl.DataType]] | None = None,
    *,
    optional: Collection[str] = (),
) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """Read what :func:`write_stage_result` wrote: the metadata and the frames by name.

    With ``schemas``, exactly those frames are read and cast to their schema (those named in
    ``optional`` only when the metadata lists them: a stage may leave a patient-level frame in the
    engine); without, every frame the metadata lists. A missing metadata or frame file is a
    :class:`SourceError` naming it.
    """
    path = Path(folder)
    meta_path = path / f"{stage}.json"
    if not meta_path.is_file():
        raise SourceError(f"not a {stage} result folder (no {stage}.json): {path}")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    listed = list(meta.get("frames", []))
    names = [n for n in schemas if n not in optional or n in listed] if schemas is not None else listed
    frames: dict[str, pl.DataFrame] = {}
    for name in names:
        file = path / f"{name}.parquet"
        if not file.is_file():
            raise SourceError(f"{stage} result incomplete: {file} is missing")
        frame = pl.read_parquet(file)
        schema = schemas.get(name) if schemas is not None else None
        frames[name] = frame.cast(dict(schema)) if schema else frame  # type: ignore[arg-type]
    return meta, frames
