"""The one exception tree of oncorwe.

    OncorweError                           base of every error oncorwe raises on purpose
    ├── InputError (also ValueError)       a caller passed a bad value (argument, array, column)  exit 2
    ├── SourceError                        a centre's file or database could not be read          exit 2
    ├── DataError                          records that fail validation (collected, one line each) exit 2
    ├── ProtocolError (also ValueError)    a protocol file is invalid; names the key, what is allowed exit 2
    ├── AnalysisError                      the inputs were read, but a result cannot be computed  exit 1
    │   └── ConvergenceError               a model could not be fitted; the message names the cause
    ├── EngineMemoryError                  the engine (DuckDB, PostgreSQL) ran out of memory      exit 2
    └── StageFailed                        one of the above, with the pipeline stage it happened in;
                                           exits with the code of the error it carries

The exit code is the command line's (``exit_code`` on each class): 2 when the inputs cannot be used
as given (the user fixes a file, a record, the protocol or an argument), 1 when they were read but
the analysis could not be done (the user changes the model or the data's scope). User mistakes end
as one clear message per problem (``problems``); programming errors stay tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AnalysisError",
    "ConvergenceError",
    "DataError",
    "EngineMemoryError",
    "InputError",
    "OncorweError",
    "ProtocolError",
    "SourceError",
    "StageFailed",
]


class OncorweError(Exception):
    """Base class of every error oncorwe raises on purpose."""

    #: The command line's exit code for this error.
    exit_code: int = 2


class InputError(OncorweError, ValueError):
    """A caller passed a bad value: the message names the argument and the offending positions."""


class SourceError(OncorweError):
    """A source (file or database) could not be read at all; ``problems`` holds one line per source."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


class DataError(OncorweError):
    """One or more records failed validation; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class ProtocolError(OncorweError, ValueError):
    """A protocol file is invalid; ``problems`` holds one line per problem (key, what is allowed)."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


class AnalysisError(OncorweError):
    """The inputs were valid and read, but a result cannot be computed from them."""

    exit_code = 1


class ConvergenceError(AnalysisError):
    """A model fit did not converge; the message says why (separation, constant covariate, ...).

    Not an :class:`InputError`: the data are valid, the model cannot be estimated on them.
    """


class EngineMemoryError(OncorweError):
    """The engine that holds the canonical tables ran out of memory while running a query.

    Exit 2, as for a bad argument: the inputs are fine, the run is not, and what the user changes is
    how it is run (a higher ``--engine-memory``, free memory or disk for DuckDB's temporary folder,
    a larger PostgreSQL server). The message names the engine, its memory limit and that advice.
    """


class StageFailed(OncorweError):
    """A pipeline stage raised one of oncorwe's errors; ``stage`` names it, ``error`` is the error.

    ``problems`` (one line per problem) and ``exit_code`` are the carried error's.
    """

    def __init__(self, stage: str, error: OncorweError) -> None:
        self.stage = stage
        self.error = error
        self.problems: tuple[str, ...] = tuple(getattr(error, "problems", None) or (str(error),))
        self.exit_code = error.exit_code
        super().__init__(f"{stage}: " + "\n".join(self.problems))
