"""OMOP CDM v5.4 -> the canonical tables, as Ibis expressions (DuckDB, PostgreSQL, Spark alike).

The mapping runs over *one or many* CDMs at once. :func:`cdm_tables` reads one database's tables
(only the columns the mapping uses, in fixed types) and adds its centre as constant columns
(:func:`cdm_constants`: ``_centre``, a small integer the joins use, ``centre_id`` and ``_src``, the
provenance prefix); :func:`union_cdm` stacks several centres' tables (``UNION ALL``); :func:`map_cdm`
maps them, every join keyed by (``_centre``, ``person_id``), so the mapping of a network of CDMs is
compiled and run once instead of once per centre. Per-row string work is kept off the large tables:
the words of ``drug_source_value`` are looked up once per distinct value, and the names of local
concepts once per concept.
:func:`canonical_tables` is the one-database case. Nothing is executed until the caller asks
(``to_pyarrow``, ``CREATE TABLE ... AS``). The mapping, table by table:

- patients: ``person`` (gender concept 8507/8532, year of birth, ``person_source_value`` as the
  centre's own id, else ``person_id``); diagnosis date = the earliest melanoma condition (concept
  141232, or a source value or concept name naming melanoma), primary site from its source value or
  concept name; M category from Cancer Modifier measurements
  (M1a 1635100, M1b 1634463, M1c 1635519/1635338, M1d 1634064: the highest recorded); stage IV when a
  distant-metastasis category or "Metastatic malignant neoplasm" (432851) is recorded; brain
  metastases from "Metastasis to brain" (36768862), false when absent (null when the CDM has no
  measurement table); ECOG (36305384, 4308014) and LDH (3016436, with ``range_high`` as the upper
  limit of normal; µkat/L converted to U/L) from the earliest measurement; BRAF from a measurement
  whose source value names BRAF, by the words of its ``value_source_value``.
- drug_exposures: one row per ``drug_exposure`` row; the ingredient by a standard
  ``drug_concept_id`` (below 2,000,000,000: local ids mean nothing outside their site), else by the
  words of ``drug_source_value``, else by the local concept's name in the centre's own ``concept``
  table (the caller passes the lookups; unknown drugs get a null ingredient, which harmonisation
  quarantines).
- assessments: measurements whose source value names a response (RECIST), by their value words.
- events: ``death`` (death), Disease Progression episodes (32677: progression), the end of each
  ``observation_period`` (last contact).

``source`` is ``"<centre>/<file>#<table>:<primary key>"``.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from oncorwe.sources._omop_cdm import (
    CDM_COLUMNS,
    OMOP_TABLES,
    PERSON_KEY,
    cdm_constants,
    cdm_table_names,
    cdm_tables,
    record_counts,
    union_cdm,
)
from oncorwe.sources._omop_cdm import stack as _union

__all__ = [
    "CDM_COLUMNS",
    "M_STAGE_CONCEPTS",
    "OMOP_TABLES",
    "PERSON_KEY",
    "attribute_rows",
    "canonical_tables",
    "cdm_constants",
    "cdm_table_names",
    "cdm_tables",
    "drug_key",
    "map_cdm",
    "record_counts",
    "union_cdm",
    "word_lookups",
]

MALE, FEMALE = 8507, 8532
MELANOMA_CONCEPTS = (141232,)
#: "Metastatic malignant neoplasm": distant metastatic disease, i.e. stage IV
METASTATIC_NEOPLASM = 432851
#: OMOP reserves ids above this for site-specific concepts: they mean nothing outside their site
LOCAL_CONCEPT_MIN = 2_000_000_000
M_STAGE_CONCEPTS = {1635100: "M1a", 1634463: "M1b", 1635519: "M1c", 1635338: "M1c", 1634064: "M1d"}
BRAIN_METASTASIS = 36768862
ECOG_CONCEPTS = (36305384, 4308014)
LDH_CONCEPT = 3016436
DISEASE_PROGRESSION = 32677
#: unit concepts of U/L and IU/L (the same enzyme activity per litre)
UNIT_PER_LITRE = (8645, 8923)


def _source(rows: ir.Table, key: ir.Value) -> ir.StringValue:
    return rows._src + key.cast("string")


def _named(cdm: dict[str, ir.Table], table: ir.Table, column: str) -> ir.Table:
    """``table`` with ``<column>_name``: the lower-case name of the centre's own concept (null when
    the centre has no concept table or the concept is not in it)."""
    name = f"{column}_name"
    concept = cdm.get("concept")
    if concept is None:
        return table.mutate(**{name: ibis.null("string")})
    names = concept.select(_cno=concept._centre, _cid=concept.concept_id, _cname=concept.concept_name.lower())
    joined = table.left_join(names, (table._centre == names._cno) & (table[column] == names._cid))
    return joined.select(*[joined[c] for c in table.columns], **{name: joined._cname})


#: white space at either end, as a regular expression: Ibis' ``strip()`` writes its characters
#: into the SQL as escapes Spark does not read (``'\v'`` is a "v" there), which strips letters
_ENDS = r"^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$"


def _strip(text: ir.StringValue) -> ir.StringValue:
    """``text`` without white space (space, tab, line feed, carriage return, vertical tab, form
    feed) at either end, alike on DuckDB, PostgreSQL and Spark."""
    return text.re_replace(_ENDS, "")


def _patient_id(person: ir.Table) -> ir.StringValue:
    """``<centre>:<the centre's own id>``, the person_id when the centre gives none."""
    local_id = _strip(person.person_source_value)
    return person.centre_id + ":" + ibis.ifelse(local_id.isnull() | (local_id == ""),
                                                person.person_id.cast("string"), local_id)


def _persons(person: ir.Table) -> ir.Table:
    return person.select("_centre", "person_id", patient_id=_patient_id(person))


def attribute_rows(con: Any, *, centre_id: str, database: str | None = None) -> ir.Table | None:
    """The condition and measurement rows the patients mapping reads (melanoma and metastatic
    conditions; M category, brain metastasis, ECOG, LDH and BRAF measurements), as
    (``table``, ``row`` = primary key, ``patient_id``), for the reconciliation."""
    try:
        cdm = cdm_tables(con, centre_id=centre_id, file="", database=database)
    except ValueError:
        return None
    persons = _persons(cdm["person"])
    parts: list[ir.Table] = []
    if "condition_occurrence" in cdm:
        condition = _named(cdm, cdm["condition_occurrence"], "condition_concept_id")
        used = (
            condition.condition_concept_id.isin((*MELANOMA_CONCEPTS, METASTATIC_NEOPLASM))
            | ibis.coalesce(condition.condition_source_value, "").lower().contains("melanom")
            | ibis.coalesce(condition.condition_concept_id_name, "").contains("melanom")
        )
        rows = condition.filter(used).join(persons, PERSON_KEY)
        parts.append(rows.select(table=ibis.literal("condition_occurrence"),
                                 row=rows.condition_occurrence_id, patient_id=rows.patient_id))
    if "measurement" in cdm:
        m = cdm["measurement"]
        concepts = (*M_STAGE_CONCEPTS, BRAIN_METASTASIS, *ECOG_CONCEPTS, LDH_CONCEPT)
        name = ibis.coalesce(m.measurement_source_value, "").lower()
        used = m.measurement_concept_id.isin(concepts) | name.contains("braf")
        used = used & ~(name.contains("recist") | name.contains("response"))  # responses: assessments
        rows = m.filter(used).join(persons, PERSON_KEY)
        parts.append(rows.select(table=ibis.literal("measurement"), row=rows.measurement_id,
                                 patient_id=rows.patient_id))
    return _union(parts) if parts else None


def canonical_tables(
    con: Any,
    *,
    centre_id: str,
    file: str,
    ingredients: pa.Table,
    drug_words: pa.Table,
    value_words: pa.Table,
    database: str | None = None,
) -> dict[str, ir.Table]:
    """The canonical tables of one OMOP database as Ibis expressions (:func:`map_cdm` of its
    :func:`cdm_tables`, the lookups sent along as in-memory tables).

    Parameters
    ----------
    con
        An Ibis backend holding the CDM tables (DuckDB, PostgreSQL, ...).
    centre_id, file
        The centre the database belongs to and how provenance names it.
    ingredients
        ``concept_id`` (int64), ``ingredient``, ``drug_class``: the study's ingredient concepts.
    drug_words
        ``word`` (lower case), ``ingredient``, ``concept_id``, ``drug_class``: drug source values.
    value_words
        ``field`` (``braf_v600``, ``response``, ``primary_site``), ``word`` (lower case), ``value``.
    database
        Schema (PostgreSQL) or database holding the CDM tables, when not the default.
    """
    cdm = cdm_tables(con, centre_id=centre_id, file=file, database=database)
    return map_cdm(cdm, ingredients=ibis.memtable(ingredients), drug_words=ibis.memtable(drug_words),
                   value_words=ibis.memtable(value_words))


def map_cdm(
    cdm: dict[str, ir.Table],
    *,
    ingredients: ir.Table,
    drug_words: ir.Table,
    value_words: ir.Table,
    persons: ir.Table | None = None,
    word_tables: dict[str, ir.Table] | None = None,
) -> dict[str, ir.Table]:
    """The canonical tables of the CDM tables ``cdm`` (one centre's :func:`cdm_tables` or several
    centres' :func:`union_cdm`), as Ibis expressions.

    The lookups are tables of the same backend (or in-memory tables): see :func:`canonical_tables`.
    ``persons`` (``_centre``, ``person_id``, ``patient_id``) is the person -> patient id table
    the other tables join with; by default it is computed from ``cdm["person"]`` (pass a stored
    copy, e.g. of the ``patients`` result, to compute it once); ``word_tables`` is
    :func:`word_lookups` (by default computed inside the queries). Besides the canonical columns,
    every table carries ``_centre``, ``patients`` also ``person_id``; ``drug_exposures`` and
    ``assessments`` carry ``source_key`` (the CDM primary key), ``assessments`` ``raw_response``.
    """
    persons = _persons(cdm["person"]) if persons is None else persons
    words = (word_lookups(cdm, ingredients=ingredients, drug_words=drug_words, value_words=value_words)
             if word_tables is None else word_tables)
    # computed inline, a lookup derives from the very table it is joined back to: as a view of its
    # own, Ibis cannot bind the join's right side to the left table's equal expression
    words = {name: table.view() for name, table in words.items()}
    return {
        "patients": _patients(cdm, words, value_words),
        "drug_exposures": _drug_exposures(cdm, persons, words.get("drug")),
        "assessments": _assessments(cdm, persons, words.get("measurement_value")),
        "events": _events(cdm, persons),
    }


def _empty(schema: dict[str, str]) -> ir.Table:
    return ibis.memtable(pa.table({k: pa.array([], type=_ARROW[v]) for k, v in schema.items()}))


_ARROW = {"string": pa.string(), "date": pa.date32(), "int64": pa.int64(), "float64": pa.float64(),
          "boolean": pa.bool_(), "int32": pa.int32(), "int8": pa.int8()}


def _patients(cdm: dict[str, ir.Table], words: dict[str, ir.Table], value_words: ir.Table) -> ir.Table:
    person = cdm["person"]
    base = person.select(
        "_centre", "person_id", "centre_id", "_has_measurement",
        patient_id=_patient_id(person),
        sex=ibis.cases((person.gender_concept_id == MALE, "male"), (person.gender_concept_id == FEMALE, "female"),
                       else_=ibis.null("string")),
        birth_year=person.year_of_birth.cast("int32"),
        source=_source(person, person.person_id),
    )
    if "condition_occurrence" in cdm:
        base = _left(base, _diagnosed(cdm, words["condition_source"], value_words))
        base = base.mutate(primary_site=ibis.coalesce(base.site_word, ibis.ifelse(base.skin, "cutaneous", ibis.null("string"))))
        base = base.drop("site_word", "skin")
    else:
        base = base.mutate(diagnosis_date=ibis.null("date"), primary_site=ibis.null("string"),
                           metastatic=ibis.null("boolean"))
    if "measurement" in cdm:
        base = _measured(base, cdm["measurement"], words["measurement_value"])
    else:
        base = base.mutate(m_stage=ibis.null("string"), brain_metastases=ibis.null("boolean"),
                           braf_v600=ibis.null("boolean"), ecog=ibis.null("int8"),
                           ldh_value=ibis.null("float64"), ldh_uln=ibis.null("float64"))
    return base.select(
        "_centre", "person_id", "patient_id", "centre_id", "sex", "birth_year",
        reported_age_years=ibis.null("float64"),
        diagnosis_date=base.diagnosis_date.cast("date"),
        primary_site=base.primary_site,
        stage=ibis.ifelse(base.m_stage.notnull() | base.metastatic.notnull(), ibis.literal("IV"),
                          ibis.null("string")),
        m_stage=base.m_stage,
        brain_metastases=base.brain_metastases,
        braf_v600=base.braf_v600,
        ecog=base.ecog.cast("int8"),
        ldh_value=base.ldh_value.cast("float64"),
        ldh_uln=base.ldh_uln.cast("float64"),
        ldh_elevated=ibis.null("boolean"),  # OMOP holds the value and its range_high, not a flag
        source=base.source,
    )


def _diagnosed(cdm: dict[str, ir.Table], source_words: ir.Table, value_words: ir.Table) -> ir.Table:
    """Per person with a melanoma or metastatic condition: diagnosis date, site words, whether a
    skin melanoma concept and a metastatic neoplasm are recorded (true or null), in one pass."""
    condition = cdm["condition_occurrence"]
    named = condition.left_join(source_words, condition.condition_source_value == source_words._csv)
    named = named.select(*[named[c] for c in condition.columns], "c_melanoma", "c_site")
    if "concept" in cdm:  # the centre's own concept names, read once per concept
        concept = cdm["concept"]
        names = concept.select(_cno=concept._centre, _cid=concept.concept_id, _name=concept.concept_name.lower())
        sites = value_words.filter(value_words.field == "primary_site")
        names = names.left_join(sites, names._name == sites.word)
        names = names.select("_cno", "_cid", n_melanoma=names._name.contains("melanom"), n_site=names.value)
        joined = named.left_join(names, (named._centre == names._cno) & (named.condition_concept_id == names._cid))
        named = joined.select(*[joined[c] for c in named.columns], "n_melanoma", "n_site")
    else:
        named = named.mutate(n_melanoma=ibis.null("boolean"), n_site=ibis.null("string"))
    melanoma = named.condition_concept_id.isin(MELANOMA_CONCEPTS) | named.c_melanoma | named.n_melanoma
    rows = named.mutate(_melanoma=melanoma.fill_null(False),
                        _metastatic=(named.condition_concept_id == METASTATIC_NEOPLASM).fill_null(False))
    rows = rows.filter(rows._melanoma | rows._metastatic)
    is_melanoma = rows._melanoma
    return rows.group_by(PERSON_KEY).aggregate(
        diagnosis_date=rows.condition_start_date.min(where=is_melanoma),
        site_word=ibis.coalesce(rows.c_site, rows.n_site).min(where=is_melanoma),
        skin=(rows.condition_concept_id == MELANOMA_CONCEPTS[0]).any(where=is_melanoma),
        metastatic=ibis.ifelse(rows._metastatic.any(), True, ibis.null("boolean")),
    )


def _left(base: ir.Table, part: ir.Table) -> ir.Table:
    """``base`` left-joined with a per-person ``part`` (keyed by centre and person)."""
    return base.left_join(part, PERSON_KEY).drop("_centre_right", "person_id_right")


def _measured(base: ir.Table, m: ir.Table, value_words: ir.Table) -> ir.Table:
    """``base`` with m_stage, brain_metastases, braf_v600 (one pass over the measurements that
    carry them), ecog and ldh_value / ldh_uln (the earliest of each)."""
    order = ibis.cases(*[(m.measurement_concept_id == cid, rank) for cid, rank in
                         ((1635100, 1), (1634463, 2), (1635519, 3), (1635338, 3), (1634064, 4))],
                       else_=ibis.null("int64"))
    rows = m.mutate(_rank=order, _brain=m.measurement_concept_id == BRAIN_METASTASIS,
                    _braf=m.measurement_source_value.lower().contains("braf").fill_null(False))
    rows = rows.filter(rows._rank.notnull() | rows._brain | rows._braf)
    worded = rows.left_join(value_words, rows.value_source_value == value_words._vsv)
    braf = ibis.ifelse(worded._braf, worded.v_braf, ibis.null("string"))  # the words of BRAF results only
    facts = worded.group_by(PERSON_KEY).aggregate(
        top=worded._rank.max(), brain=worded._brain.any(),
        braf_true=(braf == "true").any(), braf_false=(braf == "false").any(),
    )
    facts = facts.select(
        *PERSON_KEY, "brain",
        m_stage=ibis.cases((facts.top == 1, "M1a"), (facts.top == 2, "M1b"), (facts.top == 3, "M1c"),
                           (facts.top == 4, "M1d"), else_=ibis.null("string")),
        braf_v600=ibis.cases((facts.braf_true, True), (facts.braf_false, False), else_=ibis.null("boolean")),
    )
    ecog = _earliest(m.filter(m.measurement_concept_id.isin(ECOG_CONCEPTS)), "ecog", m.value_as_number)
    ldh_rows = m.filter(m.measurement_concept_id == LDH_CONCEPT)
    factor = ibis.ifelse(ldh_rows.unit_source_value.lower().contains("kat"), 60.0, 1.0)
    ldh_rows = ldh_rows.mutate(ldh_u=ldh_rows.value_as_number * factor, uln_u=ldh_rows.range_high * factor)
    ldh = _earliest(ldh_rows, "ldh_value", ldh_rows.ldh_u, extra={"ldh_uln": ldh_rows.uln_u})
    out = base
    for part in (facts, ecog, ldh):
        out = _left(out, part)
    # a CDM without a measurement table says nothing about brain metastases (null, not false)
    known = ibis.ifelse(out._has_measurement, out.brain.fill_null(False), ibis.null("boolean"))
    return out.mutate(brain_metastases=known).drop("brain")


def _earliest(rows: ir.Table, name: str, value: ir.Value, extra: dict[str, ir.Value] | None = None) -> ir.Table:
    ranked = rows.mutate(
        _value=value, **(extra or {}),
        _rank=ibis.row_number().over(group_by=[rows._centre, rows.person_id],
                                     order_by=[rows.measurement_date, rows.measurement_id]),
    )
    first = ranked.filter(ranked._rank == 0)
    return first.select(*PERSON_KEY, **{name: first._value}, **{k: first[k] for k in (extra or {})})


_DRUG_COLUMNS = {"_centre": "int32", "patient_id": "string", "ingredient": "string",
                 "ingredient_concept_id": "int64", "drug_class": "string", "start_date": "date",
                 "end_date": "date", "reason_stopped": "string", "source_line": "int32",
                 "source_text": "string", "source": "string", "source_key": "int64"}


def _drug_ingredients(cdm: dict[str, ir.Table], ing: ir.Table, words: ir.Table) -> ir.Table:
    drug = cdm["drug_exposure"]
    centre, concept_id, source_value = drug_key(drug)
    keys = drug.select(_dcentre=centre, _dcid=concept_id, _dsv=source_value).distinct()
    # a standard concept id names the ingredient; a local id only through its words
    standard = ing.filter(ing.concept_id < LOCAL_CONCEPT_MIN)
    by_concept = keys.left_join(standard, keys._dcid == standard.concept_id)
    by_concept = by_concept.select("_dcentre", "_dcid", "_dsv", c_ingredient=by_concept.ingredient,
                                   c_class=by_concept.drug_class, c_id=by_concept.concept_id)
    by_source = by_concept.left_join(words, _strip(by_concept._dsv.lower()) == words.word)
    by_source = by_source.select(*[by_source[c] for c in by_concept.columns], s_ingredient=by_source.ingredient,
                                 s_class=by_source.drug_class, s_id=by_source.concept_id)
    if "concept" in cdm:  # a local concept's name, and its words
        concept = cdm["concept"]
        names = concept.select(_cno=concept._centre, _cid=concept.concept_id, _cname=concept.concept_name.lower())
        named = names.join(words, names._cname == words.word)
        named = named.select("_cno", "_cid", n_ingredient=named.ingredient, n_class=named.drug_class,
                             n_id=named.concept_id)
        by_name = by_source.left_join(named, (by_source._dcentre == named._cno) & (by_source._dcid == named._cid))
        by_name = by_name.select(*[by_name[c] for c in by_source.columns], "n_ingredient", "n_class", "n_id")
    else:
        by_name = by_source.mutate(n_ingredient=ibis.null("string"), n_class=ibis.null("string"),
                                   n_id=ibis.null("int64"))
    return by_name.select(
        "_dcentre", "_dcid", "_dsv",
        ingredient=ibis.coalesce(by_name.c_ingredient, by_name.s_ingredient, by_name.n_ingredient),
        ingredient_concept_id=ibis.coalesce(by_name.c_id, by_name.s_id, by_name.n_id).cast("int64"),
        drug_class=ibis.coalesce(by_name.c_class, by_name.s_class, by_name.n_class),
    )


def word_lookups(
    cdm: dict[str, ir.Table], *, ingredients: ir.Table, drug_words: ir.Table, value_words: ir.Table
) -> dict[str, ir.Table]:
    """The words of the CDM's free-text values, read once per distinct value (a few dozen to a
    few hundred) instead of once per row:

    - ``drug``: per distinct :func:`drug_key` (``_dcentre``, ``_dcid``, ``_dsv``) the
      ``ingredient``, ``ingredient_concept_id`` and ``drug_class`` it names: by a standard concept
      id (below 2,000,000,000), else by the words of the source value, else by the name of the
      centre's own concept;
    - ``condition_source``: ``_csv`` (a ``condition_source_value``), ``c_melanoma`` (it names
      melanoma), ``c_site`` (the primary site it names);
    - ``measurement_value``: ``_vsv`` (a ``value_source_value``), ``v_response`` (the RECIST
      category it names), ``v_braf`` (the BRAF result it names).

    :func:`map_cdm` computes them inside its queries; at scale store them and pass them
    (``word_tables``), so that the engine plans the joins with them as the small tables they are.
    """
    out: dict[str, ir.Table] = {}
    if "drug_exposure" in cdm:
        out["drug"] = _drug_ingredients(cdm, ingredients, drug_words)
    if "condition_occurrence" in cdm:
        condition = cdm["condition_occurrence"]
        values = condition.select(_csv=condition.condition_source_value).distinct()
        values = values.mutate(_words=_strip(values._csv.lower()))
        sites = value_words.filter(value_words.field == "primary_site")
        values = values.left_join(sites, values._words == sites.word)
        out["condition_source"] = values.select("_csv", c_melanoma=values._words.contains("melanom"),
                                                c_site=values.value)
    if "measurement" in cdm:
        m = cdm["measurement"]
        values = m.select(_vsv=m.value_source_value).distinct()
        # one join with both fields' words, then one row per value (Spark 4.0 mis-plans the same
        # table joined twice in one query)
        fields = value_words.filter(value_words.field.isin(["response", "braf_v600"]))
        values = values.left_join(fields, _strip(values._vsv.lower()) == fields.word)
        out["measurement_value"] = values.group_by("_vsv").aggregate(
            v_response=values.value.max(where=values.field == "response"),
            v_braf=values.value.max(where=values.field == "braf_v600"),
        )
    return out


def drug_key(drug: ir.Table) -> list[ir.Value]:
    """What names a drug exposure's ingredient: its centre, concept id and source value (nulls as
    -1 and "", which name no ingredient either), the key of the ``drug`` table of
    :func:`word_lookups`."""
    return [drug._centre, drug.drug_concept_id.fill_null(-1), drug.drug_source_value.fill_null("")]


def _drug_exposures(cdm: dict[str, ir.Table], persons: ir.Table, ingredients: ir.Table | None) -> ir.Table:
    if "drug_exposure" not in cdm or ingredients is None:
        return _empty(_DRUG_COLUMNS)
    drug = cdm["drug_exposure"]
    centre, concept_id, source_value = drug_key(drug)
    named = drug.left_join(ingredients, (centre == ingredients._dcentre) & (concept_id == ingredients._dcid)
                           & (source_value == ingredients._dsv))
    joined = named.join(persons, PERSON_KEY)
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
        source=_source(joined, joined.drug_exposure_id),
        source_key=joined.drug_exposure_id,
    )


def _assessments(cdm: dict[str, ir.Table], persons: ir.Table, value_words: ir.Table | None) -> ir.Table:
    if "measurement" not in cdm or value_words is None:
        return _empty({"_centre": "int32", "patient_id": "string", "assessment_date": "date",
                       "response": "string", "kind": "string", "source": "string", "source_key": "int64",
                       "raw_response": "string"})
    m = cdm["measurement"]
    name = m.measurement_source_value.lower()
    rows = m.filter(name.contains("recist") | name.contains("response"))
    rows = rows.left_join(value_words, rows.value_source_value == value_words._vsv)
    joined = rows.join(persons, PERSON_KEY)
    return joined.select(
        "_centre",
        patient_id=joined.patient_id,
        assessment_date=joined.measurement_date,
        response=joined.v_response,
        kind=ibis.literal("timepoint"),
        source=_source(joined, joined.measurement_id),
        source_key=joined.measurement_id,
        raw_response=joined.value_source_value,
    )


def _events(cdm: dict[str, ir.Table], persons: ir.Table) -> ir.Table:
    parts: list[ir.Table] = []
    if "death" in cdm:
        d = cdm["death"].join(persons, PERSON_KEY)
        parts.append(d.select("_centre", patient_id=d.patient_id, event_type=ibis.literal("death"),
                              event_date=d.death_date, source=_source(d, d.person_id)))
    if "episode" in cdm:
        episode = cdm["episode"]
        e = episode.filter(episode.episode_concept_id == DISEASE_PROGRESSION).join(persons, PERSON_KEY)
        parts.append(e.select("_centre", patient_id=e.patient_id, event_type=ibis.literal("progression"),
                              event_date=e.episode_start_date, source=_source(e, e.episode_id)))
    if "observation_period" in cdm:
        p = cdm["observation_period"].join(persons, PERSON_KEY)
        parts.append(p.select("_centre", patient_id=p.patient_id, event_type=ibis.literal("last_contact"),
                              event_date=p.observation_period_end_date,
                              source=_source(p, p.observation_period_id)))
    if not parts:
        return _empty({"_centre": "int32", "patient_id": "string", "event_type": "string", "event_date": "date",
                       "source": "string"})
    return _union(parts)
