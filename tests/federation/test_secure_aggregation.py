"""Secure aggregation (``analysis.federated._secure``) on the 24 centres of the synthetic study.

Each centre's counts over the cell universe are masked with pairwise X25519 masks; the coordinator
adds the masked vectors and gets the network's totals, to which disclosure control applies. The
tests check the arithmetic (the masks cancel exactly), what one vector reveals (nothing that
resembles its counts), the result (the binning-only pooled table, except where the network's own
cells are small), and the refusals (a missing, duplicated or changed package).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.cli_runner import oncorwe

from oncorwe import analysis, pipeline, protocol
from oncorwe.analysis import CountViews, from_views, sum_counts
from oncorwe.analysis.federated import (
    CellUniverse,
    Disclosure,
    SecurePackage,
    SitePackage,
    build_package,
    build_secure_package,
    combine,
    combine_secure,
    count_vector,
    make_key_pair,
    network_totals,
    read_roster,
)
from oncorwe.analysis.federated._combine import _view_schema
from oncorwe.analysis.federated._disclosure import control_view
from oncorwe.analysis.federated._package import canonical_json
from oncorwe.analysis.federated._universe import own_flow
from oncorwe.errors import InputError


def _disclosure(flagship: protocol.Protocol, min_cell_count: int | None = None) -> Disclosure:
    spec = flagship.federation
    k = spec.min_cell_count if min_cell_count is None else min_cell_count
    return Disclosure(k, spec.time_bin_days, {"age_years": spec.default_value_bin})


@pytest.fixture(scope="module")
def keys(centres: list[str], flagship: protocol.Protocol) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {c: make_key_pair(c, flagship) for c in centres}


def _secure(sites: dict[str, pipeline.Derived], flagship: protocol.Protocol, keys: dict[str, Any],
            disclosure: Disclosure, linkage: dict[str, Any]) -> list[SecurePackage]:
    roster = read_roster([(c, public) for c, (public, _private) in keys.items()], flagship)
    return [build_secure_package(site.endpoints.analysis_table, flagship, centre_id=c, disclosure=disclosure,
                                 roster=roster, private_key=keys[c][1], attrition=site.cohort.attrition,
                                 reconciliation=site.reconciliation, linkage_sha256=pipeline._json_sha256(linkage))
            for c, site in sites.items()]


@pytest.fixture(scope="module")
def secure(sites: dict[str, pipeline.Derived], flagship: protocol.Protocol, keys: dict[str, Any],
           linkage: dict[str, Any]) -> list[SecurePackage]:
    return _secure(sites, flagship, keys, _disclosure(flagship), linkage)


@pytest.fixture(scope="module")
def binned(sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
           linkage: dict[str, Any]) -> list[SitePackage]:
    """Plain packages binned as the secure ones are, nothing suppressed: their sum is the network's
    binned counts."""
    return [build_package(site.endpoints.analysis_table, flagship, centre_id=c,
                          disclosure=_disclosure(flagship, 0), attrition=site.cohort.attrition,
                          reconciliation=site.reconciliation,
                          quarantine_summary=pipeline.quarantine_summary(site.quarantine),
                          linkage_sha256=pipeline._json_sha256(linkage)) for c, site in sites.items()]


# --- the arithmetic ---------------------------------------------------------------------------------


def test_the_masked_sum_is_the_sum_of_the_centres_counts_exactly(
        secure: list[SecurePackage], binned: list[SitePackage], sites: dict[str, pipeline.Derived],
        flagship: protocol.Protocol) -> None:
    total, universe = network_totals(secure, flagship)
    plain = np.zeros(universe.size, dtype=np.uint64)
    for centre, site in sites.items():
        plain += count_vector(universe, site.endpoints.analysis_table, flagship, centre_id=centre,
                              attrition=site.cohort.attrition, reconciliation=site.reconciliation)
    assert np.array_equal(total, plain)
    # and cell by cell, the network's views are the binned packages' rows added up
    schema = _view_schema(flagship)
    for cells in universe.views:
        expected = _in_universe(sum_counts([p.views[cells.columns].rows for p in binned]), flagship)
        got = universe.view_rows(total, cells, schema)
        types = {c: schema[c] for c in cells.columns}
        assert_frame_equal(expected.cast(types), got.cast(types)), cells.columns  # type: ignore[arg-type]
    flow = [own_flow(site.cohort.attrition, c) for c, site in sites.items()]
    n = sum(p.n_patients for p in secure)
    last = universe.flow_offset + 3 * (len(universe.flow_steps) - 1) + 2
    assert int(total[last]) == n == sum(int(f["n_after"][-1]) for f in flow)


def test_one_centres_masked_vector_is_unrelated_to_its_counts(
        secure: list[SecurePackage], sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
        keys: dict[str, Any], linkage: dict[str, Any]) -> None:
    package = secure[0]
    site = sites[package.centre_id]
    universe = CellUniverse.of(flagship, package.roster.ids, _disclosure(flagship), package.flow_steps)
    counts = count_vector(universe, site.endpoints.analysis_table, flagship, centre_id=package.centre_id,
                          attrition=site.cohort.attrition, reconciliation=site.reconciliation)
    assert np.count_nonzero(counts) < 0.01 * counts.size  # the counts are almost all zero ...
    assert np.all(package.masked != counts)  # ... the masked vector differs in every cell
    top_bit = float(np.mean(package.masked >= np.uint64(2**63)))
    assert 0.49 < top_bit < 0.51  # uniform-looking: half of the cells have the top bit set
    low_bits = np.bincount((package.masked & np.uint64(0xFF)).astype(np.int64), minlength=256)
    assert low_bits.min() > 0.8 * package.masked.size / 256  # every low byte about equally often
    # other keys: another vector in every cell, for the same counts
    other_keys = {c: make_key_pair(c, flagship) for c in keys}
    again = _secure({package.centre_id: site}, flagship, other_keys, _disclosure(flagship), linkage)[0]
    assert np.all(again.masked != package.masked)
    # the same keys: the same package, byte for byte (deterministic given its inputs)
    same = _secure({package.centre_id: site}, flagship, keys, _disclosure(flagship), linkage)[0]
    assert same.content_sha256 == package.content_sha256


# --- the result ---------------------------------------------------------------------------------------


def test_secure_combine_without_suppression_is_the_binned_pooled_result(
        sites: dict[str, pipeline.Derived], flagship: protocol.Protocol, keys: dict[str, Any],
        linkage: dict[str, Any], binned: list[SitePackage]) -> None:
    unsuppressed = _secure(sites, flagship, keys, _disclosure(flagship, 0), linkage)
    got = combine_secure(unsuppressed, flagship).result
    expected = combine(binned, flagship).result
    for name in analysis.TABLE_NAMES:
        if name in ("attrition", "reconciliation", "quarantine_summary"):
            continue  # per centre in plain packages; the network's totals only in masked ones
        want, have = expected.tables[name], got.tables[name]
        if name == "regimens":  # a regimen of more ingredients than the universe holds has no cell
            want = _in_universe(want, flagship).drop("percent")
            have = have.drop("percent")
        assert_frame_equal(want, have, check_dtypes=False), name


def _in_universe(rows: pl.DataFrame, flagship: protocol.Protocol) -> pl.DataFrame:
    """The rows whose regimen the cell universe holds (at most ``max_regimen_ingredients``
    ingredients; the synthetic study has one patient of the 'other' class given more)."""
    if "regimen_ingredients" not in rows.columns:
        return rows
    most = flagship.federation.max_regimen_ingredients
    return rows.filter(pl.col("regimen_ingredients").is_null()
                       | (pl.col("regimen_ingredients").str.count_matches(r"\+", literal=False) < most))


def test_secure_combine_with_the_defaults_is_the_pooled_table_but_where_the_network_is_small(
        secure: list[SecurePackage], binned: list[SitePackage], flagship: protocol.Protocol,
        sites: dict[str, pipeline.Derived], linkage: dict[str, Any]) -> None:
    combined = combine_secure(secure, flagship)
    got = combined.result.tables["published"]
    # the same as disclosure control applied to the pooled (binned) counts, computed here apart
    k = flagship.federation.min_cell_count
    pooled_counts = {key: sum_counts([p.views[key].rows for p in binned]) for key in analysis.view_keys(flagship)}
    controlled = {key: control_view(rows, Disclosure(k, 0, {})) for key, rows in pooled_counts.items()}
    from oncorwe.analysis.federated._combine import _cox_not_computed

    expected = from_views(CountViews({key: c.rows for key, c in controlled.items()}, _view_schema(flagship)),
                          flagship, cox=_cox_not_computed(flagship)).tables["published"]
    assert_frame_equal(expected.select("key", "reproduced_value"), got.select("key", "reproduced_value"))
    # every figure the exact packages estimate is estimable (per-centre suppression lost 11 of them)
    exact = combine([build_package(site.endpoints.analysis_table, flagship, centre_id=c,
                                   disclosure=Disclosure(0, 0, {}), attrition=site.cohort.attrition,
                                   reconciliation=site.reconciliation,
                                   quarantine_summary=pipeline.quarantine_summary(site.quarantine),
                                   linkage_sha256=pipeline._json_sha256(linkage))
                     for c, site in sites.items()], flagship).result.tables["published"]
    joined = exact.select("key", pl.col("reproduced_value").alias("exact")).join(
        got.select("key", "reproduced_value"), on="key")
    assert joined.filter(pl.col("exact").is_not_null() & pl.col("reproduced_value").is_null()).height == 0
    # a view the network's control left alone is exactly the binned pooled view
    for key, control in controlled.items():
        if not control.suppressed_cells and not control.truncated_patients:
            types = {c: _view_schema(flagship)[c] for c in key}
            assert_frame_equal(pooled_counts[key].cast(types), control.rows.cast(types))  # type: ignore[arg-type]
    # and no cell the coordinator publishes is small
    for key, control in controlled.items():
        if control.rows.height and not any(c in key for c in ("pfs_event", "os_event")):
            assert int(control.rows["n_patients"].min()) >= k, key  # type: ignore[arg-type]
    flow = combined.result.tables["attrition"]
    excluded = flow["n_excluded"].drop_nulls()
    assert not ((excluded > 0) & (excluded < k)).any()
    assert flow["centre_id"].null_count() == flow.height  # the network's flow only
    info = combined.result.info["federated"]
    assert info["secure_aggregation"]["roster_sha256"] == secure[0].roster.sha256


# --- the files and the refusals -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_round(tmp_path_factory: pytest.TempPathFactory, synthetic_study: Path) -> dict[str, Path]:
    """Three centres through the command line: keys, then masked packages."""
    monkeypatch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("secure-cli")
    chosen = ("at-graz", "at-wien", "ch-basel")
    for centre in chosen:
        assert oncorwe(monkeypatch, "site-export", "--secure-keys", "--centre", centre, "--out",
                       str(folder / f"{centre}.pub.json"), "--key-file", str(folder / f"{centre}.key")) == 0
    peers = [str(folder / f"{c}.pub.json") for c in chosen]
    files = {}
    for centre in chosen:
        files[centre] = folder / f"{centre}.json"
        assert oncorwe(monkeypatch, "site-export", "--secure", "--data", str(synthetic_study), "--centre", centre,
                       "--peers", *peers, "--key-file", str(folder / f"{centre}.key"),
                       "--out", str(files[centre])) == 0
    monkeypatch.undo()
    return files


def _combine_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], out: Path,
                 files: list[Path]) -> tuple[int, str]:
    code = oncorwe(monkeypatch, "combine", *map(str, files), "--out", str(out))
    return code, capsys.readouterr().err


def test_the_command_line_round_gives_a_report_of_the_network(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        cli_round: dict[str, Path], flagship: protocol.Protocol) -> None:
    code = oncorwe(monkeypatch, "combine", *map(str, cli_round.values()), "--out", str(tmp_path / "report"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "masked packages: only the network's totals were unmasked" in captured.out
    manifest = json.loads((tmp_path / "report" / "manifest.json").read_text(encoding="utf-8"))
    assert "secure_aggregation" in manifest["provenance"]["federated"]
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "Secure aggregation: each centre sent its counts over the same" in html
    assert "disclosure-controlled</td>" not in html and "masked</td>" in html
    centre_table = pl.read_csv(tmp_path / "report" / "tables" / "attrition.csv")
    assert centre_table["centre_id"].null_count() == centre_table.height
    assert oncorwe(monkeypatch, "site-export", "--inspect", str(cli_round["at-graz"])) == 0
    printed = capsys.readouterr().out
    assert "Masked site package of centre at-graz" in printed and "uniformly random" in printed


def test_a_key_file_is_never_overwritten(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    key = tmp_path / "c.key"
    key.write_text("the key of a round in progress", encoding="utf-8")
    code = oncorwe(monkeypatch, "site-export", "--secure-keys", "--centre", "at-graz", "--out",
                   str(tmp_path / "c.pub.json"), "--key-file", str(key))
    assert code == 2 and "exists" in capsys.readouterr().err
    assert key.read_text(encoding="utf-8") == "the key of a round in progress"


def _resealed(document: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in document.items() if k != "content_sha256"}
    return {**body, "content_sha256": hashlib.sha256(canonical_json(body)).hexdigest()}


def _changed_cell(document: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(document["secure"]["masked"]))
    raw[8 * 5] ^= 1  # one bit of one masked cell
    document["secure"]["masked"] = base64.b64encode(bytes(raw)).decode("ascii")
    return document


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "no package from ch-basel of the roster"),
    ("duplicated", "two packages for the same centre"),
    ("tampered", "does not match its checksum"),
    ("tampered and resealed", "not counts"),
    ("plain among masked", "plain package among masked"),
])
def test_a_missing_duplicated_or_changed_package_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        cli_round: dict[str, Path], sites: dict[str, pipeline.Derived], flagship: protocol.Protocol,
        case: str, message: str) -> None:
    files = list(cli_round.values())
    if case == "missing":
        files = files[:2]
    elif case == "duplicated":
        copy = tmp_path / "again.json"
        shutil.copy(files[0], copy)
        files = [*files, copy]
    elif case.startswith("tampered"):
        document = json.loads(files[1].read_text(encoding="utf-8"))
        document = _changed_cell(document)
        if case.endswith("resealed"):
            document = _resealed(document)
        bad = tmp_path / files[1].name
        bad.write_text(json.dumps(document), encoding="utf-8")
        files = [files[0], bad, files[2]]
    else:
        centre = "ch-basel"
        plain = build_package(sites[centre].endpoints.analysis_table, flagship, centre_id=centre,
                              disclosure=_disclosure(flagship), attrition=sites[centre].cohort.attrition,
                              reconciliation=sites[centre].reconciliation,
                              quarantine_summary=pipeline.quarantine_summary(sites[centre].quarantine))
        files = [*files[:2], plain.write(tmp_path / "plain.json")]
    code, err = _combine_cli(monkeypatch, capsys, tmp_path / "out", files)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_package_masked_with_another_roster_is_refused(cli_round: dict[str, Path], flagship: protocol.Protocol,
                                                         sites: dict[str, pipeline.Derived]) -> None:
    packages = [SecurePackage.from_json(json.loads(p.read_text(encoding="utf-8"))) for p in cli_round.values()]
    centre = packages[0].centre_id
    others = {c: make_key_pair(c, flagship) for c in packages[0].roster.ids}
    roster = read_roster([(c, public) for c, (public, _p) in others.items()], flagship)
    site = sites[centre]
    odd = build_secure_package(site.endpoints.analysis_table, flagship, centre_id=centre,
                               disclosure=_disclosure(flagship), roster=roster, private_key=others[centre][1],
                               attrition=site.cohort.attrition, reconciliation=site.reconciliation)
    with pytest.raises(InputError, match="another roster"):
        network_totals([odd, *packages[1:]], flagship)
