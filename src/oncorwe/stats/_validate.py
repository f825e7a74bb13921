"""The one input gate of ``oncorwe.stats``: every estimator turns its arguments into clean arrays here.

Accepted inputs are 1-D sequences: numpy arrays, lists/tuples, polars Series and pandas Series (or
anything with ``to_numpy()``). Every problem raises :class:`oncorwe.errors.InputError` whose message
names the argument and the first offending positions (0-based), never a silent NaN result.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from oncorwe.errors import InputError

__all__ = [
    "NEAR_TIE_TOLERANCE",
    "as_event_array",
    "as_float_array",
    "as_label_array",
    "check_lengths",
    "check_time_event",
    "describe_positions",
    "near_tie_cuts",
    "snap_to_cuts",
    "z_for_conf_level",
]

#: How many offending positions a message lists before it says "... (N in all)".
_MAX_LISTED = 5


def describe_positions(mask: npt.NDArray[np.bool_]) -> str:
    """Name the first offending positions of a boolean mask, e.g. ``"positions [3, 7] (2 in all)"``."""
    positions = np.flatnonzero(mask)
    listed = ", ".join(str(int(p)) for p in positions[:_MAX_LISTED])
    more = ", ..." if positions.size > _MAX_LISTED else ""
    return f"positions [{listed}{more}] ({positions.size} in all)"


def _to_numpy(values: Any, name: str) -> np.ndarray:
    """Turn a list, numpy array, polars or pandas Series into a 1-D numpy array (no copy if possible)."""
    if values is None:
        raise InputError(f"{name}: a 1-D array of values is required, got None")
    if isinstance(values, (str, bytes)):
        raise InputError(f"{name}: a 1-D array of values is required, got a string {values!r}")
    if isinstance(values, np.ndarray):
        arr = values
    elif hasattr(values, "to_numpy") and not isinstance(values, Mapping):
        try:
            arr = np.asarray(values.to_numpy())
        except Exception as exc:  # a frame library's own conversion error, translated
            raise InputError(
                f"{name}: could not convert {type(values).__name__} to an array: {exc}"
            ) from exc
    else:
        try:
            arr = np.asarray(values)
            if arr.dtype.kind in "US":
                # numpy turns ["a", 2.0] into strings; keep each element's own type instead
                arr = np.asarray(values, dtype=object)
        except Exception as exc:
            raise InputError(
                f"{name}: could not convert {type(values).__name__} to an array: {exc}"
            ) from exc
    if arr.ndim == 0:
        raise InputError(f"{name}: a 1-D array of values is required, got a scalar {values!r}")
    if arr.ndim != 1:
        if arr.ndim == 2 and 1 in arr.shape:
            return arr.reshape(-1)
        raise InputError(f"{name}: a 1-D array of values is required, got shape {arr.shape}")
    return arr


def _show(value: Any) -> str:
    """A value as a user wrote it (``2``, ``'x'``), not numpy's ``np.int64(2)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _missing_mask(arr: np.ndarray) -> npt.NDArray[np.bool_]:
    """Positions holding None / NaN / pandas NA in an object array."""
    out = np.zeros(arr.shape[0], dtype=bool)
    for i, v in enumerate(arr.tolist()):
        if v is None:
            out[i] = True
        else:
            try:
                out[i] = bool(v != v)  # NaN and pandas.NA compare unequal to themselves
            except (TypeError, ValueError):
                out[i] = True  # pandas.NA raises on bool(): it is missing
    return out


def as_float_array(
    values: Any,
    name: str,
    *,
    allow_nan: bool = False,
    allow_inf: bool = False,
    non_negative: bool = False,
    allow_empty: bool = False,
) -> npt.NDArray[np.float64]:
    """Validate ``values`` as a 1-D float64 array.

    Parameters
    ----------
    values : array-like, shape (n,)
        Numbers (bool is accepted as 0/1); None/null counts as missing.
    name : str
        The argument name used in error messages.
    allow_nan, allow_inf, non_negative, allow_empty : bool
        Which otherwise-rejected values are acceptable.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)

    Raises
    ------
    InputError
        Non-numeric values, missing / infinite / negative values, or an empty array, naming the
        offending positions.
    """
    arr = _to_numpy(values, name)
    if arr.dtype.kind in "biuf":
        out = arr.astype(np.float64, copy=False)
    else:
        missing = (
            _missing_mask(arr) if arr.dtype.kind == "O" else np.zeros(arr.shape[0], dtype=bool)
        )
        out = np.empty(arr.shape[0], dtype=np.float64)
        bad = np.zeros(arr.shape[0], dtype=bool)
        for i, v in enumerate(arr.tolist()):
            if missing[i]:
                out[i] = np.nan
                continue
            if isinstance(v, (bool, int, float, np.number)):
                out[i] = float(v)
            else:
                bad[i] = True
        if bad.any():
            first = arr[np.flatnonzero(bad)[0]]
            raise InputError(
                f"{name}: values must be numbers; non-numeric values (e.g. {_show(first)}) at "
                f"{describe_positions(bad)}"
            )
    if out.size == 0 and not allow_empty:
        raise InputError(f"{name}: is empty; at least one value is required")
    problems: list[str] = []
    nan = np.isnan(out)
    if not allow_nan and nan.any():
        problems.append(f"missing or NaN values at {describe_positions(nan)}")
    inf = np.isinf(out)
    if not allow_inf and inf.any():
        problems.append(f"infinite values at {describe_positions(inf)}")
    if non_negative:
        negative = out < 0
        if negative.any():
            first = out[np.flatnonzero(negative)[0]]
            problems.append(
                f"values must be >= 0; negative values (e.g. {first:g}) at {describe_positions(negative)}"
            )
    if problems:
        raise InputError(f"{name}: " + "; ".join(problems))
    return out


def as_event_array(values: Any, name: str = "event") -> npt.NDArray[np.int8]:
    """Validate an event indicator: 1/True = event, 0/False = censored; anything else is an error.

    Returns
    -------
    numpy.ndarray of int8, shape (n,), holding only 0 and 1.

    Raises
    ------
    InputError
        Values other than 0/1/True/False (including missing), naming the offending positions.
    """
    arr = _to_numpy(values, name)
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.dtype.kind in "iuf":
        ok = (arr == 0) | (arr == 1)
    else:
        ok = np.array(
            [
                isinstance(v, (bool, int, float, np.number))
                and not isinstance(v, str)
                and v in (0, 1)
                for v in arr.tolist()
            ],
            dtype=bool,
        )
    if ok.size and not ok.all():
        bad = ~ok
        first = arr[np.flatnonzero(bad)[0]]
        raise InputError(
            f"{name}: events must be 0/1 (or False/True); other values (e.g. {_show(first)}) at "
            f"{describe_positions(bad)}"
        )
    if arr.dtype.kind in "iuf":
        return arr.astype(np.int8)
    return np.array([int(v) for v in arr.tolist()], dtype=np.int8)


def as_label_array(values: Any, name: str) -> np.ndarray:
    """Validate group or stratum labels: any hashable values, none missing (None / NaN / null).

    Returns
    -------
    numpy.ndarray, shape (n,), of the labels as given (numbers, strings or booleans).

    Raises
    ------
    InputError
        Missing labels, naming the offending positions.
    """
    arr = _to_numpy(values, name)
    if arr.dtype.kind == "f":
        missing = np.isnan(arr)
    elif arr.dtype.kind == "O":
        missing = _missing_mask(arr)
    else:
        missing = np.zeros(arr.shape[0], dtype=bool)
    if missing.any():
        raise InputError(f"{name}: missing labels (None/NaN/null) at {describe_positions(missing)}")
    if arr.dtype.kind == "O":
        kinds = {type(v).__name__ for v in arr.tolist()}
        numeric = all(isinstance(v, (int, float, np.number)) for v in arr.tolist())
        if len(kinds) > 1 and not numeric:
            raise InputError(f"{name}: labels mix types ({', '.join(sorted(kinds))}); use one type")
    return arr


def check_lengths(arrays: Mapping[str, np.ndarray]) -> int:
    """Check that every named array has the same length; return it.

    Raises
    ------
    InputError
        Naming each argument with its length.
    """
    lengths = {name: int(arr.shape[0]) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise InputError(f"length mismatch: {listed} values")
    return next(iter(lengths.values())) if lengths else 0


def check_time_event(
    time: Any,
    event: Any,
    *,
    time_name: str = "time",
    event_name: str = "event",
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Validate a right-censored survival outcome.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and >= 0 (zero is allowed).
    event : array-like, shape (n,)
        1/True = event at ``time``, 0/False = censored at ``time``.

    Returns
    -------
    (time, event) : float64 and int8 arrays of equal length >= 1.

    Raises
    ------
    InputError
        Empty input, NaN / infinite / negative times, events other than 0/1, or a length mismatch;
        the message names the argument and the offending positions.
    """
    time_arr = as_float_array(time, time_name, non_negative=True, allow_empty=True)
    event_arr = as_event_array(event, event_name)
    check_lengths({time_name: time_arr, event_name: event_arr})
    if time_arr.size == 0:
        raise InputError(f"{time_name}: is empty; at least one observation is required")
    return time_arr, event_arr


#: R's ``sqrt(.Machine$double.eps)``: times closer than this (absolutely, or relative to the mean
#: time) are one time, as in R's ``aeqSurv`` (``timefix = TRUE`` in survfit, survdiff, coxph).
NEAR_TIE_TOLERANCE = float(np.sqrt(np.finfo(np.float64).eps))


def near_tie_cuts(distinct_sorted: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """The representative times when some distinct times are near-equal, else None.

    Times that differ only by floating-point noise (e.g. 1/3 * 3 and 1, or months computed two
    ways) would otherwise count as different times. As R's ``aeqSurv``: over the sorted distinct
    times y, a gap dy is a tie when dy <= tol or dy / mean(|y|) <= tol; each run of tied times is
    represented by its smallest member.
    """
    if distinct_sorted.size < 2:
        return None
    gaps = np.diff(distinct_sorted)
    scale = float(np.mean(np.abs(distinct_sorted)))
    tied = (gaps <= NEAR_TIE_TOLERANCE) | (gaps / scale <= NEAR_TIE_TOLERANCE)
    if not tied.any():
        return None
    return distinct_sorted[np.concatenate(([True], ~tied))]


def snap_to_cuts(
    time: npt.NDArray[np.float64], cuts: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Replace each time by the representative (from `near_tie_cuts`) of its run of near-ties."""
    return cuts[np.searchsorted(cuts, time, side="right") - 1]


def z_for_conf_level(conf_level: Any) -> float:
    """The two-sided normal quantile for ``conf_level`` (1.959964... for 0.95).

    Raises ``InputError`` unless ``conf_level`` is a real number strictly between 0 and 1.
    """
    if (
        not isinstance(conf_level, Real)
        or isinstance(conf_level, bool)
        or not 0 < float(conf_level) < 1
    ):
        raise InputError(
            f"conf_level: must be a number strictly between 0 and 1, got {conf_level!r}"
        )
    return float(ndtri(1 - (1 - float(conf_level)) / 2))
