"""The optional sections of issue 15 ([adjusted], [[competing_risks]], [imputation]): the flagship
states them, and every mistake is named before any data is read."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from oncorwe import protocol
from oncorwe.errors import ProtocolError


def flagship() -> dict[str, Any]:
    return copy.deepcopy(protocol.load("goldinger2022").to_dict())


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        protocol.from_data(data)
    return info.value.problems


def test_the_flagship_states_the_adjusted_comparison() -> None:
    p = protocol.load("goldinger2022")
    assert p.adjusted is not None and p.imputation is not None
    assert p.adjusted.treatment == "regimen_class" and p.adjusted.reference == "single_agent"
    assert set(p.adjusted.arms) == {"combination", "single_agent"}
    assert {"ecog", "ldh_elevated", "brain_metastases"} <= set(p.adjusted.covariates)
    assert p.imputation.m >= 2 and set(p.imputation.covariates) == {"ecog", "ldh_elevated"}
    [competing] = p.competing_risks
    assert competing.name == "subsequent_therapy_by_arm" and competing.by == "arm"
    assert (competing.event, competing.competing_event) == ("subsequent_therapy", "death")


def test_subsequent_therapy_does_not_need_pfs_to_count_deaths() -> None:
    data = flagship()
    data["endpoints"]["pfs_death_is_event"] = False
    assert [c.event for c in protocol.from_data(data).competing_risks] == ["subsequent_therapy"]


def test_the_sections_are_optional() -> None:
    data = flagship()
    for key in ("adjusted", "competing_risks", "imputation"):
        del data[key]
    p = protocol.from_data(data)
    assert p.adjusted is None and p.competing_risks == [] and p.imputation is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["adjusted"]["arms"]["combination"].append("no_such_regimen"),
     "adjusted.arms.combination: 'no_such_regimen' is not a level of 'regimen_class'"),
    (lambda d: d["adjusted"]["arms"]["combination"].append("dacarbazine"), "'dacarbazine' is also in arm"),
    (lambda d: d["adjusted"].update(treatment="age_years"), "adjusted.treatment: 'age_years' is not categorical"),
    (lambda d: d["adjusted"]["covariates"].append("albumin"), "adjusted.covariates: 'albumin'"),
    (lambda d: d["adjusted"]["covariates"].append("regimen_class"), "cannot also be a covariate"),
    (lambda d: d["adjusted"].update(reference="placebo"), "reference: 'placebo' is not an arm"),
    (lambda d: d["adjusted"].update(estimand="ATT", stabilize=False), "target: the ATT needs its target arm"),
    (lambda d: d["adjusted"].update(estimand="overlap"), "stabilize: defined for estimand \"ATE\" only"),
    (lambda d: d["adjusted"].update(estimand="IPTW"), "adjusted.estimand"),
    (lambda d: d["adjusted"].update(trim=0.6), "trim: must be below 1/2"),
    (lambda d: d["adjusted"].update(max_weight=True), "adjusted.max_weight"),
    (lambda d: d["adjusted"].update(max_weight=1), "adjusted.max_weight"),
    (lambda d: d["adjusted"].update(outcomes=["dfs"]), "adjusted.outcomes"),
    (lambda d: d["adjusted"]["arm_labels"].pop("combination"), "arm_labels: give one label for each arm"),
    (lambda d: d.pop("adjusted"), "competing_risks.0.by: \"arm\" needs the [adjusted] section"),
    (lambda d: d["competing_risks"][0].update(by="age_years"), "competing_risks.0.by: 'age_years' is not categorical"),
    (lambda d: d["competing_risks"][0].update(by="albumin"), "competing_risks.0.by: 'albumin' is neither"),
    (lambda d: (d["endpoints"].update(pfs_death_is_event=False), d["competing_risks"][0].update(event="progression")),
     "competing_risks.0: death as the competing event of progression needs endpoints.pfs_death_is_event = true"),
    (lambda d: d["competing_risks"][0].update(event="next_treatment"), "competing_risks.0.event"),
    (lambda d: d["competing_risks"][0].update(competing_event="toxicity"), "competing_risks.0.competing_event"),
    (lambda d: d["competing_risks"][0].pop("name"), "competing_risks.0.name: required key is missing"),
    (lambda d: d["competing_risks"][0].update(name="By Arm"), "competing_risks.0.name"),
    (lambda d: d["imputation"]["covariates"].append("prior_ici_class"), "'prior_ici_class' is not among adjusted.covariates"),
    (lambda d: d["imputation"].update(m=1), "imputation.m"),
    (lambda d: d["imputation"].update(seed=-1), "imputation.seed"),
    (lambda d: d["imputation"].update(surprise=1), "imputation.surprise"),
])
def test_every_mistake_is_named_before_any_data_is_read(change: Any, message: str) -> None:
    data = flagship()
    change(data)
    got = problems_of(data)
    assert any(message in line for line in got), got


def test_a_categorical_covariate_with_many_levels_is_not_imputed() -> None:
    data = flagship()
    data["adjusted"]["covariates"].append("prior_ici_class")
    data["imputation"]["covariates"].append("prior_ici_class")
    assert any("'prior_ici_class' is categorical with more than two levels" in line for line in problems_of(data))


PROGRESSION_BY_LDH = {"name": "progression_by_ldh", "event": "progression", "competing_event": "death",
                      "by": "ldh_elevated", "times_months": [3, 6]}


def test_two_analyses_are_kept_in_order() -> None:
    data = flagship()
    data["competing_risks"].append(dict(PROGRESSION_BY_LDH))
    p = protocol.from_data(data)
    assert [(c.name, c.event, c.by) for c in p.competing_risks] == [
        ("subsequent_therapy_by_arm", "subsequent_therapy", "arm"), ("progression_by_ldh", "progression", "ldh_elevated")]


def test_a_second_analysis_is_checked_as_the_first() -> None:
    data = flagship()
    data["competing_risks"].append({**PROGRESSION_BY_LDH, "by": "age_years"})
    data["endpoints"]["pfs_death_is_event"] = False
    got = problems_of(data)
    assert any("competing_risks.1.by: 'age_years' is not categorical" in line for line in got), got
    assert any("competing_risks.1: death as the competing event of progression" in line for line in got), got
    assert not any("competing_risks.0" in line for line in got), got


def test_a_repeated_name_is_named() -> None:
    data = flagship()
    data["competing_risks"].append({**PROGRESSION_BY_LDH, "name": "subsequent_therapy_by_arm"})
    got = problems_of(data)
    assert list(got) == ["<data>: competing_risks.1.name: 'subsequent_therapy_by_arm' is also the name of competing_risks.0"]


def test_a_repeated_event_and_grouping_is_named() -> None:
    data = flagship()
    data["competing_risks"].append({**data["competing_risks"][0], "name": "again", "times_months": [24]})
    got = problems_of(data)
    assert list(got) == ["<data>: competing_risks.1: event 'subsequent_therapy' by 'arm' repeats competing_risks.0 "
                   "(one analysis per event and grouping; list more times_months there)"]


def test_the_same_event_by_two_groupings_is_two_analyses() -> None:
    data = flagship()
    data["competing_risks"].append({**data["competing_risks"][0], "name": "subsequent_therapy_by_site", "by": "primary_site"})
    assert [c.by for c in protocol.from_data(data).competing_risks] == ["arm", "primary_site"]


def test_a_single_competing_risks_table_is_refused_with_the_array_form() -> None:
    text = protocol.shipped_text("goldinger2022")
    single = text.replace("[[competing_risks]]", "[competing_risks]")
    assert single != text
    with pytest.raises(ProtocolError) as info:
        protocol.parse(single, origin="study.toml")
    assert list(info.value.problems) == ["study.toml: competing_risks: write [[competing_risks]] (a list of analyses)"]
