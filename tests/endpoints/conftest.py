"""Endpoint tests share the hand-built canonical study builder of the cohort tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cohort"))
