"""The ``oncorwe init NAME`` command: write a commented copy of a shipped protocol to edit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from oncorwe.errors import InputError
from oncorwe.protocol import parse, shipped_text

__all__ = ["init", "protocol_copy", "register"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def protocol_copy(name: str, *, template: str = "goldinger2022") -> str:
    """The text of ``template`` as a new study named ``name`` (comments kept, validated)."""
    if not _NAME.match(name):
        raise InputError(
            f"NAME {name!r}: use letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
    text = shipped_text(template)
    text = re.sub(r'^name = ".*"$', f'name = "{name}"', text, count=1, flags=re.MULTILINE)
    text = re.sub(
        r'^published = ".*"$',
        f'# published = "{name}_published.toml"  # the published figures to compare with, if any',
        text,
        count=1,
        flags=re.MULTILINE,
    )
    header = (
        f"# {name}: a study protocol copied from the shipped '{template}' protocol by `oncorwe init`.\n"
        "# Edit the condition, drug classes, index, criteria, regimen classes, covariates, subsequent-therapy\n"
        "# classes, response rules and analyses for your study;\n"
        f"# run it with `oncorwe run --protocol {name}.toml --data <study folder>`.\n#\n"
    )
    text = header + text
    parse(text, origin=f"{name}.toml")  # the copy must load as it is
    return text


def init(
    name: Annotated[str, typer.Argument(help="Name of the new study (also the file name, NAME.toml).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write NAME.toml into.")] = Path("."),
    template: Annotated[str, typer.Option("--from", help="Shipped protocol to copy.")] = "goldinger2022",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented copy of a shipped protocol, ready to edit for your own study."""
    text = protocol_copy(name, template=template)
    target = out / f"{name}.toml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists (use --force to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}")


def register(app: typer.Typer) -> None:
    """Add ``init`` to the app."""
    app.command("init")(init)
