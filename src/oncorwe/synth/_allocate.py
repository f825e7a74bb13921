"""Exact allocation helpers: proportional scaling of counts and exact-size weighted selection."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["choose_exact", "gumbel_keys", "scale_counts", "split_exact", "top_k"]


def scale_counts(counts: dict[str, int] | dict[str, float], total: int) -> dict[str, int]:
    """Scale ``counts`` to sum to ``total`` by the largest-remainder (Hamilton) method.

    Ties in the remainder go to the key listed first, so the result is deterministic.
    """
    base = sum(counts.values())
    if base == 0:
        return {k: 0 for k in counts}
    quotas = {k: v * total / base for k, v in counts.items()}
    floors = {k: int(np.floor(q)) for k, q in quotas.items()}
    left = total - sum(floors.values())
    order = sorted(counts, key=lambda k: (-(quotas[k] - floors[k]), list(counts).index(k)))
    for k in order[:left]:
        floors[k] += 1
    return floors


def gumbel_keys(
    rng: np.random.Generator, candidates: npt.NDArray[np.bool_], weights: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Each candidate's key log(weight) + Gumbel noise (-inf for the others): the Gumbel top-k
    trick's keys, whose k largest are a weighted sample without replacement."""
    n = candidates.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    keys = np.log(np.maximum(w, 1e-12)) + rng.gumbel(size=n)
    return np.where(candidates, keys, -np.inf)


def top_k(keys: npt.NDArray[np.float64], candidates: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.bool_]:
    """Mark the ``k`` candidates with the largest ``keys`` (:func:`gumbel_keys`)."""
    if k > int(candidates.sum()):
        raise ValueError(f"cannot choose {k} of {int(candidates.sum())} candidates")
    out = np.zeros(candidates.shape[0], dtype=bool)
    if k > 0:
        out[np.argpartition(-keys, k - 1)[:k]] = True  # the top-k set (ties have probability 0)
    return out


def choose_exact(
    rng: np.random.Generator, candidates: npt.NDArray[np.bool_], k: int, weights: npt.ArrayLike | None = None
) -> npt.NDArray[np.bool_]:
    """Mark exactly ``k`` of the ``candidates`` (weighted sampling without replacement).

    Uses the Gumbel top-k trick: key = log(weight) + Gumbel noise, keep the k largest.
    """
    return top_k(gumbel_keys(rng, candidates, weights), candidates, k)


def split_exact(
    rng: np.random.Generator,
    candidates: npt.NDArray[np.bool_],
    counts: dict[str, int],
    weights: dict[str, npt.ArrayLike] | None = None,
) -> npt.NDArray[np.object_]:
    """Label candidates with the keys of ``counts`` (exactly that many each, in key order)."""
    labels = np.full(candidates.shape[0], None, dtype=object)
    free = candidates.copy()
    for key, k in counts.items():
        w = None if weights is None else weights.get(key)
        chosen = choose_exact(rng, free, k, w)
        labels[chosen] = key
        free &= ~chosen
    return labels
