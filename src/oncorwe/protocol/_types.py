"""Strict value types of the protocol: no bool read as a number, no number read as a bool, no text
read as either, no infinite or NaN number, and explicit ranges (issue 13: ``min_cell_count = true``
would disable suppression, ``confirmation = "yes"`` would be read as true)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

__all__ = ["ClassName", "Days", "Frozen", "Label", "Level", "Months", "Name", "StrictBool", "StrictInt", "Weeks"]

#: An identifier a protocol defines and refers to (a drug class, covariate, criterion, level).
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ClassName = Name
#: A category of a covariate (a level in a table or a Cox reference), e.g. "M1c", "III_unresectable".
Level = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)]
#: Words for people (a report label): one line, not empty.
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\n\r\x00]*\S[^\n\r\x00]*$")]
#: Days between two records: 0 to 10 years (longer windows are a typo, and overflow engines' intervals).
Days = Annotated[StrictInt, Field(ge=0, le=3653)]
#: Weeks after the index date: more than 0, at most 10 years.
Weeks = Annotated[StrictInt | StrictFloat, Field(gt=0, le=522, allow_inf_nan=False)]
#: Months after the index date: more than 0, at most 50 years.
Months = Annotated[StrictInt | StrictFloat, Field(gt=0, le=600, allow_inf_nan=False)]


class Frozen(BaseModel):
    """A protocol section: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
