"""Running the ``oncorwe`` command in-process from a test, for the CLI tests of every stage."""

from __future__ import annotations

import sys

import pytest


def oncorwe(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run ``oncorwe *args`` in-process; its exit code."""
    from oncorwe.cli.app import main

    monkeypatch.setattr(sys, "argv", ["oncorwe", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
