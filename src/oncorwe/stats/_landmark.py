"""Landmark analysis: compare survival by a status reached during follow-up without immortal-time bias.

Patients are grouped by their status *at* a fixed landmark time (e.g. "responded by 12 weeks"),
only patients still alive and in follow-up at the landmark are kept, and time is restarted there.
A response first seen after the landmark counts as no response at the landmark, so a patient cannot
be credited with survival time they had to live through to be classified.

References
----------
Anderson JR, Cain KC, Gelber RD. Analysis of survival by tumor response. J Clin Oncol
1983;1:710-9.
Dafni U. Landmark analysis at the 25-year landmark point. Circ Cardiovasc Qual Outcomes
2011;4:363-71.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from oncorwe.errors import InputError
from oncorwe.stats._validate import (
    as_float_array,
    check_lengths,
    check_time_event,
    describe_positions,
)

__all__ = ["LandmarkData", "landmark"]

FloatArray = npt.NDArray[np.float64]


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class LandmarkData:
    """Survival data restricted to patients at risk just after the landmark, time reset to zero there.

    Attributes
    ----------
    landmark_time : float
        The landmark, on the scale of the input times.
    time : numpy.ndarray, shape (m,)
        Time since the landmark (input time - landmark_time), > 0.
    event : numpy.ndarray of int8, shape (m,)
    kept : numpy.ndarray of bool, shape (n,)
        Which input rows are kept (alive and in follow-up beyond the landmark).
    positions : numpy.ndarray of int, shape (m,)
        0-based input positions of the kept rows, in input order.
    n_excluded : int
        Rows dropped: an event or censoring at or before the landmark.
    responder : numpy.ndarray of bool, shape (m,), or None
        With ``response_time``: responded at or before the landmark.
    covariates : polars.DataFrame or None
        The covariates given, restricted to the kept rows.
    """

    landmark_time: float
    time: FloatArray
    event: npt.NDArray[np.int8]
    kept: npt.NDArray[np.bool_]
    positions: npt.NDArray[np.int64]
    n_excluded: int
    responder: npt.NDArray[np.bool_] | None
    covariates: pl.DataFrame | None

    @property
    def n(self) -> int:
        """Number of patients kept."""
        return int(self.time.size)

    def to_frame(self) -> pl.DataFrame:
        """One row per kept patient: position, time (since landmark), event, [responder], covariates."""
        frame = pl.DataFrame(
            {"position": self.positions, "time": self.time, "event": self.event.astype(np.int64)}
        )
        if self.responder is not None:
            frame = frame.with_columns(pl.Series("responder", self.responder))
        if self.covariates is not None:
            frame = pl.concat([frame, self.covariates], how="horizontal")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Counts only (no per-patient rows), suitable for JSON and aggregate exports."""
        summary: dict[str, Any] = {
            "landmark_time": self.landmark_time,
            "n_kept": self.n,
            "n_excluded": self.n_excluded,
            "n_events": int(self.event.sum()),
        }
        if self.responder is not None:
            summary["n_responders"] = int(self.responder.sum())
        return summary

    def __repr__(self) -> str:
        responders = "" if self.responder is None else f", responders={int(self.responder.sum())}"
        return (
            f"LandmarkData(landmark_time={self.landmark_time:g}, kept={self.n}, "
            f"excluded={self.n_excluded}, events={int(self.event.sum())}{responders})"
        )


def _covariate_frame(covariates: Any, n: int) -> pl.DataFrame:
    """Covariates (a dict of arrays, a polars or a pandas frame) as a polars frame of n rows."""
    if isinstance(covariates, pl.DataFrame):
        frame = covariates
    elif isinstance(covariates, Mapping):
        columns: dict[str, Any] = {}
        for name, values in covariates.items():
            column = (
                values
                if isinstance(values, pl.Series)
                else np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
            )
            if getattr(column, "ndim", 1) != 1:
                raise InputError(f"covariates[{name!r}]: a 1-D array is required")
            columns[str(name)] = column
        try:
            frame = pl.DataFrame(columns)
        except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
            raise InputError(f"covariates: could not build a table from the arrays: {exc}") from exc
    elif hasattr(covariates, "columns") and hasattr(covariates, "iloc"):
        try:
            frame = pl.from_pandas(covariates.reset_index(drop=True))
        except Exception as exc:  # pandas/pyarrow conversion error, translated
            raise InputError(f"covariates: could not convert the pandas frame: {exc}") from exc
    else:
        raise InputError(
            "covariates: must be a dict of arrays or a polars/pandas DataFrame, "
            f"got {type(covariates).__name__}"
        )
    if frame.height != n:
        raise InputError(f"length mismatch: time has {n}, covariates have {frame.height} rows")
    reserved = {"position", "time", "event", "responder"} & set(frame.columns)
    if reserved:
        raise InputError(f"covariates: column names {sorted(reserved)} are reserved; rename them")
    return frame


def landmark(
    time: Any,
    event: Any,
    landmark_time: float,
    *,
    response_time: Any = None,
    covariates: Any = None,
) -> LandmarkData:
    """Restrict survival data to patients alive and in follow-up at a landmark; restart time there.

    Kept: patients whose follow-up extends beyond the landmark (``time > landmark_time``); an event
    or censoring at or before the landmark excludes the patient. Kept times become
    ``time - landmark_time``.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up from the original time zero (e.g. start of therapy) and event indicator.
    landmark_time : float
        The landmark, >= 0, on the same scale as ``time``.
    response_time : array-like, shape (n,), optional
        Time from the same time zero to response; NaN/None = never responded. A patient is a
        responder at the landmark only if ``response_time <= landmark_time``: a response seen
        later counts as non-response (no immortal-time bias).
    covariates : dict of arrays or polars/pandas DataFrame, optional
        Per-patient values to carry along, restricted to the kept rows.

    Returns
    -------
    LandmarkData

    Raises
    ------
    InputError
        Invalid times/events, a negative or non-finite landmark, a response after the end of
        follow-up (naming positions), covariates of the wrong length, or no patient left.

    References
    ----------
    Anderson, Cain & Gelber 1983.
    """
    time_arr, event_arr = check_time_event(time, event)
    if (
        not isinstance(landmark_time, Real)
        or isinstance(landmark_time, bool)
        or not math.isfinite(landmark_time)
        or landmark_time < 0
    ):
        raise InputError(f"landmark_time: must be a finite time >= 0, got {landmark_time!r}")
    landmark_value = float(landmark_time)
    n = time_arr.size
    responded_by: npt.NDArray[np.bool_] | None = None
    if response_time is not None:
        response_arr = as_float_array(
            response_time, "response_time", allow_nan=True, non_negative=True
        )
        check_lengths({"time": time_arr, "response_time": response_arr})
        after_end = ~np.isnan(response_arr) & (response_arr > time_arr)
        if after_end.any():
            raise InputError(
                f"response_time: response after the end of follow-up at {describe_positions(after_end)}"
            )
        responded_by = ~np.isnan(response_arr) & (response_arr <= landmark_value)
    covariate_frame = None if covariates is None else _covariate_frame(covariates, n)

    kept = time_arr > landmark_value
    if not kept.any():
        raise InputError(
            f"landmark_time: no patient is in follow-up beyond {landmark_value:g} "
            f"(longest follow-up {time_arr.max():g})"
        )
    positions = np.flatnonzero(kept).astype(np.int64)
    return LandmarkData(
        landmark_time=landmark_value,
        time=_read_only(time_arr[kept] - landmark_value),
        event=_read_only(event_arr[kept]),
        kept=_read_only(kept),
        positions=_read_only(positions),
        n_excluded=int(n - positions.size),
        responder=None if responded_by is None else _read_only(responded_by[kept]),
        covariates=None if covariate_frame is None else covariate_frame.filter(pl.Series(kept)),
    )
