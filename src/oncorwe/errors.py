"""The one exception tree of oncorwe.

    OncorweError
    ├── InputError (also ValueError)       a caller passed a bad value (argument, array, column)
    │   └── ConvergenceError               a model could not be fitted; the message names the cause
    ├── SourceError                        a centre's file or database could not be read
    ├── DataError                          records that fail validation (collected, one line each)
    └── ProtocolError (also ValueError)    a protocol file is invalid; names the key and what is allowed

User mistakes end as one clear message per problem; programming errors stay tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConvergenceError",
    "DataError",
    "InputError",
    "OncorweError",
    "ProtocolError",
    "SourceError",
]


class OncorweError(Exception):
    """Base class of every error oncorwe raises on purpose."""


class InputError(OncorweError, ValueError):
    """A caller passed a bad value: the message names the argument and the offending positions."""


class ConvergenceError(InputError):
    """A model fit did not converge; the message says why (separation, constant covariate, ...)."""


class SourceError(OncorweError):
    """A source (file or database) could not be read at all."""


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
