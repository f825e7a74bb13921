"""Figure style and deterministic saving: Agg backend, DejaVu Sans, a colour-blind-safe palette
that also survives greyscale (each series has its own line style), journal widths.

Bytes are reproducible: SVG ids are salted with a fixed string and no file carries a date.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = [
    "FULL_WIDTH_IN",
    "HALF_WIDTH_IN",
    "LINESTYLES",
    "PALETTE",
    "figure_style",
    "new_figure",
    "save_figure",
    "svg_bytes",
]

MM_PER_INCH = 25.4
FULL_WIDTH_IN = 175 / MM_PER_INCH  # page width
HALF_WIDTH_IN = 85 / MM_PER_INCH  # column width
DPI = 300

#: Okabe & Ito (2008) colour-blind-safe colours, darkest first so that greyscale keeps them apart.
PALETTE = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)))

_RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "oncorwe",
    "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without the font installed
    "pdf.fonttype": 42,  # TrueType embedded, as journals ask
    "path.simplify": False,
    "savefig.dpi": DPI,
}

_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


@contextmanager
def figure_style() -> Iterator[None]:
    """The report's rcParams, restored afterwards."""
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure not registered with pyplot (no global state, no display backend, nothing to close)."""
    return Figure(figsize=(width_in, height_in), layout=None)


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png (300 dpi), .svg and .pdf; returns the paths."""
    paths = []
    with figure_style():
        for ext in ("png", "svg", "pdf"):
            path = stem.with_suffix(f".{ext}")
            fig.savefig(path, format=ext, metadata=_METADATA[ext], dpi=DPI)
            paths.append(path)
    return paths


def svg_bytes(fig: Figure) -> bytes:
    """The figure as SVG bytes (embedded in the HTML)."""
    buffer = io.BytesIO()
    with figure_style():
        fig.savefig(buffer, format="svg", metadata=_METADATA["svg"])
    return buffer.getvalue()
