"""Feature engineering: ``metrics`` rows -> one feature row per (window, entity).

``metrics`` holds one row per (window, source, endpoint, level). The detector looks at three
entity types, each aggregating over the other dimensions:

- ``service``: everything (entity ``SERVICE_ENTITY``),
- ``source``: one row per source,
- ``endpoint``: one row per endpoint (across sources).

Latency percentiles of a union can't be derived exactly from the groups' percentiles; we use
the request-weighted *median* of the groups' p95 / p99: the percentile of the group that
holds the median request. A max, or a weighted mean, of group percentiles follows the
noisiest small group (one ERROR row whose single 504 took 30 s moves a weighted mean by
seconds); the weighted median moves when the bulk of the entity's traffic got slower, which
is what a latency spike is. Rows of level ERROR are left out of the latency features: a
failing request's latency (a 30 s gateway timeout) is the error burst's symptom, not a slow
service; ``latency_requests`` counts the requests the latency features stand on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.latency_hist import histogram, quantiles
from pipeline.schemas import (
    METRIC_PARTIALS_DDL,
    METRICS_DDL,
    PARTIAL_WINDOW,
    column_names,
    window_size,
)

SERVICE_ENTITY = "all"
ENTITY_TYPES = ("service", "source", "endpoint")

#: Features the detectors score, in this order (also the IsolationForest's columns).
FEATURES: tuple[str, ...] = (
    "requests", "error_rate", "latency_p50", "latency_p95", "latency_p99", "share_4xx",
    "share_404",
)
#: Features that are a fraction of requests (binomial noise floor, need ``min_requests``).
RATE_FEATURES = frozenset({"error_rate", "share_4xx", "share_404"})
LATENCY_FEATURES = frozenset({"latency_p50", "latency_p95", "latency_p99"})

FEATURE_COLUMNS: tuple[str, ...] = (
    "window_start", "window_end", "entity_type", "entity",
    "requests", "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99",
    "share_3xx", "share_4xx", "share_5xx", "share_404", "status_404", "bytes",
    "latency_requests",
)

def window_freq(window: str) -> str:
    """'10 seconds' / '10s' -> pandas frequency '10s'; '1 minute' / '1m' -> '1min'."""
    return window_size(window).pandas_freq


def window_label(window: str) -> str:
    """The ``metrics.window_size`` value ('10s' | '1m') for a window setting."""
    return window_size(window).label


def _event_frame(events: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Raw events -> one row per event: its window, group keys, latency and count flags."""
    ev = events
    ts = ev["ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        ts = pd.to_datetime(ts.astype("int64"), unit="ms")
    ts = ts.dt.tz_localize(None) if getattr(ts.dt, "tz", None) is not None else ts
    status = ev["status"].astype("int64")
    return pd.DataFrame({
        "ts": ts.to_numpy(),
        "window_start": ts.dt.floor(freq).to_numpy(),
        "source": ev["source"].astype(str).to_numpy(),
        "endpoint": ev["endpoint"].astype(str).to_numpy(),
        "level": ev["level"].astype(str).to_numpy(),
        "latency_ms": ev["latency_ms"].astype(float).to_numpy(),
        "bytes": ev["bytes"].astype("int64").to_numpy() if "bytes" in ev else 0,
        "err": ((status >= 500) | (ev["level"].astype(str) == "ERROR")).astype("int64").to_numpy(),
        "s2": ((status >= 200) & (status < 300)).astype("int64").to_numpy(),
        "s3": ((status >= 300) & (status < 400)).astype("int64").to_numpy(),
        "s4": ((status >= 400) & (status < 500)).astype("int64").to_numpy(),
        "s5": (status >= 500).astype("int64").to_numpy(),
        "s404": (status == 404).astype("int64").to_numpy(),
    })


_GROUP_KEYS = ["window_start", "source", "endpoint", "level"]
_COUNTS = {
    "requests": ("err", "size"), "errors": ("err", "sum"), "bytes": ("bytes", "sum"),
    "status_2xx": ("s2", "sum"), "status_3xx": ("s3", "sum"), "status_4xx": ("s4", "sum"),
    "status_5xx": ("s5", "sum"), "status_404": ("s404", "sum"),
}


def events_to_metrics(events: pd.DataFrame, window: str = "10s") -> pd.DataFrame:
    """Test/bench aid: the merged ``metrics`` windows computed in pandas from raw events.

    Mirrors ``pipeline.schemas.METRICS_DDL``: tumbling event-time windows, grouped by
    (window, source, endpoint, level); ``errors`` counts status >= 500 or level ERROR.
    ``ts`` may be epoch milliseconds or datetimes. Percentiles are exact (inverted CDF); the
    merged windows' histogram percentiles are within 1 % of these.
    """
    freq = window_freq(window)
    if events.empty:
        return _empty_metrics()
    frame = _event_frame(events, freq)
    keys = _GROUP_KEYS
    out = frame.groupby(keys, sort=True, observed=True).agg(**_COUNTS)
    for p, col in ((0.50, "latency_p50"), (0.95, "latency_p95"), (0.99, "latency_p99")):
        out[col] = rank_quantile(frame, keys, "latency_ms", p)
    out = out.reset_index()
    out["window_end"] = out["window_start"] + pd.Timedelta(freq)
    out["window_size"] = window_label(window)
    out["error_rate"] = out["errors"] / out["requests"]
    return out[column_names(METRICS_DDL)]


def events_to_partials(events: pd.DataFrame, batch_size: int | None = None,
                       delay_s: float = 30.0) -> pd.DataFrame:
    """Test aid: the ``metrics`` partials (``METRIC_PARTIALS_DDL``) the processor writes.

    Events arrive in row order, ``batch_size`` per micro-batch (None: one batch). Each batch
    adds one row per 10 s window (and source, endpoint, level) it touched, with its
    ``latency_hist`` (``(b, n)`` pairs), the watermark after it (newest event time so far
    minus ``delay_s``, the ``processor.watermark``) and its ``batch_id``. Events of a window
    already final when their batch arrives are late and left out, as the processor does.
    """
    cols = column_names(METRIC_PARTIALS_DDL)
    if events.empty:
        return pd.DataFrame(columns=cols)
    freq = window_freq(PARTIAL_WINDOW)
    frame = _event_frame(events, freq)
    n = len(frame)
    frame["batch_id"] = np.arange(n) // (batch_size or n)
    newest = frame.groupby("batch_id")["ts"].max().cummax()
    after = newest - pd.Timedelta(seconds=delay_s)
    before = after.shift(1)  # the watermark each batch starts from (NaT: none yet)
    frame["watermark"] = frame["batch_id"].map(after)
    late = (frame["window_start"] + pd.Timedelta(freq)) <= frame["batch_id"].map(before)
    frame = frame[~late.to_numpy()]
    keys = ["batch_id", *_GROUP_KEYS]
    g = frame.groupby(keys, sort=True, observed=True)
    out = g.agg(**_COUNTS, watermark=("watermark", "first"),
                latency_hist=("latency_ms", histogram)).reset_index()
    pct = np.array([quantiles(h) for h in out["latency_hist"]]).reshape(len(out), 3)
    out[["latency_p50", "latency_p95", "latency_p99"]] = pct
    out["window_end"] = out["window_start"] + pd.Timedelta(freq)
    out["window_size"] = PARTIAL_WINDOW
    out["error_rate"] = out["errors"] / out["requests"]
    return out[cols]


def rank_quantile(frame: pd.DataFrame, keys: list[str], value: str, p: float) -> pd.Series:
    """Per group: the value of rank ``ceil(p * n)`` (1-based) among its non-null values.

    That is the exact answer ``percentile_approx`` approximates (a value from the data).
    """
    d = frame.loc[frame[value].notna(), keys + [value]].sort_values(keys + [value],
                                                                    kind="stable")
    g = d.groupby(keys, sort=False)
    pos = g.cumcount() + 1
    n = g[value].transform("size")
    want = np.maximum(np.ceil(p * n - 1e-9), 1)
    return d[pos == want].groupby(keys, sort=True)[value].first()


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({
        "window_start": pd.Series(dtype="datetime64[ns]"),
        "window_end": pd.Series(dtype="datetime64[ns]"),
        "window_size": pd.Series(dtype=object), "source": pd.Series(dtype=object),
        "endpoint": pd.Series(dtype=object), "level": pd.Series(dtype=object),
        **{c: pd.Series(dtype="int64") for c in ("requests", "errors")},
        "error_rate": pd.Series(dtype=float),
        **{c: pd.Series(dtype=float) for c in ("latency_p50", "latency_p95", "latency_p99")},
        **{c: pd.Series(dtype="int64") for c in (
            "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_404")},
    })


def metrics_to_features(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (window_start, entity_type, entity) with the detector's raw features.

    Counts are summed across the other dimensions; rates are recomputed from the summed
    counts; latencies are request-weighted means of the groups' percentiles (module doc).
    """
    if metrics.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FEATURE_COLUMNS})
    m = metrics
    base = pd.DataFrame({
        "window_start": pd.to_datetime(m["window_start"]).to_numpy(),
        "window_end": pd.to_datetime(m["window_end"]).to_numpy(),
        "source": m["source"].astype(str).to_numpy(),
        "endpoint": m["endpoint"].astype(str).to_numpy(),
        "requests": m["requests"].fillna(0).astype("int64").to_numpy(),
        "errors": m["errors"].fillna(0).astype("int64").to_numpy(),
        "status_3xx": m["status_3xx"].fillna(0).astype("int64").to_numpy(),
        "status_4xx": m["status_4xx"].fillna(0).astype("int64").to_numpy(),
        "status_5xx": m["status_5xx"].fillna(0).astype("int64").to_numpy(),
        "status_404": m["status_404"].fillna(0).astype("int64").to_numpy(),
        "bytes": m["bytes"].fillna(0).astype("int64").to_numpy(),
    })
    not_error = (m["level"].astype(str) != "ERROR").to_numpy()
    for col in ("latency_p50", "latency_p95", "latency_p99"):
        base[col] = np.where(not_error, m[col].astype(float).to_numpy(), np.nan)
    base["latency_requests"] = np.where(
        not_error & ~np.isnan(base["latency_p95"].to_numpy()), base["requests"], 0)
    base["service"] = SERVICE_ENTITY
    sums = ["requests", "errors", "status_3xx", "status_4xx", "status_5xx", "status_404",
            "bytes", "latency_requests"]
    parts = []
    for entity_type, key in (("service", "service"), ("source", "source"),
                             ("endpoint", "endpoint")):
        keys = ["window_start", key]
        agg = base.groupby(keys, sort=True)[sums + ["window_end"]].agg(
            {**{c: "sum" for c in sums}, "window_end": "max"})
        for col in ("latency_p50", "latency_p95", "latency_p99"):
            agg[col] = weighted_median(base, keys, col, "requests")
        agg = agg.reset_index().rename(columns={key: "entity"})
        agg["entity_type"] = entity_type
        parts.append(agg)
    f = pd.concat(parts, ignore_index=True)
    r = f["requests"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["error_rate"] = np.where(r > 0, f["errors"] / r, np.nan)
        for cls in ("3xx", "4xx", "5xx", "404"):
            f[f"share_{cls}"] = np.where(r > 0, f[f"status_{cls}"] / r, np.nan)
    f["requests"] = f["requests"].astype("int64")
    f["errors"] = f["errors"].astype("int64")
    f["status_404"] = f["status_404"].astype("int64")
    f["latency_requests"] = f["latency_requests"].astype("int64")
    return f[list(FEATURE_COLUMNS)].sort_values(
        ["window_start", "entity_type", "entity"], kind="stable").reset_index(drop=True)


def weighted_median(frame: pd.DataFrame, keys: list[str], value: str, weight: str) -> pd.Series:
    """Per group of ``keys``: the ``value`` at which the cumulative ``weight`` reaches half.

    Rows with a missing value or no weight are ignored; a group with none gives NaN.
    """
    ok = frame[value].notna() & (frame[weight] > 0)
    d = frame.loc[ok, keys + [value, weight]].sort_values(keys + [value], kind="stable")
    if d.empty:
        return pd.Series(np.nan, index=pd.MultiIndex.from_arrays(
            [frame[k].iloc[:0] for k in keys]), dtype=float)
    g = d.groupby(keys, sort=False)[weight]
    cum = g.cumsum()
    half = g.transform("sum") / 2.0
    first = d[cum >= half].groupby(keys, sort=True)[value].first()
    return first
