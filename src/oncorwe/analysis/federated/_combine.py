"""The coordinator: verify the centres' site packages and compute the pooled result tables.

Every view's counted rows are added up over the centres and the protocol's analyses run on them
through the same code as the pooled analysis (``analysis.from_views`` on ``analysis.CountViews``):
with exact packages the tables equal the pooled run's. The flow (attrition), the reconciliation and
the quarantine summary are the centres' rows, with the pooled flow summed over centres.

The Cox model needs each patient's covariates together, which never leave a centre; it is fitted by
distributed Newton-Raphson over rounds with the centres (``cox`` given by the caller, e.g. the
vantage6 algorithm, or the request and answer files of ``oncorwe combine --cox-rounds``,
``analysis.federated._cox_files``). Packages alone carry no rounds: without ``cox`` the Cox tables
say so instead of holding an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from oncorwe.analysis import (
    AnalysisResult,
    CountViews,
    PublishedFigures,
    from_views,
    sum_counts,
    view_keys,
)
from oncorwe.analysis._cox import COX_MODEL_SCHEMA, COX_SCHEMA, PH_SCHEMA
from oncorwe.analysis._survival import ENDPOINTS
from oncorwe.analysis._views import COUNT_COLUMN, DERIVED_COLUMNS
from oncorwe.analysis.federated._disclosure import Disclosure, control_view
from oncorwe.analysis.federated._package import SitePackage, _control_flow, protocol_sha256
from oncorwe.analysis.federated._secure import (
    SecurePackage,
    check_round,
    fit_counts,
    flow_table,
    network_totals,
    reconciliation_table,
    view_counts,
)
from oncorwe.errors import InputError
from oncorwe.protocol import Protocol

__all__ = ["COX_NOT_COMPUTED", "CombineRules", "Combined", "combine", "combine_secure"]

COX_NOT_COMPUTED = (
    "not computed from site packages: the Cox model needs each patient's covariates together, which "
    "stay at the centres; it is fitted by distributed Newton-Raphson in rounds with the centres "
    "(the vantage6 algorithm, docs/federation.md)"
)


@dataclass(frozen=True)
class CombineRules:
    """What combine refuses (defaults from the protocol's ``[federation]``)."""

    min_centres: int
    min_patients_per_centre: int

    @classmethod
    def of(cls, protocol: Protocol) -> CombineRules:
        return cls(protocol.federation.min_centres, protocol.federation.min_patients_per_centre)


@dataclass(frozen=True)
class Combined:
    """The pooled analysis result and what it was made from."""

    result: AnalysisResult
    centres: tuple[Mapping[str, Any], ...]
    exact: bool
    #: what is approximate because of disclosure control: (view or table, what was done)
    approximate: tuple[Mapping[str, str], ...] = field(default_factory=tuple)


def combine(
    packages: Sequence[SitePackage],
    protocol: Protocol,
    *,
    rules: CombineRules | None = None,
    published: PublishedFigures | str | Path | None = None,
    cox: Mapping[str, pl.DataFrame] | None = None,
) -> Combined:
    """The protocol's result tables from the centres' packages (see the module docstring).

    Raises
    ------
    InputError : a package made with another protocol, a centre twice, fewer centres than the rules
        allow, a centre below the minimum patients, a view missing from a package.
    """
    rules = rules or CombineRules.of(protocol)
    _verify(packages, protocol, rules)
    keys = view_keys(protocol)
    counts = {key: sum_counts([p.views[key].rows for p in packages])
              if any(p.views[key].rows.height for p in packages) else packages[0].views[key].rows
              for key in keys}
    exact = all(p.exact for p in packages)
    return _analyse(
        counts, protocol, packages=packages, exact=exact, approximate=_approximate(packages, keys, protocol),
        note=("exact packages: not for release" if exact else
              "disclosure-controlled packages: the estimates listed as approximate differ from the pooled data's"),
        attrition=_pooled_flow(packages), reconciliation=_stack([p.reconciliation for p in packages]),
        quarantine_summary=_stack([p.quarantine_summary for p in packages]), published=published, cox=cox)


def combine_secure(
    packages: Sequence[SecurePackage],
    protocol: Protocol,
    *,
    rules: CombineRules | None = None,
    published: PublishedFigures | str | Path | None = None,
    cox: Mapping[str, pl.DataFrame] | None = None,
) -> Combined:
    """The protocol's result tables from the centres' masked packages (secure aggregation,
    ``_secure``): the masked vectors are added up into the network's totals, and disclosure control
    (small cells, curve tails, small flow steps; ``min_cell_count`` of the packages' settings) is
    applied to those totals, never to one centre's cells.

    Raises
    ------
    InputError : as :func:`combine`, and a roster centre without a package, packages masked with
        different rosters or universes, sums that are not counts.
    """
    rules = rules or CombineRules.of(protocol)
    check_round(packages)  # a missing centre first: the round cannot be unmasked whatever the rules
    _verify_headers(packages, protocol, rules)
    total, universe = network_totals(packages, protocol)
    schema = _view_schema(protocol)
    k = int(packages[0].disclosure.get("min_cell_count", 0))
    n = sum(p.n_patients for p in packages)
    fits = fit_counts(total, universe)
    counts: dict[tuple[str, ...], pl.DataFrame] = {}
    approximate = []
    bin_days = int(packages[0].disclosure.get("time_bin_days", 0))
    for key, rows in view_counts(total, universe, schema).items():
        # the centres binned; here only the network's small cells and thin tails
        controlled = control_view(rows, Disclosure(k, 0, {}))
        counts[key] = controlled.rows
        done = []
        lost = n - (int(controlled.rows[COUNT_COLUMN].sum()) if controlled.rows.height else 0)
        moved, left_out = fits[key]
        if controlled.suppressed_cells:
            done.append(f"{controlled.suppressed_cells} small cell(s) of the network withheld or generalised")
        if lost:
            done.append(f"{lost} of {n} patients ({100.0 * lost / n:.1f}%) not counted")
        if any(c.endswith(("_months", "_weeks")) or c == "response_by_landmark" for c in key):
            done.append(f"times later by less than {bin_days} days")
        elif any(d.kind == "bins" for cells in universe.views if cells.columns == key for d in cells.domains):
            done.append("values binned")
        if controlled.truncated_patients:
            done.append("curve tails censored where few of the network remained at risk")
        if moved:
            done.append(f"{moved} patient(s) set to the end of the cell universe (horizon or value range)")
        if left_out:
            done.append(f"{left_out} patient(s) outside the cell universe left out")
        if done:
            approximate.append({"view": ", ".join(key), "estimates": _reads(key, protocol), "control": "; ".join(done)})
    flow = flow_table(total, universe)
    if k > 0 and flow.height:
        flow = _control_flow(flow, k)
        if flow["n_excluded"].null_count():
            approximate.append({"view": "attrition", "estimates": "patient flow",
                                "control": "small exclusion counts of the network withheld"})
    return _analyse(
        counts, protocol, packages=packages, exact=False, approximate=tuple(approximate),
        note=("secure aggregation: only the network's totals were unmasked; disclosure control applied to them"),
        attrition=flow, reconciliation=reconciliation_table(total, universe),
        quarantine_summary=pl.DataFrame(), published=published, cox=cox,
        secure={"roster_sha256": packages[0].roster.sha256, "cells": universe.size,
                "quarantine_summary": "kept at the centres (its fields and reasons have no fixed cells)"})


def _analyse(counts: Mapping[tuple[str, ...], pl.DataFrame], protocol: Protocol, *,
             packages: Sequence[SitePackage] | Sequence[SecurePackage], exact: bool,
             approximate: tuple[Mapping[str, str], ...], note: str, attrition: pl.DataFrame,
             reconciliation: pl.DataFrame, quarantine_summary: pl.DataFrame,
             published: PublishedFigures | str | Path | None, cox: Mapping[str, pl.DataFrame] | None,
             secure: Mapping[str, Any] | None = None) -> Combined:
    """The one analysis path (``analysis.from_views``) on the combined counts, with the record of
    what they were made from."""
    views = CountViews(counts, _view_schema(protocol))
    cox_bin_days = max((int(p.disclosure.get("time_bin_days", 0) or 0) for p in packages), default=0)
    if cox is not None and cox_bin_days:  # the centres answered the rounds on their binned times
        approximate = (*approximate, {"view": "Cox rounds", "estimates": "Cox hazard ratios and the PH test",
                                      "control": f"event times binned to {cox_bin_days} days at the centres"})
    centres = tuple({"centre_id": p.centre_id, "n_patients": p.n_patients, "content_sha256": p.content_sha256,
                     "exact": p.exact, "oncorwe_version": p.oncorwe_version} for p in packages)
    federated: dict[str, Any] = {
        "centres": [dict(c) for c in centres],
        "exact": exact,
        "note": note,
        "approximate": [dict(a) for a in approximate],
        "linkage": packages[0].linkage_sha256,
        "cox": "fitted by distributed Newton-Raphson" if cox is not None else COX_NOT_COMPUTED,
    }
    if secure is not None:
        federated["secure_aggregation"] = dict(secure)
    result = from_views(
        views, protocol, cox=cox if cox is not None else _cox_not_computed(protocol),
        attrition=attrition, reconciliation=reconciliation, quarantine_summary=quarantine_summary,
        published=published, info={"federated": federated},
    )
    return Combined(result=result, centres=centres, exact=exact, approximate=approximate)


def _verify_headers(packages: Sequence[SitePackage] | Sequence[SecurePackage], protocol: Protocol,
                    rules: CombineRules) -> None:
    """What every package's header must satisfy: the protocol, one package per centre, the minimum
    patients and centres, one linkage."""
    if not packages:
        raise InputError("combine: no site packages given")
    expected = protocol_sha256(protocol)
    seen: dict[str, str] = {}
    for package in packages:
        where = f"centre {package.centre_id}"
        if package.protocol_sha256 != expected:
            raise InputError(f"{where}: package made with another protocol ({package.protocol_name}, sha256 "
                             f"{package.protocol_sha256[:12]}...; the coordinator's {protocol.name} is {expected[:12]}...)")
        if package.centre_id in seen:
            raise InputError(f"{where}: two packages for the same centre (one per centre; checksums "
                             f"{seen[package.centre_id][:12]}... and {package.content_sha256[:12]}...)")
        seen[package.centre_id] = package.content_sha256
        if package.n_patients < rules.min_patients_per_centre:
            raise InputError(f"{where}: {package.n_patients} patients in the analysis set, fewer than the minimum "
                             f"{rules.min_patients_per_centre} (a centre this small is identifiable; --min-patients)")
    linkages = {p.linkage_sha256 for p in packages}
    if len(linkages) > 1:
        odd = next(p for p in packages if p.linkage_sha256 != packages[0].linkage_sha256)
        raise InputError(f"centre {odd.centre_id}: made with another linkage of duplicates than centre "
                         f"{packages[0].centre_id} (every centre applies the same oncorwe link result, or none)")
    if len(packages) < rules.min_centres:
        raise InputError(f"combine: {len(packages)} centre(s), fewer than the minimum {rules.min_centres} (the "
                         "others' aggregates would give a centre's own numbers back; --min-centres)")


def _verify(packages: Sequence[SitePackage], protocol: Protocol, rules: CombineRules) -> None:
    _verify_headers(packages, protocol, rules)
    schema = _view_schema(protocol)
    for package in packages:
        where = f"centre {package.centre_id}"
        missing = [k for k in view_keys(protocol) if k not in package.views]
        if missing:
            raise InputError(f"{where}: the package lacks the view ({', '.join(missing[0])}) the protocol's "
                             "analyses read")
        for key in view_keys(protocol):
            declared = package.views[key].rows.schema
            for column in key:
                got = _kind(declared[column]) if column in declared else "nothing"
                if got != _kind(schema[column]):
                    raise InputError(f"{where}: view ({', '.join(key)}) holds {column} as {got}, "
                                     f"the protocol's analysis table as {_kind(schema[column])}")


def _reads(key: tuple[str, ...], protocol: Protocol) -> str:
    """The estimates a view is read for (what the report names as approximate)."""
    spec = protocol.analysis
    if key == ("best_response",) or (len(key) == 2 and key[1] == "best_response"):
        return "response rates" + (f" by {key[0]}" if len(key) == 2 else "")
    if key[0] in ("pfs_months", "os_months"):
        endpoint = "PFS" if key[0] == "pfs_months" else "OS"
        extra = ", median follow-up" if key == ("os_months", "os_event") else ""
        return f"Kaplan-Meier {endpoint}" + (f" by {key[2]}" if len(key) == 3 else "") + extra
    if key[0] == "os_months" or "response_by_landmark" in key:
        return "OS by response, naive and landmark"
    if key[0] == "subsequent_therapy":
        return "subsequent therapies"
    if key[0] == "regimen_class" and key[-1] == "regimen_ingredients":
        return "regimens"
    if key == ("chemo_duration_weeks",):
        return "duration of chemotherapy"
    if key == ("centre_id",):
        return "patients per centre"
    return f"Table 1: {key[-1]}" + (f" by {spec.table1_by}" if len(key) == 2 else "")


def _kind(dtype: pl.DataType) -> str:
    """A column type as a package writes it (``_package._frame_json``): Boolean, Int64, Float64, String."""
    if dtype == pl.Boolean:
        return "Boolean"
    return "Int64" if dtype.is_integer() else "Float64" if dtype.is_float() else "String"


def _view_schema(protocol: Protocol) -> dict[str, pl.DataType]:
    """Every view column's type: the analysis table's, and the derived columns' (numbers)."""
    return {**protocol.analysis_schema(), **{c: pl.Float64() for c in DERIVED_COLUMNS}}


def _approximate(packages: Sequence[SitePackage], keys: Sequence[tuple[str, ...]],
                 protocol: Protocol | None = None) -> tuple[Mapping[str, str], ...]:
    """Every view disclosure control changed, what was done, and what that cost, measured where the
    packages allow: the patients a view lost (the centres' analysis sets minus the view's count)
    and the largest shift of a time (the bin)."""
    out = []
    total = sum(p.n_patients for p in packages)
    bins = {int(p.disclosure.get("time_bin_days", 0)) for p in packages}
    for key in keys:
        done = []
        withheld = sum(p.views[key].suppressed_cells for p in packages)
        lost = total - sum(p.views[key].n_patients for p in packages)
        if withheld:
            done.append(f"{withheld} small cell(s) withheld or generalised")
        if lost:
            done.append(f"{lost} of {total} patients ({100.0 * lost / total:.1f}%) not counted")
        if any(p.views[key].binned for p in packages):
            times = [c for c in key if c.endswith(("_months", "_weeks")) or c == "response_by_landmark"]
            done.append(f"times later by less than {max(bins)} days" if times else "values binned")
        if any(p.views[key].truncated for p in packages):
            done.append("curve tails censored where few remained at risk")
        if done:
            out.append({"view": ", ".join(key), "estimates": _reads(key, protocol) if protocol else "",
                        "control": "; ".join(done)})
    if any(p.attrition["n_excluded"].null_count() for p in packages if p.attrition.height):
        out.append({"view": "attrition", "estimates": "patient flow", "control": "small exclusion counts withheld"})
    return tuple(out)


def _pooled_flow(packages: Sequence[SitePackage]) -> pl.DataFrame:
    """The centres' flows, and the pooled flow (centre_id null) summed over them, as ``cohort`` lays
    out the attrition table: pooled rows first, then each centre's, in step order."""
    own = _stack([p.attrition for p in packages])
    if not own.height:
        return own
    pooled = (own.group_by(["step", "criterion"], maintain_order=True)
              .agg(*(pl.when(pl.col(c).null_count() == 0).then(pl.col(c).sum()).otherwise(None).alias(c)
                     for c in ("n_before", "n_excluded", "n_after")))
              .with_columns(pl.lit(None, dtype=pl.String).alias("centre_id")))
    pooled = pooled.select(own.columns).cast(own.schema).sort("step")  # type: ignore[arg-type]
    return pl.concat([pooled, own.sort(["centre_id", "step"])])


def _stack(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    present = [f for f in frames if f.width]
    if not present:
        return pl.DataFrame()
    stacked = pl.concat(present, how="diagonal_relaxed")
    keys = [c for c in ("centre_id", "file", "sheet", "field", "reason", "action") if c in stacked.columns]
    return stacked.sort(keys, nulls_last=False) if keys and "step" not in stacked.columns else stacked


def _cox_not_computed(protocol: Protocol) -> dict[str, pl.DataFrame]:
    covariates = ", ".join(protocol.analysis.cox_covariates)
    models = [{"endpoint": endpoint, "covariates": covariates, "n": None, "events": None, "n_missing": None,
               "status": "not computed", "message": COX_NOT_COMPUTED} for endpoint in ENDPOINTS]
    return {"cox_models": pl.DataFrame(models, schema=COX_MODEL_SCHEMA),
            "cox": pl.DataFrame(schema=COX_SCHEMA), "cox_ph_test": pl.DataFrame(schema=PH_SCHEMA)}

