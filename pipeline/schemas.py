"""The contract between the pipeline's writers and every reader: Delta table names, columns
and the generator's event fields, as Spark DDL strings (no pyspark import needed here).
"""

from __future__ import annotations

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
    "window_start TIMESTAMP", "window_end TIMESTAMP", "window_size STRING",  # '10s' | '1m'
    "source STRING", "endpoint STRING", "level STRING",
    "requests BIGINT", "errors BIGINT", "error_rate DOUBLE",
    "latency_p50 DOUBLE", "latency_p95 DOUBLE", "latency_p99 DOUBLE", "bytes BIGINT",
    "status_2xx BIGINT", "status_3xx BIGINT", "status_4xx BIGINT", "status_5xx BIGINT",
    "status_404 BIGINT",
])

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
