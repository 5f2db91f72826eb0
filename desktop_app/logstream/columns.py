"""Column numbers and titles of the live log table (shared by the model, export and tests)."""

from __future__ import annotations

COL_TIME = 0
COL_LEVEL = 1
COL_SOURCE = 2
COL_METHOD = 3
COL_ENDPOINT = 4
COL_STATUS = 5
COL_LATENCY = 6
COL_BYTES = 7
COL_PARTITION = 8
COL_OFFSET = 9
COL_MESSAGE = 10

HEADERS: tuple[str, ...] = (
    "Time (UTC)", "Level", "Source", "Method", "Endpoint", "Status", "Latency ms", "Bytes",
    "Part.", "Offset", "Message",
)
COLUMN_COUNT = len(HEADERS)

#: Field names of an exported row (CSV header), in column order.
EXPORT_FIELDS: tuple[str, ...] = (
    "ts", "level", "source", "method", "endpoint", "status", "latency_ms", "bytes",
    "kafka_partition", "kafka_offset", "message",
)
NUMERIC_COLUMNS = frozenset({COL_STATUS, COL_LATENCY, COL_BYTES, COL_PARTITION, COL_OFFSET})
