"""The `oncorwe init` command (being written now)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command to the app (nothing yet)."""
