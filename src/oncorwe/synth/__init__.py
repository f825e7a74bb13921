"""oncorwe.synth: messy synthetic multicentre exports, calibrated to a published study.

``generate_study("goldinger2022", out)`` writes one folder per centre (CSV and XLSX case report
forms, REDCap exports, OMOP CDM DuckDB databases), a ``centres.toml`` as a coordinating data manager
keeps it, and a ``_truth/`` folder (true per-patient values, injected defects, calibration) that
only tests read. The pipeline never imports this package.
"""

from oncorwe.synth._study import LARGE_STUDY, generate_study

__all__ = ["LARGE_STUDY", "generate_study"]
