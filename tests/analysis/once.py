"""Expensive test outputs made once per test run, shared by the pytest-xdist workers.

With ``pytest -n 2`` each worker runs session fixtures on its own; a whole-pipeline run or a report
is then made twice. :func:`produce_once` makes it in a folder of the run's shared temporary root,
under a file lock, and lets the other worker reuse it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def produce_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """``make(folder)`` unless this run already made ``folder``; returns the folder."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / ".made").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                make(folder)
                (folder / ".made").write_text("", encoding="utf-8")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder
