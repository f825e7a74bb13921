"""At scale the patient-level detail stays in the engine: with ``keep_in_engine`` the cohort's lines
of therapy and the endpoints' trace are left as tables there, only the analysis set's index, the
exclusions and the analysis table come into Python, and the numbers are the same."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from oncorwe import cohort, endpoints, harmonise, protocol
from oncorwe.cohort import LINE_COLUMNS, LINES_SCHEMA, CohortResult
from oncorwe.endpoints import TRACE_SCHEMA, EndpointsResult
from oncorwe.errors import InputError
from oncorwe.model.schema import CanonicalModel
from oncorwe.model.store import connect, to_polars, write_model
from oncorwe.protocol import load as _load_protocol

FLAGSHIP_SCOPE = _load_protocol("goldinger2022").scope()

PREFIX = "k_"


@pytest.fixture(scope="module")
def model(synthetic_study: Path) -> CanonicalModel:
    return harmonise.run(synthetic_study, scope=FLAGSHIP_SCOPE)


def test_the_engine_path_gives_the_same_results_and_leaves_the_detail_there(
    model: CanonicalModel, tmp_path: Path
) -> None:
    goldinger = protocol.load("goldinger2022")
    con = connect(None)
    write_model(con, model, prefix=PREFIX)
    in_python = cohort.run(con, goldinger, prefix=PREFIX, merges=model.merges)
    derived = endpoints.run(con, in_python, goldinger, prefix=PREFIX)
    assert in_python.lines is not None and derived.trace is not None

    kept = cohort.run(con, goldinger, prefix=PREFIX, merges=model.merges, keep_in_engine=True)
    assert kept.lines is None
    assert kept.index.equals(in_python.index)
    assert kept.exclusions.equals(in_python.exclusions)
    assert kept.attrition.equals(in_python.attrition)
    assert kept.n_lines == in_python.lines.height > kept.index.height
    # in the engine without the records behind each line (line_sources finds them when needed)
    lines_in_engine = to_polars(con.table(kept.engine_tables["lines"]))
    assert lines_in_engine.columns == list(LINE_COLUMNS) == [c for c in LINES_SCHEMA if c != "sources"]
    assert lines_in_engine.sort(["patient_id", "line_number"]).equals(in_python.lines.drop("sources"))

    derived_kept = endpoints.run(con, kept, goldinger, prefix=PREFIX, keep_in_engine=True)
    assert derived_kept.trace is None
    assert derived_kept.analysis_table.equals(derived.analysis_table)
    trace_in_engine = to_polars(con.table(derived_kept.engine_tables["trace"])).select(list(TRACE_SCHEMA))
    assert trace_in_engine.sort("patient_id").equals(derived.trace)

    # written and read back, the results say where the detail is
    back = CohortResult.read(kept.write(tmp_path / "cohort"))
    assert back.lines is None and back.engine_tables == kept.engine_tables and back.n_lines == kept.n_lines
    assert not (tmp_path / "cohort" / "lines.parquet").exists()
    patient = kept.index["patient_id"][0]
    assert f"left in the engine ({PREFIX}cohort_lines)" in back.explain(patient)
    endpoints_back = EndpointsResult.read(derived_kept.write(tmp_path / "endpoints"))
    assert endpoints_back.trace is None
    assert endpoints_back.analysis_table.equals(derived.analysis_table)
    assert f"left in the engine: {PREFIX}endpoints_trace" in endpoints_back.explain(patient)

    # read back, the result still finds its lines in the engine that made them
    assert endpoints.run(con, back, goldinger, prefix=PREFIX).analysis_table.equals(derived.analysis_table)
    # a result whose lines are elsewhere is refused with a message naming the table
    other = connect(None)
    write_model(other, model, prefix=PREFIX)
    with pytest.raises(InputError, match=f"{PREFIX}cohort_lines"):
        endpoints.run(other, back, goldinger, prefix=PREFIX)
    # a result with its frames works on any connection (they are sent to the engine)
    assert endpoints.run(other, in_python, goldinger, prefix=PREFIX).analysis_table.equals(derived.analysis_table)


def test_a_stale_lines_table_is_not_used(model: CanonicalModel) -> None:
    goldinger = protocol.load("goldinger2022")
    con = connect(None)
    write_model(con, model, prefix=PREFIX)
    selected = cohort.run(con, goldinger, prefix=PREFIX, merges=model.merges)
    expected = endpoints.run(con, selected, goldinger, prefix=PREFIX).analysis_table
    con.raw_sql(f"DELETE FROM {PREFIX}cohort_lines WHERE line_number = 1")
    # the stored table no longer holds the result's lines: the frames are sent instead
    assert endpoints.run(con, selected, goldinger, prefix=PREFIX).analysis_table.equals(expected)
    assert isinstance(selected.lines, pl.DataFrame)
