"""The stream mode's queries: Kafka -> ``logs`` / ``logs_quarantine`` and ``logs`` -> ``metrics``.

- ``ingest``: Kafka -> :func:`~pipeline.transforms.parsing.parse_records` -> repeats dropped
  (``dropDuplicatesWithinWatermark`` on arrival time) -> ``foreachBatch`` appending valid rows
  to ``logs`` and rejected ones to ``logs_quarantine``. Both writes carry
  ``txnAppId``/``txnVersion`` (app id stored in the checkpoint, version = batch id), so a batch
  replayed after a crash is skipped by Delta where it had already committed: exactly once.
- ``metrics_10s`` / ``metrics_1m``: ``logs`` as a Delta stream -> event-time watermark ->
  :func:`~pipeline.transforms.metrics.window_metrics` -> Delta sink into ``metrics`` (append
  mode: a window is written once, when the watermark passes its end; the Delta sink is
  idempotent per batch). Events behind that watermark stay in ``logs`` and are counted in the
  status as ``late_events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.runners.checkpoints import INGEST, METRICS_QUERIES, checkpoint_path
from pipeline.schemas import TABLE_LOGS, TABLE_METRICS, TABLE_QUARANTINE
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


class IngestBatchWriter:
    """foreachBatch sink of the ingest query: one batch -> logs + quarantine, idempotently."""

    def __init__(self, settings: Settings, app_id: str, stats: ProcessorStats) -> None:
        self.logs_path = str(settings.table_path(TABLE_LOGS))
        self.quarantine_path = str(settings.table_path(TABLE_QUARANTINE))
        self.app_id = app_id
        self.stats = stats

    def _append(self, df: DataFrame, path: str, batch_id: int) -> None:
        (df.write.format("delta").mode("append")
         .option("txnAppId", self.app_id).option("txnVersion", batch_id).save(path))

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        from pipeline.transforms.parsing import quarantined, valid_logs

        batch.persist()
        try:
            counts = {
                row["ok"]: row["n"]
                for row in batch.groupBy(F.col("reason").isNull().alias("ok"))
                .agg(F.count(F.lit(1)).alias("n")).collect()
            }
            n_ok, n_bad = counts.get(True, 0), counts.get(False, 0)
            if n_ok:
                self._append(valid_logs(batch), self.logs_path, batch_id)
            if n_bad:
                self._append(quarantined(batch), self.quarantine_path, batch_id)
            self.stats.batch_written(batch_id, n_ok, n_bad)
        finally:
            batch.unpersist()


def start_ingest(spark: SparkSession, settings: Settings, app_id: str, stats: ProcessorStats,
                 available_now: bool = False) -> StreamingQuery:
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
        .foreachBatch(IngestBatchWriter(settings, app_id, stats))
    )
    writer = _trigger(writer, p.trigger_interval, available_now)
    return writer.start()


def start_metrics(spark: SparkSession, settings: Settings, query: str,
                  available_now: bool = False) -> StreamingQuery:
    from pipeline.transforms.metrics import window_metrics

    p = settings.processor
    logs = spark.readStream.format("delta").load(str(settings.table_path(TABLE_LOGS)))
    metrics = window_metrics(logs.withWatermark("ts", p.watermark), METRICS_QUERIES[query])
    writer = (
        metrics.writeStream.queryName(query).format("delta").outputMode("append")
        .option("checkpointLocation", str(checkpoint_path(settings, query)))
    )
    writer = _trigger(writer, p.trigger_interval, available_now)
    return writer.start(str(settings.table_path(TABLE_METRICS)))


def _trigger(writer, interval: str, available_now: bool):
    return writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=interval
    )
