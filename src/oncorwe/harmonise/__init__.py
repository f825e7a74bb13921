"""Harmonisation: centre words, dates and units -> the canonical model, with nothing lost.

:func:`run` reads a study folder (``centres.toml`` and each centre's CSV/TSV, XLSX, REDCap,
cBioPortal and OMOP CDM files), maps columns and codes through the vocabularies shipped as data files
(``harmonise/vocab/*.csv``), reads each date column in one inferred (or declared) format, converts
units, quarantines every record or value it cannot use (with centre, file, row, field, raw value and
reason), merges cross-centre duplicate referrals, and returns a :class:`oncorwe.model.CanonicalModel`
whose reconciliation shows, per centre and file, records read = accepted + quarantined + merged.
"""

from oncorwe.harmonise._dates import infer_date_column, parse_date
from oncorwe.harmonise._linkage import KEY_MIN_BYTES, link_centres, linkage_tokens
from oncorwe.harmonise._omop import vocabulary_tables
from oncorwe.harmonise._run import model_linkage_candidates, omop_targets, run
from oncorwe.harmonise._vocab import Ingredient, Vocabulary, load_vocabulary, normalise_word

__all__ = [
    "KEY_MIN_BYTES",
    "Ingredient",
    "Vocabulary",
    "infer_date_column",
    "link_centres",
    "linkage_tokens",
    "load_vocabulary",
    "model_linkage_candidates",
    "normalise_word",
    "omop_targets",
    "parse_date",
    "run",
    "vocabulary_tables",
]
