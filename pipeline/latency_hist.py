"""Log-bucket latency histograms: the mergeable form of a window's latency percentiles.

A latency ``x`` (ms) falls in bucket ``b = floor(ln(max(x, MIN_MS)) / ln(GAMMA))``, which holds
``[GAMMA**b, GAMMA**(b + 1))`` with ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``. A histogram is the
list of ``(b, n)`` pairs of a group of latencies; two histograms merge by adding the counts of
equal buckets, so partial windows (one per micro-batch) and coarser windows (1 m, 5 m, 1 h) are
exact merges of 10 s partials.

Percentile ``q`` of ``N`` latencies is read as the bucket holding the value of rank
``ceil(q * N)`` (the exact percentile's rank, a value from the data), reported at the bucket's
midpoint ``2 * GAMMA**(b + 1) / (GAMMA + 1)``. **Error bound**: the reported value is within
``ALPHA`` (1 %) *relative* error of the exact percentile, whatever the distribution or the
number of merges (DDSketch's guarantee; values below ``MIN_MS`` are reported as about
``MIN_MS``). Measured against KLL (``bench/sketches.py``): KLL's error bound is on the rank,
and on heavy-tailed latencies its p99 was up to 23 % off in value; these histograms were at
most 1.00 % off, 1.9 KB per partial against 2.4 KB.

This module is the numpy side (dashboard, tests); :mod:`pipeline.transforms.metrics` has the
same arithmetic as Spark SQL expressions built from the constants here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
#: latencies below this (ms) share its bucket
MIN_MS = 1e-3
QUANTILES = (0.5, 0.95, 0.99)


def bucket_of(values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Bucket index of each latency (ms); NaN latencies must be dropped first."""
    x = np.maximum(np.asarray(values, dtype=float), MIN_MS)
    return np.floor(np.log(x) / LN_GAMMA).astype(np.int64)


def bucket_value(buckets: np.ndarray | int) -> np.ndarray | float:
    """The value a bucket reports: its midpoint, within ALPHA of anything it holds."""
    return 2.0 * GAMMA ** (np.asarray(buckets, dtype=float) + 1.0) / (GAMMA + 1.0)


def histogram(values: Iterable[float]) -> list[tuple[int, int]]:
    """``[(b, n), ...]`` sorted by bucket, NaN/None latencies ignored."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    if not arr.size:
        return []
    b, n = np.unique(bucket_of(arr), return_counts=True)
    return list(zip(b.tolist(), n.tolist(), strict=True))


def rank(q: float, total: int | np.ndarray) -> np.ndarray:
    """The 1-based rank of percentile ``q`` among ``total`` values: ``ceil(q * total)``, >= 1."""
    return np.maximum(np.ceil(q * np.asarray(total, dtype=float)), 1.0)


def grouped_quantiles(groups: np.ndarray, buckets: np.ndarray, counts: np.ndarray,
                      n_groups: int, qs: Sequence[float] = QUANTILES) -> np.ndarray:
    """Percentiles of many merged histograms at once.

    ``groups[i]`` (0..n_groups-1) says which merged histogram the pair ``(buckets[i],
    counts[i])`` belongs to; pairs need not be sorted or unique. Returns an ``(n_groups,
    len(qs))`` array, NaN where a group has no latency.
    """
    out = np.full((n_groups, len(qs)), np.nan)
    if not len(buckets):
        return out
    order = np.lexsort((buckets, groups))
    g, b, n = groups[order], buckets[order], counts[order].astype(np.int64)
    cum = np.cumsum(n)
    totals = np.bincount(g, weights=n, minlength=n_groups).astype(np.int64)
    before = np.concatenate(([0], np.cumsum(totals)[:-1]))  # pairs' count before each group
    present = totals > 0
    for j, q in enumerate(qs):
        target = before + rank(q, totals)  # global cumulative position of the wanted rank
        idx = np.searchsorted(cum, target[present], side="left")
        out[present, j] = bucket_value(b[idx])
    return out


def quantiles(hist: Iterable[tuple[int, int]], qs: Sequence[float] = QUANTILES) -> list[float]:
    """Percentiles of one histogram (or of several concatenated: equal buckets may repeat)."""
    pairs = list(hist)
    if not pairs:
        return [math.nan] * len(qs)
    b = np.array([p[0] for p in pairs], dtype=np.int64)
    n = np.array([p[1] for p in pairs], dtype=np.int64)
    return grouped_quantiles(np.zeros(len(b), dtype=np.int64), b, n, 1, qs)[0].tolist()
