"""The stream's table layout: compaction keeps ``logs`` few-filed without losing or doubling a
row, also while appends go on; ``ts`` statistics let a time-bounded query skip files; the
table browser's figures (file count, last compaction) come from the real table."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.delta_tables import (
    STATS_PROPERTY,
    compact_all,
    compact_recent,
    ensure_tables,
    file_count_bound,
    register_tables,
)
from pipeline.runners.stream_job import StreamRunner
from pipeline.schemas import LOGS_DDL, TABLE_LOGS
from pipeline.sql.table_info import table_info

ROWS = 20  # rows per append: one small file each, like a live micro-batch


def _append(spark, path, batch: int, start: datetime, step: timedelta = timedelta(seconds=1)):
    """One single-file append of ``ROWS`` rows: ids ``batch*ROWS ...``, ts in its own step."""
    from pyspark.sql import functions as F

    ts0 = start + batch * step
    first = batch * ROWS
    from pyspark.sql.types import StructType

    cols = {f.name: f.dataType for f in StructType.fromDDL(LOGS_DDL)}
    df = spark.range(first, first + ROWS).select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.expr(f"timestamp_micros(unix_micros(TIMESTAMP'{ts0}') + (id - {first}) * 10000)")
        .alias("ts"),
        F.lit("INFO").alias("level"), F.lit("api").alias("source"),
        F.col("id").alias("kafka_offset"), F.lit(ts0.date()).alias("date"),
    )
    df = df.select(*[(F.col(c) if c in df.columns else F.lit(None)).cast(t).alias(c)
                     for c, t in cols.items()])
    df.coalesce(1).write.format("delta").mode("append").save(str(path))


def _files(spark, path) -> dict[str, int]:
    """The live data files of the table's current snapshot and their sizes."""
    files = spark.read.format("delta").load(str(path)).inputFiles()
    return {f: os.path.getsize(f.removeprefix("file:")) for f in files}


def _rows(spark, path) -> tuple[int, int]:
    r = spark.sql(f"SELECT count(*) AS n, count(DISTINCT event_id) AS ids "
                  f"FROM delta.`{path}`").first()
    return int(r["n"]), int(r["ids"])


@pytest.mark.slow
def test_compaction_bounds_files_keeps_rows_and_runs_beside_appends(spark, settings):
    settings.processor.compact_min_file_mb = 1
    ensure_tables(spark, settings)
    path = settings.table_path(TABLE_LOGS)
    start = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    min_bytes = 1 << 20  # then just above the first round's file: the second round's freezes
    every = 4
    batch = 0
    # rounds between appends: the bound holds after every append
    for round_no in range(3):
        for _ in range(every):
            _append(spark, path, batch, start)
            batch += 1
            files = _files(spark, path)
            since = batch % every or every
            assert len(files) <= file_count_bound(sum(files.values()), min_bytes, since)
        big_before = {f for f, size in _files(spark, path).items() if size >= min_bytes}
        compact_recent(spark, path, days=1, min_file_bytes=min_bytes, max_file_bytes=1 << 20)
        after = _files(spark, path)
        assert big_before <= set(after)  # files at the minimum size are not rewritten
        assert bool(big_before) == (round_no == 2)
        assert len(after) <= file_count_bound(sum(after.values()), min_bytes, 0)
        if round_no == 0:
            assert len(after) == 1
            min_bytes = max(after.values()) + 1
    assert len(after) < batch / 2

    # rounds on a thread while the appends go on: no conflict either way
    errors: list[str] = []
    rounds: list[dict] = []
    stop = threading.Event()

    def compactor() -> None:
        while not stop.is_set():
            try:
                rounds.append(compact_recent(spark, path, days=1, min_file_bytes=min_bytes,
                                             max_file_bytes=1 << 20))
            except Exception as exc:  # a conflict would land here
                errors.append(str(exc).splitlines()[0])

    thread = threading.Thread(target=compactor)
    thread.start()
    try:
        for _ in range(8):
            _append(spark, path, batch, start)
            batch += 1
    finally:
        stop.set()
        thread.join(timeout=300)
    assert errors == []
    assert any(r["files_removed"] > 0 for r in rounds)
    # an OPTIMIZE that committed after appends landed during it (read version older than its
    # parent): Delta resolved it as no conflict
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert any(h["operation"] == "OPTIMIZE" and h["readVersion"] < h["version"] - 1
               for h in history)
    # the processor's own round (settings: files under 1 MiB) leaves about one file
    compact_all(spark, settings)
    files = _files(spark, path)
    assert len(files) <= file_count_bound(sum(files.values()), 1 << 20, 0)
    assert _rows(spark, path) == (batch * ROWS, batch * ROWS)


def _files_read(df) -> int:
    """Files the scan of an executed single-scan query read (its ``numFiles`` metric)."""
    plan = df._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.executedPlan()
    leaves = plan.collectLeaves()
    total = 0
    for i in range(leaves.size()):
        metric = leaves.apply(i).metrics().get("numFiles")
        if metric.isDefined():
            total += int(metric.get().value())
    return total


def test_ts_statistics_let_a_time_bounded_query_skip_files(spark, settings):
    ensure_tables(spark, settings)
    path = settings.table_path(TABLE_LOGS)
    # a table made before the stats columns existed gets them (ALTER) on the next start
    spark.sql(f"ALTER TABLE delta.`{path}` UNSET TBLPROPERTIES ('{STATS_PROPERTY}')")
    ensure_tables(spark, settings)
    props = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"]
    assert props[STATS_PROPERTY] == "ts,source,level"
    start = datetime(2026, 3, 1, 0, 0, 0)
    for b in range(8):  # one file per hour of one day: only statistics can tell them apart
        _append(spark, path, b, start, step=timedelta(hours=1))
    lo, hi = start + timedelta(hours=2), start + timedelta(hours=4)
    query = (f"SELECT event_id FROM delta.`{path}` "
             f"WHERE ts >= TIMESTAMP'{lo}' AND ts < TIMESTAMP'{hi}'")
    df = spark.sql(query)
    got = sorted(r["event_id"] for r in df.collect())
    assert got == sorted(f"e{i}" for i in range(2 * ROWS, 4 * ROWS))
    assert _files_read(df) == 2
    everything = spark.sql(f"SELECT event_id FROM delta.`{path}` WHERE level = 'INFO'")
    assert len(everything.collect()) == 8 * ROWS
    assert _files_read(everything) == 8


def test_table_info_gives_file_count_and_last_compaction(spark, settings):
    ensure_tables(spark, settings)
    path = settings.table_path(TABLE_LOGS)
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    for b in range(5):
        _append(spark, path, b, start)
    register_tables(spark, settings)
    info = table_info(spark, TABLE_LOGS, count_rows=True)
    assert (info.num_files, info.row_count, info.last_compaction) == (5, 5 * ROWS, None)
    # the writer's monitor loop starts a compaction round on its maintenance thread when due
    settings.processor.compact_every_s = 0.01
    runner = StreamRunner(spark, settings)
    time.sleep(0.02)
    runner._maybe_maintain()
    assert runner._maint_thread.name == "delta-compaction"
    runner._maint_thread.join(timeout=300)
    tables = {r["table"]: r for r in runner.last_compaction["tables"]}
    assert (tables["logs"]["files_removed"], tables["logs"]["files_added"]) == (5, 1)
    _append(spark, path, 5, start)
    info = table_info(spark, TABLE_LOGS, count_rows=False)
    assert info.num_files == 2
    c = info.last_compaction
    assert (c.files_removed, c.files_added, c.version) == (5, 1, info.version - 1)
    optimize = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").where(
        f"version = {c.version}").first()
    assert (optimize["operation"], optimize["timestamp"]) == ("OPTIMIZE", c.timestamp)
