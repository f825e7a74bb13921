"""Defects a real export has, injected at low rates into CRF tables and recorded one by one.

Each defect sits where a correct pipeline can absorb it without changing the analysis set: on
assessments before the chemotherapy that the analysis does not need, on prior targeted-therapy
courses, on an extra line after the subsequent therapy, on fields the analysis can do without, or
as an exact duplicate row. ``consequence`` says what a correct pipeline does with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from oncorwe.synth._baseline import EPOCH
from oncorwe.synth._crf import CrfTables
from oncorwe.synth._render import Renderer, pick

__all__ = ["DEFECT_COLUMNS", "Defect", "inject_crf_defects"]

DEFECT_COLUMNS = ("centre_id", "file", "row", "sheet", "field", "kind", "raw_value", "consequence")


@dataclass(frozen=True)
class Defect:
    centre_id: str
    file: str
    row: int
    sheet: str
    field: str
    kind: str
    raw_value: str
    consequence: str


@dataclass
class _Pending:
    sheet: str
    row: list[str]  # the row object; its final position gives the row number
    field: str
    kind: str
    raw_value: str
    consequence: str


def _bad_date(r: Renderer, day: int | None) -> str:
    """A date that cannot exist (day 32 of its month) in the centre's own format."""
    when = EPOCH + dt.timedelta(days=day if day is not None else 16861)
    return (
        r.style.date_format.replace("%d", "32")
        .replace("%m", f"{when.month:02d}")
        .replace("%Y", str(when.year))
        .replace("%b", when.strftime("%b"))
    )


def inject_crf_defects(
    t: CrfTables,
    r: Renderer,
    rng: np.random.Generator,
    rate: float,
    protected: set[int],
    allow: frozenset[str],
    extra_lines: dict[int, int],
    guaranteed: frozenset[str] = frozenset(),
) -> list[_Pending]:
    """Corrupt a few rows of ``t`` in place; returns the pending defects (rows resolved later).

    ``protected`` holds cohort keys whose identifying fields must stay intact (duplicate pairs);
    ``extra_lines`` maps cohort keys that may get an extra, unknown-drug line to its start day;
    each kind in ``guaranteed`` is injected at least once when the centre has a place for it.
    """
    out: list[_Pending] = []
    cols = t.columns

    def rows_with(sheet: str, role_prefix: str) -> list[int]:
        return [i for (s, i), role in t.roles.items() if s == sheet and role.startswith(role_prefix)]

    def draw(candidates: list[int], share: float, kind: str = "") -> list[int]:
        if not candidates:
            return []
        k = int(rng.binomial(len(candidates), min(share, 1.0)))
        if k == 0 and kind in guaranteed:
            k = 1
        return sorted(rng.choice(np.array(candidates), size=k, replace=False).tolist()) if k else []

    used: set[tuple[str, int]] = set()

    def free(sheet: str, rows: list[int]) -> list[int]:
        return [i for i in rows if (sheet, i) not in used]

    a_cols = cols["assessments"]
    t_cols = cols["treatments"]
    p_cols = cols["patients"]
    prior_sd = rows_with("assessments", "scan:prior:SD")
    if "unparseable_date" in allow:
        for i in draw(free("assessments", prior_sd), rate, "unparseable_date"):
            row = t.rows["assessments"][i]
            col = a_cols.index("assessment_date")
            row[col] = _bad_date(r, t.date_cells.get(("assessments", i, "assessment_date")))
            used.add(("assessments", i))
            out.append(_Pending("assessments", row, "assessment_date", "unparseable_date", row[col], "quarantine_record"))
        patients = [i for i in rows_with("patients", "patient") if t.owners[("patients", i)] not in protected]
        for i in draw(patients, rate / 4):
            row = t.rows["patients"][i]
            col = p_cols.index("diagnosis_date")
            row[col] = _bad_date(r, t.date_cells.get(("patients", i, "diagnosis_date")))
            out.append(_Pending("patients", row, "diagnosis_date", "unparseable_date", row[col], "null_value"))
    if "unknown_response" in allow:
        for i in draw(free("assessments", prior_sd), rate, "unknown_response"):
            row = t.rows["assessments"][i]
            col = a_cols.index("response")
            row[col] = pick(r.words.unknown_responses, r.style.centre_id, i)
            used.add(("assessments", i))
            out.append(_Pending("assessments", row, "response", "unknown_response", row[col], "quarantine_record"))
    if "shifted_row" in allow:
        for i in draw(free("assessments", prior_sd), rate, "shifted_row"):
            row = t.rows["assessments"][i]
            raw = r.style.delimiter.join(row)
            row[:] = [row[0], "", *row[1:]]
            used.add(("assessments", i))
            out.append(_Pending("assessments", row, "assessment_date", "shifted_row", raw, "quarantine_record"))
    if "end_before_start" in allow:
        for i in draw(rows_with("treatments", "course:prior_targeted"), rate * 3, "end_before_start"):
            row = t.rows["treatments"][i]
            start_day = t.date_cells.get(("treatments", i, "start_date"))
            if start_day is None:
                continue
            col = t_cols.index("end_date")
            row[col] = r.date(start_day - 30 - int(rng.integers(0, 60)))
            out.append(_Pending("treatments", row, "end_date", "end_before_start", row[col], "quarantine_record"))
    if "progression_before_chemo" in allow:
        index_rows = [i for i in rows_with("treatments", "course:index") if ("treatments", i, "progression_date") in t.date_cells]
        for i in draw(index_rows, rate / 2, "progression_before_chemo"):
            row = t.rows["treatments"][i]
            start_day = t.date_cells[("treatments", i, "start_date")]
            col = t_cols.index("progression_date")
            row[col] = r.date(start_day - 10 - int(rng.integers(0, 30)))
            out.append(_Pending("treatments", row, "progression_date", "progression_before_chemo", row[col], "null_value"))
    if "unknown_drug" in allow and extra_lines:
        last_row: dict[int, int] = {}
        for (sheet, i), key in t.owners.items():
            if sheet == "treatments":
                last_row[key] = max(last_row.get(key, -1), i)
        keys = [k for k in sorted(extra_lines) if k in last_row]
        for key in sorted(draw(keys, rate, "unknown_drug"), key=lambda k: -last_row[k]):
            pos = last_row[key]
            template = t.rows["treatments"][pos]
            row = list(template)
            row[t_cols.index("line")] = str(int(template[t_cols.index("line")]) + 1)
            row[t_cols.index("drug")] = pick(r.words.unknown_drugs, r.style.centre_id, key)
            row[t_cols.index("start_date")] = r.date(extra_lines[key])
            for name in ("end_date", "reason_stopped", "progression_date"):
                row[t_cols.index(name)] = r.missing()
            t.rows["treatments"].insert(pos + 1, row)
            out.append(_Pending("treatments", row, "drug", "unknown_drug", row[t_cols.index("drug")], "quarantine_record"))
    if "duplicated_row" in allow:
        index_scans = rows_with("assessments", "scan:index")
        for i in sorted(draw(index_scans, rate / 2, "duplicated_row"), reverse=True):
            copy = list(t.rows["assessments"][i])
            t.rows["assessments"].insert(i + 1, copy)
            out.append(_Pending("assessments", copy, "", "duplicated_row", r.style.delimiter.join(copy), "drop_duplicate"))
    return out


def resolve(t: CrfTables, pending: list[_Pending], centre_id: str, files: dict[str, str], xlsx: bool) -> list[Defect]:
    """Final 1-based data row numbers, after every insertion."""
    out = []
    for p in pending:
        position = next(k for k, row in enumerate(t.rows[p.sheet]) if row is p.row) + 1
        out.append(
            Defect(
                centre_id=centre_id,
                file=files[p.sheet],
                row=position,
                sheet=p.sheet if xlsx else "",
                field=p.field,
                kind=p.kind,
                raw_value=p.raw_value,
                consequence=p.consequence,
            )
        )
    return out
