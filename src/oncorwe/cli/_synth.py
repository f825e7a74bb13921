"""The ``oncorwe synth`` command: write a synthetic multicentre study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def _studies() -> str:
    """The studies the generator has a targets file for (``synth/data/<study>_targets.toml``)."""
    from importlib import resources

    names = sorted(p.name.removesuffix("_targets.toml") for p in (resources.files("oncorwe") / "synth" / "data").iterdir()
                   if p.name.endswith("_targets.toml"))
    return ", ".join(names)


def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the centre files and _truth/ into.")],
    study: Annotated[str, typer.Option("--study", help=f"Study whose figures to reproduce: {_studies()}.")] = "goldinger2022",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 2022,
    patients: Annotated[
        int | None,
        typer.Option("--patients", help="Number of patient records (default: the study's size, 463 eligible + ~20%)."),
    ] = None,
    background: Annotated[
        int | None,
        typer.Option("--background", help="Background persons (without the study's condition) per study record in each OMOP centre "
                     "(default: the study file's)."),
    ] = None,
) -> None:
    """Write messy synthetic centre exports calibrated to a published study."""
    from oncorwe.synth import generate_study

    path = generate_study(study, out, seed=seed, patients=patients, progress=True, background=background)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``synth`` to the app."""
    app.command("synth")(synth)
