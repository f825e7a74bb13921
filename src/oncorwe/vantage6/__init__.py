"""oncorwe as a vantage6 algorithm (vantage6-algorithm-tools 4.15; ``pip install oncorwe[vantage6]``).

vantage6 (IKNL) is the federated infrastructure cancer registries run: each centre's node holds its
data and runs the algorithm's *partial* functions on it; a *central* function, started by the
researcher, creates the partial tasks and combines their JSON answers. This module is that
algorithm, with the transport left to vantage6:

- ``central(client, protocol=..., exact=False, ...)``: the coordinator. It asks every organisation
  for its linkage tokens, links them (cross-centre duplicates), asks for the site packages with the
  linkage applied, fits the Cox models by distributed Newton-Raphson (one partial task per round),
  and returns the pooled result tables as JSON-plain data: the same tables as ``oncorwe combine``.
- ``partial_linkage_tokens``, ``partial_site_package``, ``partial_cox``: what a node runs.
- with ``central(..., secure=True)``, secure aggregation instead of site packages: a key round
  (``partial_secure_key``: each node's public key of the round) then a masked-package round
  (``partial_secure_package``); only the network's totals are unmasked. A node derives its round
  key from its own secret (``secure_key_file`` in its database row) and the round's id, so the two
  tasks need no shared state. The Cox rounds' risk-set sums are not masked.

A node's database (its ``@data(1)`` table) is one row naming the centre's data for oncorwe:
``data_dir`` (the study folder with ``centres.toml``), ``centre_id`` and ``linkage_key_file`` (the
key the centres share for linkage; never sent to the coordinator). docs/federation.md says how a
centre deploys it. Nothing but aggregates leaves a node: the site package (disclosure-controlled
unless the researcher asks for ``exact``), the linkage tokens (keyed hashes) and the Cox rounds'
risk-set sums.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vantage6.algorithm.tools.decorators import algorithm_client, data

from oncorwe import pipeline
from oncorwe.analysis.federated import (
    CombineRules,
    SecurePackage,
    SitePackage,
    combine,
    combine_secure,
    cox_site_answer,
    federated_cox_tables,
)
from oncorwe.analysis.federated._package import canonical_json
from oncorwe.errors import InputError
from oncorwe.protocol import load as load_protocol

__all__ = ["central", "partial_cox", "partial_linkage_tokens", "partial_secure_key", "partial_secure_package",
           "partial_site_package"]

#: A node's analysis table, per (study folder, centre, protocol, linkage): a node answers every
#: Cox round from the same table without harmonising again (one process per node in the mock).
_SITE_TABLES: dict[tuple[str, str, str, str], Any] = {}


def _site_row(frame: Any) -> dict[str, str]:
    """The node's one-row database: where the centre's data are (see the module docstring)."""
    rows = frame.to_dict("records")
    if len(rows) != 1 or not {"data_dir", "centre_id"} <= set(rows[0]):
        raise InputError("the node's oncorwe database must be one row with data_dir and centre_id "
                         "(and linkage_key_file)")
    return {k: str(v) for k, v in rows[0].items() if v is not None}


def _site_table(row: Mapping[str, str], protocol_ref: str, linkage: Mapping[str, Any] | None) -> Any:
    key = (row["data_dir"], row["centre_id"], protocol_ref,
           hashlib.sha256(canonical_json(linkage)).hexdigest() if linkage is not None else "")
    if key not in _SITE_TABLES:
        _SITE_TABLES[key] = pipeline.site_derive(protocol_ref, row["data_dir"], row["centre_id"],
                                                 linkage=linkage).endpoints.analysis_table
    return _SITE_TABLES[key]


@data(1)
def partial_linkage_tokens(frame: Any, protocol: str = "goldinger2022") -> dict[str, Any]:
    """At a node: the centre's linkage tokens (keyed hashes; the key stays at the node)."""
    row = _site_row(frame)
    if "linkage_key_file" not in row:
        raise InputError("the node's oncorwe database names no linkage_key_file")
    key = Path(row["linkage_key_file"]).read_bytes().strip()
    return pipeline.linkage_tokens(protocol, row["data_dir"], row["centre_id"], key)


@data(1)
def partial_site_package(frame: Any, protocol: str = "goldinger2022", linkage: Mapping[str, Any] | None = None,
                         exact: bool = False) -> dict[str, Any]:
    """At a node: the centre's site package (as ``oncorwe site-export``), with the linkage applied."""
    row = _site_row(frame)
    package = pipeline.site_export(protocol, row["data_dir"], row["centre_id"], linkage=linkage,
                                   min_cell_count=0 if exact else None, time_bin_days=0 if exact else None)
    return package.to_json()


@data(1)
def partial_cox(frame: Any, request: Mapping[str, Any], protocol: str = "goldinger2022",
                linkage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """At a node: the centre's answer to one round of the distributed Cox fit."""
    row = _site_row(frame)
    return cox_site_answer(_site_table(row, protocol, linkage), load_protocol(protocol), request)


def _round_key(row: Mapping[str, str], protocol_ref: str, round_id: str) -> dict[str, Any]:
    """The node's key pair of one secure round, derived from the node's secret (``secure_key_file``,
    kept at the node) and the round's id: the key round and the masked-package round, separate
    tasks (containers) without shared state, derive the same private key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import x25519
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from oncorwe.analysis.federated import PRIVATE_KEY_FORMAT, protocol_sha256

    if "secure_key_file" not in row:
        raise InputError("the node's oncorwe database names no secure_key_file (a secret of at least 32 bytes "
                         "kept at the node, for secure aggregation)")
    secret = Path(row["secure_key_file"]).read_bytes().strip()
    if len(secret) < 32:
        raise InputError("the node's secure_key_file holds fewer than 32 bytes")
    if not round_id or len(round_id) < 16:
        raise InputError("secure aggregation: the round id is missing or shorter than 16 characters")
    loaded = load_protocol(protocol_ref)
    info = b"|".join([b"oncorwe secure round key v1", protocol_sha256(loaded).encode(), row["centre_id"].encode()])
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=round_id.encode(), info=info).derive(secret)
    private = x25519.X25519PrivateKey.from_private_bytes(seed)
    raw = serialization.Encoding.Raw
    public = private.public_key().public_bytes(raw, serialization.PublicFormat.Raw).hex()
    private_hex = private.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()
    header = {"schema_version": 1, "centre_id": row["centre_id"],
              "protocol": {"name": loaded.name, "sha256": protocol_sha256(loaded)}, "public_key": public}
    return {"format": PRIVATE_KEY_FORMAT, **header, "private_key": private_hex}


@data(1)
def partial_secure_key(frame: Any, round_id: str, protocol: str = "goldinger2022") -> dict[str, Any]:
    """At a node: the centre's public key of one secure-aggregation round (the private key is never sent)."""
    from oncorwe.analysis.federated import PUBLIC_KEY_FORMAT

    private = _round_key(_site_row(frame), protocol, round_id)
    return {"format": PUBLIC_KEY_FORMAT, **{k: v for k, v in private.items() if k not in ("format", "private_key")}}


@data(1)
def partial_secure_package(frame: Any, round_id: str, peers: Sequence[Mapping[str, Any]],
                           protocol: str = "goldinger2022", linkage: Mapping[str, Any] | None = None,
                           min_cell_count: int | None = None) -> dict[str, Any]:
    """At a node: the centre's masked package (as ``oncorwe site-export --secure``) for the round's
    roster of public keys, with the linkage applied."""
    row = _site_row(frame)
    package = pipeline.site_export_secure(
        protocol, row["data_dir"], row["centre_id"], peers=[(f"peer {i}", p) for i, p in enumerate(peers)],
        private_key=_round_key(row, protocol, round_id), min_cell_count=min_cell_count, linkage=linkage)
    return package.to_json()


@algorithm_client
def central(client: Any, protocol: str = "goldinger2022", exact: bool = False, min_centres: int | None = None,
            min_patients: int | None = None, secure: bool = False) -> dict[str, Any]:
    """The coordinator: every organisation's aggregates combined into the pooled result tables.

    ``secure``: secure aggregation (a key round, then a masked-package round; only the network's
    totals are unmasked, and disclosure control applies to them). With ``exact`` too, nothing is
    suppressed from those totals (binned, not for release).
    """
    loaded = load_protocol(protocol)
    organisations = [int(o["id"]) for o in client.organization.list()]

    def ask(method: str, **kwargs: Any) -> list[Any]:
        task = client.task.create(input_={"method": method, "kwargs": kwargs}, organizations=organisations,
                                  name=f"oncorwe {method}", description=f"oncorwe {loaded.name}: {method}")
        return list(client.wait_for_results(task_id=task.get("id")))

    tokens = ask("partial_linkage_tokens", protocol=protocol)
    linkage = pipeline.link([(f"organisation {o}", t) for o, t in zip(organisations, tokens, strict=True)])
    if secure:
        round_id = secrets.token_hex(16)  # a fresh round: fresh keys at every node
        peers = ask("partial_secure_key", round_id=round_id, protocol=protocol)
        documents = ask("partial_secure_package", round_id=round_id, peers=peers, protocol=protocol,
                        linkage=linkage, min_cell_count=0 if exact else None)
        packages: list[Any] = [SecurePackage.from_json(d, where=f"organisation {o}")
                               for o, d in zip(organisations, documents, strict=True)]
    else:
        documents = ask("partial_site_package", protocol=protocol, linkage=linkage, exact=exact)
        packages = [SitePackage.from_json(d, where=f"organisation {o}")
                    for o, d in zip(organisations, documents, strict=True)]
    rules = CombineRules.of(loaded)
    rules = CombineRules(rules.min_centres if min_centres is None else min_centres,
                         rules.min_patients_per_centre if min_patients is None else min_patients)

    def ask_cox(request: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        return ask("partial_cox", request=dict(request), protocol=protocol, linkage=linkage)

    bin_days = 0 if exact and not secure else loaded.federation.time_bin_days
    cox = federated_cox_tables(ask_cox, loaded, schema=loaded.analysis_schema(), time_bin_days=bin_days)
    combined = (combine_secure if secure else combine)(packages, loaded, rules=rules, cox=cox)
    result = combined.result
    return {"info": _plain(dict(result.info)),
            "tables": {name: _plain(frame.to_dicts()) for name, frame in result.tables.items()}}


def _plain(value: Any) -> Any:
    """JSON-plain: NaN and infinity (R's NA) as null, mappings and sequences as dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

