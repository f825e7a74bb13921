"""Overall survival of responders versus non-responders, naive and with a landmark.

The naive comparison (as published) classifies patients by a response that happens after time zero:
a responder had to live long enough to respond, which biases the comparison in the responders'
favour (guarantee-time or immortal-time bias; Anderson JR, Cain KC, Gelber RD. Analysis of survival
by tumor response. J Clin Oncol 1983;1:710-719). The landmark method fixes a time L, keeps only the
patients still alive and under follow-up at L, classifies them by response achieved by L, and
measures survival from L (``stats.landmark``: kept when follow-up extends beyond L).

The analysis reads, of the time of response, only whether the response came by the landmark
(``response_by_landmark``, ``analysis._views.derived_columns``: 0 if it did, a time after the
landmark if it came later, null if unknown); the time of response itself is ``pfs_months -
duration_of_response_months`` (docs/definitions.md).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from oncorwe import stats
from oncorwe.analysis._common import require_columns
from oncorwe.errors import ConvergenceError
from oncorwe.model.schema import DAYS_PER_MONTH, DAYS_PER_WEEK

__all__ = ["GUARANTEE_TIME_NOTE", "LANDMARK_SCHEMA", "responder_landmark"]

LANDMARK_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.String(),  # "naive" | "landmark"
    "landmark_weeks": pl.Float64(),  # null for the naive analysis
    "landmark_months": pl.Float64(),
    "n": pl.Int64(),
    "n_excluded": pl.Int64(),  # died or censored before the landmark (landmark analysis)
    "n_unknown_response_time": pl.Int64(),  # responders whose response date is unknown
    "n_responders": pl.Int64(),
    "n_nonresponders": pl.Int64(),
    "events": pl.Int64(),
    "median_responders": pl.Float64(),
    "median_responders_lower": pl.Float64(),
    "median_responders_upper": pl.Float64(),
    "median_nonresponders": pl.Float64(),
    "median_nonresponders_lower": pl.Float64(),
    "median_nonresponders_upper": pl.Float64(),
    "hazard_ratio": pl.Float64(),  # responders vs non-responders (Cox, Efron ties)
    "hr_lower": pl.Float64(),
    "hr_upper": pl.Float64(),
    "hr_note": pl.String(),  # why the hazard ratio is not estimable, when it is not
    "logrank_statistic": pl.Float64(),
    "logrank_p": pl.Float64(),
}

GUARANTEE_TIME_NOTE = (
    "Comparing responders with non-responders from the start of chemotherapy favours the responders: "
    "a patient must survive long enough to respond (guarantee-time bias; Anderson, Cain and Gelber, "
    "J Clin Oncol 1983). The landmark analysis counts only patients alive and followed at the landmark, "
    "classified by the response they had by then, and measures survival from the landmark."
)


def responder_landmark(frame: pl.DataFrame, *, landmark_weeks: float) -> pl.DataFrame:
    """The naive and the landmark comparison of OS by responder status (:data:`LANDMARK_SCHEMA`),
    on the columns os_months, os_event, responder and response_by_landmark."""
    require_columns(frame, ["os_months", "os_event", "responder", "response_by_landmark"], what="landmark analysis")
    usable = frame.filter(
        pl.col("os_months").is_not_null() & pl.col("os_event").is_not_null() & pl.col("responder").is_not_null()
    )
    naive = _compare(
        usable["os_months"].to_numpy(), usable["os_event"].cast(pl.Int64).to_numpy(),
        usable["responder"].to_numpy().astype(bool),
    )
    naive.update(analysis="naive", n_excluded=0, n_unknown_response_time=0)

    landmark_months = landmark_weeks * DAYS_PER_WEEK / DAYS_PER_MONTH
    with_time = usable
    # A responder without a response date cannot be placed before or after the landmark: such
    # patients are left out of the landmark analysis and counted.
    unknown = pl.col("responder") & pl.col("response_by_landmark").is_null()
    known = with_time.filter(~unknown)
    response_months = known.select(
        pl.when(pl.col("responder")).then(pl.col("response_by_landmark")).otherwise(None)
    ).to_series().cast(pl.Float64).fill_null(float("nan")).to_numpy()
    restricted = stats.landmark(
        known["os_months"].cast(pl.Float64).to_numpy(), known["os_event"].cast(pl.Int64).to_numpy(),
        landmark_months, response_time=response_months,
    )
    assert restricted.responder is not None  # response_time was given
    landmark = _compare(restricted.time, restricted.event.astype(np.int64), restricted.responder.astype(bool))
    landmark.update(
        analysis="landmark", landmark_weeks=float(landmark_weeks), landmark_months=landmark_months,
        n_excluded=int(restricted.n_excluded), n_unknown_response_time=with_time.height - known.height,
    )
    return pl.DataFrame([naive, landmark], schema=LANDMARK_SCHEMA)


def _compare(time: np.ndarray, event: np.ndarray, responder: np.ndarray) -> dict[str, object]:
    row: dict[str, object] = {
        "n": int(time.size), "n_responders": int(responder.sum()),
        "n_nonresponders": int((~responder).sum()), "events": int(event.sum()),
    }
    for name, mask in (("responders", responder), ("nonresponders", ~responder)):
        if mask.any():
            median = stats.kaplan_meier(time[mask], event[mask]).median
            row[f"median_{name}"] = _finite(median.value)
            row[f"median_{name}_lower"] = _finite(median.lower)
            row[f"median_{name}_upper"] = _finite(median.upper)
    if responder.any() and (~responder).any():
        # groups as 0/1 (non-responder, responder: the order of their names), not a string per patient
        test = stats.logrank_test(time, event, responder.astype(np.int64))
        row.update(logrank_statistic=float(test.statistic), logrank_p=float(test.p_value))
        data = pl.DataFrame({"time": time, "event": event, "responder": responder.astype(np.int64)})
        try:
            cox = stats.cox_ph(data, time="time", event="event", covariates=["responder"]).to_frame()
        except ConvergenceError:
            # all deaths in one group (small studies): the HR is 0 or infinite, which is not a
            # number to print; the medians and the log-rank test still stand
            row.update(hr_note="not estimable: every death is in one group (monotone likelihood)")
            return row
        term = cox.row(0, named=True)
        row.update(hazard_ratio=float(term["hazard_ratio"]), hr_lower=float(term["lower"]), hr_upper=float(term["upper"]))
    return row


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
