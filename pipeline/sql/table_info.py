"""What the table browser shows: schema, row count, size and files, partitioning, the last
compaction, history, and the SQL for reading an older version (time travel).

Only ``spark.sql(...).collect()``: the same code works over a local session and Spark Connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.sql.catalog import Column, table_columns
from pipeline.sql.errors import SqlError


@dataclass
class Compaction:
    """The newest OPTIMIZE commit of a table (from ``DESCRIBE HISTORY``)."""

    version: int
    timestamp: datetime
    files_removed: int | None
    files_added: int | None


@dataclass
class TableInfo:
    name: str
    columns: list[Column]
    row_count: int | None = None
    size_bytes: int | None = None
    num_files: int | None = None
    partition_columns: list[str] = field(default_factory=list)
    location: str | None = None
    format: str | None = None
    last_modified: datetime | None = None
    version: int | None = None
    #: None: no OPTIMIZE among the newest :data:`HISTORY_SCAN` commits
    last_compaction: Compaction | None = None


@dataclass
class HistoryEntry:
    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]


#: Commits read for the last compaction: the stream commits about once a second and compacts
#: every minute, so a compaction that happened is well inside; reading more costs a file each.
HISTORY_SCAN = 200


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table_info(spark: Any, name: str, count_rows: bool = True) -> TableInfo:
    """Schema, DESCRIBE DETAIL figures and (optionally) the exact row count of a table."""
    try:
        info = TableInfo(name=name, columns=table_columns(spark, name))
        detail = spark.sql(f"DESCRIBE DETAIL {quote_ident(name)}").collect()
    except Exception as exc:
        raise SqlError(f"cannot describe table {name!r}: {str(exc).splitlines()[0]}") from None
    if detail:
        d = detail[0].asDict()
        info.format = d.get("format")
        info.location = d.get("location")
        info.size_bytes = d.get("sizeInBytes")
        info.num_files = d.get("numFiles")
        info.partition_columns = list(d.get("partitionColumns") or [])
        info.last_modified = d.get("lastModified")
    hist = spark.sql(f"DESCRIBE HISTORY {quote_ident(name)} LIMIT {HISTORY_SCAN}").collect()
    if hist:
        info.version = int(hist[0]["version"])
        info.last_compaction = last_compaction(hist)
    if count_rows:
        info.row_count = int(spark.sql(f"SELECT count(*) FROM {quote_ident(name)}").first()[0])
    return info


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def last_compaction(history_rows: list[Any]) -> Compaction | None:
    """The newest OPTIMIZE among ``DESCRIBE HISTORY`` rows (newest first)."""
    for r in history_rows:
        if str(r["operation"]) == "OPTIMIZE":
            metrics = dict(r["operationMetrics"] or {})
            return Compaction(version=int(r["version"]), timestamp=r["timestamp"],
                              files_removed=_int(metrics.get("numRemovedFiles")),
                              files_added=_int(metrics.get("numAddedFiles")))
    return None


def table_history(spark: Any, name: str, limit: int = 100) -> list[HistoryEntry]:
    """Newest first: the Delta commits of a table."""
    rows = spark.sql(f"DESCRIBE HISTORY {quote_ident(name)} LIMIT {int(limit)}").collect()
    return [
        HistoryEntry(
            version=int(r["version"]),
            timestamp=r["timestamp"],
            operation=str(r["operation"]),
            parameters=dict(r["operationParameters"] or {}),
            metrics=dict(r["operationMetrics"] or {}),
        )
        for r in rows
    ]


def time_travel_sql(
    name: str, version: int | None = None, timestamp: datetime | str | None = None,
    limit: int | None = 1000,
) -> str:
    """A SELECT of the table as it was at a version or timestamp."""
    if (version is None) == (timestamp is None):
        raise SqlError("give exactly one of version or timestamp")
    if version is not None:
        clause = f"VERSION AS OF {int(version)}"
    else:
        if not isinstance(timestamp, datetime):
            try:
                timestamp = datetime.fromisoformat(str(timestamp))
            except ValueError:
                raise SqlError(f"not a timestamp: {timestamp!r}") from None
        clause = f"TIMESTAMP AS OF '{timestamp.isoformat(sep=' ')}'"
    tail = f" LIMIT {int(limit)}" if limit else ""
    return f"SELECT * FROM {quote_ident(name)} {clause}{tail}"
