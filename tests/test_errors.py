"""The one exception tree: every error oncorwe raises on purpose is an OncorweError, each kind says
what happened, and the exit code follows the kind (docs/errors.md)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from oncorwe import errors
from oncorwe.errors import (
    AnalysisError,
    ConvergenceError,
    DataError,
    InputError,
    OncorweError,
    ProtocolError,
    SourceError,
    StageFailed,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def test_every_public_error_is_in_the_tree() -> None:
    public = [getattr(errors, name) for name in errors.__all__]
    assert all(inspect.isclass(cls) and issubclass(cls, OncorweError) for cls in public)


def test_a_model_that_does_not_converge_is_not_bad_input() -> None:
    assert issubclass(ConvergenceError, AnalysisError)
    assert not issubclass(ConvergenceError, InputError | ValueError)
    assert ConvergenceError("x").exit_code == 1


@pytest.mark.parametrize("error", [InputError("x"), SourceError("x"), DataError(["a", "b"]), ProtocolError("k")])
def test_input_errors_exit_2(error: OncorweError) -> None:
    assert error.exit_code == 2


def test_stage_failed_carries_the_stage_the_problems_and_the_code() -> None:
    analysis = StageFailed("analysis", ConvergenceError("age: constant covariate"))
    assert (analysis.stage, analysis.exit_code, analysis.problems) == ("analysis", 1, ("age: constant covariate",))
    cohort = StageFailed("cohort", ProtocolError(["criteria.x: unknown", "criteria.y: unknown"]))
    assert (cohort.exit_code, cohort.problems) == (2, ("criteria.x: unknown", "criteria.y: unknown"))
    assert isinstance(cohort, OncorweError)


def test_the_documented_tree_names_every_error_with_its_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in errors.__all__:
        assert re.search(rf"\b{name}\b", text), f"docs/errors.md does not name {name}"
    for name in ("InputError", "SourceError", "DataError", "ProtocolError", "AnalysisError"):
        line = next(line for line in text.splitlines() if re.search(rf"── {name}\b", line))
        assert line.rstrip().endswith(f"exit {getattr(errors, name).exit_code}"), line


def test_a_failed_cox_model_exits_1_from_the_command_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The same path ``oncorwe`` takes: an OncorweError escaping a command exits with its code."""
    from oncorwe.cli import app as cli_app

    def failing() -> None:
        raise StageFailed("analysis", ConvergenceError("cox: no convergence"))

    monkeypatch.setattr(cli_app, "app", failing)
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: cox: no convergence\n"
