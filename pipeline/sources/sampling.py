"""The event generator's sampling helpers (pure numpy).

The daily traffic curve, the sources' names, Zipf weights and their cumulative distribution
(for ``np.searchsorted`` draws), and version 4 UUID strings built from random bytes in bulk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from pipeline.sources import catalog as cat

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_DAY_MS = 86_400_000
#: Peak of the daily curve (UTC hour) and its amplitude (trough = 1 - amplitude).
CURVE_PEAK_HOUR = 15.0
CURVE_AMPLITUDE = 0.55


def daily_curve(ts_ms: np.ndarray | float) -> np.ndarray | float:
    """Traffic multiplier at event time ``ts_ms``: mean 1 over a day, peak 15:00 UTC."""
    hour = (np.asarray(ts_ms, dtype=np.float64) % _DAY_MS) / 3_600_000.0
    return 1.0 + CURVE_AMPLITUDE * np.cos(2 * math.pi * (hour - CURVE_PEAK_HOUR) / 24.0)


def source_names(n: int) -> list[str]:
    """``web-01, api-01, auth-01, ...``: source i runs service ``SERVICES[i % 6]``."""
    k = len(cat.SERVICES)
    return [f"{cat.SERVICES[i % k]}-{i // k + 1:02d}" for i in range(n)]


def to_cdf(weights: Iterable[float]) -> np.ndarray:
    w = np.asarray(list(weights), dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def zipf_weights(n: int, s: float = cat.ZIPF_S, offset: float = 0.0) -> np.ndarray:
    return 1.0 / (np.arange(1, n + 1) + offset) ** s


def uuid4_strings(raw: np.ndarray) -> list[str]:
    """Random (version 4) UUID strings from 16 bytes per row."""
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    n = raw.shape[0]
    hexd = np.empty((n, 32), dtype=np.uint8)
    hexd[:, 0::2] = _HEX[raw >> 4]
    hexd[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_POS] = hexd
    return out.view("S36").ravel().astype("U36").tolist()
