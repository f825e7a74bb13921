"""Multicentre analysis without pooling patient data (the analysis stage, federated).

A centre runs the protocol at home and sends a site package of aggregates (:func:`build_package`,
``oncorwe site-export``): each view the analyses read (``analysis.view_keys``) as counted rows, the
flow, and the data-quality counts, under disclosure control. The coordinator verifies the packages
and computes the same result tables as the pooled analysis (:func:`combine`, ``oncorwe combine``),
through the same analysis code (``analysis.from_views`` on ``analysis.CountViews``).
"""

from oncorwe.analysis.federated._combine import Combined, CombineRules, combine
from oncorwe.analysis.federated._cox_rounds import Ask, cox_site_answer, federated_cox_tables
from oncorwe.analysis.federated._disclosure import Disclosure
from oncorwe.analysis.federated._package import (
    FORMAT,
    SCHEMA_VERSION,
    PackageView,
    SitePackage,
    build_package,
    protocol_sha256,
)

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "Ask",
    "CombineRules",
    "Combined",
    "Disclosure",
    "PackageView",
    "SitePackage",
    "build_package",
    "combine",
    "cox_site_answer",
    "federated_cox_tables",
    "protocol_sha256",
]
