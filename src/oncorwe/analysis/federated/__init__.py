"""Multicentre analysis without pooling patient data (the analysis stage, federated).

A centre runs the protocol at home and sends a site package of aggregates (:func:`build_package`,
``oncorwe site-export``): each view the analyses read (``analysis.view_keys``) as counted rows, the
flow, and the data-quality counts, under disclosure control. The coordinator verifies the packages
and computes the same result tables as the pooled analysis (:func:`combine`, ``oncorwe combine``),
through the same analysis code (``analysis.from_views`` on ``analysis.CountViews``).

With secure aggregation (:func:`build_secure_package`, ``site-export --secure``) a centre sends its
counts over a cell universe every centre knows (:class:`CellUniverse`) plus pairwise masks that
cancel only in the sum of all centres: the coordinator sees the network's totals only
(:func:`combine_secure`), and disclosure control applies to those.
"""

from oncorwe.analysis.federated._combine import Combined, CombineRules, combine, combine_secure
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
from oncorwe.analysis.federated._secure import (
    PRIVATE_KEY_FORMAT,
    PUBLIC_KEY_FORMAT,
    Roster,
    SecurePackage,
    build_secure_package,
    make_key_pair,
    network_totals,
    read_package,
    read_roster,
)
from oncorwe.analysis.federated._universe import CellUniverse, count_vector

__all__ = [
    "FORMAT",
    "PRIVATE_KEY_FORMAT",
    "PUBLIC_KEY_FORMAT",
    "SCHEMA_VERSION",
    "Ask",
    "CellUniverse",
    "CombineRules",
    "Combined",
    "Disclosure",
    "PackageView",
    "Roster",
    "SecurePackage",
    "SitePackage",
    "build_package",
    "build_secure_package",
    "combine",
    "combine_secure",
    "count_vector",
    "cox_site_answer",
    "federated_cox_tables",
    "make_key_pair",
    "network_totals",
    "protocol_sha256",
    "read_package",
    "read_roster",
]
