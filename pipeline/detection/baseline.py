"""Robust rolling baseline: median / MAD z-scores per entity and feature.

Each entity keeps the transformed feature vectors of its last ``baseline_windows`` accepted
windows. A new window is scored against their median, with ``1.4826 * MAD`` as the scale,
floored by the noise the value can't avoid (Poisson for counts, binomial for rates), so a
quiet entity with a MAD of 0 doesn't flag its first error. Windows judged anomalous are kept
out of the baseline (so a long burst doesn't become "normal") for at most
``max_excluded`` consecutive windows, after which a level shift is accepted.

Transforms: requests -> sqrt (Poisson variance ~ 1/4), latencies -> log, rates unchanged.
Where enough history of the same hour of day from earlier days exists, that sample is the
baseline instead of the trailing one (daily seasonality); the output says which was used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.detection.features import FEATURES, LATENCY_FEATURES, RATE_FEATURES

MAD_TO_SIGMA = 1.4826
_REQ = FEATURES.index("requests")
_RATE_IDX = [FEATURES.index(f) for f in FEATURES if f in RATE_FEATURES]
_LAT_IDX = [FEATURES.index(f) for f in FEATURES if f in LATENCY_FEATURES]
_P99 = FEATURES.index("latency_p99")
P99_MIN_REQUESTS = 500
LATENCY_LOG_FLOOR = 0.05   # 5 % relative: below that a latency change is not worth a page
LATENCY_SAMPLE_FLOOR = 1.0
REQUEST_SQRT_FLOOR = 0.5   # Poisson: Var(sqrt(N)) ~ 1/4
RATE_ABS_FLOOR = 0.003


def transform(raw: np.ndarray, requests: float, min_requests: int,
              latency_requests: float | None = None) -> np.ndarray:
    """Raw feature vector (FEATURES order) -> the scale the baseline works on.

    Rates need ``min_requests`` requests; latencies (a median of group percentiles, far less
    noisy than a rate) need a quarter of that among the requests they are computed from, and
    p99 needs ``P99_MIN_REQUESTS`` (below that it is the sample maximum: pure noise).
    """
    out = np.array(raw, dtype=float)
    out[_REQ] = math.sqrt(max(requests, 0.0))
    if requests < min_requests:
        out[_RATE_IDX] = np.nan
    lat_n = requests if latency_requests is None else latency_requests
    if lat_n < min_latency_requests(min_requests):
        out[_LAT_IDX] = np.nan
    else:
        out[_LAT_IDX] = np.log(np.maximum(out[_LAT_IDX], 1e-3))
        if lat_n < P99_MIN_REQUESTS:  # a p99 of fewer values is just their maximum
            out[_P99] = np.nan
    return out


def min_latency_requests(min_requests: int) -> int:
    """Requests a window's latency percentiles need to be scored (``transform``)."""
    return max(3, min_requests // 4)


def inverse(feature: str, value: float) -> float:
    """Transformed baseline value -> the feature's own unit (for explanations)."""
    if feature == "requests":
        return value * value
    if feature in LATENCY_FEATURES:
        return math.exp(value)
    return value


@dataclass
class Score:
    """A window's deviation from its entity's baseline (arrays in FEATURES order)."""

    z: np.ndarray
    expected: np.ndarray  # transformed scale
    scale: np.ndarray
    history: int
    seasonal: bool


class _Ring:
    """Fixed-size buffer of feature vectors (order is irrelevant to a median)."""

    __slots__ = ("buf", "days", "n", "pos")

    def __init__(self, size: int, width: int) -> None:
        self.buf = np.full((size, width), np.nan)
        self.days = np.zeros(size, dtype=np.int64)
        self.n = 0
        self.pos = 0

    def append(self, x: np.ndarray, day: int = 0) -> None:
        self.buf[self.pos] = x
        self.days[self.pos] = day
        self.pos = (self.pos + 1) % len(self.buf)
        self.n = min(self.n + 1, len(self.buf))

    def values(self) -> np.ndarray:
        return self.buf[: self.n]

    def __len__(self) -> int:
        return self.n


@dataclass
class _EntityState:
    trailing: _Ring
    seasonal: dict[int, _Ring] = field(default_factory=dict)
    excluded_run: int = 0
    last_seen: pd.Timestamp | None = None
    typical_requests: float = 0.0


class RobustBaseline:
    """Per-entity rolling median/MAD state; ``score`` then ``update`` once per window."""

    def __init__(
        self,
        baseline_windows: int = 90,
        min_history: int = 12,
        min_requests: int = 20,
        max_excluded: int = 30,
        seasonal_min_points: int = 180,
        seasonal_max_points: int = 1080,
    ) -> None:
        self.baseline_windows = baseline_windows
        self.min_history = min_history
        self.min_requests = min_requests
        self.max_excluded = max_excluded
        self.seasonal_min_points = seasonal_min_points
        self.seasonal_max_points = seasonal_max_points
        self._state: dict[tuple[str, str], _EntityState] = {}

    def entities(self) -> list[tuple[str, str]]:
        return list(self._state)

    def has_history(self, key: tuple[str, str]) -> bool:
        st = self._state.get(key)
        return st is not None and len(st.trailing) >= self.min_history

    def typical_requests(self, key: tuple[str, str]) -> float:
        """The entity's baseline median of requests per window (as of its last score)."""
        st = self._state.get(key)
        return 0.0 if st is None else st.typical_requests

    def score(self, key: tuple[str, str], window_start: pd.Timestamp, x: np.ndarray,
              requests: float) -> Score | None:
        """z-scores of the transformed vector ``x``; None until the entity has history."""
        return self.score_many([key], window_start, np.asarray([x]), np.asarray([requests]))[0]

    def score_many(self, keys: list[tuple[str, str]], window_start: pd.Timestamp,
                   xs: np.ndarray, requests: np.ndarray,
                   latency_requests: np.ndarray | None = None) -> list[Score | None]:
        """``score`` for many entities of one window at once (one vectorized median).

        The latency floor grows as ``LATENCY_SAMPLE_FLOOR / sqrt(n)`` for a percentile of
        ``n`` values: a p95 of a handful of requests is nearly their maximum, whose upper tail
        a MAD (fitted to the bulk) underestimates.
        """
        out: list[Score | None] = [None] * len(keys)
        idx, samples, seasonal = [], [], []
        for i, key in enumerate(keys):
            st = self._state.get(key)
            if st is None or len(st.trailing) < self.min_history:
                continue
            sample, is_seasonal = self._sample(st, window_start)
            idx.append(i)
            samples.append(sample)
            seasonal.append(is_seasonal)
        if not idx:
            return out
        depth = max(len(sm) for sm in samples)
        stack = np.full((len(idx), depth, len(FEATURES)), np.nan)
        for j, sm in enumerate(samples):
            stack[j, : len(sm)] = sm
        med, counts = nanmedian_axis1(stack)
        mad, _ = nanmedian_axis1(np.abs(stack - med[:, None, :]))
        mad = mad * MAD_TO_SIGMA
        x = xs[idx]
        n = np.maximum(np.asarray(requests, dtype=float)[idx], 1.0)
        floor = np.zeros_like(med)
        floor[:, _REQ] = REQUEST_SQRT_FLOOR
        lat_n = n if latency_requests is None else np.maximum(
            np.asarray(latency_requests, dtype=float)[idx], 1.0)
        floor[:, _LAT_IDX] = np.maximum(LATENCY_LOG_FLOOR, LATENCY_SAMPLE_FLOOR / np.sqrt(
            lat_n))[:, None]
        for i in _RATE_IDX:
            p0 = np.nan_to_num(med[:, i], nan=0.0)
            p0 = np.minimum(np.maximum(p0, 1.0 / n), 0.5)
            floor[:, i] = np.sqrt(p0 * (1 - p0) / n) + RATE_ABS_FLOOR
        scale = np.fmax(mad, floor)
        with np.errstate(invalid="ignore"):
            z = (x - med) / scale
        z[counts < self.min_history] = np.nan
        for j, i in enumerate(idx):
            self._state[keys[i]].typical_requests = float(med[j, _REQ]) ** 2
            out[i] = Score(z=z[j], expected=med[j], scale=scale[j], history=int(counts[j].max()),
                           seasonal=seasonal[j])
        return out

    def update(self, key: tuple[str, str], window_start: pd.Timestamp, x: np.ndarray,
               anomalous: bool) -> None:
        """Add the window to the baseline unless it is anomalous (see module doc)."""
        st = self._state.get(key)
        if st is None:
            st = self._state[key] = _EntityState(
                trailing=_Ring(self.baseline_windows, len(FEATURES)))
        st.last_seen = window_start
        if anomalous and st.excluded_run < self.max_excluded and len(st.trailing) >= \
                self.min_history:
            st.excluded_run += 1
            return
        st.excluded_run = 0
        st.trailing.append(x)
        hour = int(window_start.hour)
        ring = st.seasonal.get(hour)
        if ring is None:
            ring = st.seasonal[hour] = _Ring(self.seasonal_max_points, len(FEATURES))
        ring.append(x, _day(window_start))

    def forget_idle(self, now: pd.Timestamp, idle: pd.Timedelta) -> int:
        """Drop entities unseen for ``idle`` (one-off endpoints of a scan); returns count."""
        stale = [k for k, st in self._state.items()
                 if st.last_seen is not None and now - st.last_seen > idle]
        for k in stale:
            del self._state[k]
        return len(stale)

    def _sample(self, st: _EntityState, window_start: pd.Timestamp) -> tuple[np.ndarray, bool]:
        ring = st.seasonal.get(int(window_start.hour))
        if ring is not None and len(ring) >= self.seasonal_min_points:
            earlier = ring.days[: ring.n] < _day(window_start)
            if int(earlier.sum()) >= self.seasonal_min_points:
                return ring.values()[earlier], True
        return st.trailing.values(), False


def _day(ts: pd.Timestamp) -> int:
    return int(ts.value // 86_400_000_000_000)


def nanmedian_axis1(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 1 of a (E, W, F) array ignoring NaN, and the non-NaN counts.

    Sorting puts NaN last, so the median sits at the middle of each column's valid prefix;
    no RuntimeWarning for all-NaN columns (they give NaN).
    """
    s = np.sort(a, axis=1)
    n = (~np.isnan(a)).sum(axis=1)
    depth = a.shape[1]
    lo = np.clip((n - 1) // 2, 0, depth - 1)[:, None, :]
    hi = np.clip(n // 2, 0, depth - 1)[:, None, :]
    med = (np.take_along_axis(s, lo, axis=1) + np.take_along_axis(s, hi, axis=1))[:, 0, :] / 2
    med[n == 0] = np.nan
    return med, n
