"""The fuzz suite's summary line: how many cases each property tried (see fuzz_inputs.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))  # fake_analysis_table
from fuzz_inputs import CASES


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The number of cases each property tried (shown when the suite runs in one process)."""
    if CASES:
        terminalreporter.write_line(
            "fuzz cases tried: " + ", ".join(f"{name} {n}" for name, n in sorted(CASES.items()))
            + f" (total {sum(CASES.values())})"
        )
