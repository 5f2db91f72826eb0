"""Which kind of anomaly a window is, from the features that deviated.

Only deviations in the harmful direction count: more errors, slower responses, more 404s,
and traffic in either direction. Every deviating feature votes for the kind it signals with
its |z|; the strongest vote wins, except that a jump in the 404 share is a scan even when the
scan's extra requests also look like a surge.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.detection.features import FEATURES

KIND_OF_FEATURE: dict[str, str] = {
    "error_rate": "error_burst",
    "latency_p95": "latency_spike",
    "latency_p99": "latency_spike",
    "share_404": "scan_404",
    "share_4xx": "other",
}

#: Smallest change worth reporting, besides statistical significance (high-volume entities
#: make tiny shifts significant). requests: ratio; rates: absolute; latency: ratio.
MIN_EFFECT = {
    "requests_up": 1.5, "requests_down": 0.6,
    "error_rate": 0.03, "share_404": 0.05, "share_4xx": 0.08,
    "latency": 2.0,
}


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
            if zi > 0 and obs >= MIN_EFFECT["latency"] * exp:
                out[name] = float(zi)
        elif zi > 0 and obs - exp >= MIN_EFFECT[name]:
            out[name] = float(zi)
    return out


def classify(devs: dict[str, float]) -> str:
    """The anomaly kind for a set of deviating features (``pipeline.schemas.ANOMALY_KINDS``)."""
    if not devs:
        return "other"
    if "share_404" in devs:
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
