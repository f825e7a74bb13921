"""The ``oncorwe explain PATIENT_ID`` command: the records behind one patient's derived values.

Either from saved results (``--results DIR`` holding ``cohort/`` and ``endpoints/`` as written by
``CohortResult.write`` and ``EndpointsResult.write``), or by running harmonise, cohort and endpoints
on a study folder (``--data DIR``; ``--save DIR`` keeps those results for the next call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oncorwe.errors import InputError

__all__ = ["explain", "explain_text", "register"]

DEFAULT_DATA = Path("oncorwe-work") / "goldinger2022"


def explain_text(patient_id: str, results: Path) -> str:
    """The explanation of one patient from saved cohort and endpoint results."""
    from oncorwe.cohort import CohortResult
    from oncorwe.endpoints import EndpointsResult

    cohort_result = CohortResult.read(results / "cohort")
    text = cohort_result.explain(patient_id)
    if cohort_result.index.filter(cohort_result.index["patient_id"] == patient_id).height:
        text += "\n" + EndpointsResult.read(results / "endpoints").explain(patient_id)
    return text


def _derive(data: Path, protocol_ref: str, database: str | None, save: Path) -> None:
    from oncorwe import protocol
    from oncorwe.model import store
    from oncorwe.pipeline import derive

    loaded = protocol.load(protocol_ref)
    if not data.is_dir():
        raise InputError(f"--data {data}: not a study folder (run `oncorwe run` or `oncorwe synth` first)")
    derived = derive(loaded, store.connect(database), data_dir=data)
    derived.cohort.write(save / "cohort")
    derived.endpoints.write(save / "endpoints")


def explain(
    patient_id: Annotated[str, typer.Argument(help="The study-wide patient id, CENTRE:LOCAL_ID.")],
    results: Annotated[
        Path | None, typer.Option("--results", help="Saved results (cohort/ and endpoints/) to read.")
    ] = None,
    data: Annotated[Path, typer.Option("--data", help="Study folder to derive from.")] = DEFAULT_DATA,
    protocol_ref: Annotated[str, typer.Option("--protocol", help="Protocol name or file.")] = "goldinger2022",
    database: Annotated[
        str | None, typer.Option("--database", help="Where the canonical tables go (default: DuckDB in memory).")
    ] = None,
    save: Annotated[
        Path | None, typer.Option("--save", help="Keep the derived results here (reuse with --results).")
    ] = None,
) -> None:
    """Print the records that produced a patient's index date, regimen, best response, PFS and OS."""
    if results is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="oncorwe-explain-") as tmp:
            target = save or Path(tmp)
            _derive(data, protocol_ref, database, target)
            typer.echo(explain_text(patient_id, target))
        return
    typer.echo(explain_text(patient_id, results))


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the app."""
    app.command("explain")(explain)
