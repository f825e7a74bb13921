"""The flagship generator's design file: read through a validated loader, consistent with the protocol."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import pytest

from oncorwe import protocol
from oncorwe.errors import InputError
from oncorwe.synth._design import choose, design_from, study_design

STUDY = "goldinger2022"
FILE = f"{STUDY}_generator.toml"


def _raw() -> dict[str, Any]:
    with resources.files("oncorwe.synth.data").joinpath(FILE).open("rb") as handle:
        return tomllib.load(handle)


def test_the_roles_resolve_to_the_protocols_classes() -> None:
    d = study_design(STUDY)
    p = protocol.load(STUDY)
    assert d.index_class == p.index.drug_class
    assert {d.drug_class[x] for x in d.subsequent.anti_ctla4} == {"anti_ctla4"}
    assert {d.drug_class[x] for x in d.prior_anti_ctla4} == {"anti_ctla4"}
    assert {d.drug_class[x] for regimen, _ in d.prior_anti_pd1 for x in regimen} == {"anti_pd1"}
    assert {d.drug_class[x] for x in d.partners["targeted"].split("+")} == {"braf_mek"}
    assert set(d.subsequent.names.values()) <= {c.name for c in p.subsequent_therapy.classes} | {p.subsequent_therapy.otherwise}
    assert [r.name for r in d.regimen_classes] == [c.name for c in p.regimen_classes]
    assert sorted(d.reasons.values()) == sorted(c.id for c in p.criteria)
    assert d.stage_values == {"IV", "III_unresectable"}
    # the substitution groups of the protocol: members share their representative
    assert d.substitute["cisplatin"] == d.substitute["carboplatin"]
    assert d.substitute["paclitaxel"] != d.substitute["carboplatin"]


def test_choose_by_cumulative_share() -> None:
    options = ((("a",), 0.25), (("b",), 0.5), (("c",), 0.25))
    assert [choose(options, u) for u in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)] == [
        ("a",), ("a",), ("b",), ("b",), ("c",), ("c",)]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("files", "crf_workbook"), "missing key 'files.crf_workbook'"),
        (("subsequent", "names", "anti_pd1"), "missing key 'subsequent.names.anti_pd1'"),
        (("omop", "local_concepts"), "missing key 'omop.local_concepts'"),
        (("prior_ici",), "missing key 'prior_ici'"),
        (("protocol",), "missing key 'protocol'"),
    ],
)
def test_a_missing_key_names_the_file_and_the_key(path: tuple[str, ...], message: str) -> None:
    data = copy.deepcopy(_raw())
    table = data
    for key in path[:-1]:
        table = table[key]
    del table[path[-1]]
    with pytest.raises(InputError, match=f"^{FILE}: {message}"):
        design_from(STUDY, data, FILE)


def test_a_wrong_value_names_the_file_and_the_key() -> None:
    data = copy.deepcopy(_raw())
    data["subsequent"]["targeted"] = [["dabrafenib+aspirin", 0.8], ["vemurafenib", 0.2]]
    with pytest.raises(InputError, match=rf"^{FILE}: subsequent.targeted: aspirin not an ingredient"):
        design_from(STUDY, data, FILE)
    data = copy.deepcopy(_raw())
    data["omop"]["default_cycle_days"] = "21"
    with pytest.raises(InputError, match=rf"^{FILE}: omop.default_cycle_days: expected int"):
        design_from(STUDY, data, FILE)
    data = copy.deepcopy(_raw())
    data["subsequent"]["names"]["anti_pd1"] = "anti_pd1_therapy"
    with pytest.raises(InputError, match=rf"^{FILE}: subsequent.names: anti_pd1_therapy not a subsequent-therapy class"):
        design_from(STUDY, data, FILE)


def test_an_unknown_study_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no generator design"):
        study_design("no_such_study")
