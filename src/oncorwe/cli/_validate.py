"""The ``oncorwe validate DIR`` command: harmonisation alone, for the data manager.

It reads every centre of a study folder (and any extra OMOP databases), prints the reconciliation
(records read = accepted + quarantined + merged, per centre and file) and a quarantine summary
(counts per centre, file, field and reason), and writes ``reconciliation.csv``, ``quarantine.csv``
(one row per quarantined record or value, with its file, row and raw value, to send back to the
centre) and ``column_map.csv`` into ``--out``. Patient identifiers are not printed; cross-centre
merges are counted, not listed.

Exit codes: 0 read (even with quarantined records); 2 fatal problems (one line each), such as an
ambiguous date column, or a missing/invalid ``centres.toml``; 2 as well when a file or database could
not be read at all (binary junk, a truncated workbook or DuckDB file, a file beyond the readers'
limits), after the CSV files are written and the other files' reconciliation is printed: its
records are not counted, so the study cannot be called read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register", "validate"]


def validate(
    data_dir: Annotated[Path, typer.Argument(help="Study folder holding centres.toml and the centre folders.")],
    out: Annotated[Path, typer.Option("--out", help="Where the CSV files go.")] = Path("oncorwe-validate"),
    omop: Annotated[
        list[str] | None,
        typer.Option("--omop", help="Extra OMOP CDM database: [CENTRE=]URI[#schema] (repeatable)."),
    ] = None,
    protocol_ref: Annotated[
        str, typer.Option("--protocol", help="The study's protocol (what an OMOP CDM is read for).")
    ] = "goldinger2022",
) -> None:
    """Read every centre's export, print what was accepted and quarantined, write it as CSV."""
    from oncorwe import harmonise, protocol
    from oncorwe.errors import InputError, SourceError
    from oncorwe.model.spreadsheet_csv import write_spreadsheet_csv

    console = Console(highlight=False)
    model = harmonise.run(data_dir, omop=tuple(omop or ()), scope=protocol.load(protocol_ref).scope())
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: an existing file, not a folder (it is never replaced); give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create the folder ({exc.strerror})") from exc
    write_spreadsheet_csv(model.reconciliation, out / "reconciliation.csv")
    write_spreadsheet_csv(model.quarantine, out / "quarantine.csv")
    write_spreadsheet_csv(model.column_map, out / "column_map.csv")

    rec = model.reconciliation
    table = Table(title="Reconciliation: records read = accepted + quarantined + merged")
    for name in ("centre", "file", "read", "accepted", "quarantined", "merged"):
        table.add_column(name, justify="left" if name in ("centre", "file") else "right")
    for row in rec.iter_rows(named=True):
        label = row["file"] + (f" [{row['sheet']}]" if row["sheet"] else "")
        table.add_row(row["centre_id"], label, *(str(row[k]) for k in ("records_read", "accepted", "quarantined", "merged")))
    table.add_row("all", "", *(str(rec[k].sum()) for k in ("records_read", "accepted", "quarantined", "merged")))
    console.print(table)

    summary = (
        model.quarantine.group_by(["centre_id", "file", "field", "action", "reason"])
        .len()
        .sort(["centre_id", "file", "field", "reason"])
    )
    if summary.height:
        quarantine = Table(title="Quarantine (details with rows and raw values in quarantine.csv)")
        for name in ("centre", "file", "field", "action", "reason", "n"):
            quarantine.add_column(name, justify="right" if name == "n" else "left")
        for row in summary.iter_rows(named=True):
            quarantine.add_row(row["centre_id"], row["file"], row["field"], row["action"], row["reason"], str(row["len"]))
        console.print(quarantine)
    else:
        console.print("Quarantine: empty")
    unknown = model.column_map.filter(pl.col("how") == "unknown")
    if unknown.height:
        console.print(f"{unknown.height} column(s) not recognised (not used; see column_map.csv):")
        for row in unknown.iter_rows(named=True):
            console.print(f"  {row['centre_id']}, {row['file']}: {row['column']}")
    console.print(f"Cross-centre duplicate referrals merged: {model.merges.height}")
    for line in model.problems:
        if line not in model.unreadable:  # those end the command, as errors
            console.print(f"problem: {line}")
    console.print(f"Patients: {model.patients.height}; written to {out}/")
    if model.unreadable:
        raise SourceError(model.unreadable)


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the app."""
    app.command("validate")(validate)
