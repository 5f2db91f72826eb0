"""The Spark jobs of Lakewatch: ``lakewatch process --mode stream|analytics|optimize``.

Thin runner: the transformations are in :mod:`pipeline.transforms`; this module wires
sources, sinks, checkpoints, status and maintenance.

Stream mode runs three queries in one SparkSession, each with its checkpoint under
``settings.checkpoint_dir/<query>``:

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

Each checkpoint holds ``lakewatch-query.json``, the query's fingerprint; starting against a
checkpoint written by a different query (other topic, sink, schema or query version) is refused
with :class:`CheckpointMismatch`. Kafka data deleted by retention before it was processed stops
the stream (``failOnDataLoss``), sets ``data_loss`` in the status and exits with code 3.

Status: ``pipeline.status.write_status(settings, "processor", ...)`` every
``processor.status_interval_s`` from the monitor loop, fed by a StreamingQueryListener.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.delta_tables import (
    PROCESSOR_TABLES,
    WriterLock,
    WriterLockBusy,
    ensure_tables,
    optimize_all,
    register_tables,
)
from pipeline.schemas import (
    LOGS_DDL,
    METRICS_DDL,
    QUARANTINE_DDL,
    TABLE_LOGS,
    TABLE_METRICS,
    TABLE_QUARANTINE,
)
from pipeline.settings import ConfigError, Settings
from pipeline.status import write_status

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

COMPONENT = "processor"
#: Bump when a transform change makes existing checkpoints meaningless.
QUERY_VERSION = 1
INGEST = "ingest"
METRICS_QUERIES = {"metrics_10s": "10s", "metrics_1m": "1m"}
FINGERPRINT_FILE = "lakewatch-query.json"
EXIT_DATA_LOSS = 3
EXIT_BUSY = 4
OPTIMIZE_REQUEST = "optimize.request"


class CheckpointMismatch(ConfigError):
    """A checkpoint was written by a different query than the one being started."""


# -- checkpoint fingerprints ----------------------------------------------------------------


def query_fingerprint(settings: Settings, query: str) -> dict[str, Any]:
    """What must not change under an existing checkpoint (trigger, batch size and validation
    thresholds may: they change no state and no offsets)."""
    if query == INGEST:
        return {
            "query": INGEST,
            "query_version": QUERY_VERSION,
            "source": f"kafka:{settings.kafka.topic}",
            "sinks": [str(settings.table_path(TABLE_LOGS)),
                      str(settings.table_path(TABLE_QUARANTINE))],
            "schema": [LOGS_DDL, QUARANTINE_DDL],
            "state": "dropDuplicatesWithinWatermark(dedup_key) on ingest_ts",
        }
    return {
        "query": query,
        "query_version": QUERY_VERSION,
        "source": f"delta:{settings.table_path(TABLE_LOGS)}",
        "sinks": [str(settings.table_path(TABLE_METRICS))],
        "schema": [METRICS_DDL],
        "state": f"window({METRICS_QUERIES[query]}) by source, endpoint, level on ts",
    }


def checkpoint_path(settings: Settings, query: str) -> Path:
    return settings.checkpoint_dir / query


def check_checkpoint(settings: Settings, query: str) -> str:
    """Verify (or create) the checkpoint's fingerprint; return the query's Delta txn app id.

    Raises CheckpointMismatch naming what changed and what to do.
    """
    cp = checkpoint_path(settings, query)
    meta_path = cp / FINGERPRINT_FILE
    wanted = query_fingerprint(settings, query)
    if meta_path.is_file():
        stored = json.loads(meta_path.read_text())
        old = stored.get("fingerprint", {})
        if old != wanted:
            changed = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
            details = "; ".join(
                f"{k}: was {old.get(k)!r}, now {wanted.get(k)!r}" for k in changed
            )
            raise CheckpointMismatch(
                f"refusing to start query {query!r}: its checkpoint {cp} was written by a "
                f"different query ({details}). Restore the previous configuration, or move "
                f"that checkpoint directory away to start this query from scratch."
            )
        return str(stored["app_id"])
    cp.mkdir(parents=True, exist_ok=True)
    app_id = f"lakewatch-{query}-{uuid.uuid4()}"
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": wanted, "app_id": app_id,
                               "created": time.time()}, indent=2))
    tmp.replace(meta_path)
    return app_id


# -- queries --------------------------------------------------------------------------------


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


# -- status ---------------------------------------------------------------------------------


class ProcessorStats:
    """Counters fed by the ingest writer and the query listener, read by the status loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows_logged = 0
        self.rows_quarantined = 0
        self.last_batch: dict[str, Any] = {}
        self.last_commit_ts: float | None = None
        self.late_events: dict[str, int] = {q: 0 for q in METRICS_QUERIES}
        self.progress: dict[str, dict[str, Any]] = {}
        self.optimize: dict[str, Any] = {}

    def batch_written(self, batch_id: int, n_ok: int, n_bad: int) -> None:
        with self.lock:
            self.rows_logged += n_ok
            self.rows_quarantined += n_bad
            self.last_batch = {"batch_id": batch_id, "logged": n_ok, "quarantined": n_bad}
            if n_ok or n_bad:
                self.last_commit_ts = time.time()

    def on_progress(self, progress: dict[str, Any]) -> None:
        name = progress.get("name")
        with self.lock:
            self.progress[name] = progress
            if name in self.late_events:
                for op in progress.get("stateOperators") or []:
                    self.late_events[name] += int(op.get("numRowsDroppedByWatermark") or 0)


def _make_listener(stats: ProcessorStats):
    from pyspark.sql.streaming import StreamingQueryListener

    class _Listener(StreamingQueryListener):
        def onQueryStarted(self, event) -> None:
            pass

        def onQueryProgress(self, event) -> None:
            try:
                stats.on_progress(json.loads(event.progress.json))
            except Exception:  # a listener must never break the query
                log.exception("reading query progress")

        def onQueryIdle(self, event) -> None:
            pass

        def onQueryTerminated(self, event) -> None:
            pass

    return _Listener()


def _offsets(value: Any) -> dict[str, dict[str, int]] | None:
    """A Kafka source offset of a query progress (JSON text or dict): topic -> partition ->
    offset; None if absent or unreadable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def processed_offsets(progress: dict[str, Any]) -> int | None:
    """Sum of the end offsets of the batch a progress reports (None before the first)."""
    ends = [_offsets(src.get("endOffset")) for src in progress.get("sources") or []]
    known = [int(off) for end in ends if end for parts in end.values() for off in parts.values()]
    return sum(known) if known else None


def kafka_lag(progress: dict[str, Any]) -> int | None:
    """Records in Kafka not yet processed: latest offsets minus the batch's end offsets."""
    total, known = 0, False
    for src in progress.get("sources") or []:
        end, latest = _offsets(src.get("endOffset")), _offsets(src.get("latestOffset"))
        if end is None or latest is None:
            continue
        for topic, parts in latest.items():
            for part, off in parts.items():
                done = (end.get(topic) or {}).get(part)
                if done is not None:
                    total += max(0, int(off) - int(done))
                    known = True
    return total if known else None


def delta_version(path: Path) -> tuple[int, float] | None:
    """(latest commit version, its mtime) from the table's _delta_log, without Spark."""
    log_dir = path / "_delta_log"
    best = None
    with contextlib.suppress(FileNotFoundError):
        for entry in log_dir.iterdir():
            name = entry.name
            if name.endswith(".json") and name[:-5].isdigit():
                v = int(name[:-5])
                if best is None or v > best[0]:
                    best = (v, entry)
    if best is None:
        return None
    with contextlib.suppress(FileNotFoundError):
        return best[0], best[1].stat().st_mtime
    return None


def is_data_loss(error: str) -> bool:
    text = error.lower()
    return "data_loss" in text or "data may have been lost" in text or "dataloss" in text


def _concise(error: str, data_loss: bool) -> str:
    """The informative line of a (py4j-wrapped) Spark error, not the whole trace."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    keys = ("data_loss", "data may have been lost", "dataloss") if data_loss else (
        "exception:", "error:")
    for ln in lines:
        if any(k in ln.lower() for k in keys) and not ln.startswith(("File ", "at ")):
            prefix = "Kafka data lost before processing (retention?): " if data_loss else ""
            return prefix + ln.lstrip(": ")[:2000]
    return (lines[-1] if lines else error)[:2000]


def status_fields(stats: ProcessorStats, settings: Settings,
                  queries: dict[str, StreamingQuery]) -> dict[str, Any]:
    with stats.lock:
        progress = dict(stats.progress)
        fields: dict[str, Any] = {
            "rows_logged_total": stats.rows_logged,
            "rows_quarantined_total": stats.rows_quarantined,
            "last_batch": dict(stats.last_batch),
            "late_events": dict(stats.late_events),
            "optimize": dict(stats.optimize),
        }
    per_query = {}
    for name, q in queries.items():
        p = progress.get(name) or {}
        per_query[name] = {
            "active": q.isActive,
            "batch_id": p.get("batchId"),
            "input_rows_per_s": p.get("inputRowsPerSecond"),
            "processed_rows_per_s": p.get("processedRowsPerSecond"),
            "num_input_rows": p.get("numInputRows"),
            "batch_ms": (p.get("durationMs") or {}).get("triggerExecution"),
            "timestamp": p.get("timestamp"),
        }
    ingest = progress.get(INGEST) or {}
    commit = delta_version(settings.table_path(TABLE_LOGS))
    fields.update(
        queries=per_query,
        batch_id=ingest.get("batchId"),
        input_rows_per_s=ingest.get("inputRowsPerSecond"),
        processed_rows_per_s=ingest.get("processedRowsPerSecond"),
        events_per_s=ingest.get("processedRowsPerSecond"),
        lag=kafka_lag(ingest),
        last_commit_version=commit[0] if commit else None,
        last_commit_ts=commit[1] if commit else None,
    )
    return fields


# -- stream mode ------------------------------------------------------------------------------


class StreamRunner:
    """Starts the three queries, writes the status, runs maintenance, stops on request."""

    def __init__(self, spark: SparkSession, settings: Settings, *, available_now: bool = False,
                 optimize_every_s: float | None = None,
                 stop_event: threading.Event | None = None) -> None:
        self.spark = spark
        self.settings = settings
        self.available_now = available_now
        self.optimize_every_s = optimize_every_s
        self.stop_event = stop_event or threading.Event()
        self.stats = ProcessorStats()
        self.queries: dict[str, StreamingQuery] = {}
        self.error: str | None = None
        self.data_loss = False
        self._listener = None
        self._maint_thread: threading.Thread | None = None
        self._last_optimize = time.monotonic()

    # lifecycle
    def prepare(self) -> dict[str, str]:
        """Tables, catalog names and checkpoint checks; returns query -> txn app id."""
        ensure_tables(self.spark, self.settings)
        register_tables(self.spark, self.settings)
        return {q: check_checkpoint(self.settings, q) for q in (INGEST, *METRICS_QUERIES)}

    def start(self) -> None:
        app_ids = self.prepare()
        self._listener = _make_listener(self.stats)
        self.spark.streams.addListener(self._listener)
        self.queries[INGEST] = start_ingest(
            self.spark, self.settings, app_ids[INGEST], self.stats, self.available_now
        )
        if not self.available_now:
            self._start_metrics()
        self.write_status("running")

    def _start_metrics(self) -> None:
        for name in METRICS_QUERIES:
            self.queries[name] = start_metrics(self.spark, self.settings, name,
                                               self.available_now)

    def run(self) -> int:
        """Start, monitor until stopped (or until caught up with available_now); exit code."""
        self.start()
        interval = self.settings.processor.status_interval_s
        try:
            while not self.stop_event.is_set():
                if self._check_failures():
                    break
                self._maybe_maintain()
                if self.available_now and not any(q.isActive for q in self.queries.values()):
                    if set(self.queries) == {INGEST}:
                        self._start_metrics()
                        continue
                    break
                self.write_status("running")
                self.stop_event.wait(interval)
        finally:
            self.stop()
        return EXIT_DATA_LOSS if self.data_loss else (1 if self.error else 0)

    def _check_failures(self) -> bool:
        for name, q in self.queries.items():
            if q.isActive:
                continue
            exc = q.exception()
            if exc is not None:
                self.data_loss = is_data_loss(str(exc))
                self.error = f"query {name} failed: {_concise(str(exc), self.data_loss)}"
                if self.data_loss:
                    log.error(
                        "KAFKA DATA LOSS: records of topic %s were deleted (retention) before "
                        "they were processed; the stream stopped. %s",
                        self.settings.kafka.topic, exc,
                    )
                else:
                    log.error("%s", self.error)
                return True
        return False

    def stop(self) -> None:
        self.write_status("stopping")
        for name in (INGEST, *METRICS_QUERIES):
            q = self.queries.get(name)
            if q is not None and q.isActive:
                try:
                    q.stop()
                except Exception as exc:  # report, keep stopping the others
                    log.warning("stopping %s: %s", name, exc)
        if self._maint_thread is not None:
            # A Delta commit is atomic: abandoning an unfinished OPTIMIZE at exit loses nothing.
            self._maint_thread.join(timeout=60)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self.spark.streams.removeListener(self._listener)
        self.write_status("failed" if self.error else "stopped")

    def write_status(self, state: str) -> None:
        try:
            fields = status_fields(self.stats, self.settings, self.queries)
        except Exception as exc:  # status must never take the processor down
            fields = {"status_error": str(exc)}
        write_status(self.settings, COMPONENT, state=state, mode="stream",
                     last_error=self.error, data_loss=self.data_loss, **fields)

    # maintenance inside the writer process
    def _maybe_maintain(self) -> None:
        if self._maint_thread is not None and self._maint_thread.is_alive():
            return
        request = self.settings.run_dir / OPTIMIZE_REQUEST
        requested = request.is_file()
        due = (self.optimize_every_s is not None
               and time.monotonic() - self._last_optimize >= self.optimize_every_s)
        if requested or due:
            request_id = None
            if requested:
                with contextlib.suppress(OSError, ValueError):
                    request_id = json.loads(request.read_text()).get("id")
                with contextlib.suppress(FileNotFoundError):
                    request.unlink()
            self._last_optimize = time.monotonic()
            self._maint_thread = threading.Thread(
                target=self.run_maintenance, args=(request_id,), name="delta-maintenance",
                daemon=True,
            )
            self._maint_thread.start()

    def run_maintenance(self, request_id: str | None = None) -> list[dict[str, Any]]:
        """OPTIMIZE + VACUUM every processor table from this (the writer's) process."""
        started = time.time()
        try:
            results = optimize_all(
                self.spark, self.settings,
                vacuum_retention_hours=self.settings.processor.vacuum_retention_hours,
            )
            outcome: dict[str, Any] = {"ok": True, "tables": results}
        except Exception as exc:
            log.exception("Delta maintenance failed")
            results = []
            outcome = {"ok": False, "error": str(exc)}
        outcome.update(started=started, finished=time.time())
        with self.stats.lock:
            self.stats.optimize = outcome
        if request_id:
            _write_json(self.settings.run_dir / f"optimize.{request_id}.result.json", outcome)
        return results


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, default=str))
    tmp.replace(path)


def _start_detector(spark: SparkSession, settings: Settings,
                    stop_event: threading.Event) -> threading.Thread:
    """The detector in this process, sharing the SparkSession (one JVM fewer); the returned
    thread is the detector's own, so joining it waits for its last poll before Spark stops."""
    from pipeline.anomaly_detector import start_in_session

    return start_in_session(spark, settings, stop_event)


def run_stream(settings: Settings, *, available_now: bool = False,
               optimize_every_s: float | None = None, with_detector: bool = False) -> int:
    from pipeline.spark_session_manager import get_spark, stop_spark

    lock = WriterLock(settings)
    try:
        lock.acquire(timeout=10.0)
    except WriterLockBusy as exc:
        print(f"lakewatch process: {exc}", file=sys.stderr)
        return EXIT_BUSY
    stop_event = threading.Event()
    restore = _install_signal_handlers(stop_event)
    detector = None
    try:
        spark = get_spark(settings)
        runner = StreamRunner(spark, settings, available_now=available_now,
                              optimize_every_s=optimize_every_s, stop_event=stop_event)
        if with_detector:
            detector = _start_detector(spark, settings, stop_event)
        code = runner.run()
        if runner.error:
            print(f"lakewatch process: {runner.error}", file=sys.stderr)
        return code
    finally:
        stop_event.set()
        if detector is not None:
            detector.join(timeout=30)
        restore()
        stop_spark()
        lock.release()


def _install_signal_handlers(stop_event: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame) -> None:
        log.info("signal %s: stopping the streaming queries", signum)
        stop_event.set()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


# -- analytics and optimize modes ---------------------------------------------------------


def run_analytics(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Batch reports over ``logs`` -> ``analytics_*`` Delta tables (overwritten each run)."""
    from pipeline.delta_tables import ANALYTICS_PREFIX, is_delta_table
    from pipeline.transforms.analytics import reports

    logs_path = settings.table_path(TABLE_LOGS)
    if not is_delta_table(logs_path):
        raise ConfigError(f"no logs table at {logs_path}: run the stream first")
    logs = spark.read.format("delta").load(str(logs_path)).cache()
    written: dict[str, int] = {}
    try:
        for suffix, report in reports().items():
            name = ANALYTICS_PREFIX + suffix
            df = report(logs)
            (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .save(str(settings.table_path(name))))
            written[name] = spark.read.format("delta").load(
                str(settings.table_path(name))).count()
    finally:
        logs.unpersist()
    register_tables(spark, settings)
    return written


def _print_analytics(spark: SparkSession, settings: Settings, written: dict[str, int]) -> None:
    for name, rows in written.items():
        print(f"\n== {name} ({rows} rows) ==", flush=True)
        spark.read.format("delta").load(str(settings.table_path(name))).show(10, truncate=40)


def run_optimize(settings: Settings, wait_s: float = 900.0) -> int:
    """OPTIMIZE + VACUUM: here if no writer runs, else by asking the running writer."""
    lock = WriterLock(settings)
    try:
        lock.acquire(timeout=0)
    except WriterLockBusy:
        return _request_optimize(settings, wait_s)
    try:
        from pipeline.spark_session_manager import get_spark, stop_spark

        spark = get_spark(settings)
        try:
            results = optimize_all(
                spark, settings,
                vacuum_retention_hours=settings.processor.vacuum_retention_hours,
            )
        finally:
            stop_spark()
    finally:
        lock.release()
    _print_optimize(results)
    return 0


def _request_optimize(settings: Settings, wait_s: float) -> int:
    request_id = uuid.uuid4().hex
    result_path = settings.run_dir / f"optimize.{request_id}.result.json"
    _write_json(settings.run_dir / OPTIMIZE_REQUEST, {"id": request_id, "at": time.time()})
    print("the streaming processor is running: asked it to optimize between its batches ...")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if result_path.is_file():
            outcome = json.loads(result_path.read_text())
            result_path.unlink()
            if not outcome.get("ok"):
                print(f"lakewatch process: optimize failed: {outcome.get('error')}",
                      file=sys.stderr)
                return 1
            _print_optimize(outcome["tables"])
            return 0
        time.sleep(0.5)
    print(f"lakewatch process: no answer from the running processor within {wait_s:.0f} s",
          file=sys.stderr)
    return 1


def _print_optimize(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "skipped" in r:
            print(f"{r['table']}: skipped ({r['skipped']})")
            continue
        print(
            f"{r['table']}: files {r['files_before']} -> {r['files_after']}, "
            f"bytes {r['bytes_before']:,} -> {r['bytes_after']:,}"
            f" (z-order {', '.join(r['zorder']) or 'none'}; {r['seconds']} s)"
        )


# -- CLI ------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("stream", "analytics", "optimize"), default="stream")
    parser.add_argument("--available-now", action="store_true",
                        help="stream mode: process what Kafka holds now, then exit")
    parser.add_argument("--optimize-every", type=float, metavar="SECONDS", default=None,
                        help="stream mode: OPTIMIZE + VACUUM between batches every SECONDS")
    parser.add_argument("--with-detector", action="store_true",
                        help="stream mode: run the anomaly detector in this process")
    parser.add_argument("--wait", type=float, default=900.0, metavar="SECONDS",
                        help="optimize mode: how long to wait for a running processor")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.mode == "stream":
        every = args.optimize_every or settings.processor.optimize_every_s
        return run_stream(settings, available_now=args.available_now,
                          optimize_every_s=every, with_detector=args.with_detector)
    if args.mode == "optimize":
        return run_optimize(settings, args.wait)
    from pipeline.spark_session_manager import get_spark, stop_spark

    spark = get_spark(settings)
    try:
        written = run_analytics(spark, settings)
        _print_analytics(spark, settings, written)
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(sys.modules[__name__]))


__all__ = ["PROCESSOR_TABLES", "StreamRunner", "check_checkpoint", "run_analytics"]
