"""``oncorwe`` command: each sub-command lives in its own module with a ``register(app)`` function.

Exit codes: 0 done, 1 an analysis could not be computed, 2 bad input or protocol (one line per
problem); the error tree in oncorwe.errors gives each error's code (docs/errors.md).
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from oncorwe import __version__
from oncorwe.errors import OncorweError

__all__ = ["app", "main"]

app = typer.Typer(
    name="oncorwe",
    help="Retrospective multicentre oncology outcome studies, from centre records to a report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"oncorwe {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print oncorwe's version and exit.")] = False,
) -> None:
    """Retrospective multicentre oncology outcome studies, from centre records to a report."""


#: Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = ("_run", "_synth", "_validate", "_explain", "_init", "_federate")

for _name in COMMAND_MODULES:
    importlib.import_module(f"oncorwe.cli.{_name}").register(app)


def main() -> None:
    """Entry point: run the app, turning oncorwe's errors into one line per problem and their exit code."""
    try:
        app()
    except OncorweError as exc:
        problems = getattr(exc, "problems", None) or (str(exc),)
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(exc.exit_code)
