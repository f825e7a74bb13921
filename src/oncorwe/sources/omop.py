"""OMOP CDM v5.4 -> the canonical tables, as Ibis expressions (DuckDB, PostgreSQL, Spark alike).

:func:`canonical_tables` builds one expression per canonical table over person, drug_exposure,
measurement, condition_occurrence, death, observation_period and episode; nothing is executed until
the caller asks (``to_pyarrow``), so the same mapping can be materialised inside the engine at scale.
The mapping, table by table:

- patients: ``person`` (gender concept 8507/8532, year of birth, ``person_source_value`` as the
  centre's own id, else ``person_id``); diagnosis date = the earliest melanoma condition (concept
  141232, or a source value or concept name naming melanoma), primary site from its source value or
  concept name; M category from Cancer Modifier measurements
  (M1a 1635100, M1b 1634463, M1c 1635519/1635338, M1d 1634064: the highest recorded); stage IV when a
  distant-metastasis category or "Metastatic malignant neoplasm" (432851) is recorded; brain metastases from "Metastasis to brain" (36768862),
  false when absent; ECOG (36305384, 4308014) and LDH (3016436, with ``range_high`` as the upper limit
  of normal; µkat/L converted to U/L) from the earliest measurement; BRAF from a measurement whose
  source value names BRAF, by the words of its ``value_source_value``.
- drug_exposures: one row per ``drug_exposure`` row; the ingredient by a standard
  ``drug_concept_id`` (below 2,000,000,000: local ids mean nothing outside their site), else by the
  words of ``drug_source_value``, else by the local concept's name in ``concept`` (the caller passes
  the lookups; unknown drugs get a null ingredient, which harmonisation quarantines).
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

__all__ = ["M_STAGE_CONCEPTS", "OMOP_TABLES", "attribute_rows", "canonical_tables", "record_counts"]

OMOP_TABLES = (
    "person", "observation_period", "condition_occurrence", "drug_exposure", "measurement", "death",
    "episode", "episode_event",
)
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


def _table(con: Any, name: str, database: str | None) -> ir.Table | None:
    try:
        names = con.list_tables(database=database) if database else con.list_tables()
    except Exception:
        names = con.list_tables()
    if name not in names:
        return None
    return con.table(name, database=database) if database else con.table(name)


def _named(con: Any, table: ir.Table, column: str, database: str | None) -> ir.Table:
    """``table`` with ``<column>_name``: the lower-case concept name (null without a concept table)."""
    concept = _table(con, "concept", database)
    name = f"{column}_name"
    if concept is None:
        return table.mutate(**{name: ibis.null("string")})
    names = concept.select(_cid=concept.concept_id, _cname=concept.concept_name.lower())
    joined = table.left_join(names, table[column] == names._cid)
    return joined.select(*[joined[c] for c in table.columns], **{name: joined._cname})


def _source(centre_id: str, file: str, table: str, key: ir.Value) -> ir.StringValue:
    return ibis.literal(f"{centre_id}/{file}#{table}:") + key.cast("string")


def record_counts(con: Any, *, database: str | None = None) -> dict[str, int]:
    """Rows per OMOP table present (for the reconciliation)."""
    counts: dict[str, int] = {}
    for name in OMOP_TABLES:
        table = _table(con, name, database)
        if table is not None:
            counts[name] = int(table.count().to_pyarrow().as_py())
    return counts


def attribute_rows(con: Any, *, centre_id: str, database: str | None = None) -> ir.Table | None:
    """The condition and measurement rows the patients mapping reads (melanoma and metastatic
    conditions; M category, brain metastasis, ECOG, LDH and BRAF measurements), as
    (``table``, ``row`` = primary key, ``patient_id``), for the reconciliation."""
    person = _table(con, "person", database)
    if person is None:
        return None
    local_id = person.person_source_value.cast("string").strip()
    persons = person.select(
        person_id=person.person_id,
        patient_id=ibis.literal(f"{centre_id}:")
        + ibis.ifelse(local_id.isnull() | (local_id == ""), person.person_id.cast("string"), local_id),
    )
    parts: list[ir.Table] = []
    condition = _table(con, "condition_occurrence", database)
    if condition is not None:
        condition = _named(con, condition, "condition_concept_id", database)
        used = (
            condition.condition_concept_id.isin((*MELANOMA_CONCEPTS, METASTATIC_NEOPLASM))
            | ibis.coalesce(condition.condition_source_value, "").lower().contains("melanom")
            | ibis.coalesce(condition.condition_concept_id_name, "").contains("melanom")
        )
        rows = condition.filter(used).join(persons, "person_id")
        parts.append(rows.select(table=ibis.literal("condition_occurrence"),
                                 row=rows.condition_occurrence_id.cast("int64"), patient_id=rows.patient_id))
    m = _table(con, "measurement", database)
    if m is not None:
        concepts = (*M_STAGE_CONCEPTS, BRAIN_METASTASIS, *ECOG_CONCEPTS, LDH_CONCEPT)
        name = ibis.coalesce(m.measurement_source_value, "").lower()
        used = m.measurement_concept_id.isin(concepts) | name.contains("braf")
        used = used & ~(name.contains("recist") | name.contains("response"))  # responses: assessments
        rows = m.filter(used).join(persons, "person_id")
        parts.append(rows.select(table=ibis.literal("measurement"),
                                 row=rows.measurement_id.cast("int64"), patient_id=rows.patient_id))
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out


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
    """The canonical tables of one OMOP database as Ibis expressions.

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
    person = _table(con, "person", database)
    if person is None:
        raise ValueError("the database has no person table: not an OMOP CDM")
    local_id = person.person_source_value.cast("string").strip()
    persons = person.select(
        person_id=person.person_id,
        patient_id=ibis.literal(f"{centre_id}:")
        + ibis.ifelse(local_id.isnull() | (local_id == ""), person.person_id.cast("string"), local_id),
    )
    ing = ibis.memtable(ingredients)
    words = ibis.memtable(drug_words)
    vwords = ibis.memtable(value_words)
    out: dict[str, ir.Table] = {}
    out["patients"] = _patients(con, person, persons, vwords, centre_id, file, database)
    out["drug_exposures"] = _drug_exposures(con, persons, ing, words, centre_id, file, database)
    out["assessments"] = _assessments(con, persons, vwords, centre_id, file, database)
    out["events"] = _events(con, persons, centre_id, file, database)
    return out


def _empty(schema: dict[str, str]) -> ir.Table:
    return ibis.memtable(pa.table({k: pa.array([], type=_ARROW[v]) for k, v in schema.items()}))


_ARROW = {"string": pa.string(), "date": pa.date32(), "int64": pa.int64(), "float64": pa.float64(),
          "boolean": pa.bool_(), "int32": pa.int32(), "int8": pa.int8()}


def _patients(
    con: Any, person: ir.Table, persons: ir.Table, vwords: ir.Table, centre_id: str, file: str,
    database: str | None,
) -> ir.Table:
    base = person.select(
        person_id=person.person_id,
        sex=ibis.cases((person.gender_concept_id == MALE, "male"), (person.gender_concept_id == FEMALE, "female"),
                       else_=ibis.null("string")),
        birth_year=person.year_of_birth.cast("int32"),
        source=_source(centre_id, file, "person", person.person_id),
    )
    condition = _table(con, "condition_occurrence", database)
    if condition is not None:
        condition = _named(con, condition, "condition_concept_id", database)
        source_words = condition.condition_source_value.lower().strip()
        named = source_words.contains("melanom") | condition.condition_concept_id_name.contains("melanom")
        melanoma = condition.filter(condition.condition_concept_id.isin(MELANOMA_CONCEPTS) | named)
        site_words = vwords.filter(vwords.field == "primary_site")
        first = melanoma.group_by("person_id").aggregate(diagnosis_date=melanoma.condition_start_date.min())
        by_source = melanoma.left_join(site_words, melanoma.condition_source_value.lower().strip() == site_words.word)
        by_source = by_source.select(
            *[by_source[c] for c in melanoma.columns], source_site=by_source.value)
        name_words = site_words.view()
        by_name = by_source.left_join(name_words, by_source.condition_concept_id_name == name_words.word)
        sites = by_name.group_by("person_id").aggregate(
            site_word=ibis.coalesce(by_name.source_site, by_name.value).min(),
            skin=(by_name.condition_concept_id == MELANOMA_CONCEPTS[0]).any(),
        )
        metastatic = condition.filter(condition.condition_concept_id == METASTATIC_NEOPLASM)
        metastatic = metastatic.group_by("person_id").aggregate(metastatic=ibis.literal(True))
        base = base.left_join(first, "person_id").drop("person_id_right")
        base = base.left_join(sites, "person_id").drop("person_id_right")
        base = base.left_join(metastatic, "person_id").drop("person_id_right")
        base = base.mutate(primary_site=ibis.coalesce(base.site_word, ibis.ifelse(base.skin, "cutaneous", ibis.null("string"))))
        base = base.drop("site_word", "skin")
    else:
        base = base.mutate(diagnosis_date=ibis.null("date"), primary_site=ibis.null("string"),
                           metastatic=ibis.null("boolean"))
    measurement = _table(con, "measurement", database)
    if measurement is not None:
        base = _measured(base, measurement, vwords)
    else:
        base = base.mutate(m_stage=ibis.null("string"), brain_metastases=ibis.null("boolean"),
                           braf_v600=ibis.null("boolean"), ecog=ibis.null("int8"),
                           ldh_value=ibis.null("float64"), ldh_uln=ibis.null("float64"))
    joined = base.join(persons, "person_id")
    return joined.select(
        patient_id=joined.patient_id,
        centre_id=ibis.literal(centre_id),
        sex=joined.sex,
        birth_year=joined.birth_year,
        reported_age_years=ibis.null("float64"),
        diagnosis_date=joined.diagnosis_date.cast("date"),
        primary_site=joined.primary_site,
        stage=ibis.ifelse(joined.m_stage.notnull() | joined.metastatic.notnull(), ibis.literal("IV"),
                          ibis.null("string")),
        m_stage=joined.m_stage,
        brain_metastases=joined.brain_metastases,
        braf_v600=joined.braf_v600,
        ecog=joined.ecog.cast("int8"),
        ldh_value=joined.ldh_value.cast("float64"),
        ldh_uln=joined.ldh_uln.cast("float64"),
        ldh_elevated=ibis.null("boolean"),  # OMOP holds the value and its range_high, not a flag
        source=joined.source,
    )


def _measured(base: ir.Table, m: ir.Table, vwords: ir.Table) -> ir.Table:
    order = ibis.cases(*[(m.measurement_concept_id == cid, rank) for cid, rank in
                         ((1635100, 1), (1634463, 2), (1635519, 3), (1635338, 3), (1634064, 4))],
                       else_=ibis.null("int64"))
    stages = m.mutate(rank=order).filter(lambda t: t.rank.notnull())
    stages = stages.group_by("person_id").aggregate(top=stages.rank.max())
    stages = stages.mutate(m_stage=ibis.cases((stages.top == 1, "M1a"), (stages.top == 2, "M1b"),
                                              (stages.top == 3, "M1c"), (stages.top == 4, "M1d"),
                                              else_=ibis.null("string"))).drop("top")
    brain = m.filter(m.measurement_concept_id == BRAIN_METASTASIS).group_by("person_id").aggregate(
        brain=ibis.literal(True))
    ecog = _earliest(m.filter(m.measurement_concept_id.isin(ECOG_CONCEPTS)), "ecog", m.value_as_number)
    ldh_rows = m.filter(m.measurement_concept_id == LDH_CONCEPT)
    factor = ibis.ifelse(ldh_rows.unit_source_value.lower().contains("kat"), 60.0, 1.0)
    ldh_rows = ldh_rows.mutate(ldh_u=ldh_rows.value_as_number * factor, uln_u=ldh_rows.range_high * factor)
    ldh = _earliest(ldh_rows, "ldh_value", ldh_rows.ldh_u, extra={"ldh_uln": ldh_rows.uln_u})
    braf_words = vwords.filter(vwords.field == "braf_v600")
    braf_rows = m.filter(m.measurement_source_value.lower().contains("braf"))
    braf_rows = braf_rows.left_join(braf_words, braf_rows.value_source_value.lower().strip() == braf_words.word)
    braf = braf_rows.group_by("person_id").aggregate(
        braf_true=(braf_rows.value == "true").any(), braf_false=(braf_rows.value == "false").any())
    braf = braf.mutate(braf_v600=ibis.cases((braf.braf_true, True), (braf.braf_false, False),
                                            else_=ibis.null("boolean"))).drop("braf_true", "braf_false")
    out = base
    for part in (stages, brain, ecog, ldh, braf):
        out = out.left_join(part, "person_id").drop("person_id_right")
    return out.mutate(brain_metastases=out.brain.notnull()).drop("brain")


def _earliest(rows: ir.Table, name: str, value: ir.Value, extra: dict[str, ir.Value] | None = None) -> ir.Table:
    ranked = rows.mutate(
        _value=value, **(extra or {}),
        _rank=ibis.row_number().over(group_by=rows.person_id, order_by=[rows.measurement_date, rows.measurement_id]),
    )
    first = ranked.filter(ranked._rank == 0)
    return first.select("person_id", **{name: first._value}, **{k: first[k] for k in (extra or {})})


def _drug_exposures(
    con: Any, persons: ir.Table, ing: ir.Table, words: ir.Table, centre_id: str, file: str,
    database: str | None,
) -> ir.Table:
    drug = _table(con, "drug_exposure", database)
    if drug is None:
        return _empty({"patient_id": "string", "ingredient": "string", "ingredient_concept_id": "int64",
                       "drug_class": "string", "start_date": "date", "end_date": "date",
                       "reason_stopped": "string", "source_line": "int32", "source_text": "string",
                       "source": "string", "source_key": "int64"})
    drug = _named(con, drug, "drug_concept_id", database)
    # a standard concept id names the ingredient; a local id only through its words
    standard = ing.filter(ing.concept_id < LOCAL_CONCEPT_MIN)
    by_concept = drug.left_join(standard, drug.drug_concept_id == standard.concept_id)
    by_concept = by_concept.select(
        *[by_concept[c] for c in drug.columns],
        c_ingredient=by_concept.ingredient, c_class=by_concept.drug_class, c_id=by_concept.concept_id,
    )
    by_source = by_concept.left_join(words, by_concept.drug_source_value.lower().strip() == words.word)
    by_source = by_source.select(
        *[by_source[c] for c in by_concept.columns],
        s_ingredient=by_source.ingredient, s_class=by_source.drug_class, s_id=by_source.concept_id,
    )
    name_words = words.view()
    by_word = by_source.left_join(name_words, by_source.drug_concept_id_name == name_words.word)
    by_word = by_word.mutate(
        ingredient=ibis.coalesce(by_word.s_ingredient, by_word.ingredient),
        drug_class=ibis.coalesce(by_word.s_class, by_word.drug_class),
        concept_id=ibis.coalesce(by_word.s_id, by_word.concept_id),
    )
    joined = by_word.join(persons, "person_id")
    return joined.select(
        patient_id=joined.patient_id,
        ingredient=ibis.coalesce(joined.c_ingredient, joined.ingredient),
        ingredient_concept_id=ibis.coalesce(joined.c_id, joined.concept_id).cast("int64"),
        drug_class=ibis.coalesce(joined.c_class, joined.drug_class),
        start_date=joined.drug_exposure_start_date.cast("date"),
        end_date=joined.drug_exposure_end_date.cast("date"),
        reason_stopped=joined.stop_reason.cast("string"),
        source_line=ibis.null("int32"),
        source_text=joined.drug_source_value.cast("string"),
        source=_source(centre_id, file, "drug_exposure", joined.drug_exposure_id),
        source_key=joined.drug_exposure_id.cast("int64"),
    )


def _assessments(
    con: Any, persons: ir.Table, vwords: ir.Table, centre_id: str, file: str, database: str | None
) -> ir.Table:
    m = _table(con, "measurement", database)
    schema = {"patient_id": "string", "assessment_date": "date", "response": "string", "kind": "string",
              "source": "string", "source_key": "int64", "raw_response": "string"}
    if m is None:
        return _empty(schema)
    words = vwords.filter(vwords.field == "response")
    name = m.measurement_source_value.lower()
    rows = m.filter(name.contains("recist") | name.contains("response"))
    rows = rows.left_join(words, rows.value_source_value.lower().strip() == words.word)
    joined = rows.join(persons, "person_id")
    return joined.select(
        patient_id=joined.patient_id,
        assessment_date=joined.measurement_date.cast("date"),
        response=joined.value,
        kind=ibis.literal("timepoint"),
        source=_source(centre_id, file, "measurement", joined.measurement_id),
        source_key=joined.measurement_id.cast("int64"),
        raw_response=joined.value_source_value.cast("string"),
    )


def _events(con: Any, persons: ir.Table, centre_id: str, file: str, database: str | None) -> ir.Table:
    parts: list[ir.Table] = []
    death = _table(con, "death", database)
    if death is not None:
        d = death.join(persons, "person_id")
        parts.append(d.select(patient_id=d.patient_id, event_type=ibis.literal("death"),
                              event_date=d.death_date.cast("date"),
                              source=_source(centre_id, file, "death", d.person_id)))
    episode = _table(con, "episode", database)
    if episode is not None:
        e = episode.filter(episode.episode_concept_id == DISEASE_PROGRESSION).join(persons, "person_id")
        parts.append(e.select(patient_id=e.patient_id, event_type=ibis.literal("progression"),
                              event_date=e.episode_start_date.cast("date"),
                              source=_source(centre_id, file, "episode", e.episode_id)))
    period = _table(con, "observation_period", database)
    if period is not None:
        p = period.join(persons, "person_id")
        parts.append(p.select(patient_id=p.patient_id, event_type=ibis.literal("last_contact"),
                              event_date=p.observation_period_end_date.cast("date"),
                              source=_source(centre_id, file, "observation_period", p.observation_period_id)))
    if not parts:
        return _empty({"patient_id": "string", "event_type": "string", "event_date": "date", "source": "string"})
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out
