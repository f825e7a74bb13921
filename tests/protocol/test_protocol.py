"""The protocol: the shipped flagship file, the analysis contract, clear errors, YAML, init copies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from cli_runner import oncorwe
from oncorwe import protocol
from oncorwe.errors import ProtocolError
from oncorwe.model.schema import EXCLUSION_REASONS


def test_the_flagship_protocol_loads_with_its_published_design() -> None:
    p = protocol.load("goldinger2022")
    assert p.name == "goldinger2022"
    assert p.reference.doi == "10.1016/j.ejca.2021.11.022"
    assert p.reference.published == "goldinger2022_published.toml"
    assert p.calendar.index_start == dt.date(2007, 1, 1) and p.calendar.index_end == dt.date(2017, 12, 31)
    assert p.eligibility.criteria == list(EXCLUSION_REASONS)
    assert p.regimen_class_names == (
        "carboplatin_paclitaxel", "dacarbazine", "temozolomide", "taxane", "fotemustine", "other")
    assert (p.lines.regimen_window_days, p.lines.max_gap_days) == (28, 120)
    assert (p.response.confirmation, p.response.confirmation_min_days, p.response.sd_min_days) == (False, 28, 42)
    assert p.exposure.progression_window_days == 90
    assert p.endpoints.pfs_censoring == "last_evaluable_assessment"


def test_the_analysis_section_has_the_agreed_fields() -> None:
    a = protocol.load("goldinger2022").analysis
    assert isinstance(a, protocol.AnalysisSpec)
    assert a.km_splits == ["regimen_class", "responder", "prior_anti_pd1"]
    assert a.survival_rates_months == [6.0, 12.0]
    assert a.landmark_weeks == 12
    assert a.response_by == ["regimen_class", "prior_ici_class"]
    assert a.cox_covariates == ["age_years", "sex", "ecog", "ldh_elevated", "m1c_or_worse", "brain_metastases",
                                "braf_v600", "prior_ici_class", "regimen_class"]
    assert a.cox_reference == {"regimen_class": "dacarbazine", "prior_ici_class": "anti_ctla4", "sex": "female"}
    assert (a.min_cell_count, a.time_unit, a.table1_by) == (5, "months", "regimen_class")
    assert protocol.AnalysisSpec() == a  # the file states the defaults


def test_the_published_figures_file_sits_beside_the_protocol() -> None:
    from importlib import resources

    folder = resources.files("oncorwe.protocol") / "studies"
    assert (folder / protocol.load("goldinger2022").reference.published).is_file()  # type: ignore[operator]


def test_protocols_are_frozen() -> None:
    p = protocol.load("goldinger2022")
    with pytest.raises(Exception, match="frozen"):
        p.name = "other"  # type: ignore[misc]


def problems(text: str, fmt: str = "toml") -> list[str]:
    with pytest.raises(ProtocolError) as info:
        protocol.parse(text, fmt=fmt, origin="study.toml")
    return list(info.value.problems)


MINIMAL = '''name = "s"
title = "t"
[reference]
citation = "c"
[[regimen_classes]]
name = "dacarbazine"
label = "Dacarbazine"
all_of = [["dacarbazine"]]
'''


def test_a_minimal_protocol_takes_the_defaults() -> None:
    p = protocol.parse(MINIMAL)
    assert p.lines.substitutions == [["carboplatin", "cisplatin"], ["nab-paclitaxel", "paclitaxel"]]
    assert p.regimen_class_names == ("dacarbazine", "other")


def test_every_problem_is_reported_with_its_key_and_what_is_allowed() -> None:
    text = "surprise = 1\n" + MINIMAL + '''[response]
confirmation = "maybe"
sd_min_days = -1
[population]
stages = ["V"]
[eligibility]
criteria = ["no_chemotherapy", "no_chemotherapy"]
[endpoints]
pfs_censoring = "whenever"
'''
    found = problems(text)
    assert len(found) == 6, found
    joined = "\n".join(found)
    assert "study.toml: surprise: unknown key" in joined
    assert "response.confirmation:" in joined and "'maybe'" in joined
    assert "response.sd_min_days: Input should be greater than or equal to 0" in joined
    assert "population.stages.0: Input should be 'IV', 'III_unresectable', 'III', 'II' or 'I'" in joined
    assert "criteria listed twice: no_chemotherapy" in joined
    assert "endpoints.pfs_censoring: Input should be 'last_evaluable_assessment' or 'last_contact'" in joined


def test_regimen_and_line_rules_are_checked() -> None:
    found = "\n".join(problems(MINIMAL.replace('all_of = [["dacarbazine"]]', 'all_of = [["Dacarbazine"]]')
                               + '[lines]\nsubstitutions = [["carboplatin"]]\n'))
    assert "regimen_classes.0.all_of" in found and "lower-case" in found
    assert "lines.substitutions" in found and "at least two" in found
    twice = MINIMAL + '[[regimen_classes]]\nname = "dacarbazine"\nlabel = "again"\nall_of = [["x"]]\n'
    assert any("names listed twice: dacarbazine" in p for p in problems(twice))
    fallback = MINIMAL.replace('name = "dacarbazine"', 'name = "other"')
    assert any("fallback" in p for p in problems(fallback))


def test_missing_keys_bad_syntax_and_unknown_names() -> None:
    assert any("reference: required key is missing" in p for p in problems('name = "s"\ntitle = "t"\n'))
    assert any("not valid TOML" in p for p in problems("name = \n"))
    with pytest.raises(ProtocolError, match=r"unknown protocol 'nope'.*goldinger2022"):
        protocol.load("nope")
    with pytest.raises(ProtocolError, match="protocol file not found"):
        protocol.load("missing/study.toml")
    with pytest.raises(ProtocolError, match="allowed: toml, yaml, yml"):
        protocol.parse(MINIMAL, fmt="json")
    assert isinstance(ProtocolError("x"), ValueError)


def test_yaml_and_toml_give_the_same_protocol(tmp_path: Path) -> None:
    p = protocol.load("goldinger2022")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(p.to_dict()), encoding="utf-8")
    assert protocol.load(path) == p
    assert any("a protocol must be a mapping" in x for x in problems("- just\n- a list\n", fmt="yaml"))


def test_init_writes_a_commented_copy_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert oncorwe(monkeypatch, "init", "my-study", "--out", str(tmp_path)) == 0
    path = tmp_path / "my-study.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count("\n#") > 20  # the comments are kept
    copy = protocol.load(path)
    assert copy.name == "my-study" and copy.reference.published is None
    assert copy.model_dump(exclude={"name", "reference"}) == protocol.load("goldinger2022").model_dump(
        exclude={"name", "reference"})
    capsys.readouterr()
    assert oncorwe(monkeypatch, "init", "my-study", "--out", str(tmp_path)) == 2
    assert "already exists" in capsys.readouterr().err
    assert oncorwe(monkeypatch, "init", "bad name", "--out", str(tmp_path)) == 2
    assert "NAME 'bad name'" in capsys.readouterr().err


def _with_labels(tmp_path: Path, labels: str) -> Path:
    from importlib import resources

    text = (resources.files("oncorwe.protocol") / "studies" / "goldinger2022.toml").read_text(encoding="utf-8")
    marker = '  "chemotherapy_outside_window",\n]\n'
    assert text.count(marker) == 1
    path = tmp_path / "labelled.toml"
    path.write_text(text.replace(marker, marker + "[eligibility.labels]\n" + labels), encoding="utf-8")
    return path


def test_criterion_labels_are_read_and_recorded(tmp_path: Path) -> None:
    p = protocol.load(_with_labels(tmp_path, 'source_records = "Patients screened"\n'
                                             'no_chemotherapy = "No chemotherapy line recorded"\n'))
    assert p.eligibility.labels == {"source_records": "Patients screened",
                                    "no_chemotherapy": "No chemotherapy line recorded"}
    assert p.to_dict()["eligibility"]["labels"] == dict(p.eligibility.labels)
    # without labels the record is as it was before labels existed
    assert "labels" not in protocol.load("goldinger2022").to_dict()["eligibility"]
    assert "labels" not in protocol.load("liu2019").to_dict()["eligibility"]


@pytest.mark.parametrize(("labels", "message"), [
    ('no_chemo = "typo"\n', "no_chemo"),
    ('primary_site_excluded = "Uveal primary"\n', "primary_site_excluded not among the criteria"),
    ('no_chemotherapy = "  "\n', "empty wording for no_chemotherapy"),
])
def test_bad_criterion_labels_are_named(tmp_path: Path, labels: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.load(_with_labels(tmp_path, labels))
