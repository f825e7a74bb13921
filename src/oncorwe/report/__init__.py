"""oncorwe.report: the publication-ready report, from an analysis result only (never raw data).

``run(analysis_result, out_dir) -> Path`` writes, atomically (into a temporary folder beside the
target, then renamed into place):

- ``report.html``: one self-contained page (figures embedded as SVG, no network needed, prints on A4);
- ``tables/<name>.csv``: every analysis table (formula-leading text cells neutralised for spreadsheets);
- ``figures/<name>.png`` (300 dpi), ``.svg``, ``.pdf``: flow diagram, Kaplan-Meier plots, forest plot;
- ``manifest.json``: every output file with size and sha256, the analysis settings and study
  information, the provenance the caller passes (inputs, protocol, seed) and package versions.

Same analysis result, same bytes. With ``shareable=True`` every table, figure and number is
disclosed from the one results spec (``report/results_spec.toml``, applied by
:mod:`oncorwe.report._disclosure`): counts below the protocol's ``min_cell_count`` (zero excepted)
print as ``"<k"``, further counts are withheld (``"*"``) so that none can be recovered from totals,
margins or neighbouring rows, derived values and small groups' estimates are blanked, curves are
read at fixed times with the number at risk only, and single patients' values are withheld.
"""

from __future__ import annotations

import base64
import ctypes
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from errno import EINVAL, ENOSYS, ENOTSUP
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

import oncorwe
from oncorwe.analysis import TABLE_NAMES, AnalysisResult
from oncorwe.errors import InputError
from oncorwe.model.spreadsheet_csv import write_spreadsheet_csv
from oncorwe.report._disclosure import disclose
from oncorwe.report._forest import forest_figure
from oncorwe.report._format import study_labels
from oncorwe.report._km_plot import km_figure, risk_table, time_ticks
from oncorwe.report._render import FigureSpec, SavedFigure, render_figures
from oncorwe.report._sections import build_sections, headline
from oncorwe.report._tables import DisplayTable

__all__ = [
    "REPORT_FILE",
    "check_output_target",
    "file_sha256",
    "forest_figure",
    "km_figure",
    "package_versions",
    "risk_table",
    "run",
    "time_ticks",
    "write_atomically",
]

REPORT_FILE = "report.html"
_VERSIONED = ("numpy", "scipy", "polars", "pyarrow", "matplotlib", "jinja2", "duckdb",
              "ibis-framework", "pydantic")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the results."""
    out = {"python": ".".join(str(v) for v in sys.version_info[:3]), "oncorwe": oncorwe.__version__}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run(
    analysis_result: AnalysisResult,
    out_dir: str | Path,
    *,
    shareable: bool = False,
    provenance: Mapping[str, Any] | None = None,
    workers: int | None = None,
) -> Path:
    """Write the report of ``analysis_result`` into ``out_dir`` (replaced as a whole); returns the
    path of ``report.html``.

    Parameters
    ----------
    analysis_result : the analysis stage's result (or one read back with ``AnalysisResult.read``).
    out_dir : the report folder; an existing one is replaced only once the new one is complete.
    shareable : suppress counts below the protocol's ``min_cell_count``.
    provenance : recorded in ``manifest.json`` as it is (inputs with sha256, protocol, seed, ...);
        JSON-able, and free of timings so that the report stays byte-identical between runs.
    workers : processes saving the figures at once (PNG, SVG and PDF of about ten figures: the
        report's main cost, independent of the number of patients); None for one per usable CPU
        (at most 4; forked, Linux only, and only while no other Python thread runs), 1 to save
        them in this process. The files are the same bytes whatever the number.
    """
    if not isinstance(analysis_result, AnalysisResult):
        raise InputError(f"analysis_result: expected an AnalysisResult, got {type(analysis_result).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers: expected a whole number of processes >= 1 (or None), got {workers!r}")
    target = Path(out_dir)
    info = dict(analysis_result.info)
    min_cell = int(info.get("settings", {}).get("min_cell_count", 0)) if shareable else 0
    raw = {name: analysis_result[name] for name in TABLE_NAMES}
    # the report prints per-centre totals of the reconciliation: disclosed with the per-file rows
    disclosed = disclose({**raw, "reconciliation": _with_centre_totals(raw["reconciliation"])}, min_cell)
    shown = dict(disclosed.tables)
    tables = {**shown, "reconciliation": _per_file(shown["reconciliation"])}

    def write(tmp: Path) -> None:
        with study_labels(info.get("column_labels", {})):
            _write(tmp)

    def _write(tmp: Path) -> None:
        (tmp / "tables").mkdir()
        (tmp / "figures").mkdir()
        for name in TABLE_NAMES:
            write_spreadsheet_csv(tables[name], tmp / "tables" / f"{name}.csv")
        sections = build_sections(raw, shown, info, suppress_below=min_cell)
        specs = [item for section in sections for item in section.items if isinstance(item, FigureSpec)]
        saved = {spec.key: _embed(spec, done)
                 for spec, done in zip(specs, render_figures(specs, tmp / "figures", workers=workers), strict=True)}
        rendered = []
        for section in sections:
            items = []
            for item in section.items:
                if isinstance(item, DisplayTable):
                    items.append({"kind": "table", "table": item})
                else:
                    items.append({"kind": "figure", "figure": saved[item.key]})
            rendered.append({"key": section.key, "title": section.title,
                             "paragraphs": section.paragraphs, "items": items})
        html = _template().render(
            title=info.get("title") or info.get("study") or "Study report",
            study=info.get("study", ""), reference=info.get("reference", {}),
            n_patients=info.get("n_patients"), n_centres=info.get("n_centres"),
            shareable=shareable, min_cell_count=min_cell,
            headline=headline(shown, info),
            sections=rendered,
            versions=package_versions(), css=_resource("report.css"),
        )
        (tmp / REPORT_FILE).write_text(html, encoding="utf-8")
        _write_manifest(tmp, info, shareable, provenance)

    write_atomically(target, write)
    return target / REPORT_FILE


_RECONCILED = ("records_read", "accepted", "quarantined", "merged")


def _with_centre_totals(reconciliation: pl.DataFrame) -> pl.DataFrame:
    """The per-file reconciliation plus one total row per centre (file and sheet null)."""
    if reconciliation.height == 0 or "file" not in reconciliation.columns:
        return reconciliation
    totals = reconciliation.group_by("centre_id").agg(
        [pl.col(c).sum() for c in _RECONCILED if c in reconciliation.columns])
    return pl.concat([reconciliation, totals], how="diagonal_relaxed").sort(
        "centre_id", pl.col("file").is_not_null(), "file", "sheet", nulls_last=False, maintain_order=True)


def _per_file(reconciliation: pl.DataFrame) -> pl.DataFrame:
    """The reconciliation as exported: the per-file rows only."""
    if "file" not in reconciliation.columns:
        return reconciliation
    return reconciliation.filter(pl.col("file").is_not_null())


def _embed(spec: FigureSpec, saved: SavedFigure) -> dict[str, Any]:
    """A saved figure as the HTML shows it: its SVG inline, its size in CSS pixels, its files."""
    svg = saved.paths[1].read_bytes()
    return {
        "key": spec.key, "caption": spec.caption, "alt": spec.alt,
        "data": base64.b64encode(svg).decode("ascii"),
        "width": round(saved.width_in * 96), "height": round(saved.height_in * 96),
        "files": ", ".join(f"figures/{p.name}" for p in saved.paths),
    }


def _resource(name: str) -> str:
    return (resources.files("oncorwe.report") / "templates" / name).read_text(encoding="utf-8")


def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_resource("report.html.j2"))


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(folder: Path, info: Mapping[str, Any], shareable: bool,
                    provenance: Mapping[str, Any] | None) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {
        "study": info.get("study"),
        "shareable": shareable,
        "analysis": dict(info),
        "provenance": dict(provenance or {}),
        "versions": package_versions(),
        "outputs": [{"file": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                    for p in files],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n",
                                          encoding="utf-8")


def check_output_target(target: str | Path) -> Path:
    """``target`` as a report folder that can be written: an existing folder or a new path whose
    parent can be created and written into. Checked before any data are read.

    Raises
    ------
    InputError : ``target`` is an existing file (never replaced), or its parent is not a folder or
        cannot be written into (read-only, no permission).
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"--out {target}: an existing file, not a report folder (it is never replaced); "
                         "give a folder")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {target}: cannot create its parent folder {parent} ({exc.strerror})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {target}: cannot write into {parent} (no write permission); "
                         "give a folder you can write into")
    return target


def _temp_prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-"


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary siblings of ``target`` left by a run that was killed: their name carries
    the writing process's id, and that process no longer runs (a live one's are left alone)."""
    for kind in ("tmp", "old"):
        prefix = _temp_prefix(target, kind)
        for sibling in target.parent.glob(f"{glob.escape(prefix)}*"):
            pid_text = sibling.name[len(prefix):].split("-", 1)[0]
            if pid_text.isdigit() and int(pid_text) != os.getpid() and _process_runs(int(pid_text)):
                continue
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``): there is
    no moment without either. False where the system or file system cannot (then nothing moved)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (ENOSYS, EINVAL, ENOTSUP):
        return False
    raise OSError(errno, os.strerror(errno), str(a))


def write_atomically(target: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh folder beside ``target``, then swap it into place.

    The swap is one atomic exchange of the two folders where the system allows (Linux), so an
    existing report is there at every moment; elsewhere the old folder is renamed away just before
    the new one is renamed in. A failure leaves ``target`` as it was (old report or nothing) and
    removes the partial folder; temporary folders of an earlier, killed run are removed first.
    ``target`` must be a folder or not exist (:func:`check_output_target`).
    """
    target = check_output_target(target)
    _remove_stale_temporaries(target)
    pid = os.getpid()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target, 'tmp')}{pid}-", dir=target.parent))
    except OSError as exc:
        raise InputError(f"--out {target}: cannot write into {target.parent} ({exc.strerror})") from exc
    try:
        write(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report folder is ordinary
        if target.exists():
            if _exchange(tmp, target):
                shutil.rmtree(tmp, ignore_errors=True)  # now the old report
                return
            old = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target, 'old')}{pid}-", dir=target.parent))
            old.rmdir()
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
