"""The "Open in SQL" query for a row of the live view (no Qt).

Spark SQL string literals treat backslash as an escape, so values are escaped for both
backslash and quote; the time window also bounds the ``date`` partition column so the query
prunes partitions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.schemas import TABLE_LOGS

DEFAULT_WINDOW_MS = 5 * 60 * 1000


def sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def query_for_row(ts_ms: int, source: str | None = None, endpoint: str | None = None,
                  window_ms: int = DEFAULT_WINDOW_MS, table: str = TABLE_LOGS,
                  limit: int = 10_000) -> str:
    """Rows of the same source/endpoint within ``window_ms`` either side of ``ts_ms`` (UTC)."""
    start, end = ts_ms - window_ms, ts_ms + window_ms
    where = [
        f"date BETWEEN DATE '{_date(start)}' AND DATE '{_date(end)}'",
        f"ts BETWEEN TIMESTAMP '{_ts(start)}' AND TIMESTAMP '{_ts(end)}'",
    ]
    if source:
        where.append(f"source = {sql_literal(source)}")
    if endpoint:
        where.append(f"endpoint = {sql_literal(endpoint)}")
    cond = "\n  AND ".join(where)
    return (f"-- rows around {_ts(ts_ms)} UTC (+/- {window_ms // 1000} s)\n"
            f"SELECT *\nFROM {table}\nWHERE {cond}\nORDER BY ts\nLIMIT {limit}")
