"""The Liu 2019 cohort (tests/data/liu2019, vendored) laid out as a one-centre study folder, in either
of its two encodings, for the harmonise, endpoints and end-to-end tests."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ATTRIBUTES", "CBIO", "CBIO_UNITS", "MIXED", "TSV", "TSV_UNITS", "liu_study"]

TSV = "Supplemental_Table_1_wAge.tsv"
CBIO = "mel_dfci_2019_patient_clinical_data.csv"
ATTRIBUTES = "mel_dfci_2019_clinical_attributes.csv"
#: Duration columns and their units, which each encoding leaves the data manager to declare.
TSV_UNITS = 'time_units = { PFS = "days", OS = "days", TimeToBR = "days" }'
CBIO_UNITS = 'time_units = { TIME_TO_BR = "days" }'
# Mixed response is no RECIST 1.1 category: the data manager declares how it counts (here SD, as
# neither a >= 30% shrinkage nor a >= 20% growth of the sum of diameters)
MIXED = '{ MR = "SD", "Mixed Response" = "SD" }'


def liu_study(root: Path, liu: Path, files: list[str], overrides: str) -> Path:
    """Write ``root/centres.toml`` listing ``files`` of the Liu folder as centre DFCI, with the
    given override lines and mixed response counted as SD; returns ``root``."""
    root.mkdir(parents=True)
    listed = ", ".join(f'"{liu / f}"' for f in files)
    (root / "centres.toml").write_text(
        f'[centres.DFCI]\ncountry = "US"\nfiles = [{listed}]\n'
        f"[centres.DFCI.overrides]\n{overrides}\ncodes = {{ best_response = {MIXED} }}\n",
        encoding="utf-8",
    )
    return root
