"""The stream job's one query: Kafka -> ``logs`` + ``logs_quarantine`` + ``metrics`` partials.

Kafka -> :func:`~pipeline.transforms.parsing.parse_records` -> repeats dropped
(``dropDuplicatesWithinWatermark`` on arrival time) -> ``foreachBatch``
(:class:`IngestBatchWriter`), which caches the micro-batch once and from it appends valid rows
to ``logs``, rejected ones to ``logs_quarantine`` and that batch's metrics partials
(:func:`~pipeline.transforms.metrics.batch_partials`) to ``metrics`` - no second read of
``logs``, and a 10 s window is in ``metrics`` one trigger after its events arrive (provisional
until the event-time watermark passes its end). Every commit names its batch
(:mod:`pipeline.runners.batch_tags`), so a batch replayed after a crash is skipped wherever it
had already committed: exactly once.

The event-time watermark (newest event time minus ``processor.watermark``) lives in the
partial rows themselves: on start it is read back from ``metrics``, so a replayed batch sees
the same watermark it saw the first time. Events for a window already final are kept in
``logs`` but not added to ``metrics``; the status counts them as ``late_events``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pipeline.runners.checkpoints import INGEST, checkpoint_path
from pipeline.schemas import (
    PARTIAL_WINDOW,
    TABLE_LOGS,
    TABLE_METRICS,
    TABLE_QUARANTINE,
    WINDOW_SIZES,
)
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from pipeline.runners.progress import ProcessorStats


def kafka_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    from pipeline.kafka_config import spark_kafka_options

    p = settings.processor
    reader = spark.readStream.format("kafka")
    for key, value in spark_kafka_options(settings).items():
        reader = reader.option(key, value)
    return (
        reader.option("subscribe", settings.kafka.topic)
        .option("startingOffsets", p.starting_offsets)
        .option("maxOffsetsPerTrigger", str(p.max_offsets_per_trigger))
        .option("failOnDataLoss", str(p.fail_on_data_loss).lower())
        .option("includeHeaders", "true")
        .load()
    )


#: rows of a batch per write task (and file): a live batch's few thousand rows need one task;
#: a catch-up batch of hundreds of thousands keeps both cores busy
ROWS_PER_TASK = 100_000
PARTIAL_US = int(WINDOW_SIZES[PARTIAL_WINDOW].seconds * 1_000_000)
log = logging.getLogger(__name__)


def read_watermark(spark: SparkSession, settings: Settings) -> int | None:
    """The newest event-time watermark in ``metrics`` (epoch µs), None for an empty table."""
    from pyspark.sql import functions as F

    row = (spark.read.format("delta").load(str(settings.table_path(TABLE_METRICS)))
           .agg(F.max(F.unix_micros("watermark")).alias("wm")).first())
    return None if row is None or row["wm"] is None else int(row["wm"])


class IngestBatchWriter:
    """foreachBatch sink of the ingest query: one batch -> logs, quarantine and metrics
    partials, each idempotently; folds old partials now and then (see :func:`fold`)."""

    def __init__(self, settings: Settings, app_id: str, stats: ProcessorStats,
                 watermark_us: int | None = None) -> None:
        from pipeline.runners.batch_tags import last_written_batch

        self.logs_path = str(settings.table_path(TABLE_LOGS))
        self.quarantine_path = str(settings.table_path(TABLE_QUARANTINE))
        self.metrics_path = str(settings.table_path(TABLE_METRICS))
        self.app_id = app_id
        #: per table, the newest batch already committed (read once: only the first batch
        #: after a start can be a replay, and one writer holds the lock)
        self.written = {path: last_written_batch(path, app_id) for path in (
            self.logs_path, self.quarantine_path, self.metrics_path)}
        self.stats = stats
        self.watermark_us = watermark_us
        self.delay_us = int(settings.processor.watermark_s * 1_000_000)
        self.fold_every_s = settings.processor.fold_every_s
        self._last_fold = time.monotonic()
        self._folded_to_us: int | None = None

    def _append(self, df: DataFrame, path: str, batch_id: int) -> None:
        from pipeline.runners.batch_tags import batch_tag

        done = self.written[path]
        if done is not None and batch_id <= done:
            log.info("batch %d already in %s: replay skipped", batch_id, path)
            return
        (df.write.format("delta").mode("append")
         .option("userMetadata", batch_tag(self.app_id, batch_id)).save(path))
        self.written[path] = batch_id

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        from pipeline.transforms.columns import LOGS_COLUMNS, batch_constant
        from pipeline.transforms.metrics import batch_partials
        from pipeline.transforms.parsing import quarantined, valid_logs

        wm = self.watermark_us
        ok = F.col("reason").isNull()
        # a row is late when its 10 s window ended at or before the watermark: final already
        window_end_us = (F.floor(F.unix_micros("ts") / PARTIAL_US) + 1) * PARTIAL_US
        late = (ok & (window_end_us <= batch_constant(wm, "kafka_offset")) if wm is not None
                else F.lit(False))
        t0 = time.perf_counter()
        phases: dict[str, float] = {}
        # cache only what the writes read: the logs columns, the reason and, for rejected rows
        # only, the raw body (the parser's helper columns would double the cache)
        batch = batch.select(*(c for c, _ in LOGS_COLUMNS), "reason",
                             F.when(F.col("reason").isNotNull(), F.col("raw")).alias("raw"))
        batch.persist()
        try:
            row = batch.agg(
                F.count(F.when(ok, 1)).alias("ok"), F.count(F.when(~ok, 1)).alias("bad"),
                F.count(F.when(late, 1)).alias("late"),
                F.max(F.when(ok, F.unix_micros("ts"))).alias("max_ts"),
            ).first()
            n_ok, n_bad, n_late = int(row["ok"]), int(row["bad"]), int(row["late"])
            phases["read"] = time.perf_counter() - t0
            # one task (and file per date) for a live batch's few thousand rows
            tasks = 1 + n_ok // ROWS_PER_TASK
            if n_ok:
                self._append(valid_logs(batch).coalesce(tasks), self.logs_path, batch_id)
            if n_bad:
                self._append(quarantined(batch), self.quarantine_path, batch_id)
            phases["logs"] = time.perf_counter() - t0 - phases["read"]
            if n_ok > n_late:
                new_wm = row["max_ts"] - self.delay_us
                new_wm = new_wm if wm is None else max(wm, new_wm)
                parts = batch_partials(batch.filter(ok & ~late), batch_id=batch_id,
                                       watermark_us=new_wm, partitions=tasks)
                self._append(parts, self.metrics_path, batch_id)
                self.watermark_us = new_wm
            phases["metrics"] = time.perf_counter() - t0 - phases["read"] - phases["logs"]
            self.stats.batch_written(batch_id, n_ok, n_bad, n_late,
                                     {k: round(v, 3) for k, v in phases.items()})
            log.debug("batch %d: %d rows, phases %s", batch_id, n_ok + n_bad, phases)
        finally:
            batch.unpersist()
        self.maybe_fold(batch.sparkSession)

    def maybe_fold(self, spark: SparkSession) -> None:
        """Every ``processor.fold_every_s``: fold final windows' partials (one row each)."""
        if self.watermark_us is None or time.monotonic() - self._last_fold < self.fold_every_s:
            return
        self._last_fold = time.monotonic()
        try:
            self._folded_to_us = fold(spark, self.metrics_path, self.watermark_us,
                                      self._folded_to_us)
        except Exception as exc:  # e.g. a concurrent OPTIMIZE: the next fold retries
            log.warning("folding metrics partials failed (will retry): %s", exc)


def fold(spark: SparkSession, metrics_path: str, watermark_us: int,
         since_us: int | None) -> int:
    """Rewrite the partials of final windows that started in ``[since, end)`` as one row per
    window (``since`` None: the hour before ``end``); returns ``end``, the next ``since``.

    The merged answers do not change, so a fold replayed after a crash changes nothing.
    """
    from pyspark.sql import functions as F

    from pipeline.transforms.metrics import fold_partials

    end_us = (watermark_us // PARTIAL_US) * PARTIAL_US - PARTIAL_US  # windows ended by then
    start_us = since_us if since_us is not None else end_us - 3600 * 1_000_000
    if end_us <= start_us:
        return start_us
    cond = (f"window_start >= timestamp_micros({start_us}) "
            f"AND window_start < timestamp_micros({end_us})")
    partials = spark.read.format("delta").load(metrics_path).where(cond)
    stats = partials.agg(F.count(F.lit(1)).alias("rows"),
                         F.countDistinct("window_start", "source", "endpoint", "level")
                         .alias("windows")).first()
    if stats["rows"] > stats["windows"]:
        (fold_partials(partials).write.format("delta").mode("overwrite")
         .option("replaceWhere", cond).save(metrics_path))
        log.info("folded %d metrics partials into %d rows", stats["rows"], stats["windows"])
    return end_us


def start_ingest(spark: SparkSession, settings: Settings, app_id: str, stats: ProcessorStats,
                 available_now: bool = False) -> StreamingQuery:
    """Start the one query; the metrics watermark is read back from ``metrics`` first."""
    from pipeline.transforms.parsing import drop_repeated_events, parse_records

    p = settings.processor
    parsed = parse_records(
        kafka_stream(spark, settings),
        max_message_bytes=p.max_message_bytes,
        max_past_s=p.max_clock_skew_s,
        max_future_s=p.max_future_skew_s,
    )
    deduped = drop_repeated_events(parsed, p.watermark)
    writer = (
        deduped.writeStream.queryName(INGEST)
        .option("checkpointLocation", str(checkpoint_path(settings, INGEST)))
        .foreachBatch(IngestBatchWriter(settings, app_id, stats,
                                        read_watermark(spark, settings)))
    )
    writer = _trigger(writer, p.trigger_interval, available_now)
    return writer.start()


def _trigger(writer, interval: str, available_now: bool):
    return writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=interval
    )
