"""OMOP CDM v5.4 -> the generic canonical tables, as Ibis expressions (DuckDB, PostgreSQL, Spark).

A CDM holds a whole hospital's population: the mapping reads only what the study is about. It
knows no disease, drug or concept of any study: every one comes in lookup tables built from the
protocol's :class:`oncorwe.model.scope.StudyScope` and the vocabulary files
(:func:`scope_lookups`).

The mapping runs over *one or many* CDMs at once. :func:`cdm_tables` reads one database's tables
(only the columns the mapping uses, in fixed types) and adds its centre as constant columns;
:func:`union_cdm` stacks several centres' tables (``UNION ALL``); :func:`map_cdm` maps them, every
join keyed by (``_centre``, ``person_id``). Nothing is executed until the caller asks. Table by
table:

- standard concepts: a non-standard ``*_concept_id`` (or a source concept, when the concept id is
  0) is replaced by the concept it ``'Maps to'`` in the CDM's ``concept_relationship``;
- scope: the persons with a condition record whose standard concept is one of the study's
  condition concepts or a descendant of one (``concept_ancestor``), or whose source value or
  concept name contains one of the study's condition words; everyone else is out of scope;
- person: sex (OMOP gender concepts 8507 / 8532), year of birth, ``person_source_value`` as the
  centre's own id (else ``person_id``);
- conditions: the in-scope condition records (standard concept, source value in lower case);
- concept_ancestor: the (ancestor, descendant) pairs of the study's categorising concepts;
- observations: the measurement and observation records of the covariates' concepts (value,
  value concept name, unit, upper limit of normal), plus the protocol's ``omop_observations``
  rules (records that carry a variable, and the value an absent record means);
- drug_exposures: the ingredient of a record by its standard concept, by an ancestor ingredient
  (``concept_ancestor``: clinical drugs and other concepts below the ingredient), by the words of
  its source value, or by the name of a local concept; only the study's ingredients are in scope.
  A record with no concept at all whose words name no ingredient keeps a null ingredient (the
  harmonisation quarantines it: it may be a study drug written in a way nobody knows);
- assessments: measurements whose source value names a response (RECIST), by their value words;
- events: ``death``, Disease Progression episodes (32677), the end of each ``observation_period``.

``source`` is ``"<centre>/<file>#<table>:<primary key>"``.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from oncorwe.model.scope import StudyScope
from oncorwe.sources._omop_cdm import (
    ABSENCE_TABLES,
    CDM_COLUMNS,
    OMOP_TABLES,
    OPTIONAL_COLUMNS,
    PERSON_KEY,
    cdm_constants,
    cdm_table_names,
    cdm_tables,
    check_cdm_types,
    record_counts,
    union_cdm,
)
from oncorwe.sources._omop_cdm import stack as _union

__all__ = [
    "CDM_COLUMNS",
    "LOCAL_CONCEPT_MIN",
    "OMOP_TABLES",
    "OPTIONAL_COLUMNS",
    "PERSON_KEY",
    "canonical_tables",
    "cdm_constants",
    "cdm_table_names",
    "cdm_tables",
    "check_cdm_types",
    "drug_key",
    "map_cdm",
    "record_counts",
    "scope_lookups",
    "union_cdm",
    "word_lookups",
]

MALE, FEMALE = 8507, 8532
#: OMOP reserves ids above this for site-specific concepts: they mean nothing outside their site
LOCAL_CONCEPT_MIN = 2_000_000_000
#: the oncology extension's "Disease Progression" episode concept
DISEASE_PROGRESSION = 32677
#: the words a measurement's source value holds when it is a tumour response
RESPONSE_WORDS = ("recist", "response")


def scope_lookups(scope: StudyScope, vocabulary: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The lookup tables :func:`map_cdm` joins with: the vocabulary's ``ingredients``,
    ``drug_words``, ``value_words`` and ``units`` (restricted to the study's ingredients), and the
    study's ``condition_concepts``, ``condition_words``, ``observation_concepts``,
    ``category_concepts`` and ``rules`` (one row per rule and concept)."""
    in_scope = set(scope.ingredients)

    def only_study(table: pa.Table) -> pa.Table:
        keep = [name in in_scope for name in table.column("ingredient").to_pylist()]
        return table.filter(pa.array(keep, pa.bool_()))

    def ids(values: tuple[int, ...]) -> pa.Table:
        return pa.table({"concept_id": pa.array(sorted(set(values)), pa.int64())})

    rules: dict[str, list[Any]] = {k: [] for k in ("rule_no", "domain", "concept_id", "source_word", "variable",
                                                   "value", "value_field", "unit", "absent_value",
                                                   "study_condition")}
    for number, rule in enumerate(scope.observation_rules):
        for concept in rule.concept_ids or (None,):
            for key, value in (("rule_no", number), ("domain", rule.domain), ("concept_id", concept),
                               ("source_word", rule.source_word), ("variable", rule.variable),
                               ("value", rule.value), ("value_field", rule.value_field), ("unit", rule.unit),
                               ("absent_value", rule.absent_value), ("study_condition", rule.study_condition)):
                rules[key].append(value)
    rule_types = {"rule_no": pa.int64(), "concept_id": pa.int64(), "study_condition": pa.bool_()}
    return {
        "ingredients": only_study(vocabulary["ingredients"]),
        "drug_words": only_study(vocabulary["drug_words"]),
        "value_words": vocabulary["value_words"],
        "units": vocabulary["units"],
        "condition_concepts": ids(scope.condition_concept_ids),
        "condition_words": pa.table({"word": pa.array(sorted(set(scope.condition_words)), pa.string())}),
        "observation_concepts": ids(scope.observation_concept_ids),
        "category_concepts": ids(scope.category_concept_ids),
        "rules": pa.table({k: pa.array(v, rule_types.get(k, pa.string())) for k, v in rules.items()}),
    }


def _source(rows: ir.Table, key: ir.Value) -> ir.StringValue:
    return rows._src + key.cast("string")


def _provenance(rows: ir.Table, key: ir.Value, table: str) -> dict[str, ir.Value]:
    """A canonical record's provenance columns: ``source`` (``"<centre>/<file>#<table>:<key>"``, for
    people), ``source_table`` (the CDM table) and ``source_key`` (its primary key), the last two as
    columns of their own so that counting records per CDM table parses no string."""
    return {"source": _source(rows, key), "source_table": ibis.literal(table), "source_key": key.cast("int64")}


#: white space at either end, as a regular expression: Ibis' ``strip()`` writes its characters
#: into the SQL as escapes Spark does not read (``'\v'`` is a "v" there), which strips letters
_ENDS = r"^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$"


def _strip(text: ir.StringValue) -> ir.StringValue:
    """``text`` without white space at either end, alike on DuckDB, PostgreSQL and Spark."""
    return text.re_replace(_ENDS, "")


def _patient_id(person: ir.Table) -> ir.StringValue:
    """``<centre>:<the centre's own id>``, the person_id when the centre gives none."""
    local_id = _strip(person.person_source_value)
    return person.centre_id + ":" + ibis.ifelse(local_id.isnull() | (local_id == ""),
                                                person.person_id.cast("string"), local_id)


def canonical_tables(
    con: Any, *, centre_id: str, file: str, lookups: dict[str, pa.Table], database: str | None = None
) -> dict[str, ir.Table]:
    """The canonical tables of one OMOP database as Ibis expressions (:func:`map_cdm` of its
    :func:`cdm_tables`, the lookups of :func:`scope_lookups` sent along as in-memory tables)."""
    cdm = cdm_tables(con, centre_id=centre_id, file=file, database=database)
    return map_cdm(cdm, {name: ibis.memtable(table) for name, table in lookups.items()})


def map_cdm(
    cdm: dict[str, ir.Table],
    lookups: dict[str, ir.Table],
    *,
    persons: ir.Table | None = None,
    word_tables: dict[str, ir.Table] | None = None,
) -> dict[str, ir.Table]:
    """The canonical tables of the CDM tables ``cdm`` (one centre's :func:`cdm_tables` or several
    centres' :func:`union_cdm`), as Ibis expressions.

    ``lookups`` are :func:`scope_lookups`' tables in the same backend (or in memory). ``persons``
    (``_centre``, ``person_id``, ``patient_id`` plus the ``_has_<table>`` flags) are the persons in
    scope, by default computed from the CDM (pass a stored copy to compute them once);
    ``word_tables`` is :func:`word_lookups` (by default computed inside the queries). Every table
    carries ``_centre`` and, beside ``source``, ``source_table`` (the CDM table the record is from)
    and ``source_key`` (its primary key; null for an observation a rule makes of an absent record);
    ``assessments`` carries ``raw_response``.
    """
    words = word_lookups(cdm, lookups) if word_tables is None else word_tables
    # computed inline, a lookup derives from the very table it is joined back to: as a view of its
    # own, Ibis cannot bind the join's right side to the left table's equal expression
    words = {name: table.view() for name, table in words.items()}
    in_scope = scoped_persons(cdm, lookups) if persons is None else persons
    keys = in_scope.select(*PERSON_KEY, "patient_id")
    return {
        "person": _person(cdm["person"], in_scope),
        "conditions": _conditions(cdm, lookups, keys),
        "concept_ancestor": _ancestors(cdm, lookups),
        "observations": _observations(cdm, lookups, in_scope),
        "drug_exposures": _drug_exposures(cdm, keys, words.get("drug")),
        "assessments": _assessments(cdm, keys, words.get("measurement_value")),
        "events": _events(cdm, keys),
    }


def _empty(schema: dict[str, str]) -> ir.Table:
    return ibis.memtable(pa.table({k: pa.array([], type=_ARROW[v]) for k, v in schema.items()}))


_ARROW = {"string": pa.string(), "date": pa.date32(), "int64": pa.int64(), "float64": pa.float64(),
          "boolean": pa.bool_(), "int32": pa.int32(), "int8": pa.int8()}


def _standard(cdm: dict[str, ir.Table], table: ir.Table, concept: str, source_concept: str | None = None) -> ir.Table:
    """``table`` with ``_std``: the standard concept of ``concept`` (the source concept when the
    concept is 0 or null), through the CDM's ``'Maps to'`` relationships where there are any."""
    raw = table[concept]
    if source_concept is not None:
        raw = ibis.ifelse(raw.isnull() | (raw == 0), table[source_concept], raw)
    rows = table.mutate(_raw_concept=raw)
    if "concept_relationship" not in cdm:
        return rows.mutate(_std=rows._raw_concept).drop("_raw_concept")
    cr = cdm["concept_relationship"]
    maps = cr.filter(cr.relationship_id == "Maps to")
    maps = maps.group_by([maps._centre, maps.concept_id_1]).aggregate(_to=maps.concept_id_2.min())
    maps = maps.select(_mcentre=maps._centre, _from=maps.concept_id_1, _to=maps._to)
    joined = rows.left_join(maps, (rows._centre == maps._mcentre) & (rows._raw_concept == maps._from))
    joined = joined.select(*[joined[c] for c in rows.columns], "_to")
    return joined.mutate(_std=ibis.coalesce(joined._to, joined._raw_concept)).drop("_to", "_raw_concept")


def _with_descendants(cdm: dict[str, ir.Table], rows: ir.Table, column: str, concepts: ir.Table,
                      flag: str) -> ir.Table:
    """``rows`` with boolean ``flag``: ``rows[column]`` is one of ``concepts`` or a descendant of
    one in the centre's ``concept_ancestor``."""
    direct = rows[column].isin(concepts.concept_id)
    if "concept_ancestor" not in cdm:
        return rows.mutate(**{flag: direct.fill_null(False)})
    ca = cdm["concept_ancestor"]
    below = ca.filter(ca.ancestor_concept_id.isin(concepts.concept_id))
    below = below.select(_acentre=below._centre, _desc=below.descendant_concept_id).distinct()
    joined = rows.left_join(below, (rows._centre == below._acentre) & (rows[column] == below._desc))
    return joined.select(*[joined[c] for c in rows.columns],
                         **{flag: (direct | joined._desc.notnull()).fill_null(False)})


def _concept_names(cdm: dict[str, ir.Table], rows: ir.Table, column: str, name: str) -> ir.Table:
    """``rows`` with ``name``: the lower-case name of the centre's concept ``rows[column]``."""
    if "concept" not in cdm:
        return rows.mutate(**{name: ibis.null("string")})
    concept = cdm["concept"]
    names = concept.select(_cno=concept._centre, _cid=concept.concept_id, _cname=concept.concept_name.lower())
    joined = rows.left_join(names, (rows._centre == names._cno) & (rows[column] == names._cid))
    return joined.select(*[joined[c] for c in rows.columns], **{name: joined._cname})


def _study_conditions(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table]) -> ir.Table | None:
    """The condition records of the study's disease, with ``_std`` (standard concept)."""
    if "condition_occurrence" not in cdm:
        return None
    condition = _standard(cdm, cdm["condition_occurrence"], "condition_concept_id", "condition_source_concept_id")
    condition = _concept_names(cdm, condition, "_std", "_std_name")
    condition = _with_descendants(cdm, condition, "_std", lookups["condition_concepts"], "_by_concept")
    words = lookups["condition_words"]
    text = ibis.coalesce(condition.condition_source_value.lower(), "") + " | " + ibis.coalesce(condition._std_name, "")
    worded = condition.mutate(_text=text)
    pairs = worded.cross_join(words).filter(lambda t: t._text.contains(t.word))
    by_word = pairs.select("_centre", "condition_occurrence_id").distinct().mutate(_by_word=ibis.literal(True))
    by_word = by_word.rename(_wcentre="_centre", _wid="condition_occurrence_id")
    joined = worded.left_join(by_word, (worded._centre == by_word._wcentre)
                              & (worded.condition_occurrence_id == by_word._wid))
    joined = joined.select(*[joined[c] for c in worded.columns], _by_word=joined._by_word.fill_null(False))
    return joined.filter(joined._by_concept | joined._by_word)


def scoped_persons(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table]) -> ir.Table:
    """The persons in scope (a condition record of the study's disease): ``_centre``,
    ``person_id``, ``patient_id``, ``centre_id``, ``_src`` and the ``_has_<table>`` flags."""
    person = cdm["person"]
    conditions = _study_conditions(cdm, lookups)
    if conditions is None:
        return person.filter(ibis.literal(False)).select(*PERSON_KEY, "centre_id", "_src",
                                                         *[f"_has_{d}" for d in ABSENCE_TABLES],
                                                         patient_id=_patient_id(person))
    keys = conditions.select(*PERSON_KEY).distinct()
    rows = person.semi_join(keys, PERSON_KEY)
    return rows.select(*PERSON_KEY, "centre_id", "_src", *[f"_has_{d}" for d in ABSENCE_TABLES],
                       patient_id=_patient_id(rows), gender_concept_id=rows.gender_concept_id,
                       year_of_birth=rows.year_of_birth)


def _person(person: ir.Table, in_scope: ir.Table) -> ir.Table:
    rows = in_scope
    if "gender_concept_id" not in rows.columns:  # a stored persons table without them: read again
        rows = person.semi_join(in_scope, PERSON_KEY).mutate(patient_id=_patient_id(person))
    return rows.select(
        "_centre", "person_id", "patient_id", "centre_id",
        sex=ibis.cases((rows.gender_concept_id == MALE, "male"), (rows.gender_concept_id == FEMALE, "female"),
                       else_=ibis.null("string")),
        birth_year=rows.year_of_birth.cast("int32"),
        reported_age_years=ibis.null("float64"),
        **_provenance(rows, rows.person_id, "person"),
    )


def _conditions(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table], keys: ir.Table) -> ir.Table:
    rows = _study_conditions(cdm, lookups)
    if rows is None:
        return _empty({"_centre": "int32", "patient_id": "string", "condition_concept_id": "int64",
                       "condition_text": "string", "start_date": "date", "source": "string",
                       "source_table": "string", "source_key": "int64"})
    joined = rows.join(keys, PERSON_KEY)
    return joined.select(
        "_centre", patient_id=joined.patient_id, condition_concept_id=joined._std,
        condition_text=_strip(joined.condition_source_value.lower()), start_date=joined.condition_start_date,
        **_provenance(joined, joined.condition_occurrence_id, "condition_occurrence"),
    )


def _ancestors(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table]) -> ir.Table:
    """(ancestor, descendant) pairs of the study's categorising concepts, every centre's."""
    if "concept_ancestor" not in cdm:
        return _empty({"ancestor_concept_id": "int64", "descendant_concept_id": "int64"})
    ca = cdm["concept_ancestor"]
    rows = ca.filter(ca.ancestor_concept_id.isin(lookups["category_concepts"].concept_id))
    return rows.select("ancestor_concept_id", "descendant_concept_id").distinct()


_OBSERVATION_COLUMNS = {"_centre": "int32", "patient_id": "string", "variable": "string", "concept_id": "int64",
                        "value_text": "string", "value_concept_id": "int64", "value_number": "float64",
                        "unit": "string", "reference_high": "float64", "observation_date": "date",
                        "source": "string", "source_table": "string", "source_key": "int64"}


def _records(cdm: dict[str, ir.Table], domain: str) -> ir.Table | None:
    """A domain's records in one shape: ``_centre``, ``person_id``, ``_src``, ``_key``, ``_std``,
    ``_text`` (the source value, lower case), ``_value_words`` (the value as written),
    ``value_concept_id``, ``value_number``, ``_unit``, ``reference_high``, ``observation_date``."""
    if domain == "measurement" and "measurement" in cdm:
        m = _standard(cdm, cdm["measurement"], "measurement_concept_id")
        return m.select("_centre", "person_id", "_src", _key=m.measurement_id, _std=m._std,
                        _text=m.measurement_source_value.lower(), _value_words=m.value_source_value,
                        value_concept_id=m.value_as_concept_id, value_number=m.value_as_number,
                        _unit=m.unit_source_value, reference_high=m.range_high, observation_date=m.measurement_date)
    if domain == "observation" and "observation" in cdm:
        o = _standard(cdm, cdm["observation"], "observation_concept_id")
        return o.select("_centre", "person_id", "_src", _key=o.observation_id, _std=o._std,
                        _text=o.observation_source_value.lower(), _value_words=o.value_as_string,
                        value_concept_id=o.value_as_concept_id, value_number=o.value_as_number,
                        _unit=o.unit_source_value, reference_high=ibis.null("float64"),
                        observation_date=o.observation_date)
    if domain == "condition" and "condition_occurrence" in cdm:
        c = _standard(cdm, cdm["condition_occurrence"], "condition_concept_id", "condition_source_concept_id")
        return c.select("_centre", "person_id", "_src", _key=c.condition_occurrence_id, _std=c._std,
                        _text=c.condition_source_value.lower(), _value_words=c.condition_source_value,
                        value_concept_id=ibis.null("int64"), value_number=ibis.null("float64"),
                        _unit=ibis.null("string"), reference_high=ibis.null("float64"),
                        observation_date=c.condition_start_date)
    return None


_DOMAIN_TABLE = {"measurement": "measurement", "observation": "observation", "condition": "condition_occurrence"}


def _observations(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table], in_scope: ir.Table) -> ir.Table:
    keys = in_scope.select(*PERSON_KEY, "patient_id")
    parts: list[ir.Table] = []
    response = ibis.literal(False)
    for domain in ("measurement", "observation"):
        rows = _records(cdm, domain)
        if rows is None:
            continue
        if domain == "measurement":
            response = ibis.literal(False)
            for word in RESPONSE_WORDS:
                response = response | rows._text.contains(word).fill_null(False)
            rows = rows.filter(~response)
        rows = rows.filter(rows._std.isin(lookups["observation_concepts"].concept_id)).join(keys, PERSON_KEY)
        rows = _concept_names(cdm, rows, "value_concept_id", "_value_name")
        parts.append(rows.select(
            "_centre", patient_id=rows.patient_id, variable=ibis.null("string"), concept_id=rows._std,
            value_text=ibis.coalesce(rows._value_name, _strip(rows._value_words.lower())),
            value_concept_id=rows.value_concept_id, value_number=rows.value_number, unit=rows._unit,
            reference_high=rows.reference_high, observation_date=rows.observation_date,
            **_provenance(rows, rows._key, _DOMAIN_TABLE[domain]),
        ))
    parts.extend(_ruled(cdm, lookups, in_scope))
    if not parts:
        return _empty(_OBSERVATION_COLUMNS)
    return _union(parts)


def _ruled(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table], in_scope: ir.Table) -> list[ir.Table]:
    """The observations the protocol's ``omop_observations`` rules make, and their absent values."""
    rules = lookups["rules"]
    keys = in_scope.select(*PERSON_KEY, "patient_id")
    words = lookups["value_words"]
    values = words.select(_vfield=words.field, _vword=words.word, _vvalue=words.value)
    units = lookups["units"]
    parts: list[ir.Table] = []
    for domain, table in _DOMAIN_TABLE.items():
        records = _records(cdm, domain)
        if records is None:
            continue
        mine = rules.filter(rules.domain == domain)
        worded_rules = mine.filter(mine.source_word.notnull())
        by_concept = records.join(mine, records._std == mine.concept_id)
        by_word = records.join(worded_rules, records._text.contains(worded_rules.source_word))
        columns = [*records.columns, "rule_no", "variable", "value", "value_field", "unit", "absent_value"]
        found = [by_concept.select(*columns), by_word.select(*columns)]
        study = _study_conditions(cdm, lookups) if domain == "condition" else None
        if study is not None:
            own = records.semi_join(study.select("_centre", _key="condition_occurrence_id"), ["_centre", "_key"])
            found.append(own.cross_join(mine.filter(mine.study_condition)).select(*columns))
        matched = _union(found).join(keys, PERSON_KEY)
        worded = matched.left_join(values, (matched.value_field == values._vfield)
                                   & (_strip(matched._value_words.lower()) == values._vword))
        worded = worded.select(*[worded[c] for c in matched.columns], _word_value=worded._vvalue)
        scaled = worded.left_join(units, _strip(worded._unit.lower()) == units.unit_word)
        # a unit the vocabulary does not know is taken to be the canonical one already
        factor = ibis.ifelse(scaled.unit.notnull(), scaled.factor.fill_null(1.0), ibis.literal(1.0))
        rows = scaled.select(*[scaled[c] for c in worded.columns], _factor=factor)
        parts.append(rows.select(
            "_centre", patient_id=rows.patient_id, variable=rows.variable, concept_id=rows._std,
            value_text=ibis.coalesce(rows.value, ibis.ifelse(rows.value_field.notnull(), rows._word_value,
                                                              ibis.null("string"))),
            value_concept_id=rows.value_concept_id,
            value_number=ibis.ifelse(rows.value.notnull() | rows.value_field.notnull(), ibis.null("float64"),
                                     rows.value_number * rows._factor),
            unit=ibis.ifelse(rows.unit.notnull(), rows.unit, rows._unit),
            reference_high=rows.reference_high * rows._factor,
            observation_date=rows.observation_date,
            **_provenance(rows, rows._key, table),
        ).distinct())
        absent = mine.filter(mine.absent_value.notnull()).select("rule_no", "variable", "absent_value").distinct()
        have = in_scope.filter(in_scope[f"_has_{table}"])
        candidates = have.cross_join(absent)
        present = matched.select(*PERSON_KEY, "rule_no").distinct()
        missing = candidates.anti_join(present, [*PERSON_KEY, "rule_no"])
        parts.append(missing.select(
            "_centre", patient_id=missing.patient_id, variable=missing.variable, concept_id=ibis.null("int64"),
            value_text=missing.absent_value, value_concept_id=ibis.null("int64"),
            value_number=ibis.null("float64"), unit=ibis.null("string"), reference_high=ibis.null("float64"),
            observation_date=ibis.null("date"), source=missing._src + ibis.literal(f"{table} (no record)"),
            source_table=ibis.literal(table), source_key=ibis.null("int64"),
        ))
    return parts


_DRUG_COLUMNS = {"_centre": "int32", "patient_id": "string", "ingredient": "string",
                 "ingredient_concept_id": "int64", "drug_class": "string", "start_date": "date",
                 "end_date": "date", "reason_stopped": "string", "source_line": "int32",
                 "source_text": "string", "source": "string", "source_table": "string",
                 "source_key": "int64"}


def _drug_ingredients(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table]) -> ir.Table:
    """Per distinct :func:`drug_key`: the study ingredient it names, in this order: its standard
    concept, an ancestor ingredient, the words of its source value, the words of the name of the
    centre's own concept (or of an ancestor's); null when none, and ``_in_scope`` false when the
    record has a concept that is none of the study's (out of scope, not a loss)."""
    drug = cdm["drug_exposure"]
    centre, concept_id, source_value = drug_key(drug)
    keys = drug.select(_dcentre=centre, _dcid=concept_id, _dsv=source_value).distinct()
    ing, words = lookups["ingredients"], lookups["drug_words"]
    standard = ing.filter(ing.concept_id < LOCAL_CONCEPT_MIN)
    # the concept itself and, below the ingredient level, its ancestors (closest first)
    candidates = keys.select("_dcentre", "_dcid", "_dsv", _cand=keys._dcid, _level=ibis.literal(0))
    if "concept_ancestor" in cdm:
        ca = cdm["concept_ancestor"]
        up = keys.join(ca, (keys._dcentre == ca._centre) & (keys._dcid == ca.descendant_concept_id)
                       & (ca.ancestor_concept_id != ca.descendant_concept_id))
        candidates = candidates.union(up.select("_dcentre", "_dcid", "_dsv", _cand=up.ancestor_concept_id,
                                                _level=ibis.literal(1)))
    named = _concept_names(cdm, candidates.mutate(_centre=candidates._dcentre), "_cand", "_cand_name")
    by_id = named.left_join(standard, named._cand == standard.concept_id)
    by_id = by_id.select(*[by_id[c] for c in named.columns], i_ingredient=by_id.ingredient,
                         i_class=by_id.drug_class, i_id=by_id.concept_id)
    by_name = by_id.left_join(words, by_id._cand_name == words.word)
    by_name = by_name.select(*[by_name[c] for c in by_id.columns], n_ingredient=by_name.ingredient,
                             n_class=by_name.drug_class, n_id=by_name.concept_id)
    # rank: a standard id before a name, the concept before its ancestors
    ranked = by_name.mutate(
        _ingredient=ibis.coalesce(by_name.i_ingredient, by_name.n_ingredient),
        _class=ibis.coalesce(by_name.i_class, by_name.n_class),
        _id=ibis.coalesce(by_name.i_id, by_name.n_id),
        _order=by_name._level * 2 + ibis.ifelse(by_name.i_ingredient.notnull(), 0, 1),
    ).filter(lambda t: t._ingredient.notnull())
    window = ibis.window(group_by=["_dcentre", "_dcid", "_dsv"], order_by=["_order", "_ingredient"])
    best = ranked.mutate(_rank=ibis.row_number().over(window))
    best = best.filter(best._rank == 0).select(_bcentre="_dcentre", _bcid="_dcid", _bsv="_dsv",
                                               b_ingredient="_ingredient", b_class="_class", b_id="_id")
    by_concept = keys.left_join(best, (keys._dcentre == best._bcentre) & (keys._dcid == best._bcid)
                                & (keys._dsv == best._bsv))
    by_concept = by_concept.select("_dcentre", "_dcid", "_dsv", "b_ingredient", "b_class", "b_id")
    by_source = by_concept.left_join(words, _strip(by_concept._dsv.lower()) == words.word)
    no_concept = (by_source._dcid == -1) | (by_source._dcid == 0)
    ingredient = ibis.coalesce(by_source.b_ingredient, by_source.ingredient)
    return by_source.select(
        "_dcentre", "_dcid", "_dsv",
        ingredient=ingredient,
        ingredient_concept_id=ibis.coalesce(by_source.b_id, by_source.concept_id).cast("int64"),
        drug_class=ibis.coalesce(by_source.b_class, by_source.drug_class),
        _in_scope=ingredient.notnull() | no_concept,
    )


def word_lookups(cdm: dict[str, ir.Table], lookups: dict[str, ir.Table]) -> dict[str, ir.Table]:
    """The words of the CDM's free-text values, read once per distinct value instead of once per
    row: ``drug`` (per distinct :func:`drug_key`, see :func:`_drug_ingredients`) and
    ``measurement_value`` (``_vsv``, a ``value_source_value``; ``v_response``, the RECIST category
    it names). At scale store them and pass them to :func:`map_cdm` (``word_tables``)."""
    out: dict[str, ir.Table] = {}
    if "drug_exposure" in cdm:
        out["drug"] = _drug_ingredients(cdm, lookups)
    if "measurement" in cdm:
        m = cdm["measurement"]
        values = m.select(_vsv=m.value_source_value).distinct()
        words = lookups["value_words"]
        responses = words.filter(words.field == "response")
        joined = values.left_join(responses, _strip(values._vsv.lower()) == responses.word)
        out["measurement_value"] = joined.group_by("_vsv").aggregate(v_response=joined.value.max())
    return out


def drug_key(drug: ir.Table) -> list[ir.Value]:
    """What names a drug exposure's ingredient: its centre, concept id and source value (nulls as
    -1 and "", which name no ingredient either), the key of the ``drug`` table of
    :func:`word_lookups`."""
    return [drug._centre, drug.drug_concept_id.fill_null(-1), drug.drug_source_value.fill_null("")]


def _drug_exposures(cdm: dict[str, ir.Table], keys: ir.Table, ingredients: ir.Table | None) -> ir.Table:
    if "drug_exposure" not in cdm or ingredients is None:
        return _empty(_DRUG_COLUMNS)
    drug = cdm["drug_exposure"].semi_join(keys, PERSON_KEY)
    centre, concept_id, source_value = drug_key(drug)
    named = drug.join(ingredients, (centre == ingredients._dcentre) & (concept_id == ingredients._dcid)
                      & (source_value == ingredients._dsv))
    named = named.filter(named._in_scope)
    joined = named.join(keys, PERSON_KEY)
    return joined.select(
        "_centre",
        patient_id=joined.patient_id,
        ingredient=joined.ingredient,
        ingredient_concept_id=joined.ingredient_concept_id,
        drug_class=joined.drug_class,
        start_date=joined.drug_exposure_start_date,
        end_date=joined.drug_exposure_end_date,
        reason_stopped=joined.stop_reason,
        source_line=ibis.null("int32"),
        source_text=joined.drug_source_value,
        **_provenance(joined, joined.drug_exposure_id, "drug_exposure"),
    )


def _assessments(cdm: dict[str, ir.Table], keys: ir.Table, value_words: ir.Table | None) -> ir.Table:
    if "measurement" not in cdm or value_words is None:
        return _empty({"_centre": "int32", "patient_id": "string", "assessment_date": "date",
                       "response": "string", "kind": "string", "source": "string", "source_table": "string",
                       "source_key": "int64",
                       "raw_response": "string"})
    m = cdm["measurement"]
    name = m.measurement_source_value.lower()
    response = ibis.literal(False)
    for word in RESPONSE_WORDS:
        response = response | name.contains(word).fill_null(False)
    rows = m.filter(response)
    rows = rows.left_join(value_words, rows.value_source_value == value_words._vsv)
    joined = rows.join(keys, PERSON_KEY)
    return joined.select(
        "_centre",
        patient_id=joined.patient_id,
        assessment_date=joined.measurement_date,
        response=joined.v_response,
        kind=ibis.literal("timepoint"),
        **_provenance(joined, joined.measurement_id, "measurement"),
        raw_response=joined.value_source_value,
    )


def _events(cdm: dict[str, ir.Table], keys: ir.Table) -> ir.Table:
    parts: list[ir.Table] = []
    if "death" in cdm:
        d = cdm["death"].join(keys, PERSON_KEY)
        parts.append(d.select("_centre", patient_id=d.patient_id, event_type=ibis.literal("death"),
                              event_date=d.death_date, **_provenance(d, d.person_id, "death")))
    if "episode" in cdm:
        episode = cdm["episode"]
        e = episode.filter(episode.episode_concept_id == DISEASE_PROGRESSION).join(keys, PERSON_KEY)
        parts.append(e.select("_centre", patient_id=e.patient_id, event_type=ibis.literal("progression"),
                              event_date=e.episode_start_date, **_provenance(e, e.episode_id, "episode")))
    if "observation_period" in cdm:
        p = cdm["observation_period"].join(keys, PERSON_KEY)
        parts.append(p.select("_centre", patient_id=p.patient_id, event_type=ibis.literal("last_contact"),
                              event_date=p.observation_period_end_date,
                              **_provenance(p, p.observation_period_id, "observation_period")))
    if not parts:
        return _empty({"_centre": "int32", "patient_id": "string", "event_type": "string", "event_date": "date",
                       "source": "string", "source_table": "string", "source_key": "int64"})
    return _union(parts)
