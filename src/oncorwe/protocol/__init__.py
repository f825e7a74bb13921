"""oncorwe.protocol: a study as a validated file (TOML or YAML).

``load("goldinger2022")`` loads the flagship protocol shipped in ``studies/``; ``load(path)`` a
user's copy. Problems are raised as one :class:`oncorwe.errors.ProtocolError` with one line per
problem, each naming the key and what is allowed.
"""

from oncorwe.protocol._load import load, parse, shipped_protocols, shipped_text
from oncorwe.protocol._model import (
    CRITERIA,
    DRUG_CLASSES,
    AnalysisSpec,
    CalendarWindow,
    Eligibility,
    EndpointRules,
    ExposureSequence,
    LineRules,
    Population,
    Protocol,
    Reference,
    RegimenClass,
    ResponseRules,
)

__all__ = [
    "CRITERIA",
    "DRUG_CLASSES",
    "AnalysisSpec",
    "CalendarWindow",
    "Eligibility",
    "EndpointRules",
    "ExposureSequence",
    "LineRules",
    "Population",
    "Protocol",
    "Reference",
    "RegimenClass",
    "ResponseRules",
    "load",
    "parse",
    "shipped_protocols",
    "shipped_text",
]
