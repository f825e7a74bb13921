"""Saving the report's figures, several at a time.

Each figure, built once, is saved as PNG (300 dpi), SVG and PDF. That costs
about a second and a half of CPU per figure whatever the number of patients (a Kaplan-Meier curve
has one vertex per distinct time, the risk table one number per tick): matplotlib's three
renderers, and for every PDF fontTools subsetting the embedded TrueType fonts. The figures are
independent of each other, so on Linux the built figures are saved by forked worker processes,
which inherit them and the imported modules (nothing is pickled or imported again). A figure's
bytes do not depend on the process that saves it: the same analysis gives the same files with any
number of workers. Parallel saving shortens the run only when a CPU is free.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The backends that save the three formats, imported here once rather than by every forked worker
# (the PDF backend brings fontTools' subsetter: a third of a second per import).
import matplotlib.backends.backend_agg
import matplotlib.backends.backend_pdf
import matplotlib.backends.backend_svg  # noqa: F401
from matplotlib.figure import Figure

from oncorwe.errors import InputError, OncorweError
from oncorwe.report._style import save_figure

__all__ = ["FigureSpec", "SavedFigure", "default_workers", "render_figures"]

#: How long one figure may take in a worker (a few seconds normally, even on a loaded machine).
WORKER_TIMEOUT_SECONDS = 600

#: More workers than figures (about ten) would idle; more than four rarely pays for the memory.
MAX_WORKERS = 4


@dataclass(frozen=True)
class FigureSpec:
    """A figure to save: file stem, caption, alt text, and the matplotlib figure."""

    key: str
    caption: str
    alt: str
    figure: Figure


@dataclass(frozen=True)
class SavedFigure:
    """Where a figure was saved (PNG, SVG, PDF, in that order) and its size in inches."""

    key: str
    paths: tuple[Path, ...]
    width_in: float
    height_in: float


def default_workers() -> int:
    """The CPUs this process may use (at most :data:`MAX_WORKERS`); 1 where fork is unavailable,
    or while another Python thread runs (e.g. a progress display): a thread may hold a lock at the
    moment of the fork (an output stream's, say) that a child would then wait for forever."""
    if not _can_fork() or threading.active_count() > 1:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def _can_fork() -> bool:
    # fork keeps the parent's state (no re-import, nothing pickled). It is safe here because a child
    # only saves figures already built: matplotlib and fontTools, never polars or DuckDB, whose
    # thread pools a forked child must not touch (building a figure from a polars frame in a
    # child deadlocks)
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


#: The figures the forked workers save: set just before the pool starts, inherited by the children.
_PENDING: list[tuple[FigureSpec, Path]] = []


def _save(index: int) -> SavedFigure:
    spec, folder = _PENDING[index]
    paths = save_figure(spec.figure, folder / spec.key)
    width, height = spec.figure.get_size_inches()
    return SavedFigure(spec.key, tuple(paths), float(width), float(height))


def render_figures(specs: Sequence[FigureSpec], folder: Path, *, workers: int | None = None) -> list[SavedFigure]:
    """Save every figure of ``specs`` into ``folder``; results in the order of ``specs``.

    Parameters
    ----------
    specs : the figures (their keys are the file stems; unique).
    folder : where ``<key>.png``, ``.svg`` and ``.pdf`` are written.
    workers : processes saving at once; None for :func:`default_workers`, 1 to save in this
        process. More than 1 forks even while other Python threads run (the caller knows they
        hold no lock a child needs).
    """
    keys = [spec.key for spec in specs]
    if len(set(keys)) != len(keys):
        raise InputError(f"figures: duplicate key(s) {sorted({k for k in keys if keys.count(k) > 1})}")
    count = default_workers() if workers is None else int(workers)
    if count < 1:
        raise InputError(f"workers: must be at least 1, got {workers}")
    global _PENDING
    _PENDING = [(spec, Path(folder)) for spec in specs]
    try:
        if count == 1 or len(specs) < 2 or not _can_fork():
            return [_save(i) for i in range(len(specs))]
        with multiprocessing.get_context("fork").Pool(min(count, len(specs))) as pool:
            pending = [pool.apply_async(_save, (i,)) for i in range(len(specs))]
            saved = []
            for spec, result in zip(specs, pending, strict=True):
                try:
                    saved.append(result.get(timeout=WORKER_TIMEOUT_SECONDS))
                except multiprocessing.TimeoutError as exc:  # never hang a run: say what to do
                    raise OncorweError(
                        f"report: figure {spec.key!r} was not saved by a worker process within "
                        f"{WORKER_TIMEOUT_SECONDS} s; run the report with workers=1"
                    ) from exc
            return saved
    finally:
        _PENDING = []
