"""The Cox rounds through files, by replay: ``oncorwe combine --cox-rounds DIR`` and
``oncorwe site-export --cox-request FILE``.

The distributed Newton-Raphson fit (``_cox_rounds.federated_cox_tables``) asks the centres through
a synchronous callback. Static files cannot answer at once, but the fit is deterministic: rerun on
the same answers, it asks the same requests in the same order. So each ``combine`` reruns the fit
from the start, and its ``ask`` looks in ``DIR`` for every centre's answer to the request
(``<request sha256>.<centre>.json``, the sha256 of the request's canonical JSON). When all are there
it returns them; when one is missing it writes ``round-<n>.<request sha256>.request.json`` and stops
the fit, and the report says which centres must answer which file. The centres answer
(``cox_answer_document``) and the coordinator reruns ``combine``, until every round is answered.

A request file holds the request, its sha256, its round number, the protocol's sha256, the
linkage's sha256 and the centres who must answer. An answer holds the centre id, the request's
sha256, the protocol's sha256, the answer (``cox_site_answer``) and the sha256 of its own content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.analysis._cox import COX_MODEL_SCHEMA, COX_SCHEMA, PH_SCHEMA
from oncorwe.analysis._survival import ENDPOINTS
from oncorwe.analysis.federated._cox_rounds import cox_site_answer, federated_cox_tables
from oncorwe.analysis.federated._package import canonical_json, protocol_sha256, read_json_file
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = ["ANSWER_FORMAT", "REQUEST_FORMAT", "CoxRounds", "answer_file_name", "cox_answer_document",
           "file_cox_tables", "read_cox_answer", "read_cox_request", "request_sha256"]

REQUEST_FORMAT = "oncorwe-cox-request"
ANSWER_FORMAT = "oncorwe-cox-answer"
SCHEMA_VERSION = 1


def request_sha256(request: Mapping[str, Any]) -> str:
    """The sha256 of a request's canonical JSON: the name of its round in the files."""
    return hashlib.sha256(canonical_json(request)).hexdigest()


def _content_sha256(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: v for k, v in document.items() if k != "content_sha256"})).hexdigest()


def answer_file_name(request_sha: str, centre: str) -> str:
    """Where the coordinator looks for ``centre``'s answer to the request ``request_sha``."""
    return f"{request_sha}.{centre}.json"


@dataclass(frozen=True)
class CoxRounds:
    """Where the file rounds stand after one ``combine``: ``waiting_round`` is None when every round
    was answered (the fit is complete); else the round whose answers are missing, its request file
    and the centres who have not answered it yet."""

    rounds_answered: int
    waiting_round: int | None = None
    request_file: Path | None = None
    missing_centres: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.waiting_round is None:
            return f"fitted by distributed Newton-Raphson in {self.rounds_answered} rounds of files"
        assert self.request_file is not None
        return (f"waiting for round {self.waiting_round} answers from centres {', '.join(self.missing_centres)} "
                f"(request {self.request_file.name})")


class _Waiting(Exception):
    """Stops the replayed fit at the first request some centre has not answered."""

    def __init__(self, rounds: CoxRounds) -> None:
        super().__init__(rounds.message)
        self.rounds = rounds


def read_cox_answer(document: Any, *, where: str, centre: str | None = None, request_sha: str | None = None,
                    protocol_hash: str | None = None) -> dict[str, Any]:
    """A centre's answer document, verified: its format, its content checksum, and (when given) that
    it is ``centre``'s answer to ``request_sha`` under the protocol ``protocol_hash``."""
    if not isinstance(document, dict) or document.get("format") != ANSWER_FORMAT:
        raise InputError(f"{where}: not an oncorwe Cox answer")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{where}: Cox answer schema {document.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    who = document.get("centre_id")
    if centre is not None and who != centre:
        raise InputError(f"centre {centre}: {where} is the answer of centre {who!r}")
    if document.get("content_sha256") != _content_sha256(document):
        raise InputError(f"centre {who}: {where}: content checksum mismatch (the answer was changed or damaged)")
    if request_sha is not None and document.get("request_sha256") != request_sha:
        raise InputError(f"centre {who}: {where} answers request {document.get('request_sha256')!r}, "
                         f"not {request_sha}")
    if protocol_hash is not None and document.get("protocol_sha256") != protocol_hash:
        raise InputError(f"centre {who}: {where} was made with another protocol")
    if not isinstance(document.get("answer"), dict):
        raise InputError(f"centre {who}: {where}: no answer in it")
    return document


def read_cox_request(document: Any, protocol: Protocol, *, where: str) -> dict[str, Any]:
    """A request file, verified: its format, that its request hashes to its name's sha256, and that
    it was made with ``protocol``."""
    if not isinstance(document, dict) or document.get("format") != REQUEST_FORMAT:
        raise InputError(f"{where}: not an oncorwe Cox request")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{where}: Cox request schema {document.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    request = document.get("request")
    if not isinstance(request, dict) or document.get("request_sha256") != request_sha256(request):
        raise InputError(f"{where}: the request does not match its sha256 (changed or damaged)")
    if document.get("protocol_sha256") != protocol_sha256(protocol):
        raise InputError(f"{where}: made with another protocol (sha256 {document.get('protocol_sha256')}, "
                         f"this protocol's is {protocol_sha256(protocol)})")
    return document


def cox_answer_document(analysis_table: pl.DataFrame, protocol: Protocol, centre: str,
                        request_document: Mapping[str, Any]) -> dict[str, Any]:
    """A centre's answer to a verified request file (``read_cox_request``): ``cox_site_answer`` on
    the centre's own analysis table, with the header the coordinator checks."""
    answer = cox_site_answer(analysis_table, protocol, request_document["request"])
    document: dict[str, Any] = {
        "format": ANSWER_FORMAT, "schema_version": SCHEMA_VERSION, "centre_id": centre,
        "protocol_sha256": protocol_sha256(protocol), "request_sha256": request_document["request_sha256"],
        "round": request_document.get("round"), "answer": json.loads(json.dumps(answer)),
    }
    document["content_sha256"] = _content_sha256(document)
    return document


def _safe_centre(centre: str) -> str:
    if not centre or "/" in centre or "\\" in centre or centre.startswith("."):
        raise InputError(f"--cox-rounds: centre id {centre!r} cannot name a file")
    return centre


def file_cox_tables(directory: Path, protocol: Protocol, centres: Sequence[str], *,
                    schema: Mapping[str, pl.DataType], time_bin_days: int = 0,
                    linkage_sha256: str | None = None) -> tuple[dict[str, pl.DataFrame], CoxRounds]:
    """Replay the distributed Cox fit on the answers in ``directory`` (module docstring).

    Returns the ``cox_models``, ``cox`` and ``cox_ph_test`` tables and where the rounds stand: the
    fitted tables when every round is answered, else tables saying which round they wait for (and
    that round's request file, written to ``directory``).
    """
    centres = [_safe_centre(c) for c in centres]
    if not directory.is_dir():
        raise InputError(f"--cox-rounds {directory}: not a folder")
    protocol_hash = protocol_sha256(protocol)
    answered = 0

    def ask(request: Mapping[str, Any]) -> list[dict[str, Any]]:
        nonlocal answered
        wire = json.loads(json.dumps(request))  # what is written is JSON: hash what is written
        sha = request_sha256(wire)
        answers, missing = [], []
        for centre in centres:
            path = directory / answer_file_name(sha, centre)
            if not path.exists():
                missing.append(centre)
                continue
            document = read_cox_answer(read_json_file(path, "Cox answer"), where=str(path), centre=centre,
                                       request_sha=sha, protocol_hash=protocol_hash)
            answers.append(document["answer"])
        if missing:
            n = answered + 1
            request_file = directory / f"round-{n}.{sha}.request.json"
            document = {"format": REQUEST_FORMAT, "schema_version": SCHEMA_VERSION, "round": n,
                        "protocol_sha256": protocol_hash, "linkage_sha256": linkage_sha256,
                        "centres": list(centres), "request_sha256": sha, "request": wire}
            try:
                request_file.write_text(json.dumps(document, sort_keys=True, indent=1) + "\n", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"--cox-rounds {request_file}: cannot be written ({exc.strerror or exc})") from exc
            raise _Waiting(CoxRounds(answered, n, request_file, tuple(missing)))
        answered += 1
        return answers

    try:
        tables = federated_cox_tables(ask, protocol, schema=schema, time_bin_days=time_bin_days)
    except _Waiting as waiting:
        return waiting_tables(protocol, waiting.rounds.message), waiting.rounds
    return tables, CoxRounds(answered)


def waiting_tables(protocol: Protocol, message: str) -> dict[str, pl.DataFrame]:
    """The Cox tables while rounds are unanswered: one row per model saying so, no estimate."""
    covariates = ", ".join(protocol.analysis.cox_covariates)
    models = [{"endpoint": endpoint, "covariates": covariates, "n": None, "events": None, "n_missing": None,
               "status": "not computed", "message": message} for endpoint in ENDPOINTS]
    return {"cox_models": pl.DataFrame(models, schema=COX_MODEL_SCHEMA),
            "cox": pl.DataFrame(schema=COX_SCHEMA), "cox_ph_test": pl.DataFrame(schema=PH_SCHEMA)}
