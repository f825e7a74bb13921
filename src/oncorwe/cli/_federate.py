"""Multicentre analysis without pooling: ``oncorwe site-export``, ``oncorwe link``, ``oncorwe combine``.

At each centre, ``site-export`` runs the protocol on the centre's own files and writes a site
package of aggregates (``--inspect`` prints everything in it, for the data-protection officer);
with ``--linkage-tokens`` it writes the centre's keyed hashes for finding cross-centre duplicate
referrals instead. The coordinator links the tokens (``link``), and ``combine`` verifies the
packages and writes the same report folder as ``oncorwe run``, marked as federated
(docs/federation.md). With secure aggregation, ``site-export --secure-keys`` makes a centre's key
pair and ``site-export --secure --peers ...`` a masked package; ``combine`` recognises masked
packages and unmasks only the network's totals. Exit codes: 0 done, 2 bad input (a package that fails verification, a
protocol mismatch, a duplicated centre, too few centres), with one line per problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _read_json(path: Path, what: str) -> Any:
    from oncorwe.analysis.federated._package import read_json_file

    return read_json_file(path, what)


def _write_json(document: Any, out: Path) -> None:
    from oncorwe.errors import InputError

    if out.is_dir():
        raise InputError(f"--out {out}: a folder; give the file to write")
    try:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc


def _key(path: Path | None) -> bytes:
    from oncorwe.errors import InputError

    if path is None:
        raise InputError("--linkage-tokens needs --key-file: the linkage key the centres share (never the coordinator)")
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise InputError(f"--key-file {path}: cannot be read ({exc.strerror or exc})") from exc


def site_export(
    data: Annotated[Path | None, typer.Option("--data", help="The study folder (centres.toml) holding this centre.")] = None,
    centre: Annotated[str | None, typer.Option("--centre", help="This centre's id in centres.toml.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol file or shipped name.")] = "goldinger2022",
    out: Annotated[Path | None, typer.Option("--out", help="The package (JSON) to write.")] = None,
    min_cell_count: Annotated[int | None, typer.Option("--min-cell-count", help="Override the protocol's (0 with --time-bin-days 0: exact, not for release).")] = None,
    time_bin_days: Annotated[int | None, typer.Option("--time-bin-days", help="Override the protocol's event-time bin.")] = None,
    linkage: Annotated[Path | None, typer.Option("--linkage", help="The coordinator's linkage (oncorwe link): duplicates to leave out.")] = None,
    linkage_tokens: Annotated[bool, typer.Option("--linkage-tokens", help="Write this centre's linkage tokens instead of a package.")] = False,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="With --linkage-tokens: the centres' shared linkage key. With --secure-keys: where this centre's private key is written; with --secure: read.")] = None,
    inspect: Annotated[Path | None, typer.Option("--inspect", help="Print in plain words everything a package holds, and exit.")] = None,
    secure_keys: Annotated[bool, typer.Option("--secure-keys", help="Secure aggregation, step 1: make this centre's key pair; --out gets the public key, --key-file the private one.")] = False,
    secure: Annotated[bool, typer.Option("--secure", help="Secure aggregation, step 2: write a masked package (needs --peers and --key-file).")] = False,
    peers: Annotated[list[Path] | None, typer.Option("--peers", help="With --secure: every centre's public key (this centre's too); the files after it are peers too.")] = None,
    more_peers: Annotated[list[Path] | None, typer.Argument(hidden=True)] = None,
    cox_request: Annotated[Path | None, typer.Option("--cox-request", help="Answer one Cox round's request file (from combine --cox-rounds); --out gets the answer.")] = None,
) -> None:
    """At a centre: run the protocol on this centre's files and write its site package of aggregates."""
    from oncorwe import pipeline
    from oncorwe.analysis.federated import read_package
    from oncorwe.analysis.federated._cox_files import ANSWER_FORMAT, read_cox_answer
    from oncorwe.errors import InputError

    if more_peers and peers is None:
        raise InputError(f"site-export: unexpected argument {more_peers[0]} (public keys go after --peers)")
    if inspect is not None:
        document = _read_json(inspect, "--inspect")
        if isinstance(document, dict) and document.get("format") == ANSWER_FORMAT:
            typer.echo(describe_cox_answer(read_cox_answer(document, where=str(inspect))))
        else:
            typer.echo(describe(read_package(inspect)))
        return
    if cox_request is not None:
        if data is None or centre is None or out is None:
            raise InputError("--cox-request needs --data, --centre and --out (the answer to write)")
        linked = _read_json(linkage, "--linkage") if linkage is not None else None
        answer = pipeline.site_cox_answer(protocol, data, centre, _read_json(cox_request, "--cox-request"),
                                          where=f"--cox-request {cox_request}", linkage=linked)
        _write_json(answer, out)
        typer.echo(f"Cox answer of centre {centre} to round {answer['round']}: {out}; "
                   f"review it with: oncorwe site-export --inspect {out}")
        return
    if secure_keys:
        if centre is None or out is None or key_file is None:
            raise InputError("--secure-keys needs --centre, --out (the public key) and --key-file (the private key)")
        public, private = pipeline.secure_keys(protocol, centre)
        from oncorwe.analysis.federated._secure import write_private_key

        write_private_key(private, key_file)
        _write_json(public, out)
        typer.echo(f"key pair of centre {centre}: send {out} to the other centres; keep {key_file} here, for one round")
        return
    if data is None or centre is None or out is None:
        raise InputError("site-export needs --data, --centre and --out (or --inspect FILE)")
    if secure:
        if not peers or key_file is None:
            raise InputError("--secure needs --peers (every centre's public key) and --key-file (this centre's private key)")
        peer_files = [*peers, *(more_peers or [])]
        linked = _read_json(linkage, "--linkage") if linkage is not None else None
        package = pipeline.site_export_secure(
            protocol, data, centre, peers=[(str(p), _read_json(p, "--peers")) for p in peer_files],
            private_key=_read_json(key_file, "--key-file"), min_cell_count=min_cell_count,
            time_bin_days=time_bin_days, linkage=linked)
        if out.is_dir():
            raise InputError(f"--out {out}: a folder; give the file to write")
        try:
            package.write(out)
        except OSError as exc:
            raise InputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc
        typer.echo(f"masked package of centre {centre} ({package.n_patients} patients, {package.masked.size} cells, "
                   f"{len(package.roster.ids)} centres in the roster): {out}")
        typer.echo(f"roster sha256 {package.roster.sha256}: every centre's must be this (compare it with theirs)")
        return
    if peers or more_peers:
        raise InputError("--peers is for --secure")
    if linkage_tokens:
        _write_json(pipeline.linkage_tokens(protocol, data, centre, _key(key_file)), out)
        typer.echo(f"linkage tokens of centre {centre}: {out}")
        return
    linked = _read_json(linkage, "--linkage") if linkage is not None else None
    package = pipeline.site_export(protocol, data, centre, min_cell_count=min_cell_count,
                                   time_bin_days=time_bin_days, linkage=linked)
    if out.is_dir():
        raise InputError(f"--out {out}: a folder; give the file to write")
    try:
        package.write(out)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc
    kind = "EXACT: not for release" if package.exact else "disclosure-controlled"
    typer.echo(f"site package of centre {centre} ({package.n_patients} patients, {kind}): {out}")
    typer.echo(f"sha256 {package.content_sha256}; review it with: oncorwe site-export --inspect {out}")


def describe(package: Any) -> str:
    """Everything a site package holds, in plain words (what leaves the centre)."""
    if hasattr(package, "masked"):
        return describe_secure(package)
    d = package.disclosure
    lines = [
        f"Site package of centre {package.centre_id}, made by oncorwe {package.oncorwe_version}",
        f"Protocol {package.protocol_name} (sha256 {package.protocol_sha256})",
        f"Content sha256 {package.content_sha256}",
        "EXACT PACKAGE: nothing suppressed or binned. Not for release outside a data-processing agreement."
        if package.exact else
        f"Disclosure control: counts below {d['min_cell_count']} withheld, times rounded up to {d['time_bin_days']} days, "
        f"continuous values binned ({', '.join(f'{k} by {v:g}' for k, v in d.get('value_bins', {}).items()) or 'none'}), "
        "Kaplan-Meier tails censored where fewer patients remain at risk.",
        "Linkage of duplicates applied: " + (package.linkage_sha256 or "none"),
        "No patient identifier, date or per-patient record is in the package; it holds the counts below.",
        "",
        f"Patients in the analysis set: {package.n_patients}",
        "",
        "Patient flow (patients before, excluded, after each criterion; blank = withheld):",
    ]
    for row in package.attrition.sort("step").iter_rows(named=True):
        lines.append(f"  {row['criterion']}: {_n(row['n_before'])} -> excluded {_n(row['n_excluded'])} -> {_n(row['n_after'])}")
    lines.append("")
    lines.append("Records read per file (read = accepted + quarantined + merged):")
    for row in package.reconciliation.iter_rows(named=True):
        where = row["file"] + (f" [{row['sheet']}]" if row.get("sheet") else "") if row.get("file") else "(all files)"
        lines.append(f"  {where}: {row['records_read']} read, {row['accepted']} accepted, {row['quarantined']} "
                     f"quarantined, {row['merged']} merged")
    lines.append("")
    lines.append("Quarantined values by field and reason (values themselves are not included):")
    for row in package.quarantine_summary.iter_rows(named=True):
        lines.append(f"  {row['field']}: {row['reason']} ({row['action']}): {row['n']}")
    lines.append("")
    lines.append("Counted views: for each combination of values, the number of patients who have it.")
    for view in package.views.values():
        control = [f"{view.suppressed_cells} small cell(s) withheld or generalised"] if view.suppressed_cells else []
        control += ["values binned"] if view.binned else []
        control += ["tail truncated"] if view.truncated else []
        lines.append(f"  View ({', '.join(view.columns)}): {view.rows.height} rows, {view.n_patients} patients"
                     + (f"; {'; '.join(control)}" if control else ""))
        for row in view.rows.iter_rows():
            *values, n = row
            lines.append("    " + ", ".join(f"{c}={'(withheld)' if v is None else v}" for c, v in zip(view.columns, values, strict=True))
                         + f": {n}")
    return "\n".join(lines)


def describe_secure(package: Any) -> str:
    """Everything a masked package holds, in plain words."""
    d = package.disclosure
    lines = [
        f"Masked site package of centre {package.centre_id} (secure aggregation), made by oncorwe {package.oncorwe_version}",
        f"Protocol {package.protocol_name} (sha256 {package.protocol_sha256})",
        f"Content sha256 {package.content_sha256}",
        f"Times rounded up to {d['time_bin_days']} days, continuous values binned "
        f"({', '.join(f'{k} by {v:g}' for k, v in d.get('value_bins', {}).items()) or 'none'}); counts below "
        f"{d['min_cell_count']} are withheld by the coordinator from the network's totals, not here.",
        "Linkage of duplicates applied: " + (package.linkage_sha256 or "none"),
        "",
        f"In the clear: the centre's id and its number of patients in the analysis set ({package.n_patients}), "
        f"the flow's step names ({', '.join(package.flow_steps)}), and the roster of "
        f"{len(package.roster.ids)} centres' public keys (sha256 {package.roster.sha256}):",
        *(f"  {c}: {k}" for c, k in package.roster.centres),
        "",
        f"Masked: {package.masked.size} counts (every view's cells, the flow, the records read per kind), each "
        "plus the pairwise masks of the other centres, modulo 2^64. Alone they are uniformly random numbers; "
        "only the sum over every centre of the roster gives counts, the network's totals.",
        "The data-quality counts by field and reason stay at the centre.",
    ]
    return "\n".join(lines)


def describe_cox_answer(document: Any) -> str:
    """Everything a Cox answer holds, in plain words (what leaves the centre in one round)."""
    answer = document["answer"]
    lines = [
        f"Cox answer of centre {document['centre_id']} to round {document.get('round')} "
        f"(request sha256 {document['request_sha256']})",
        f"Protocol sha256 {document['protocol_sha256']}",
        f"Content sha256 {document['content_sha256']}",
        "No patient identifier, date or per-patient record is in the answer; it holds the sums below.",
        "",
    ]
    if "schema" not in answer:  # the design round: per endpoint, counts of the complete cases
        lines.append("Design round: for each endpoint, the complete cases of the model's covariates.")
        for endpoint, part in answer.items():
            lines.append(f"  {endpoint}: {part['n']} patients with every covariate, {part['events']} events, "
                         f"{part['n_missing']} left out for a missing value")
            for column, levels in part.get("levels", {}).items():
                lines.append(f"    levels of {column} present here: {', '.join(levels)}")
            for term, n in part.get("term_n", {}).items():
                lines.append(f"    patients per model term {term}: {n}")
            times = part.get("event_times", [])
            lines.append(f"    {len(times)} distinct event times (months): {', '.join(f'{t:g}' for t in times)}")
        return "\n".join(lines)
    lines += [
        f"Newton-Raphson round at coefficients beta = {', '.join(f'{b:.6g}' for b in answer['beta'])}.",
        "For each event time of the network: the patients at risk and the deaths here, and their sums",
        "S0 (sum of exp(x'beta) over the risk set), S1 (of x exp(x'beta)), S2 (of x x' exp(x'beta)) and the",
        "tied deaths' sums (d0, d1, d2, and the sum of their covariates).",
        "A risk set of one patient gives that patient's covariates: S1/S0 is x (docs/federation.md).",
    ]
    for stratum in answer.get("strata", []):
        at_risk = stratum.get("n_at_risk", [])
        single = sum(1 for n in at_risk if n == 1)
        lines.append(f"  stratum {stratum.get('stratum')}: {len(at_risk)} event times, "
                     f"{sum(stratum.get('n_deaths', []))} deaths here, {single} time(s) with one patient at risk")
        for t, n, d in zip(stratum.get("time", []), at_risk, stratum.get("n_deaths", []), strict=False):
            lines.append(f"    time {t}: {n} at risk, {d} death(s)" + ("  <- one patient: S1/S0 is their covariates" if n == 1 else ""))
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "(withheld)" if value is None else str(value)


def link(
    tokens: Annotated[list[Path], typer.Argument(help="Every centre's linkage tokens (site-export --linkage-tokens).")],
    out: Annotated[Path, typer.Option("--out", help="The linkage to send back to every centre.")] = Path("linkage.json"),
) -> None:
    """At the coordinator: find cross-centre duplicates from the centres' keyed hashes."""
    from oncorwe import pipeline

    result = pipeline.link([(str(p), _read_json(p, "tokens")) for p in tokens])
    _write_json(result, out)
    merged = sum(len(v) for v in result["centres"].values())
    typer.echo(f"{len(tokens)} centres linked: {merged} record(s) are another centre's patient; send {out} to every centre")


def combine(
    packages: Annotated[list[Path], typer.Argument(help="The centres' site packages.")],
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol file or shipped name.")] = "goldinger2022",
    out: Annotated[Path, typer.Option("--out", help="Report folder (replaced atomically).")] = Path("oncorwe-report"),
    min_centres: Annotated[int | None, typer.Option("--min-centres", help="Override the protocol's minimum number of centres.")] = None,
    min_patients: Annotated[int | None, typer.Option("--min-patients", help="Override the protocol's minimum patients per centre.")] = None,
    shareable: Annotated[bool, typer.Option("--shareable", help="Suppress counts below the protocol's min_cell_count in the report.")] = False,
    cox_rounds: Annotated[Path | None, typer.Option("--cox-rounds", help="Fit the Cox models in rounds through files in this folder (requests out, the centres' answers in).")] = None,
) -> None:
    """At the coordinator: verify the centres' packages and write the pooled report."""
    from oncorwe import pipeline
    from oncorwe.analysis.federated._cox_files import answer_file_name

    written = pipeline.combine_packages(protocol, packages, out, min_centres=min_centres, min_patients=min_patients,
                                        shareable=shareable, cox_rounds=cox_rounds)
    combined = written.combined
    typer.echo(f"{len(combined.centres)} centres, {written.result.info['n_patients']} patients: {written.report_path}")
    rounds = written.cox_rounds
    if rounds is not None and rounds.waiting_round is not None:
        sha = rounds.request_file.name.split(".")[1]
        typer.echo(f"Cox models: {rounds.message}. Send {rounds.request_file} to each of these centres; each answers with")
        options = "".join([f" --protocol {protocol}" if protocol != "goldinger2022" else "",
                           " --linkage LINKAGE.json" if written.result.info["federated"].get("linkage") else ""])
        for centre in rounds.missing_centres:
            typer.echo(f"  {centre}: oncorwe site-export --data STUDY --centre {centre}{options} --cox-request "
                       f"{rounds.request_file.name} --out {answer_file_name(sha, centre)}")
        typer.echo(f"then put the answers in {cox_rounds} and run this combine again.")
    elif rounds is not None:
        typer.echo(f"Cox models: {rounds.message}")
    if combined.exact:
        typer.echo("exact packages: the report equals the pooled analysis; not for release")
    elif "secure_aggregation" in written.result.info["federated"]:
        typer.echo(f"masked packages: only the network's totals were unmasked; {len(combined.approximate)} view(s) "
                   "approximate after disclosure control of those totals (listed in the report)")
    else:
        typer.echo(f"disclosure-controlled packages: {len(combined.approximate)} view(s) approximate (listed in the report)")


def register(app: typer.Typer) -> None:
    app.command("site-export")(site_export)
    app.command("link")(link)
    app.command("combine")(combine)
