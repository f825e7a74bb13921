"""The protocol: the shipped files, the format, validation before any data is read (issue 13:
one regression test per finding), YAML, init copies."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cli_runner import oncorwe
from oncorwe import protocol
from oncorwe.errors import ProtocolError


def flagship() -> dict[str, Any]:
    return copy.deepcopy(protocol.load("goldinger2022").to_dict())


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        protocol.from_data(data)
    return info.value.problems


def problems(text: str, fmt: str = "toml") -> list[str]:
    with pytest.raises(ProtocolError) as info:
        protocol.parse(text, fmt=fmt)
    return info.value.problems


def test_the_flagship_protocol_states_its_design() -> None:
    p = protocol.load("goldinger2022")
    assert p.criterion_ids == ("duplicate_referral", "not_stage_iv_unresectable", "no_chemotherapy",
                               "no_ici_before_chemotherapy", "no_progression_on_ici", "chemotherapy_outside_window")
    assert p.index.drug_class == "chemotherapy" and p.index.prior_failure is not None
    assert p.index.prior_failure.progression_window_days == 90
    window = p.criteria[-1]
    assert isinstance(window, protocol.IndexDateWithin) and (window.start, window.end) == (
        dt.date(2007, 1, 1), dt.date(2017, 12, 31))
    assert p.regimen_class_names[-1] == "other" and len(p.regimen_classes) == 5
    scope = p.scope()
    assert scope.condition_concept_ids == (141232,) and "melanom" in scope.condition_words
    assert "dacarbazine" in scope.ingredients and 1311409 in scope.ingredient_concept_ids
    schema = p.analysis_schema()
    assert list(schema)[:3] == ["patient_id", "centre_id", "index_date"]
    assert {"m1c_or_worse", "prior_ici_class", "ldh_elevated"} <= set(schema)


def test_liu2019_is_another_protocol_in_the_same_format() -> None:
    p = protocol.load("liu2019")
    assert p.index.prior_failure is None and p.criterion_ids == ("duplicate_referral",)
    assert "braf_v600" not in p.analysis_schema()  # a covariate only the flagship defines


def test_protocols_are_frozen() -> None:
    p = protocol.load("goldinger2022")
    with pytest.raises(ValidationError):
        p.name = "x"  # type: ignore[misc]


def test_nothing_has_a_study_default() -> None:
    data = flagship()
    for section in ("lines", "response", "endpoints", "subsequent_therapy", "condition"):
        del data[section]
    got = problems_of(data)
    for section in ("lines", "response", "endpoints", "subsequent_therapy", "condition"):
        assert f"<data>: {section}: required key is missing" in got


@pytest.mark.parametrize(("key", "value", "message"), [
    (("analysis", "min_cell_count"), True, "analysis.min_cell_count"),  # bool read as 1 would disable suppression
    (("response", "confirmation"), "yes", "response.confirmation"),
    (("index", "prior_failure", "progression_window_days"), 10**9, "progression_window_days"),
    (("index", "prior_failure", "progression_window_days"), 90.0, "progression_window_days"),
    (("analysis", "landmark_weeks"), 5200, "analysis.landmark_weeks"),
    (("analysis", "survival_rates_months"), [-6, 12], "survival_rates_months.0"),
    (("analysis", "survival_rates_months"), [float("inf")], "survival_rates_months.0"),
    (("analysis", "survival_rates_months"), [float("nan")], "survival_rates_months.0"),
    (("lines", "max_gap_days"), False, "lines.max_gap_days"),
])
def test_types_are_strict_and_ranges_checked(key: tuple[str, ...], value: Any, message: str) -> None:
    data = flagship()
    target = data
    for part in key[:-1]:
        target = target[part]
    target[key[-1]] = value
    got = problems_of(data)
    assert len(got) == 1 and message in got[0], got


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["analysis"].update(cox_reference={"regimen_class": "no_such_regimen"}),
     "analysis.cox_reference.regimen_class: 'no_such_regimen' is not a level"),
    (lambda d: d["analysis"]["cox_covariates"].append("albumin"), "analysis.cox_covariates: 'albumin'"),
    (lambda d: d["analysis"]["km_splits"].append("no_split"), "analysis.km_splits: 'no_split'"),
    (lambda d: d["analysis"]["km_splits"].append("age_years"), "'age_years' is not categorical"),
    (lambda d: d["regimen_classes"][0]["all_of"].append(["cisplatinum"]), "'cisplatinum' is not an ingredient"),
    (lambda d: d["drug_classes"]["chemotherapy"]["ingredients"].append("unobtainium"), "'unobtainium' is not in the shipped"),
    (lambda d: d["criteria"][2].update(drug_classes=["chemo"]), "drug class 'chemo' is not defined"),
    (lambda d: d["criteria"][3].update(before=["anti_pd2"]), "drug class 'anti_pd2' is not defined"),
    (lambda d: d["condition"].update(concept_ids=[999999999]), "condition.concept_ids: concept 999999999"),
    (lambda d: d["covariates"]["ecog"].update(concept_ids=[123]), "covariates.ecog.concept_ids: concept 123"),
    (lambda d: d["covariates"]["m1c_or_worse"].update(of="t_stage"), "covariates.m1c_or_worse.of: 't_stage'"),
    (lambda d: d["covariates"]["m1c_or_worse"].update(values=["M9"]), "'M9' is not a category"),
    (lambda d: d["subsequent_therapy"]["groups"].update(any_x=["nope"]), "'nope' is not a subsequent-therapy class"),
    (lambda d: d["index"].update(prior_failure=None), "'progression_on_prior_line' needs [index.prior_failure]"),
])
def test_every_name_is_resolved_before_any_data_is_read(change: Any, message: str) -> None:
    data = flagship()
    change(data)
    got = problems_of(data)
    assert any(message in line for line in got), got


def test_a_covariate_without_a_source_is_refused() -> None:
    data = flagship()
    data["covariates"]["ecog"].update(variable=None, concept_ids=[])
    assert any("covariates.ecog" in line and "needs a source" in line for line in problems_of(data))


def test_all_problems_come_at_once_one_line_each() -> None:
    data = flagship()
    data["analysis"]["cox_reference"] = {"regimen_class": "x", "sex": "y"}
    data["analysis"]["km_splits"].append("no_split")
    got = problems_of(data)
    assert len(got) == 3 and all("\n" not in line for line in got)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../x.toml", "missing.toml"])
def test_published_path_stays_inside_the_protocol_folder(tmp_path: Path, name: str) -> None:
    data = flagship()
    data["reference"]["published"] = name
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"reference\.published"):
        protocol.load(path)


def test_a_published_file_inside_the_folder_is_accepted(tmp_path: Path) -> None:
    data = flagship()
    data["reference"]["published"] = "figures.toml"
    (tmp_path / "figures.toml").write_text("", encoding="utf-8")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    loaded = protocol.load(path)
    assert protocol.published_file(loaded, tmp_path) == (tmp_path / "figures.toml").resolve()


def test_deep_nesting_and_encodings_are_clear_errors(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="nested"):
        protocol.load(deep)
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="nested"):
        protocol.load(deep_yaml)
    text = protocol.shipped_text("goldinger2022")
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes(text.encode("utf-16"))
    with pytest.raises(ProtocolError, match="UTF-16"):
        protocol.load(utf16)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(text.replace("Goldinger", "Göldinger").encode("latin-1"))
    with pytest.raises(ProtocolError, match="not UTF-8"):
        protocol.load(latin)
    (tmp_path / "goldinger2022_published.toml").write_text("", encoding="utf-8")
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert protocol.load(bom).name == "goldinger2022"


def test_cli_exits_2_before_reading_any_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = flagship()
    data["analysis"]["min_cell_count"] = True
    data["analysis"]["landmark_weeks"] = 5200
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    # the data folder does not exist: reading it would be a different error
    code = oncorwe(monkeypatch, "run", "--protocol", str(path), "--data", str(tmp_path / "no-such-folder"),
                   "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert "analysis.min_cell_count" in err and "analysis.landmark_weeks" in err
    assert "Traceback" not in err and "no-such-folder" not in err


def test_unknown_keys_and_syntax_are_named() -> None:
    assert any("unknown key" in line and "populaton" in line for line in problems('populaton = 1\n'))
    assert any("not valid TOML" in line for line in problems("name = \n"))


def test_yaml_and_toml_give_the_same_protocol(tmp_path: Path) -> None:
    p = protocol.load("goldinger2022")
    path = tmp_path / "study.yaml"
    studies = Path(protocol.__file__).parent / "studies"
    (tmp_path / "goldinger2022_published.toml").write_bytes((studies / "goldinger2022_published.toml").read_bytes())
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


