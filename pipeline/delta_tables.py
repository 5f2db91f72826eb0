"""The pipeline's Delta tables: creating them, naming them in the session catalog, and
maintaining them (OPTIMIZE / VACUUM) without racing the streaming writer.

Catalog: ``register_tables`` puts every Delta table under ``settings.delta_dir`` into the
session catalog as an *external* table (``CREATE TABLE name USING delta LOCATION path``), so
SQL can say ``SELECT ... FROM logs``. That works with Spark's default in-memory catalog and,
unlike a temp view over ``spark.read.load(path)``, always reads the table's latest snapshot;
``DROP TABLE`` of such a table removes only the name, never the files. A name already pointing
at another location (another data dir in the same process) is re-pointed.

Maintenance: on a local filesystem two JVMs committing to one Delta table can lose a commit,
so the streaming writer holds :class:`WriterLock` for its whole life and runs maintenance
itself (``--optimize-every``, or on request from ``lakewatch process --mode optimize``, see
:mod:`pipeline.runners.stream_job`). A standalone optimize takes the same lock, so it runs
only while no writer does.

Layout under a running stream: each micro-batch appends one file to ``logs``. The writer
compacts the recent partitions of the append-only tables (:data:`COMPACTED_TABLES`) every
``processor.compact_every_s`` on its maintenance thread (:func:`compact_recent`): a
bin-packing OPTIMIZE of ``date >= today - (compact_days - 1)`` that rewrites only files
smaller than ``compact_min_file_mb``, so a compacted file stops being rewritten once it is
that big and a round costs at most about that many bytes plus what arrived since the last
round, however large the day is. Auto compaction (``delta.autoOptimize.autoCompact``) was
measured instead and rejected: Delta runs it in a post-commit hook of the writing batch, whose
latency then includes the whole compaction (``bench/compaction.py``: max append 149 s against
13 s with the rounds on their own thread, on a heavily loaded machine). So a date partition
of ``B`` bytes holds at most (:func:`file_count_bound`)::

    ceil(B / compact_min_file_mb) + 1 + ceil((compact_every_s + round) / trigger)

files (files at least the minimum size, one still growing, the batches since the last round
began): at 1,500 ev/s and ~110 B a row, an hour's ~590 MB in at most 18 + 1 + 90 = 109 files
with the defaults, a 1 s trigger and rounds under 30 s (3,600 without compaction).
``logs`` collects min/max statistics only on :data:`STATS_COLUMNS` (``ts`` first), which
is what lets a time-bounded query skip files and keeps each commit's statistics cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.delta_checkpoints import HOT_PATH_INTERVAL, checkpoint_table
from pipeline.delta_checkpoints import PROPERTY as CHECKPOINT_PROPERTY
from pipeline.schemas import (
    LOGS_DDL,
    METRIC_PARTIALS_DDL,
    PIPELINE_TABLES,
    QUARANTINE_DDL,
    TABLE_LOGS,
    TABLE_METRICS,
    TABLE_QUARANTINE,
)
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Tables the processor writes: name -> (DDL, partition columns).
PROCESSOR_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    TABLE_LOGS: (LOGS_DDL, ("date",)),
    TABLE_QUARANTINE: (QUARANTINE_DDL, ("date",)),
    TABLE_METRICS: (METRIC_PARTIALS_DDL, ()),
}
#: Z-ORDER columns: what the app filters on (live table: time range, then source / level;
#: charts and detector: window time, then source / endpoint). ``date`` is the partition.
ZORDER_COLUMNS: dict[str, tuple[str, ...]] = {
    TABLE_LOGS: ("ts", "source", "level"),
    TABLE_METRICS: ("window_start", "source", "endpoint"),
    TABLE_QUARANTINE: (),
}
ANALYTICS_PREFIX = "analytics_"
#: Checkpoints happen beside the stream, not inside its commits (pipeline.delta_checkpoints).
STREAM_TABLE_PROPERTIES = {CHECKPOINT_PROPERTY: str(HOT_PATH_INTERVAL)}
#: Columns with min/max statistics: ``ts`` lets time-bounded queries skip files (a file holds
#: one batch's or one compaction's time span); ``source`` and ``level`` are Z-ORDER columns,
#: which need statistics. The default (the first 32 columns) paid for 18 columns per commit.
STATS_COLUMNS: dict[str, tuple[str, ...]] = {TABLE_LOGS: ("ts", "source", "level")}
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
#: Append-only tables the writer compacts while streaming: OPTIMIZE (``dataChange=false``)
#: never conflicts with blind appends. Not ``metrics``: its fold rewrites partials.
COMPACTED_TABLES = (TABLE_LOGS, TABLE_QUARANTINE)


def table_properties(name: str) -> dict[str, str]:
    """The properties the processor's table ``name`` must carry."""
    props = dict(STREAM_TABLE_PROPERTIES)
    if name in STATS_COLUMNS:
        props[STATS_PROPERTY] = ",".join(STATS_COLUMNS[name])
    return props


def is_delta_table(path: Path) -> bool:
    return (path / "_delta_log").is_dir() and any((path / "_delta_log").glob("*.json"))


def ensure_tables(spark: SparkSession, settings: Settings) -> None:
    """Create the processor's Delta tables (empty, with the contract schema) if missing."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    for name, (ddl, partitions) in PROCESSOR_TABLES.items():
        path = settings.table_path(name)
        props = table_properties(name)
        if is_delta_table(path):
            _ensure_properties(spark, path, props)
            continue
        builder = (
            DeltaTable.createIfNotExists(spark)
            .location(str(path))
            .addColumns(StructType.fromDDL(ddl))
        )
        for key, value in props.items():
            builder = builder.property(key, value)
        if partitions:
            builder = builder.partitionedBy(*partitions)
        builder.execute()
        log.info("created Delta table %s at %s", name, path)


def _ensure_properties(spark: SparkSession, path: Path, wanted: dict[str, str]) -> None:
    """Set table properties a table made by an older version lacks (one commit, if any)."""
    row = spark.sql(f"DESCRIBE DETAIL delta.`{path.resolve()}`").select("properties").first()
    have = dict(row["properties"] or {}) if row else {}
    missing = {k: v for k, v in wanted.items() if have.get(k) != v}
    if missing:
        props = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE delta.`{path.resolve()}` SET TBLPROPERTIES ({props})")


def delta_table_dirs(settings: Settings) -> dict[str, Path]:
    """Every Delta table under ``settings.delta_dir`` (pipeline tables and analytics_*)."""
    root = settings.delta_dir
    if not root.is_dir():
        return {}
    found = {}
    for child in sorted(root.iterdir()):
        ok_name = child.name in PIPELINE_TABLES or child.name.startswith(ANALYTICS_PREFIX)
        if ok_name and child.name.isidentifier() and is_delta_table(child):
            found[child.name] = child
    return found


#: what :func:`_catalog_location` says of a name whose Delta directory no longer exists
_GONE = "<gone>"


def _catalog_location(spark: SparkSession, name: str) -> str | None:
    try:
        if not spark.catalog.tableExists(name):
            return None
    except Exception as exc:  # registered in this session, then its directory was deleted
        if "DELTA_PATH_DOES_NOT_EXIST" in str(exc):
            return _GONE
        raise
    try:
        row = spark.sql(f"DESCRIBE DETAIL `{name}`").select("location").first()
    except Exception:  # a name that is not a Delta table (e.g. someone's temp view)
        return ""
    return row["location"] if row else ""


def _same_path(location: str, path: Path) -> bool:
    loc = location.removeprefix("file://").removeprefix("file:")
    return os.path.normpath(loc) == os.path.normpath(str(path.resolve()))


def register_tables(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """Name every Delta table of ``settings`` in the session catalog; returns name -> path.

    Idempotent and cheap when nothing changed; safe to call before every SQL query.
    """
    registered: dict[str, str] = {}
    for name, path in delta_table_dirs(settings).items():
        location = _catalog_location(spark, name)
        if location is not None and location not in ("", _GONE) and _same_path(location, path):
            registered[name] = str(path)
            continue
        if location is not None:
            if not location:
                raise RuntimeError(
                    f"session catalog already has a non-Delta object named {name!r}; "
                    "drop it before registering the Lakewatch tables"
                )
            # External table (created with LOCATION): DROP removes the name, not the data.
            spark.sql(f"DROP TABLE IF EXISTS `{name}`")
        resolved = str(path.resolve()).replace("'", "\\'")
        spark.sql(f"CREATE TABLE IF NOT EXISTS `{name}` USING delta LOCATION '{resolved}'")
        registered[name] = str(path)
    if TABLE_METRICS in registered:
        _register_metrics_views(spark)
    return registered


def _register_metrics_views(spark: SparkSession) -> None:
    """``metrics_10s`` ... ``metrics_1h``: the partials merged, as temp views of SQL text (so
    each use re-reads the table). Skipped for a version-1 table (no histograms) until the
    processor migrates it."""
    from pipeline.schemas import WINDOW_SIZES, merged_metrics_view
    from pipeline.transforms.metrics import merged_view_sql

    if "latency_hist" not in spark.table(TABLE_METRICS).columns:
        return
    for size in WINDOW_SIZES:
        view = merged_metrics_view(size)
        if not spark.catalog.tableExists(view):
            spark.sql(f"CREATE OR REPLACE TEMP VIEW `{view}` AS "
                      f"{merged_view_sql(TABLE_METRICS, size)}")


# -- writer lock -------------------------------------------------------------------------


class WriterLockBusy(RuntimeError):
    """Another process holds the Delta writer lock."""


class WriterLock:
    """An exclusive ``flock`` on ``run_dir/delta-writer.lock``: one Delta writer per data dir.

    The kernel drops the lock when the holder dies (even by kill -9), so it never goes stale.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = settings.run_dir / "delta-writer.lock"
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise WriterLockBusy(
                        f"the Delta tables under {self.path.parent.parent} are being written "
                        f"by another process (pid {holder or '?'})"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def holder(self) -> str | None:
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or None
        return None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- maintenance -------------------------------------------------------------------------


def file_stats(spark: SparkSession, path: Path) -> dict[str, int]:
    """Live data files of the current snapshot and their total size."""
    row = spark.sql(f"DESCRIBE DETAIL delta.`{path.resolve()}`").first()
    return {"files": int(row["numFiles"] or 0), "bytes": int(row["sizeInBytes"] or 0)}


def optimize_table(
    spark: SparkSession, settings: Settings, name: str, *, vacuum_retention_hours: float
) -> dict[str, Any]:
    """OPTIMIZE (with Z-ORDER where useful) then VACUUM one table; returns before/after.

    Compaction commits with ``dataChange=false``, so streams reading the table skip it, and
    blind appends of the writer do not conflict with it. VACUUM keeps Delta's retention check
    on: files are removed only once older than ``vacuum_retention_hours`` (>= 168 h unless
    the session disabled the check), which keeps every file a running stream may still read.
    """
    path = settings.table_path(name)
    if not is_delta_table(path):
        return {"table": name, "skipped": "no such table"}
    before = file_stats(spark, path)
    started = time.monotonic()
    target = f"delta.`{path.resolve()}`"
    zorder = ZORDER_COLUMNS.get(name, ())
    sql = f"OPTIMIZE {target}" + (f" ZORDER BY ({', '.join(zorder)})" if zorder else "")
    spark.sql(sql).collect()
    after_optimize = file_stats(spark, path)
    spark.sql(f"VACUUM {target} RETAIN {vacuum_retention_hours} HOURS").collect()
    checkpoint_table(spark, path)  # its commits do not (HOT_PATH_INTERVAL)
    return {
        "table": name,
        "zorder": list(zorder),
        "files_before": before["files"],
        "bytes_before": before["bytes"],
        "files_after": after_optimize["files"],
        "bytes_after": after_optimize["bytes"],
        "seconds": round(time.monotonic() - started, 2),
    }


def optimize_all(
    spark: SparkSession, settings: Settings, *, vacuum_retention_hours: float
) -> list[dict[str, Any]]:
    return [
        optimize_table(spark, settings, name, vacuum_retention_hours=vacuum_retention_hours)
        for name in PROCESSOR_TABLES
    ]


def set_compaction_sizes(spark: SparkSession, min_file_bytes: int, max_file_bytes: int) -> None:
    """OPTIMIZE rewrites files under ``min_file_bytes`` into files of up to ``max_file_bytes``.

    Session-wide (Delta reads them from the session conf only): set in the writer's session,
    they also size the files of its full OPTIMIZE.
    """
    spark.conf.set("spark.databricks.delta.optimize.minFileSize", str(int(min_file_bytes)))
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(int(max_file_bytes)))


def compact_recent(
    spark: SparkSession, path: Path, *, days: int, min_file_bytes: int, max_file_bytes: int,
    today: date | None = None,
) -> dict[str, Any]:
    """Bin-packing OPTIMIZE of the table's ``date`` partitions of the last ``days`` days.

    Only files smaller than ``min_file_bytes`` are rewritten (bins of one file are left
    alone), so the cost is bounded by the small files, not by the partition's size. Commits
    with ``dataChange=false`` under snapshot isolation: the stream's blind appends committed
    meanwhile do not conflict with it, nor it with them. Returns the OPTIMIZE metrics.
    """
    set_compaction_sizes(spark, min_file_bytes, max_file_bytes)
    since = (today or datetime.now(UTC).date()) - timedelta(days=max(days, 1) - 1)
    started = time.monotonic()
    row = spark.sql(
        f"OPTIMIZE delta.`{path.resolve()}` WHERE date >= DATE'{since.isoformat()}'").first()
    m = row["metrics"].asDict(recursive=True) if row is not None and row["metrics"] else {}
    return {
        "table": path.name,
        "since": since.isoformat(),
        "files_removed": int(m.get("numFilesRemoved") or 0),
        "files_added": int(m.get("numFilesAdded") or 0),
        "bytes_removed": int((m.get("filesRemoved") or {}).get("totalSize") or 0),
        "seconds": round(time.monotonic() - started, 2),
    }


def file_count_bound(partition_bytes: int, min_file_bytes: int, appends_since: int) -> int:
    """Most files a compacted date partition of ``partition_bytes`` holds, ``appends_since``
    single-file appends after a compaction round began: the files of at least
    ``min_file_bytes`` that earlier rounds left alone, one still growing, and the appends."""
    return -(-partition_bytes // max(min_file_bytes, 1)) + 1 + appends_since


def compact_all(spark: SparkSession, settings: Settings) -> list[dict[str, Any]]:
    """:func:`compact_recent` of every table in :data:`COMPACTED_TABLES` that exists."""
    p = settings.processor
    return [
        compact_recent(spark, settings.table_path(name), days=p.compact_days,
                       min_file_bytes=p.compact_min_file_mb << 20,
                       max_file_bytes=p.compact_max_file_mb << 20)
        for name in COMPACTED_TABLES if is_delta_table(settings.table_path(name))
    ]
