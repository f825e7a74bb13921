"""Secure aggregation: centres send pairwise-masked count vectors that only add up across all of them.

The protocol of Bonawitz et al. (2017, "Practical secure aggregation for privacy-preserving machine
learning", CCS), without its dropout recovery:

1. **Keys** (``site-export --secure-keys``): each centre makes an X25519 key pair (RFC 7748), keeps
   the private key and publishes the public one (:func:`make_key_pair`). The centres' public keys
   make the **roster** (:class:`Roster`).
2. **Masked package** (``site-export --secure``): centre *i* counts its patients over the cell
   universe (``_universe.CellUniverse``: every cell any centre could count, fixed by the protocol,
   the disclosure settings and the roster), as unsigned 64-bit integers. For every other centre *j*
   it derives the pair's secret by Diffie-Hellman, expands it with HKDF-SHA256 (RFC 5869; salt: the
   roster's sha256; info: the pair and the universe's sha256) into a ChaCha20 key, and takes the
   ChaCha20 keystream (RFC 8439) as the mask vector ``m_ij``. It adds ``+m_ij`` for *j* after *i*
   and ``-m_ij`` for *j* before *i* (roster order), modulo 2^64. *i* and *j* derive the same
   ``m_ij``, so the masks cancel in the sum of all centres' vectors; one vector alone is uniformly
   distributed whatever the counts, as long as one other centre keeps its private key.
3. **Combine** (:func:`network_totals`): the coordinator adds the vectors modulo 2^64 and gets the
   network's totals exactly. Only these are ever visible; disclosure control (small cells, curve
   tails) is applied to them (``combine_secure``), not to each centre's cells.

What stays visible per centre: its id, its number of patients in the analysis set (the report's
"patients per centre"), its public key and the package header. A missing centre leaves its masks
in the others' vectors: the sum is noise, so combine refuses and names the centre(s). There is no
dropout recovery (Bonawitz et al.'s secret-shared seeds): a centre that cannot send means a new
round with a new roster.

Two things the protocol relies on and cannot check itself: the public keys must reach each centre
unaltered (compare the roster's sha256, printed by ``site-export --secure``, through another
channel), and a key pair is used for one release only (two masked packages made with the same keys
differ by the difference of their counts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from oncorwe import __version__
from oncorwe.analysis.federated._disclosure import Disclosure
from oncorwe.analysis.federated._package import (
    FORMAT,
    MAX_PACKAGE_BYTES,
    SCHEMA_VERSION,
    canonical_json,
    protocol_sha256,
)
from oncorwe.analysis.federated._universe import FLOW_COUNTS, CellUniverse, count_vector, own_flow
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = [
    "PRIVATE_KEY_FORMAT",
    "PUBLIC_KEY_FORMAT",
    "Roster",
    "SecurePackage",
    "build_secure_package",
    "make_key_pair",
    "network_totals",
    "read_package",
    "read_roster",
]

PUBLIC_KEY_FORMAT = "oncorwe-secure-public-key"
PRIVATE_KEY_FORMAT = "oncorwe-secure-private-key"
#: HKDF info prefix: a new version of the masking gives other masks
_INFO = b"oncorwe secure aggregation v1"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import x25519
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:  # pragma: no cover - the extra is installed where it is used
        raise InputError("secure aggregation needs the cryptography package: pip install 'oncorwe[secure]'") from exc
    return hashes, x25519, Cipher, algorithms, HKDF


def make_key_pair(centre_id: str, protocol: Protocol) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh X25519 key pair for one release: (public document, private document)."""
    from cryptography.hazmat.primitives import serialization

    _hashes, x25519, *_ = _crypto()
    private = x25519.X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    public_bytes = private.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    private_bytes = private.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    header = {"schema_version": 1, "centre_id": centre_id,
              "protocol": {"name": protocol.name, "sha256": protocol_sha256(protocol)}, "public_key": public_bytes.hex()}
    return ({"format": PUBLIC_KEY_FORMAT, **header},
            {"format": PRIVATE_KEY_FORMAT, **header, "private_key": private_bytes.hex()})


@dataclass(frozen=True)
class Roster:
    """The centres of a secure round and their public keys, in centre-id order."""

    centres: tuple[tuple[str, str], ...]  # (centre_id, public key hex)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c for c, _k in self.centres)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical_json([list(c) for c in self.centres])).hexdigest()

    def record(self) -> list[dict[str, str]]:
        return [{"centre_id": c, "public_key": k} for c, k in self.centres]


def read_roster(documents: Sequence[tuple[str, Any]], protocol: Protocol) -> Roster:
    """The roster from the centres' public-key documents ((where it came from, parsed JSON) each)."""
    expected = protocol_sha256(protocol)
    found: dict[str, str] = {}
    keys: dict[str, str] = {}
    for where, document in documents:
        if not isinstance(document, dict) or document.get("format") != PUBLIC_KEY_FORMAT:
            raise InputError(f"{where}: not an oncorwe public key (site-export --secure-keys)")
        centre, key = document.get("centre_id"), document.get("public_key")
        if not isinstance(centre, str) or not centre or not isinstance(key, str) or not _is_key(key):
            raise InputError(f"{where}: malformed public key (centre_id, public_key of 64 hex digits)")
        if (document.get("protocol") or {}).get("sha256") != expected:
            raise InputError(f"{where} (centre {centre}): public key made for another protocol")
        if centre in found:
            raise InputError(f"{where}: a second public key for centre {centre}")
        if key in keys:
            raise InputError(f"{where}: centre {centre} has the same public key as centre {keys[key]}")
        found[centre] = key
        keys[key] = centre
    if len(found) < 2:
        raise InputError("secure aggregation: fewer than 2 centres' public keys (--peers)")
    return Roster(tuple(sorted(found.items())))


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _masks(private_hex: str, centre_id: str, roster: Roster, universe: CellUniverse) -> np.ndarray:
    """Σ_j ±m_ij for this centre (mod 2^64): + for centres after it in the roster, - before."""
    hashes, x25519, Cipher, algorithms, HKDF = _crypto()
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    total = np.zeros(universe.size, dtype=np.uint64)
    zeros = bytes(8 * universe.size)
    for other, public_hex in roster.centres:
        if other == centre_id:
            continue
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)))
        first, second = sorted((centre_id, other))
        info = b"|".join([_INFO, first.encode(), second.encode(), universe.sha256.encode()])
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes.fromhex(roster.sha256), info=info).derive(shared)
        # a key per pair and round, so the all-zero nonce is used once per key
        stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor().update(zeros)
        mask = np.frombuffer(stream, dtype="<u8").astype(np.uint64)
        if other > centre_id:
            total += mask
        else:
            total -= mask
    return total


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<u8").tobytes()).decode("ascii")


def _decode(text: Any, size: int, where: str) -> np.ndarray:
    if not isinstance(text, str):
        raise InputError(f"{where}: not a valid secure package (masked vector)")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise InputError(f"{where}: not a valid secure package (masked vector: {exc})") from exc
    if len(raw) != 8 * size:
        raise InputError(f"{where}: the masked vector has {len(raw) // 8} cells, the universe {size}")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


@dataclass(frozen=True)
class SecurePackage:
    """A centre's masked package (:func:`build_secure_package`, :meth:`read`)."""

    centre_id: str
    protocol_name: str
    protocol_sha256: str
    oncorwe_version: str
    disclosure: Mapping[str, Any]
    n_patients: int
    roster: Roster
    universe_sha256: str
    flow_steps: tuple[str, ...]
    masked: np.ndarray
    content_sha256: str
    linkage_sha256: str | None = None

    exact = False

    def content(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "schema_version": SCHEMA_VERSION, "oncorwe_version": self.oncorwe_version,
            "protocol": {"name": self.protocol_name, "sha256": self.protocol_sha256}, "centre_id": self.centre_id,
            "disclosure": dict(self.disclosure), "n_patients": self.n_patients, "linkage_sha256": self.linkage_sha256,
            "secure": {"roster": self.roster.record(), "roster_sha256": self.roster.sha256,
                       "universe_sha256": self.universe_sha256, "flow_steps": list(self.flow_steps),
                       "cells": int(self.masked.size), "masked": _encode(self.masked)},
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "content_sha256": self.content_sha256}

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, where: str = "package") -> SecurePackage:
        """A masked package from its JSON document, with its checksum and shapes verified."""
        if not isinstance(document, Mapping) or document.get("format") != FORMAT or "secure" not in document:
            raise InputError(f"{where}: not an oncorwe masked site package (format {FORMAT!r} with a secure section)")
        centre = document.get("centre_id")
        label = f"{where} (centre {centre})" if isinstance(centre, str) else where
        if document.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"{label}: package schema version {document.get('schema_version')!r}; this oncorwe "
                             f"reads version {SCHEMA_VERSION} (make the package again with oncorwe {__version__})")
        body = {k: v for k, v in document.items() if k != "content_sha256"}
        try:
            actual = hashlib.sha256(canonical_json(body)).hexdigest()
        except (TypeError, ValueError) as exc:
            raise InputError(f"{label}: not a valid package ({exc})") from exc
        if document.get("content_sha256") != actual:
            raise InputError(f"{label}: content does not match its checksum (the package was changed or damaged "
                             "after it was made)")
        try:
            secure = document["secure"]
            roster = Roster(tuple((str(r["centre_id"]), str(r["public_key"])) for r in secure["roster"]))
            if secure["roster_sha256"] != roster.sha256:
                raise TypeError("roster_sha256")
            cells = secure["cells"]
            if not isinstance(cells, int) or cells <= 0 or 8 * cells > MAX_PACKAGE_BYTES:
                raise TypeError("cells")
            n = document["n_patients"]
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise TypeError("n_patients")
            return cls(
                centre_id=str(centre), protocol_name=str(document["protocol"]["name"]),
                protocol_sha256=str(document["protocol"]["sha256"]), oncorwe_version=str(document["oncorwe_version"]),
                disclosure=dict(document["disclosure"]), n_patients=n, roster=roster,
                universe_sha256=str(secure["universe_sha256"]), flow_steps=tuple(str(s) for s in secure["flow_steps"]),
                masked=_decode(secure["masked"], cells, label), content_sha256=actual,
                linkage_sha256=None if document["linkage_sha256"] is None else str(document["linkage_sha256"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{label}: not a valid secure package (missing or malformed {exc})") from exc


def build_secure_package(
    analysis_table: pl.DataFrame,
    protocol: Protocol,
    *,
    centre_id: str,
    disclosure: Disclosure,
    roster: Roster,
    private_key: Mapping[str, Any],
    attrition: pl.DataFrame,
    reconciliation: pl.DataFrame,
    linkage_sha256: str | None = None,
) -> SecurePackage:
    """A centre's masked package: its counts over the cell universe plus its pairwise masks.

    ``disclosure``'s binning is applied here (the universe's cells are bins); its ``min_cell_count``
    is recorded and applied by the coordinator to the network's totals.
    """
    if private_key.get("format") != PRIVATE_KEY_FORMAT or not _is_key(private_key.get("private_key")):
        raise InputError("--key-file: not an oncorwe private key (site-export --secure-keys)")
    if private_key.get("centre_id") != centre_id:
        raise InputError(f"--key-file: the private key of centre {private_key.get('centre_id')}, not of {centre_id}")
    if (private_key.get("protocol") or {}).get("sha256") != protocol_sha256(protocol):
        raise InputError("--key-file: a private key made for another protocol")
    own = dict(roster.centres).get(centre_id)
    if own is None:
        raise InputError(f"--peers: centre {centre_id}'s own public key is not among the peers")
    if own != private_key.get("public_key"):
        raise InputError(f"--peers: the public key given for centre {centre_id} is not this private key's")
    if analysis_table.height and analysis_table["centre_id"].n_unique() > 1:
        raise InputError("site package: the analysis table holds more than one centre")
    steps = tuple(own_flow(attrition, centre_id)["criterion"].to_list()) if attrition.height else ()
    universe = CellUniverse.of(protocol, roster.ids, disclosure, steps)
    counts = count_vector(universe, analysis_table, protocol, centre_id=centre_id, attrition=attrition,
                          reconciliation=reconciliation)
    masked = counts + _masks(str(private_key["private_key"]), centre_id, roster, universe)
    record = {**disclosure.record(), "applied_to": "network totals (secure aggregation)"}
    content = SecurePackage(
        centre_id=centre_id, protocol_name=protocol.name, protocol_sha256=protocol_sha256(protocol),
        oncorwe_version=__version__, disclosure=record, n_patients=analysis_table.height, roster=roster,
        universe_sha256=universe.sha256, flow_steps=steps, masked=masked, content_sha256="",
        linkage_sha256=linkage_sha256,
    )
    digest = hashlib.sha256(canonical_json(content.content())).hexdigest()
    return SecurePackage(**{**content.__dict__, "content_sha256": digest})


def check_round(packages: Sequence[SecurePackage]) -> None:
    """The packages are one round: one per centre, every centre of the same roster, made with the
    same settings and universe (else the masks cannot cancel)."""
    if not packages:
        raise InputError("combine: no site packages given")
    first = packages[0]
    seen: dict[str, str] = {}
    for package in packages:
        where = f"centre {package.centre_id}"
        if package.centre_id in seen:
            raise InputError(f"{where}: two packages for the same centre (one per centre; checksums "
                             f"{seen[package.centre_id][:12]}... and {package.content_sha256[:12]}...)")
        seen[package.centre_id] = package.content_sha256
        if package.roster.sha256 != first.roster.sha256:
            raise InputError(f"{where}: masked with another roster of public keys than centre {first.centre_id} "
                             f"({package.roster.sha256[:12]}... vs {first.roster.sha256[:12]}...)")
        if package.centre_id not in package.roster.ids:
            raise InputError(f"{where}: not in the roster its package was masked with")
        if dict(package.disclosure) != dict(first.disclosure):
            raise InputError(f"{where}: made with other disclosure settings than centre {first.centre_id}")
        if package.flow_steps != first.flow_steps or package.universe_sha256 != first.universe_sha256:
            raise InputError(f"{where}: made with another cell universe than centre {first.centre_id} "
                             "(another protocol setting or oncorwe version)")
    missing = [c for c in first.roster.ids if c not in seen]
    if missing:
        raise InputError(f"combine: no package from {', '.join(missing)} of the roster: their masks do not cancel "
                         "and the totals cannot be recovered (secure aggregation has no dropout recovery; "
                         "make new keys without them and export again)")


def network_totals(packages: Sequence[SecurePackage], protocol: Protocol) -> tuple[np.ndarray, CellUniverse]:
    """The network's exact totals over the universe from every roster centre's masked package.

    Raises
    ------
    InputError : packages of different rosters, universes or settings; a roster centre missing
        (its masks do not cancel); a centre twice; sums that are not counts (a package changed after
        it was masked).
    """
    check_round(packages)
    first = packages[0]
    d = first.disclosure
    disclosure = Disclosure(int(d.get("min_cell_count", 0)), int(d.get("time_bin_days", 0)),
                            {str(k): float(v) for k, v in dict(d.get("value_bins", {})).items()})
    universe = CellUniverse.of(protocol, first.roster.ids, disclosure, first.flow_steps)
    if universe.sha256 != first.universe_sha256:
        raise InputError(f"centre {first.centre_id}: made with another cell universe than this protocol's "
                         "(another protocol setting or oncorwe version)")
    total = np.zeros(universe.size, dtype=np.uint64)
    for package in packages:
        if package.masked.size != universe.size:
            raise InputError(f"centre {package.centre_id}: {package.masked.size} cells, the universe {universe.size}")
        total += package.masked
    _check_counts(total, universe, packages)
    return total, universe


def _check_counts(total: np.ndarray, universe: CellUniverse, packages: Sequence[SecurePackage]) -> None:
    """The unmasked totals are counts of the network's patients: each view counts every patient
    once (a changed masked cell gives a random 64-bit number instead, caught here)."""
    n = sum(p.n_patients for p in packages)
    problem = "the unmasked sums are not counts: a package was changed after it was masked, or made with other keys"
    # a changed cell sums to a uniformly random 64-bit number: far above any count
    if int(total[:universe.flow_offset].max(initial=0)) > n or int(total.max(initial=0)) >= 2**40:
        raise InputError(f"combine: {problem}")
    for position, cells in enumerate(universe.views):
        counted = int(total[cells.offset:cells.offset + cells.size].sum())
        left_out = int(total[universe.fit_offset + 2 * position + 1])
        if counted + left_out != n:
            raise InputError(f"combine: {problem} (view {', '.join(cells.columns)} counts {counted + left_out} "
                             f"patients, the centres' analysis sets {n})")
    if "centre_id" in universe.views[0].columns:
        cells = universe.views[0]
        per_centre = dict(zip(cells.domains[0].values[1:], total[cells.offset + 1:cells.offset + cells.size].tolist(),
                              strict=True))
        for package in packages:
            if per_centre.get(package.centre_id) != package.n_patients:
                raise InputError(f"centre {package.centre_id}: {problem} (the network counts "
                                 f"{per_centre.get(package.centre_id)} of its patients, its header {package.n_patients})")
    if universe.flow_steps:
        last = int(total[universe.flow_offset + len(FLOW_COUNTS) * (len(universe.flow_steps) - 1) + 2])
        if last != n:
            raise InputError(f"combine: {problem} (the flow ends with {last} patients, the analysis sets {n})")


def flow_table(total: np.ndarray, universe: CellUniverse) -> pl.DataFrame:
    """The network's flow as ``cohort``'s attrition rows (centre_id null)."""
    rows = []
    for s, criterion in enumerate(universe.flow_steps):
        at = universe.flow_offset + len(FLOW_COUNTS) * s
        rows.append({"step": s, "criterion": criterion, "centre_id": None,
                     **{name: int(total[at + c]) for c, name in enumerate(FLOW_COUNTS)}})
    schema = {"step": pl.Int64(), "criterion": pl.String(), "centre_id": pl.String(),
              **{name: pl.Int64() for name in FLOW_COUNTS}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def reconciliation_table(total: np.ndarray, universe: CellUniverse) -> pl.DataFrame:
    """The network's records read, accepted, quarantined and merged, over every centre's files."""
    from oncorwe.analysis.federated._universe import RECONCILIATION_COUNTS

    row = {"centre_id": None, "file": "(every centre's files)",
           **{name: int(total[universe.reconciliation_offset + c]) for c, name in enumerate(RECONCILIATION_COUNTS)},
           "sheet": None}
    return pl.DataFrame([row], schema={"centre_id": pl.String(), "file": pl.String(),
                                       **{n: pl.Int64() for n in RECONCILIATION_COUNTS}, "sheet": pl.String()})


def view_counts(total: np.ndarray, universe: CellUniverse, schema: Mapping[str, pl.DataType]
                ) -> dict[tuple[str, ...], pl.DataFrame]:
    """Every view's counted rows of the network's totals (before disclosure control)."""
    return {cells.columns: universe.view_rows(total, cells, dict(schema)) for cells in universe.views}


def fit_counts(total: np.ndarray, universe: CellUniverse) -> dict[tuple[str, ...], tuple[int, int]]:
    """Per view, the network's patients (moved to fit the universe, left out of it)."""
    return {cells.columns: (int(total[universe.fit_offset + 2 * i]), int(total[universe.fit_offset + 2 * i + 1]))
            for i, cells in enumerate(universe.views)}


def write_private_key(document: Mapping[str, Any], path: Path) -> None:
    """The private key file, readable by its owner only; an existing file is never replaced (it may
    be the key of a round in progress)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InputError(f"--key-file {path}: exists; a new round needs a new key file (keys are used once)") from exc
    except OSError as exc:
        raise InputError(f"--key-file {path}: cannot be written ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(document), sort_keys=True, indent=1) + "\n")


def read_package(path: str | Path) -> Any:
    """A site package file, plain (:class:`~oncorwe.analysis.federated.SitePackage`) or masked
    (:class:`SecurePackage`, a package with a ``secure`` section), verified."""
    from oncorwe.analysis.federated._package import SitePackage, read_json_file

    source = Path(path)
    document = read_json_file(source, "site package", max_bytes=MAX_PACKAGE_BYTES)
    if isinstance(document, dict) and document.get("format") == FORMAT and "secure" in document:
        return SecurePackage.from_json(document, where=str(source))
    return SitePackage.from_json(document, where=str(source))
