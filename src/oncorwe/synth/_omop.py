"""OMOP CDM v5.4 in a DuckDB file: person, observation_period, condition_occurrence, drug_exposure
(one row per administration), measurement, death and the oncology extension's episode/episode_event.

Standard concept ids come only from the copied vocabulary file (``data/omop_concepts.csv``) and the
study's protocol (its M-category concepts); what the study's generator design lists as local
concepts gets a local id above 2,000,000,000 with its words in the ``*_source_value`` column. The
study's condition, drugs, cycles and doses are the design's. Rows are appended in chunks, so a million patients stream through in bounded memory.
"""

from __future__ import annotations

import zlib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from oncorwe.synth._background import BackgroundPlan, write_background
from oncorwe.synth._cdm_writer import write_vocabulary
from oncorwe.synth._config import concepts
from oncorwe.synth._design import Design
from oncorwe.synth._records import Course, PatientRecord
from oncorwe.synth._render import Renderer

__all__ = ["OmopWriter"]

LOCAL_BASE = 2_000_000_000

RESPONSE_CONCEPT = {
    "CR": "RECIST complete response",
    "PR": "RECIST partial response",
    "SD": "RECIST stable disease",
    "PD": "RECIST progressive disease",
}
EHR = 32817
FIELD_DRUG_EXPOSURE = 1147094
FIELD_MEASUREMENT = 1147138
#: At most this many administrations of a drug without a limit of its own.
UNLIMITED_DOSES = 1_000_000
_COURSE_FIELDS = ("person_id", "concept", "start", "end", "oral", "step", "max_doses", "word", "reason", "episode")
TABLES = ("person", "observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure", "measurement", "death",
          "episode", "episode_event")
OUTPATIENT = 9202  # Outpatient Visit (data/cdm_vocabulary.csv)


def concept_id(name: str, design: Design) -> int:
    """The design's local id of ``name``, else its standard id from the vocabulary file."""
    local = design.omop.local_concepts.get(name)
    if local is not None:
        return LOCAL_BASE + local[0]
    return concepts()[name].concept_id


@cache
def regimen_concept(regimen: str) -> int:
    """A local id for a regimen (HemOnc regimen concepts are not in the confirmed list)."""
    return LOCAL_BASE + 100_000 + zlib.crc32(regimen.encode("utf-8")) % 800_000


def ddl() -> str:
    return resources.files("oncorwe.synth.data").joinpath("omop_cdm54_ddl.sql").read_text(encoding="utf-8")


#: The columns each table's rows carry, in tuple order (the others stay null).
_ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "race_concept_id", "ethnicity_concept_id",
               "person_source_value", "gender_source_value"),
    "observation_period": ("observation_period_id", "person_id", "observation_period_start_date",
                           "observation_period_end_date", "period_type_concept_id"),
    "condition_occurrence": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                             "condition_type_concept_id", "condition_source_value", "condition_source_concept_id"),
    "measurement": ("measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                    "measurement_type_concept_id", "value_as_number", "value_as_concept_id", "unit_concept_id",
                    "range_high", "measurement_source_value", "unit_source_value", "value_source_value"),
    "death": ("person_id", "death_date", "death_type_concept_id"),
    "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date", "visit_end_date",
                         "visit_type_concept_id", "visit_source_value"),
    "episode": ("episode_id", "person_id", "episode_concept_id", "episode_start_date", "episode_end_date",
                "episode_number", "episode_object_concept_id", "episode_type_concept_id", "episode_source_value"),
    "episode_event": ("episode_id", "event_id", "episode_event_field_concept_id"),
    "concept": ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
                "concept_code", "valid_start_date", "valid_end_date"),
}
_BRAF_VALUE = {"V600E": "BRAF V600E detected", "V600K": "BRAF V600K detected", "wild_type": "BRAF V600 not detected"}


def _with_nulls(frame: pl.DataFrame, raw_schema: dict[str, Any]) -> pl.DataFrame:
    """``frame`` with the table's other columns added as nulls, in DDL order."""
    absent = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in raw_schema.items() if name not in frame.columns]
    return frame.with_columns(absent).select(list(raw_schema))


class OmopWriter:
    """Appends patients to one centre's CDM database, table by table, in chunks.

    Rows are kept as tuples (dates as day numbers) and converted once per chunk; drug
    administrations are expanded from their courses with NumPy, so a million patients stream.
    """

    def __init__(self, path: Path, renderer: Renderer, design: Design, background: BackgroundPlan | None = None) -> None:
        self.path = path
        self.design = design
        self.m_concepts = design.omop.m_concepts
        self.r = renderer
        self.background = background
        self.persons = 0
        if path.exists():
            path.unlink()
        # one thread and no adaptive compression: the file's bytes must repeat run after run
        # a bounded buffer pool: two writers stream a million patients in well under 2 GiB
        self.con = duckdb.connect(str(path), config={"threads": 1, "memory_limit": "256MB"})
        self.con.execute("SET force_compression = 'uncompressed'")
        # blocks from DuckDB's own block allocator, whose reuse follows the (single-threaded, same)
        # sequence of allocations: from the general allocator, a block's unused bytes (the gap in
        # a string segment) held whatever a time-dependent purge had left there, so a centre of
        # ~10,000 patients came out different run after run (the rows the same, the bytes not)
        self.con.execute("SET block_allocator_memory = '256MB'")
        self.con.execute(ddl())
        self.ids = dict.fromkeys(("observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure", "measurement",
                                  "episode"), 0)
        self.schemas = {t: self._schema(t) for t in TABLES}
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        self.drug_columns: dict[str, Any] = {}
        self.drug_links = pl.DataFrame(schema={"episode_id": pl.Int64(), "event_id": pl.Int64(), "episode_event_field_concept_id": pl.Int32()})
        self.courses: dict[str, list[Any]] = {k: [] for k in _COURSE_FIELDS}
        names = [*design.omop.local_concepts, *concepts()]
        self.cid = {name: concept_id(name, design) for name in names}
        omop = design.omop
        self.drug_facts = {
            x: (concept_id(x, design), x in omop.oral, omop.cycle_days.get(x, omop.default_cycle_days),
                omop.max_doses.get(x, UNLIMITED_DOSES))
            for x in design.drug_class
        }

    def _schema(self, table: str) -> dict[str, pl.DataType]:
        cols = self.con.execute(f"DESCRIBE {table}").fetchall()
        mapping = {"INTEGER": pl.Int32(), "BIGINT": pl.Int64(), "DATE": pl.Date(), "TIMESTAMP": pl.Datetime("us"), "VARCHAR": pl.String()}
        return {name: mapping.get(str(typ).split("(")[0], pl.Float64()) for name, typ, *_ in cols}

    def add(self, rec: PatientRecord) -> None:
        """Append one patient's rows (person, period, conditions, measurements, courses, episodes, death)."""
        pid = int(rec.local_id)
        self.persons += 1
        cid = self.cid
        ids = self.ids
        rows = self.rows
        measurements = rows["measurement"]
        rows["person"].append((pid, 8507 if rec.male else 8532, rec.birth_year, 0, 0, rec.local_id, "M" if rec.male else "F"))
        ids["observation_period"] += 1
        rows["observation_period"].append((ids["observation_period"], pid, rec.diagnosis_day, rec.last_contact_day, EHR))
        omop = self.design.omop
        self._condition(pid, omop.condition_by_site.get(rec.primary_site, omop.condition), rec.diagnosis_day, rec.primary_site)
        index = next((c.start for c in rec.courses if c.role == "index"), rec.diagnosis_day)
        first_line = min((c.start for c in rec.courses), default=index)
        self._condition(pid, omop.metastatic, first_line - 14, "stage IV")
        staging = index - 7
        mid = ids["measurement"]
        if rec.m_stage in self.m_concepts:
            mid += 1
            measurements.append((mid, pid, self.m_concepts[rec.m_stage], staging, EHR, None, None, None, None, None, None, rec.m_stage))
        if rec.brain:
            mid += 1
            measurements.append((mid, pid, cid["Metastasis to brain"], staging, EHR, None, None, None, None, None, None, "brain metastases"))
        if rec.braf != "unknown":
            mid += 1
            measurements.append((mid, pid, cid["BRAF V600 mutation analysis"], rec.diagnosis_day + 30, EHR, None,
                                 cid[_BRAF_VALUE[rec.braf]], None, None, "BRAF V600", None, rec.braf))
        if rec.ecog is not None:
            mid += 1
            measurements.append((mid, pid, cid["ECOG Performance Status score"], staging, EHR, float(rec.ecog), None, None, None,
                                 "ECOG", None, None))
        if rec.ldh_value is not None:
            mid += 1
            measurements.append((mid, pid, cid["Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma"], staging, EHR,
                                 rec.ldh_value, None, 8645, rec.ldh_uln, "LDH", "U/L", None))
        response_ids: dict[int, int] = {}
        recist = cid["Tumour response RECIST 1.1"]
        for scan in rec.scans:
            mid += 1
            measurements.append((mid, pid, recist, scan.day, EHR, None, cid[RESPONSE_CONCEPT[scan.response]], None, None,
                                 "RECIST", None, scan.response))
            response_ids[scan.day] = mid
            ids["visit_occurrence"] += 1
            rows["visit_occurrence"].append((ids["visit_occurrence"], pid, OUTPATIENT, scan.day, scan.day, EHR, "OP"))
        ids["measurement"] = mid
        condition = cid[omop.condition]
        for line_no, course in enumerate(sorted(rec.courses, key=lambda x: x.start), start=1):
            self._course(pid, rec, course, line_no)
            if course.progression is not None:
                episode = self._episode(pid, 32677, course.progression, None, condition, "progression", None)
                if course.progression in response_ids:
                    rows["episode_event"].append((episode, response_ids[course.progression], FIELD_MEASUREMENT))
        if rec.death_day is not None:
            rows["death"].append((pid, rec.death_day, EHR))

    def _condition(self, pid: int, name: str, day: int, source: str) -> None:
        cid = self.cid[name]
        self.ids["condition_occurrence"] += 1
        self.rows["condition_occurrence"].append(
            (self.ids["condition_occurrence"], pid, cid, day, EHR, source[:50], cid if cid > LOCAL_BASE else 0)
        )

    def _episode(self, pid: int, concept: int, start: int, end: int | None, obj: int, source: str, number: int | None) -> int:
        self.ids["episode"] += 1
        eid = self.ids["episode"]
        self.rows["episode"].append(
            (eid, pid, concept, start, end, number, obj, 32545 if concept == 32531 else EHR, source[:50])
        )
        return eid

    def _course(self, pid: int, rec: PatientRecord, course: Course, line_no: int) -> None:
        end = course.end if course.end is not None else rec.last_contact_day
        regimen = "+".join(course.ingredients)
        episode = self._episode(pid, 32531, course.start, end, regimen_concept(regimen), regimen, line_no)
        c = self.courses
        reason = None if course.reason is None else course.reason[:20]
        for ingredient in course.ingredients:
            concept, oral, step, max_doses = self.drug_facts[ingredient]
            c["person_id"].append(pid)
            c["concept"].append(concept)
            c["start"].append(course.start)
            c["end"].append(end)
            c["oral"].append(oral)
            c["step"].append(30 if oral else step)
            c["max_doses"].append(max_doses)
            c["word"].append(self.r.drug(ingredient, rec.local_id, line_no)[:50])
            c["reason"].append(reason)
            c["episode"].append(episode)

    def flush(self) -> None:
        self._expand_courses()
        for table, rows in self.rows.items():
            if not rows and not (table == "drug_exposure" and self.drug_columns) and not (
                table == "episode_event" and self.drug_links.height
            ):
                continue
            schema = self.schemas[table]
            # dates travel as day numbers and become dates in one cast
            raw_schema: dict[str, Any] = {name: pl.Int32() if dtype == pl.Date() else dtype for name, dtype in schema.items()}
            if table == "drug_exposure":
                present = [pl.Series(name, self.drug_columns[name], dtype=raw_schema[name]) for name in schema if name in self.drug_columns]
                frame = _with_nulls(pl.DataFrame(present), raw_schema).with_columns(
                    pl.when(pl.Series(self.drug_columns["oral"])).then(pl.col("days_supply")).otherwise(None).alias("days_supply")
                )
                self.drug_columns = {}
            elif table == "episode_event":
                links = self.drug_links.cast(pl.Schema(raw_schema))
                frame = pl.concat([self._frame(table, rows, raw_schema), links]) if rows else links
                self.drug_links = pl.DataFrame(schema=raw_schema)
            else:
                frame = self._frame(table, rows, raw_schema)
            frame = frame.with_columns([pl.col(n).cast(pl.Date()) for n, d in schema.items() if d == pl.Date()])
            self.con.register("chunk", frame.to_arrow())
            self.con.execute(f"INSERT INTO {table} SELECT * FROM chunk")
            self.con.unregister("chunk")
            rows.clear()

    @staticmethod
    def _frame(table: str, rows: list[tuple[Any, ...]], raw_schema: dict[str, Any]) -> pl.DataFrame:
        """The rows as a frame of the table's every column, in DDL order (absent columns null)."""
        columns = _ROW_COLUMNS[table]
        values = list(zip(*rows, strict=True))
        return _with_nulls(pl.DataFrame([pl.Series(name, values[k], dtype=raw_schema[name]) for k, name in enumerate(columns)]), raw_schema)

    def _expand_courses(self) -> None:
        """One drug_exposure row per administration (infusions on cycle days, the last one on the
        course's end; oral drugs as 30-day dispensings), and their episode_event links."""
        c = {k: np.asarray(v) for k, v in self.courses.items()}
        if c["start"].shape[0] == 0:
            return
        start, end, step = c["start"].astype(np.int64), c["end"].astype(np.int64), c["step"].astype(np.int64)
        regular = np.minimum((end - start) // step + 1, c["max_doses"])
        last_regular = start + (regular - 1) * step
        extra = (~c["oral"]) & (last_regular != end) & (regular < c["max_doses"])
        n_rows = regular + extra
        course_of = np.repeat(np.arange(start.shape[0]), n_rows)
        first_row = np.cumsum(n_rows) - n_rows
        k = np.arange(course_of.shape[0]) - first_row[course_of]
        day = start[course_of] + k * step[course_of]
        is_extra = extra[course_of] & (k == regular[course_of])
        day = np.where(is_extra, end[course_of], day)
        oral = c["oral"][course_of]
        stop = np.where(oral, np.minimum(day + 29, end[course_of]), day)
        last = k == n_rows[course_of] - 1
        ids = self.ids["drug_exposure"] + 1 + np.arange(course_of.shape[0])
        self.ids["drug_exposure"] += course_of.shape[0]
        concept = c["concept"][course_of]
        reasons = np.asarray(c["reason"], dtype=object)[course_of]
        reason = [r if is_last else None for r, is_last in zip(reasons.tolist(), last.tolist(), strict=True)]
        self.drug_columns = {
            "drug_exposure_id": ids,
            "person_id": c["person_id"][course_of],
            "drug_concept_id": concept,
            "drug_exposure_start_date": day,
            "drug_exposure_end_date": stop,
            "drug_type_concept_id": np.full(course_of.shape[0], EHR),
            "days_supply": stop - day + 1,
            "oral": oral,
            "drug_source_value": c["word"][course_of].tolist(),
            "drug_source_concept_id": np.where(concept > LOCAL_BASE, concept, 0),
            "stop_reason": reason,
        }
        self.drug_links = pl.DataFrame(
            {"episode_id": c["episode"][course_of].astype(np.int64), "event_id": ids.astype(np.int64),
             "episode_event_field_concept_id": np.full(course_of.shape[0], FIELD_DRUG_EXPOSURE, dtype=np.int32)}
        )
        for v in self.courses.values():
            v.clear()

    def close(self) -> None:
        """Write what is pending, the background population (if planned) and the vocabulary subset."""
        self.flush()
        plan = self.background
        if plan is not None and plan.multiple:
            write_background(self.con, persons=plan.multiple * self.persons, seed=plan.seed, centre_id=self.r.style.centre_id,
                             first_day=plan.first_day, last_day=plan.last_day, clinical_share=plan.clinical_share, ids=self.ids)
        write_vocabulary(self.con, self._concepts())
        self.con.close()

    def _concepts(self) -> list[tuple[Any, ...]]:
        """The study vocabulary's concept rows (the copied shared list and the design's local concepts)."""
        seen: set[int] = set()
        rows: list[tuple[Any, ...]] = []
        for c in concepts().values():
            if c.concept_id in seen:
                continue
            seen.add(c.concept_id)
            rows.append((c.concept_id, c.name[:255], c.domain[:20], c.vocabulary[:20],
                         "Ingredient" if c.domain == "Drug" else c.domain[:20],
                         "S" if c.vocabulary not in ("?", "") else None, c.code or ""))
        for name, (offset, domain) in self.design.omop.local_concepts.items():
            rows.append((LOCAL_BASE + offset, name, domain, "oncorwe local", domain, None, name[:50]))
        return rows
