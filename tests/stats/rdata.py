"""R's survival data sets (lung, veteran, ovarian, colon, pbc) fetched from R once per process,
plus a comparison helper that treats NaN/NA and infinities as R does."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from rsupport import run_r

__all__ = ["OTHER_SETS", "SURVIVAL_SETS", "assert_close", "r_dataset", "survival_outcome"]

SURVIVAL_SETS = ("lung", "veteran", "ovarian", "colon", "pbc")
#: Further real data sets for the adjusted-comparison and competing-risk oracles.
OTHER_SETS = ("mgus2", "rotterdam", "Melanoma")


@functools.cache
def _all_sets() -> dict[str, pl.DataFrame]:
    script = "\n".join(f'put("{name}", {name})' for name in SURVIVAL_SETS)
    return run_r(script, outputs=SURVIVAL_SETS)


@functools.cache
def _other_sets() -> dict[str, pl.DataFrame]:
    script = "data(Melanoma, package = 'MASS')\n" + "\n".join(f'put("{name}", {name})' for name in OTHER_SETS)
    return run_r(script, outputs=OTHER_SETS)


def r_dataset(name: str) -> pl.DataFrame:
    """One of R's survival data sets (or MASS's Melanoma) as a polars frame (NA -> null)."""
    if name in OTHER_SETS:
        return _other_sets()[name]
    return _all_sets()[name]


def survival_outcome(name: str) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """(time, event 0/1, frame) for a data set, with its documented event coding."""
    frame = r_dataset(name)
    if name == "lung":
        return frame["time"].to_numpy(), (frame["status"] == 2).to_numpy().astype(int), frame
    if name == "veteran":
        return frame["time"].to_numpy(), frame["status"].to_numpy(), frame
    if name == "ovarian":
        return frame["futime"].to_numpy(), frame["fustat"].to_numpy(), frame
    if name == "colon":
        return frame["time"].to_numpy(), frame["status"].to_numpy(), frame
    if name == "pbc":  # status 2 = death; 1 = transplant counted as censored
        return frame["time"].to_numpy(), (frame["status"] == 2).to_numpy().astype(int), frame
    raise KeyError(name)


def assert_close(
    ours: object, theirs: object, *, rtol: float = 1e-6, atol: float = 1e-12, what: str = ""
) -> None:
    """Equal within ``rtol`` relative (``atol`` absolute near zero); NaN matches NaN/NA, inf matches inf."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes differ {a.shape} vs {b.shape}"
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), (
        f"{what}: NaN pattern differs at {np.flatnonzero(nan_a != nan_b)[:5]}: "
        f"ours {a[nan_a != nan_b][:5]} R {b[nan_a != nan_b][:5]}"
    )
    ok = nan_a | (a == b) | (np.abs(a - b) <= atol + rtol * np.abs(b))
    assert ok.all(), (
        f"{what}: differs at {np.flatnonzero(~ok)[:5]}: ours {a[~ok][:5]} R {b[~ok][:5]}"
    )
