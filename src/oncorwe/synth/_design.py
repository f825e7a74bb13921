"""The study knowledge of a CRF-style synthetic study, as one typed, frozen, validated object.

The generator's code (``_baseline``, ``_records``, ``_subsequent``, ``_truth``, the writers) names
roles only: "the anti-CTLA-4 regimen of a prior-ICI history", "the anti-PD-1 partner of the index
line", "the study's condition concept". :func:`study_design` says which drugs, classes, concepts
and file names they are, read from three files:

- ``synth/data/<study>_generator.toml``: the drugs of each role, file names and form titles, how
  the OMOP centres record drugs and diagnoses;
- the study's protocol (named by that file): drug classes, substitutions, regimen classes,
  subsequent-therapy classes, the ICI classes and window of the prior failure, the index window,
  the OMOP M-category concepts (the truth derives the designed values by the protocol's rules);
- ``synth/data/centre_words.toml``: the ingredients the generator writes are those it has words for.

A missing key or a value of the wrong kind is an :class:`~oncorwe.errors.InputError` naming the
file and the key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from oncorwe import protocol as protocol_module
from oncorwe.errors import InputError
from oncorwe.protocol import AdjustedComparison
from oncorwe.synth._config import load_targets, words

__all__ = [
    "EPOCH",
    "Design",
    "OmopDesign",
    "OutsideWindow",
    "RegimenRule",
    "SubsequentDesign",
    "SubsequentRule",
    "choose",
    "day_number",
    "design_from",
    "study_design",
]

_DATA = "oncorwe.synth.data"
#: The generator's day numbers count days from here.
EPOCH = dt.date(1970, 1, 1)
#: The roles of the subsequent-therapy classes the timeline builder knows how to lay out.
SUBSEQUENT_ROLES = ("targeted", "ici_after_other", "anti_pd1", "anti_ctla4", "other")
#: The prior-ICI histories of the timeline builder.
PRIOR_HISTORIES = ("anti_pd1", "anti_ctla4", "combined", "sequence")
#: The protocol's eligibility criteria by kind, one of each (their ids are the exclusion reasons).
CRITERION_KINDS = ("duplicate_referral", "observation_in", "has_line", "line_before_line", "progression_on_prior_line",
                   "index_date_within")
#: The roles of the index line's non-chemotherapy partners.
PARTNER_ROLES = ("targeted", "anti_pd1", "other")

Regimen = tuple[str, ...]
Options = tuple[tuple[Regimen, float], ...]


def day_number(value: dt.date) -> int:
    """Days since 1970-01-01."""
    return (value - EPOCH).days


def choose(options: Options, u: float) -> Regimen:
    """The option whose cumulative share first exceeds the uniform ``u`` (the last one otherwise)."""
    cumulative = 0.0
    for regimen, share in options[:-1]:
        cumulative += share
        if u < cumulative:
            return regimen
    return options[-1][0]


@dataclass(frozen=True)
class RegimenRule:
    """A protocol regimen class: the index-class ingredients hold one of each group of ``all_of``;
    with ``only`` none outside them."""

    name: str
    all_of: tuple[frozenset[str], ...]
    only: bool


@dataclass(frozen=True)
class SubsequentRule:
    """A protocol subsequent-therapy class: the next line (``line = "next"``) or any later one
    holds one of ``drug_classes``."""

    name: str
    line: str
    drug_classes: frozenset[str]


@dataclass(frozen=True)
class SubsequentDesign:
    """How the generator draws and lays out the subsequent lines (see the generator file)."""

    order: tuple[str, ...]  # roles, in drawing order
    names: dict[str, str]  # role -> class name
    role_of: dict[str, str]  # class name -> role
    prior_anti_pd1_weight: dict[str, float]
    targeted: Options
    anti_ctla4: Regimen
    anti_pd1_combination: Regimen
    anti_pd1_combination_share: float
    anti_pd1_instead_of_combination: Regimen
    anti_pd1_alone: Options
    ici_after_other_first_targeted: Regimen
    ici_after_other: Options
    other: tuple[Regimen, ...]


@dataclass(frozen=True)
class OmopDesign:
    """How the OMOP centres record the study's diagnoses and drugs."""

    condition: str
    condition_by_site: dict[str, str]
    metastatic: str
    default_cycle_days: int
    cycle_days: dict[str, int]
    max_doses: dict[str, int]
    oral: frozenset[str]
    local_concepts: dict[str, tuple[int, str]]  # name -> (offset above the local base, domain)
    m_concepts: dict[str, int]  # M category -> concept id (the protocol's omop_observations)


@dataclass(frozen=True)
class OutsideWindow:
    """Index dates of records excluded for an index line outside the protocol's window (day numbers)."""

    after: int
    after_days: int
    before: int
    before_days: int
    before_share: float


@dataclass(frozen=True)
class Design:
    """Everything study-specific the CRF-style generator writes or derives."""

    study: str
    # --- from the protocol
    drug_class: dict[str, str]  # every ingredient the generator writes -> its protocol class
    index_class: str
    substitute: dict[str, str]  # ingredient -> the first member of its substitution group
    regimen_classes: tuple[RegimenRule, ...]
    other_regimen_class: str
    subsequent_classes: tuple[SubsequentRule, ...]
    subsequent_otherwise: str
    ici_classes: frozenset[str]
    prior_levels: tuple[tuple[str, frozenset[str]], ...]  # prior ICI class levels, in order
    prior_otherwise: str
    prior_anti_pd1_classes: frozenset[str]
    progression_window_days: int
    sd_min_days: int  # the protocol's [response] sd_min_days
    index_window: tuple[int, int]  # day numbers, both included
    reasons: dict[str, str]  # criterion kind -> the protocol's criterion id (an exclusion reason)
    stage_values: frozenset[str]  # the stages the observation_in criterion admits
    adjusted: AdjustedComparison | None  # the arms, reference and outcomes of the true adjusted effect
    # --- from the generator file (and the targets' share of BRAF mutants with a targeted line)
    crf_workbook: str
    crf_title: str
    redcap_project: str
    diagnosis_label: str
    local_id_patterns: tuple[str, ...]
    prior_anti_ctla4: Regimen
    prior_anti_pd1: Options
    prior_combined: Regimen
    excluded_prior_shares: dict[str, float]
    prior_targeted_share: float
    prior_targeted_early: Regimen
    prior_targeted_later: Regimen
    prior_targeted_later_from: int  # day number
    prior_targeted_early_share_after: float
    partners: dict[str, str]  # role -> "+"-joined ingredients
    partner_other_with: str
    subsequent: SubsequentDesign
    omop: OmopDesign
    outside_window: OutsideWindow


class _Keys:
    """A table of a TOML file whose every read names the file and the key when it fails."""

    def __init__(self, file: str, data: Any, path: str = "") -> None:
        if not isinstance(data, dict):
            raise InputError(f"{file}: {path or 'the file'} must be a table")
        self.file, self.data, self.path = file, data, path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise InputError(f"{self.file}: missing key {self.where(key)!r}")
        value = self.data[key]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise InputError(f"{self.file}: {self.where(key)}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def table(self, key: str) -> _Keys:
        return _Keys(self.file, self.get(key, dict), self.where(key))

    def number(self, key: str) -> float:
        return float(self.get(key, (int, float)))

    def text(self, key: str) -> str:
        return str(self.get(key, str))


def _regimen(keys: _Keys, key: str, value: Any, known: dict[str, str]) -> Regimen:
    if not isinstance(value, str) or not value:
        raise InputError(f"{keys.file}: {keys.where(key)}: expected a regimen (ingredients joined by '+'), got {value!r}")
    parts = tuple(value.split("+"))
    unknown = [x for x in parts if x not in known]
    if unknown:
        raise InputError(f"{keys.file}: {keys.where(key)}: {', '.join(unknown)} not an ingredient the generator writes "
                         f"(centre_words.toml [drugs] with a class in the protocol)")
    return parts


def _options(keys: _Keys, key: str, known: dict[str, str]) -> Options:
    raw = keys.get(key, list)
    out: list[tuple[Regimen, float]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], int | float) and not isinstance(item[1], bool)):
            raise InputError(f"{keys.file}: {keys.where(key)}: expected [regimen, share] pairs, got {item!r}")
        out.append((_regimen(keys, key, item[0], known), float(item[1])))
    if not out:
        raise InputError(f"{keys.file}: {keys.where(key)}: no options")
    return tuple(out)


def _by_role(keys: _Keys, key: str, roles: tuple[str, ...], kind: type | tuple[type, ...]) -> dict[str, Any]:
    table = keys.table(key)
    return {role: table.get(role, kind) for role in roles}


@cache
def study_design(study: str) -> Design:
    """The design of ``study`` (raises InputError naming the file and key of a problem)."""
    file = f"{study}_generator.toml"
    source = resources.files(_DATA).joinpath(file)
    if not source.is_file():
        raise InputError(f"study: {study!r} has no generator design (synth/data/{file})")
    with source.open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{file}: not valid TOML: {exc}") from exc
    return design_from(study, data, file)


def design_from(study: str, data: dict[str, Any], file: str) -> Design:
    """The design of ``study`` from the parsed generator file ``data`` (named ``file`` in errors)."""
    root = _Keys(file, data)
    p = protocol_module.load(root.text("protocol"))
    targets = load_targets(study)

    ingredient_classes = p.ingredient_classes()
    missing = [x for x in words().drugs if x not in ingredient_classes]
    if missing:
        raise InputError(f"centre_words.toml: [drugs] {', '.join(missing)}: no drug class in protocol {p.name!r}")
    drug_class = {x: ingredient_classes[x] for x in words().drugs}
    substitute = {x: group[0] for group in p.lines.substitutions for x in group}
    prior_failure = p.index.prior_failure
    if prior_failure is None:
        raise InputError(f"protocol {p.name!r}: [index.prior_failure] is needed by the synthetic generator")
    kinds = [c.kind for c in p.criteria]
    if sorted(kinds) != sorted(CRITERION_KINDS):
        raise InputError(f"protocol {p.name!r}: the synthetic generator needs one criterion of each kind "
                         f"{', '.join(CRITERION_KINDS)}, got {', '.join(kinds)}")
    stage = [c for c in p.criteria if isinstance(c, protocol_module.ObservationIn)]
    window = [c for c in p.criteria if isinstance(c, protocol_module.IndexDateWithin)]
    if len(window) != 1:
        raise InputError(f"protocol {p.name!r}: the synthetic generator needs one index_date_within criterion")
    prior_therapy = [c for c in p.covariates.values() if isinstance(c, protocol_module.PriorTherapy)]
    prior_class = [c for c in p.covariates.values() if isinstance(c, protocol_module.PriorClass)]
    if len(prior_therapy) != 1 or len(prior_class) != 1:
        raise InputError(f"protocol {p.name!r}: the synthetic generator needs one prior_therapy and one prior_class covariate")
    m_concepts = {str(o.value): o.concept_ids[0] for o in p.omop_observations
                  if o.variable == "m_stage" and o.value is not None and o.concept_ids}

    files = root.table("files")
    ici = root.table("prior_ici")
    targeted = root.table("prior_targeted")
    partners = root.table("index_partners")
    sub = root.table("subsequent")
    omop = root.table("omop")
    outside = root.table("outside_window")
    known = drug_class

    names = _by_role(sub, "names", SUBSEQUENT_ROLES, str)
    protocol_names = {c.name for c in p.subsequent_therapy.classes} | {p.subsequent_therapy.otherwise}
    strangers = sorted(set(names.values()) - protocol_names)
    if strangers:
        raise InputError(f"{file}: subsequent.names: {', '.join(strangers)} not a subsequent-therapy class of protocol {p.name!r}")
    if len(set(names.values())) != len(names):
        raise InputError(f"{file}: subsequent.names: each role needs a class of its own, got {names!r}")
    order = tuple(sub.get("order", list))
    if sorted(order) != sorted(SUBSEQUENT_ROLES):
        raise InputError(f"{file}: subsequent.order: must list each of {', '.join(SUBSEQUENT_ROLES)} once, got {order!r}")
    later_from = targeted.get("later_from", dt.date)
    local = omop.table("local_concepts")
    local_concepts: dict[str, tuple[int, str]] = {}
    for name in local.data:
        value = local.get(name, list)
        if not (len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
            raise InputError(f"{file}: {local.where(name)}: expected [id offset, domain], got {value!r}")
        local_concepts[name] = (int(value[0]), str(value[1]))
    for partner_role in PARTNER_ROLES:
        _regimen(partners, partner_role, partners.text(partner_role), known)
    return Design(
        study=study,
        adjusted=p.adjusted,
        drug_class=drug_class,
        index_class=p.index.drug_class,
        substitute=substitute,
        regimen_classes=tuple(RegimenRule(c.name, tuple(frozenset(g) for g in c.all_of), c.only) for c in p.regimen_classes),
        other_regimen_class=p.other_regimen_class,
        subsequent_classes=tuple(SubsequentRule(c.name, c.line, frozenset(c.drug_classes)) for c in p.subsequent_therapy.classes),
        subsequent_otherwise=p.subsequent_therapy.otherwise,
        ici_classes=frozenset(prior_failure.drug_classes),
        prior_levels=tuple((level.name, frozenset(level.all_of)) for level in prior_therapy[0].levels),
        prior_otherwise=prior_therapy[0].otherwise,
        prior_anti_pd1_classes=frozenset(prior_class[0].drug_classes),
        progression_window_days=prior_failure.progression_window_days,
        sd_min_days=p.response.sd_min_days,
        index_window=(day_number(window[0].start), day_number(window[0].end)),
        reasons={c.kind: c.id for c in p.criteria},
        stage_values=frozenset(stage[0].values),
        crf_workbook=files.text("crf_workbook"),
        crf_title=files.text("crf_title"),
        redcap_project=files.text("redcap_project"),
        diagnosis_label=files.text("diagnosis_label"),
        local_id_patterns=tuple(str(x) for x in files.get("local_id_patterns", list)),
        prior_anti_ctla4=_regimen(ici, "anti_ctla4", ici.text("anti_ctla4"), known),
        prior_anti_pd1=_options(ici, "anti_pd1", known),
        prior_combined=_regimen(ici, "combined", ici.text("combined"), known),
        excluded_prior_shares={k: float(v) for k, v in _by_role(ici, "excluded_shares", PRIOR_HISTORIES, (int, float)).items()},
        prior_targeted_share=float(_Keys(f"{study}_targets.toml", targets).table("unpublished").number("prior_targeted_share_of_braf")),
        prior_targeted_early=_regimen(targeted, "early", targeted.text("early"), known),
        prior_targeted_later=_regimen(targeted, "later", targeted.text("later"), known),
        prior_targeted_later_from=day_number(later_from),
        prior_targeted_early_share_after=targeted.number("early_share_after"),
        partners={role: partners.text(role) for role in PARTNER_ROLES},
        partner_other_with="+".join(_regimen(partners, "other_with", partners.text("other_with"), known)),
        subsequent=SubsequentDesign(
            order=order,
            names=names,
            role_of={name: role for role, name in names.items()},
            prior_anti_pd1_weight={k: float(v) for k, v in _by_role(sub, "prior_anti_pd1_weight", SUBSEQUENT_ROLES, (int, float)).items()},
            targeted=_options(sub, "targeted", known),
            anti_ctla4=_regimen(sub, "anti_ctla4", sub.text("anti_ctla4"), known),
            anti_pd1_combination=_regimen(sub, "anti_pd1_combination", sub.text("anti_pd1_combination"), known),
            anti_pd1_combination_share=sub.number("anti_pd1_combination_share"),
            anti_pd1_instead_of_combination=_regimen(sub, "anti_pd1_instead_of_combination",
                                                     sub.text("anti_pd1_instead_of_combination"), known),
            anti_pd1_alone=_options(sub, "anti_pd1_alone", known),
            ici_after_other_first_targeted=_regimen(sub, "ici_after_other_first_targeted",
                                                    sub.text("ici_after_other_first_targeted"), known),
            ici_after_other=_options(sub, "ici_after_other", known),
            other=tuple(_regimen(sub, "other", x, known) for x in sub.get("other", list)),
        ),
        omop=OmopDesign(
            condition=omop.text("condition"),
            condition_by_site={k: str(v) for k, v in omop.get("condition_by_site", dict).items()},
            metastatic=omop.text("metastatic"),
            default_cycle_days=int(omop.get("default_cycle_days", int)),
            cycle_days={k: int(v) for k, v in omop.get("cycle_days", dict).items()},
            max_doses={k: int(v) for k, v in omop.get("max_doses", dict).items()},
            oral=frozenset(str(x) for x in omop.get("oral", list)),
            local_concepts=local_concepts,
            m_concepts=m_concepts,
        ),
        outside_window=OutsideWindow(
            after=day_number(outside.get("after", dt.date)),
            after_days=int(outside.get("after_days", int)),
            before=day_number(outside.get("before", dt.date)),
            before_days=int(outside.get("before_days", int)),
            before_share=outside.number("before_share"),
        ),
    )
