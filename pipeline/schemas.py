"""The contract between the pipeline's writers and every reader: Delta table names, columns
and the generator's event fields, as Spark DDL strings (no pyspark import needed here).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Fields of one web-log event as JSON on the Kafka topic (the generator writes these;
#: ``ts`` is event time in epoch milliseconds).
EVENT_FIELDS: tuple[str, ...] = (
    "event_id", "ts", "level", "source", "method", "endpoint", "status",
    "latency_ms", "bytes", "client_ip", "user_agent", "message",
)
LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARN", "ERROR")

#: Kafka header names that a producer may set; the processor reads them.
HEADER_EVENT_ID = "event_id"    # stable id for raw lines (shipper: file identity + byte offset)
HEADER_FORMAT = "format"        # json | combined | common
HEADER_SOURCE = "source"        # service/host name for raw lines



@dataclass(frozen=True)
class WindowSize:
    """One tumbling-window size of the ``metrics`` table."""

    label: str        # the ``metrics.window_size`` value
    seconds: float
    spark: str        # Spark window duration
    pandas_freq: str  # pandas frequency (the detector's own windowing)

    @property
    def aliases(self) -> frozenset[str]:
        """Spellings a setting may use for this size ('10s', '10 seconds', '60s', ...)."""
        return frozenset({self.label, self.spark, self.pandas_freq, f"{self.seconds:g}s"})


#: The window sizes of the merged metrics views, by label (the one definition). The processor
#: writes ``PARTIAL_WINDOW`` partials; every size is a merge of them.
WINDOW_SIZES: dict[str, WindowSize] = {
    "10s": WindowSize("10s", 10.0, "10 seconds", "10s"),
    "1m": WindowSize("1m", 60.0, "1 minute", "1min"),
    "5m": WindowSize("5m", 300.0, "5 minutes", "5min"),
    "1h": WindowSize("1h", 3600.0, "1 hour", "1h"),
}
PARTIAL_WINDOW = "10s"


def window_size(text: str) -> WindowSize:
    """The window size a setting names (any of its aliases); ValueError otherwise."""
    for size in WINDOW_SIZES.values():
        if text.strip() in size.aliases:
            return size
    raise ValueError(f"unsupported window {text!r}: use "
                     + " or ".join(repr(s.spark) for s in WINDOW_SIZES.values()))


TABLE_LOGS = "logs"
TABLE_QUARANTINE = "logs_quarantine"
TABLE_METRICS = "metrics"
TABLE_ANOMALIES = "anomalies"
PIPELINE_TABLES = (TABLE_LOGS, TABLE_QUARANTINE, TABLE_METRICS, TABLE_ANOMALIES)

LOGS_DDL = ", ".join([
    "event_id STRING", "ts TIMESTAMP", "level STRING", "source STRING", "method STRING",
    "endpoint STRING", "status INT", "latency_ms DOUBLE", "bytes BIGINT", "client_ip STRING",
    "user_agent STRING", "message STRING", "raw_format STRING",
    "kafka_topic STRING", "kafka_partition INT", "kafka_offset BIGINT",
    "kafka_timestamp TIMESTAMP", "ingest_ts TIMESTAMP", "date DATE",
])  # partitioned by date

QUARANTINE_DDL = ", ".join([
    "raw BINARY", "reason STRING", "kafka_topic STRING", "kafka_partition INT",
    "kafka_offset BIGINT", "kafka_timestamp TIMESTAMP", "ingest_ts TIMESTAMP", "date DATE",
])  # partitioned by date

METRICS_DDL = ", ".join([
    "window_start TIMESTAMP", "window_end TIMESTAMP", "window_size STRING",  # WINDOW_SIZES
    "source STRING", "endpoint STRING", "level STRING",
    "requests BIGINT", "errors BIGINT", "error_rate DOUBLE",
    "latency_p50 DOUBLE", "latency_p95 DOUBLE", "latency_p99 DOUBLE", "bytes BIGINT",
    "status_2xx BIGINT", "status_3xx BIGINT", "status_4xx BIGINT", "status_5xx BIGINT",
    "status_404 BIGINT",
])

#: The ``metrics`` table itself: one row per (10 s window, source, endpoint, level) and
#: micro-batch that touched it, plus what merging needs (see pipeline.transforms.metrics).
METRIC_PARTIALS_DDL = ", ".join([
    METRICS_DDL, "latency_hist ARRAY<STRUCT<b: INT, n: BIGINT>>", "watermark TIMESTAMP",
    "batch_id BIGINT",
])


def merged_metrics_view(size: str) -> str:
    """Name of the view that merges ``metrics`` partials into ``size`` windows."""
    return f"{TABLE_METRICS}_{size}"


def ddl_fields(ddl: str) -> list[tuple[str, str]]:
    """``"a STRING, b ARRAY<STRUCT<x: INT, y: INT>>"`` -> ``[("a", "STRING"), ("b", ...)]``:
    split at the top-level commas only."""
    fields, depth, start = [], 0, 0
    for i, ch in enumerate(ddl + ","):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            name, _, dtype = ddl[start:i].strip().partition(" ")
            fields.append((name, dtype.strip()))
            start = i + 1
    return fields


def column_names(ddl: str) -> list[str]:
    return [name for name, _ in ddl_fields(ddl)]


ANOMALIES_DDL = ", ".join([
    "anomaly_id STRING",  # deterministic: hash of (window_start, entity_type, entity, kind)
    "window_start TIMESTAMP", "window_end TIMESTAMP",
    "entity_type STRING",  # service | source | endpoint | pattern
    "entity STRING",
    "kind STRING",  # error_burst | latency_spike | traffic_surge | traffic_drop | scan_404
                    # | new_pattern | other
    "score DOUBLE", "severity STRING",  # low | medium | high | critical
    "detector STRING",  # baseline | iforest | combined | pattern
    "features STRING",  # JSON: {feature: {"expected": x, "observed": y, "z": z}}
    "top_contributors STRING",  # JSON list of {"field", "value", "share"}
    "explanation STRING", "detected_at TIMESTAMP",
])

ANOMALY_KINDS = (
    "error_burst", "latency_spike", "traffic_surge", "traffic_drop", "scan_404",
    "new_pattern", "other",
)
