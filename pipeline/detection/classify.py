"""Which kind of anomaly a window is, from the features that deviated.

Only deviations in the harmful direction count: more errors, slower responses, more 404s,
and traffic in either direction. Every deviating feature votes for the kind it signals with
its |z|; the strongest vote wins, except that on a source or the service a jump in the 404
share is a scan even when the scan's extra requests also look like a surge. A single
endpoint is not what a scanner hits (it probes paths nobody serves), so there the 404 share
competes on strength like any other feature.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.detection.features import FEATURES

KIND_OF_FEATURE: dict[str, str] = {
    "error_rate": "error_burst",
    "latency_p50": "latency_spike",
    "latency_p95": "latency_spike",
    "latency_p99": "latency_spike",
    "share_404": "scan_404",
    "share_4xx": "other",
}

#: Smallest change worth reporting, besides statistical significance (high-volume entities
#: make tiny shifts significant). requests: ratio; rates: absolute; latency: ratio (the
#: median's, for a tail percentile of few requests: ``_bulk_slower``).
MIN_EFFECT = {
    "requests_up": 1.5, "requests_down": 0.6,
    "error_rate": 0.03, "share_404": 0.05, "share_4xx": 0.08,
    "latency": 2.0, "latency_median": 1.5,
}
TAIL_MIN_REQUESTS = 100
_P50 = FEATURES.index("latency_p50")


def deviating(z: np.ndarray, observed: dict[str, float], expected: dict[str, float],
              threshold: float) -> dict[str, float]:
    """feature -> signed z of each feature that deviates in a harmful direction."""
    out: dict[str, float] = {}
    for i, name in enumerate(FEATURES):
        zi = z[i]
        if zi is None or math.isnan(zi) or abs(zi) < threshold:
            continue
        obs, exp = observed.get(name, math.nan), expected.get(name, math.nan)
        if name == "requests":
            up = zi > 0 and obs >= MIN_EFFECT["requests_up"] * max(exp, 1.0)
            down = zi < 0 and obs <= MIN_EFFECT["requests_down"] * exp
            if up or down:
                out[name] = float(zi)
        elif name.startswith("latency"):
            if zi > 0 and obs >= MIN_EFFECT["latency"] * exp and \
                    _bulk_slower(name, z, observed, expected, threshold):
                out[name] = float(zi)
        elif zi > 0 and obs - exp >= MIN_EFFECT[name]:
            out[name] = float(zi)
    return out


def _bulk_slower(name: str, z: np.ndarray, observed: dict[str, float],
                 expected: dict[str, float], threshold: float) -> bool:
    """A tail percentile of few requests counts only if the median rose too.

    Below ``TAIL_MIN_REQUESTS`` a p95 is one or two of the slowest requests: one slow request
    moves it, and so does traffic alone (the maximum of more requests is larger), which made
    every surge look like a latency spike on the small endpoints. The median must have risen
    by ``MIN_EFFECT["latency_median"]`` and by half the threshold in z (a source's median
    also moves with its mix of fast and slow endpoints).
    """
    if name == "latency_p50" or observed.get("latency_requests", math.inf) >= TAIL_MIN_REQUESTS:
        return True
    p50, e50 = observed.get("latency_p50", math.nan), expected.get("latency_p50", math.nan)
    z50 = z[_P50]
    if math.isnan(p50) or math.isnan(e50) or math.isnan(z50):
        return True
    return p50 >= MIN_EFFECT["latency_median"] * e50 and z50 >= threshold / 2


def classify(devs: dict[str, float], entity_type: str = "source") -> str:
    """The anomaly kind for a set of deviating features (``pipeline.schemas.ANOMALY_KINDS``)."""
    if not devs:
        return "other"
    if "share_404" in devs and entity_type != "endpoint":
        return "scan_404"
    votes: dict[str, float] = {}
    for name, zi in devs.items():
        if name == "requests":
            kind = "traffic_surge" if zi > 0 else "traffic_drop"
        else:
            kind = KIND_OF_FEATURE.get(name, "other")
        votes[kind] = max(votes.get(kind, 0.0), abs(zi))
    return max(votes.items(), key=lambda kv: kv[1])[0]


def strongest(z: np.ndarray) -> dict[str, float]:
    """The harmful-direction z per feature (for IsolationForest-only verdicts)."""
    out: dict[str, float] = {}
    for i, name in enumerate(FEATURES):
        zi = z[i]
        if zi is None or math.isnan(zi):
            continue
        if name == "requests" or zi > 0:
            out[name] = float(zi)
    return out
