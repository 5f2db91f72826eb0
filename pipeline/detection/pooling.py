"""Latency of sparse entities, pooled over their last windows.

A 10 s window of an endpoint with a handful of requests has no usable p95 (it is their
maximum), so its latency was not scored at all and a spike on such an endpoint went unseen.
When a window has fewer than ``pool_requests`` latency requests, its p50 and p95 become the
request-weighted medians of the p50s and p95s of the entity's last windows that together
hold ``pool_requests`` requests (at most ``max_windows`` windows; at least
``min_requests``). The baseline learns these pooled values too, so both sides of the
z-score are on the same footing, and the noise floor follows the pooled count. A spike
shows once it holds the majority of the pooled requests: a few windows after it starts.
p99 is left out: a pool is far below the requests a p99 needs. A weighted median rather
than a mean, so one window's single slow request does not move the pool.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

Key = tuple[str, str]


class LatencyPool:
    """Per-entity deque of the last windows' (p50, p95, latency requests); see the module doc."""

    def __init__(self, min_requests: int, pool_requests: int, max_windows: int) -> None:
        self.min_requests = min_requests
        self.pool_requests = pool_requests
        self.max_windows = max_windows
        self._recent: dict[Key, deque[tuple[float, float, float]]] = {}
        self._idle: dict[Key, int] = {}

    def latency(self, key: Key, p50: float, p95: float, p99: float, requests: float,
                commit: bool = True) -> tuple[float, float, float, float]:
        """(p50, p95, p99, latency requests) to score this window on; pooled when sparse.

        ``commit=False`` pools the window with the last ones without keeping it (a
        provisional window is scored, not remembered).
        """
        usable = requests > 0 and not (math.isnan(p50) or math.isnan(p95))
        item = (p50, p95, requests) if usable else (math.nan, math.nan, 0.0)
        recent = self._recent.get(key)
        if commit:
            if recent is None:
                recent = self._recent[key] = deque(maxlen=self.max_windows)
            recent.append(item)
            self._idle[key] = 0
        else:
            recent = [*(recent or ()), item][-self.max_windows:]
        if not usable or requests >= self.pool_requests:  # no requests, no latency to pool
            return p50, p95, p99, requests
        pooled = []
        total = 0.0
        for item in reversed(recent):
            if item[2] > 0:
                pooled.append(item)
                total += item[2]
                if total >= self.pool_requests:
                    break
        if total < self.min_requests:
            return p50, p95, p99, requests
        arr = np.array(pooled)
        return (weighted_median(arr[:, 0], arr[:, 2]), weighted_median(arr[:, 1], arr[:, 2]),
                math.nan, total)

    def end_window(self) -> None:
        """Forget entities that sent nothing for ``max_windows`` windows."""
        for key in list(self._idle):
            self._idle[key] += 1
            if self._idle[key] > self.max_windows:
                del self._idle[key], self._recent[key]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the cumulative weight (in value order) reaches half the total."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])
