"""Stream mode of ``lakewatch process``: the one-pass query in a SparkSession, until stopped.

:class:`StreamRunner` migrates a version-1 data dir (:mod:`~pipeline.runners.migrate`), checks
the checkpoint (:mod:`~pipeline.runners.checkpoints`), starts ``ingest``, which writes
``logs``, ``logs_quarantine`` and the ``metrics`` partials from each micro-batch
(:mod:`~pipeline.runners.ingest`), writes the status every ``processor.status_interval_s``
(:mod:`~pipeline.runners.progress`), checkpoints the Delta tables beside the stream
(:mod:`pipeline.delta_checkpoints`), compacts the recent partitions of ``logs`` and
``logs_quarantine`` every ``processor.compact_every_s``
(:func:`pipeline.delta_tables.compact_recent`: their file count stays bounded, the bound is
in :mod:`pipeline.delta_tables`) and runs OPTIMIZE + VACUUM of every table when due or
requested (``run_dir/optimize.request``, see
:func:`pipeline.runners.batch_jobs.run_optimize`), all on a thread beside the stream, never
inside a batch. Kafka data deleted by retention before it
was processed stops the stream (``failOnDataLoss``), sets ``data_loss`` in the status and
exits with code 3. :func:`run_stream` holds the writer lock, handles SIGTERM / SIGINT and may
host the anomaly detector in the same process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from pipeline.delta_checkpoints import DeltaCheckpointer
from pipeline.delta_tables import (
    PROCESSOR_TABLES,
    WriterLock,
    WriterLockBusy,
    compact_all,
    ensure_tables,
    optimize_all,
    register_tables,
)
from pipeline.files import atomic_write
from pipeline.runners.checkpoints import INGEST, check_checkpoint
from pipeline.runners.ingest import start_ingest
from pipeline.runners.migrate import migrate
from pipeline.runners.progress import (
    ProcessorStats,
    concise_error,
    is_data_loss,
    make_listener,
    status_fields,
)
from pipeline.settings import Settings
from pipeline.signals import set_on_signals
from pipeline.status import PROCESSOR, write_status

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)

COMPONENT = PROCESSOR
EXIT_DATA_LOSS = 3
EXIT_BUSY = 4
#: Written into ``run_dir`` to ask the running writer for OPTIMIZE + VACUUM.
OPTIMIZE_REQUEST = "optimize.request"
#: how long stop() waits for the running micro-batch to finish before interrupting it
STOP_GRACE_S = 10.0


class StreamRunner:
    """Starts the query, writes the status, runs maintenance, stops on request."""

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
        self._checkpointer: DeltaCheckpointer | None = None
        self._checkpoint_thread: threading.Thread | None = None
        self._last_optimize = time.monotonic()
        self._last_compact = time.monotonic()
        #: the newest compaction round: {"finished": epoch s, "tables": compact_all's list}
        self.last_compaction: dict[str, Any] | None = None
        self.migrated: str | None = None

    # lifecycle
    def prepare(self) -> str:
        """Tables, migration, catalog names and the checkpoint check; returns the txn app id."""
        self.migrated = migrate(self.spark, self.settings)
        ensure_tables(self.spark, self.settings)
        register_tables(self.spark, self.settings)
        return check_checkpoint(self.settings, INGEST)

    def start(self) -> None:
        app_id = self.prepare()
        self._listener = make_listener(self.stats)
        self.spark.streams.addListener(self._listener)
        self.queries[INGEST] = start_ingest(
            self.spark, self.settings, app_id, self.stats, self.available_now
        )
        self._checkpointer = DeltaCheckpointer(
            self.spark, [self.settings.table_path(name) for name in PROCESSOR_TABLES],
            self.settings.processor.delta_checkpoint_every)
        self.write_status("running")

    def run(self) -> int:
        """Start, monitor until stopped (or until caught up with available_now); exit code."""
        self.start()
        interval = self.settings.processor.status_interval_s
        try:
            while not self.stop_event.is_set():
                if self._check_failures():
                    break
                self._maybe_maintain()
                self._maybe_checkpoint()
                if self.available_now and not any(q.isActive for q in self.queries.values()):
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
                self.error = f"query {name} failed: {concise_error(str(exc), self.data_loss)}"
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
        for name, q in self.queries.items():
            if q.isActive:
                try:
                    _wait_between_batches(q, STOP_GRACE_S)
                    q.stop()
                except Exception as exc:  # report, keep stopping the others
                    log.warning("stopping %s: %s", name, exc)
        for thread in (self._maint_thread, self._checkpoint_thread):
            if thread is not None:
                # A Delta commit is atomic, a checkpoint file written whole: abandoning an
                # unfinished OPTIMIZE or checkpoint at exit loses nothing.
                thread.join(timeout=60)
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
                     last_error=self.error, data_loss=self.data_loss, migrated=self.migrated,
                     **fields)

    # maintenance inside the writer process
    def _maybe_checkpoint(self) -> None:
        busy = self._checkpoint_thread is not None and self._checkpoint_thread.is_alive()
        if self._checkpointer is None or busy:
            return
        self._checkpoint_thread = threading.Thread(
            target=self._checkpoint_due, name="delta-checkpoint", daemon=True)
        self._checkpoint_thread.start()

    def _checkpoint_due(self) -> None:
        try:
            self._checkpointer.run_due()
        except Exception as exc:  # the next round retries; readers only replay more JSON
            log.warning("Delta checkpoint failed (will retry): %s", exc)

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
            return
        every = self.settings.processor.compact_every_s
        if every is not None and time.monotonic() - self._last_compact >= every:
            # the same thread slot: two OPTIMIZEs of one table at once would conflict
            self._last_compact = time.monotonic()
            self._maint_thread = threading.Thread(
                target=self.run_compaction, name="delta-compaction", daemon=True)
            self._maint_thread.start()

    def run_compaction(self) -> list[dict[str, Any]]:
        """Compact the recent partitions' small files (``delta_tables.compact_all``)."""
        try:
            results = compact_all(self.spark, self.settings)
        except Exception as exc:  # the next round retries; the stream goes on meanwhile
            log.warning("Delta compaction failed (will retry): %s", exc)
            return []
        self.last_compaction = {"finished": time.time(), "tables": results}
        log.info("compacted %s", ", ".join(
            f"{r['table']}: {r['files_removed']} -> {r['files_added']} files in {r['seconds']} s"
            for r in results))
        return results

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
            atomic_write(self.settings.run_dir / f"optimize.{request_id}.result.json",
                         json.dumps(outcome, default=str))
        return results


def _wait_between_batches(query: StreamingQuery, grace_s: float) -> bool:
    """Wait (up to ``grace_s``) until no micro-batch is running, so stop() lands between
    batches: interrupting one mid-batch loses nothing (its commit is idempotent) but makes
    Spark match its interrupt-message regex against a long Py4J error, which can overflow
    the JVM stack. True when the query was idle."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            if not query.isActive or not query.status.get("isTriggerActive", False):
                return True
        except Exception:  # the query ended meanwhile
            return True
        time.sleep(0.05)
    return False


def _start_detector(spark: SparkSession, settings: Settings,
                    stop_event: threading.Event) -> threading.Thread:
    """The detector in this process, sharing the SparkSession (one JVM fewer); the returned
    thread is the detector's own, so joining it waits for its last poll before Spark stops.
    Imported here, so pandas / scikit-learn load only when the detector is hosted."""
    from pipeline.detection.runner import start_in_session

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
    restore = set_on_signals(stop_event, on_signal=_log_stop_signal)
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


def _log_stop_signal(signum: int) -> None:
    log.info("signal %s: stopping the streaming queries", signum)
