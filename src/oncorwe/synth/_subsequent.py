"""Who goes on to a subsequent therapy, which class, and who responds to it (exact counts).

Only patients whose chemotherapy ended with a documented progression and who lived long enough
can start another line; among them the classes are drawn with the published counts, preferring
those who lived longest after progression (fit patients get more treatment). The classes are
named by role here (targeted, an ICI after another line, anti-PD-1, anti-CTLA-4, other); the
study's generator design names them and gives their drawing order. A responder needs
time for a response scan before death or the last contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from oncorwe.synth._allocate import choose_exact, scale_counts
from oncorwe.synth._baseline import Cohort, stream
from oncorwe.synth._design import study_design
from oncorwe.synth._times import Times

__all__ = ["Subsequent", "draw_subsequent"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Subsequent:
    """Per patient (days from the index date); ``klass`` is "" without a subsequent therapy."""

    klass: npt.NDArray[np.object_]
    responder: npt.NDArray[np.bool_]
    gap_days: IntArray  # progression -> start of the subsequent line
    scan_days: IntArray  # start of the counted line -> its first scan
    second_line_days: IntArray  # ici_after_other: first subsequent line start -> ICI line start
    stable: npt.NDArray[np.bool_]  # non-responders with a scan: SD (True) or PD (False)


def draw_subsequent(c: Cohort, t: Times, targets: dict[str, Any], seed: int) -> Subsequent:
    rng = stream(seed, "subsequent")
    n = c.n
    gap = (7 + np.floor(rng.random(n) * 35)).astype(np.int64)
    scan = (42 + np.floor(rng.random(n) * 42)).astype(np.int64)
    second = (56 + np.floor(rng.random(n) * 42)).astype(np.int64)
    stable = rng.random(n) < 0.4
    room = t.os_days - t.pfs_days  # days from the progression to death or last contact
    progressed = (t.pfs_kind == "pd") & (c.bor != "NE")
    elig = c.eligible
    spec = targets["published"]["subsequent"]
    total = sum(v[0] for v in spec.values())
    n_total = round(total * c.n_eligible / targets["study"]["eligible"])
    counts = scale_counts({k: v[0] for k, v in spec.items()}, n_total)
    responders = {k: min(round(v[1] * counts[k] / v[0]) if v[0] else 0, counts[k]) for k, v in spec.items()}
    weight = np.log1p(np.maximum(room, 0)) ** 2
    klass = np.full(n, "", dtype=object)
    responder = np.zeros(n, dtype=bool)
    free = elig & progressed & (room > gap + 1)
    design = study_design(targets["study"]["name"])
    sub = design.subsequent
    names = sub.names
    need = {
        "targeted": free & (c.braf == 1) & (c.partner == ""),
        "ici_after_other": free & (room > gap + second + 30),
    }
    for role in sub.order:
        cls = names[role]
        pool = need.get(role, free) & free
        w = weight * sub.prior_anti_pd1_weight[role] ** (c.prior == "anti_pd1")
        k = min(counts[cls], int(pool.sum()))
        chosen = choose_exact(rng, pool, k, w)
        klass[chosen] = cls
        free &= ~chosen
        lead = gap + (second if role == "ici_after_other" else 0)
        can_respond = chosen & (room > lead + scan + 1)
        responder |= choose_exact(rng, can_respond, min(responders[cls], int(can_respond.sum())))
    # excluded records: a subsequent line at the base rate, never a responder by design
    ex = ~elig & progressed & (room > gap + second + 30) & (rng.random(n) < total / targets["study"]["eligible"])
    no_ici = c.reason == design.reasons["line_before_line"]
    klass[ex & ~no_ici] = names["other"]
    klass[ex & no_ici] = names["anti_pd1"]
    return Subsequent(klass=klass, responder=responder, gap_days=gap, scan_days=scan, second_line_days=second, stable=stable)
