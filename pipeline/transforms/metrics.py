"""Tumbling-window request metrics per (source, endpoint, level): the ``metrics`` table.

Definitions (the detector and the desktop charts rely on them):

- ``requests``: events in the window; ``errors``: events with ``status >= 500`` **or**
  ``level = 'ERROR'`` (an event that is both counts once); ``error_rate = errors / requests``.
- ``latency_p50/p95/p99``: ``percentile_approx(latency_ms, p, PERCENTILE_ACCURACY)``. Spark's
  Greenwald-Khanna sketch returns a value *from the data* whose rank differs from the exact
  rank ``ceil(p * n)`` by at most ``n / PERCENTILE_ACCURACY``; with accuracy 10,000 that is
  exact for groups of up to 10,000 latencies and within 0.01 % of the rank above. Events
  without a latency (access-log lines) are ignored; a window with none has null percentiles.
- ``bytes``: sum of response sizes (missing sizes count as 0).
- ``status_2xx`` ... ``status_5xx``: events per status class; ``status_404``: not-found count.

The window is on event time ``ts``. The runner puts a watermark on ``ts`` first, so in a stream
each window is written once, when the watermark passes its end; events later than that are
still in ``logs`` but not in ``metrics`` (the runner reports how many).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.schemas import WINDOW_SIZES
from pipeline.transforms.columns import METRICS_COLUMNS, conform

PERCENTILE_ACCURACY = 10_000
#: window_size label -> Spark window duration.
WINDOWS: dict[str, str] = {label: size.spark for label, size in WINDOW_SIZES.items()}


def is_error():
    """The error predicate of the ``errors`` column."""
    return (F.col("status") >= 500) | (F.col("level") == "ERROR")


def window_metrics(logs: DataFrame, window_size: str) -> DataFrame:
    """``logs`` rows -> one ``metrics`` row per (window, source, endpoint, level).

    ``window_size`` is a key of :data:`WINDOWS`. Works on batch and streaming frames (a stream
    needs a watermark on ``ts``).
    """
    if window_size not in WINDOWS:
        raise ValueError(f"window_size must be one of {sorted(WINDOWS)}, not {window_size!r}")

    def count_if(cond):
        return F.sum(F.when(cond, 1).otherwise(0)).cast("bigint")

    status = F.col("status")
    agg = logs.groupBy(
        F.window("ts", WINDOWS[window_size]).alias("w"), "source", "endpoint", "level"
    ).agg(
        F.count(F.lit(1)).alias("requests"),
        count_if(is_error()).alias("errors"),
        F.percentile_approx(
            "latency_ms", [0.5, 0.95, 0.99], PERCENTILE_ACCURACY
        ).alias("p"),
        F.coalesce(F.sum("bytes"), F.lit(0)).alias("bytes"),
        count_if((status >= 200) & (status < 300)).alias("status_2xx"),
        count_if((status >= 300) & (status < 400)).alias("status_3xx"),
        count_if((status >= 400) & (status < 500)).alias("status_4xx"),
        count_if((status >= 500) & (status < 600)).alias("status_5xx"),
        count_if(status == 404).alias("status_404"),
    )
    out = agg.select(
        F.col("w.start").alias("window_start"),
        F.col("w.end").alias("window_end"),
        F.lit(window_size).alias("window_size"),
        "source", "endpoint", "level", "requests", "errors",
        (F.col("errors") / F.col("requests")).alias("error_rate"),
        F.col("p")[0].alias("latency_p50"),
        F.col("p")[1].alias("latency_p95"),
        F.col("p")[2].alias("latency_p99"),
        "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_404",
    )
    return conform(out, METRICS_COLUMNS)
