"""The workbench's only door to Spark: runs ``pipeline.sql`` work on daemon threads and hands
results back to the GUI thread through signals (the GUI never waits on Spark)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from pipeline.settings import Settings
from pipeline.sql.engine import QueryResult, SqlEngine
from pipeline.sql.errors import QueryCancelledError, RefusedError, SqlError
from pipeline.sql.errors_spark import shift
from pipeline.sql.history import QueryHistory
from pipeline.sql.progress import QueryProgress
from pipeline.sql.splitter import split_statements

log = logging.getLogger(__name__)
#: How often a running statement's progress is read (≤ 4 updates a second reach the GUI).
PROGRESS_EVERY_S = 0.25


class _Relay(QObject):
    """Carries one task's outcome from its worker thread to the GUI thread.

    Owned by the task, not by the service: a window closed while Spark is still starting
    deletes the service, Qt drops the relay's connections, and the late emit goes nowhere
    instead of into a deleted object.
    """

    done = Signal(int, object)
    failed = Signal(int, object)


class _RunRelay(QObject):
    """Carries one run's progress and its early cancellation to the GUI thread (owned by the
    run, for the same reason as :class:`_Relay`)."""

    progress = Signal(str, object)  # script query id, QueryProgress
    cancelled = Signal(str, int)  # script query id, task id


@dataclasses.dataclass
class _Run:
    """What the service knows of the script it is running."""

    query_id: str
    relay: _RunRelay
    statement: str | None = None  # query id of the statement running now
    task_id: int = 0
    cancelled: bool = False
    over: threading.Event = dataclasses.field(default_factory=threading.Event)

    def emit_progress(self, progress: QueryProgress | None) -> None:
        if progress is not None:
            with contextlib.suppress(RuntimeError):
                self.relay.progress.emit(self.query_id, progress)


def _watch(engine: SqlEngine, run: _Run, every_s: float = PROGRESS_EVERY_S) -> None:
    """Read the running statement's progress every ``every_s`` and send what changed."""
    last = None
    while not run.over.wait(every_s):
        statement = run.statement
        if statement is None:
            continue
        try:
            progress = engine.progress(statement)
        except Exception:  # noqa: BLE001 - the session is going away; the run reports it
            log.debug("reading query progress", exc_info=True)
            continue
        if progress is None:
            continue
        key = dataclasses.replace(progress, elapsed_s=0.0)
        if key != last and not run.over.is_set():
            last = key
            run.emit_progress(progress)


class SparkWorkers:
    """Daemon threads that run every Spark call of the workbench.

    Not a QThreadPool: deleting a pool (with its window) waits for the running task while
    PySide holds the GIL the task needs, which froze the window for the whole Spark start
    or deadlocked it. Daemon threads never hold up closing the window or leaving the app.
    """

    def __init__(self, threads: int = 2) -> None:
        self._queue: queue.SimpleQueue[tuple[int, Callable[[], Any], _Relay]] = (
            queue.SimpleQueue())
        self._idle = threading.Condition()
        self._pending = 0
        for i in range(threads):
            threading.Thread(target=self._loop, name=f"lakewatch-spark-{i}",
                             daemon=True).start()

    def submit(self, task_id: int, fn: Callable[[], Any], relay: _Relay) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put((task_id, fn, relay))

    def wait_idle(self, msecs: int = -1) -> bool:
        """Block until every submitted task has run (tests; never the GUI thread)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0,
                                       None if msecs < 0 else msecs / 1000)

    def _loop(self) -> None:
        while True:
            task_id, fn, relay = self._queue.get()
            try:
                value = fn()
            except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
                outcome, payload = relay.failed, exc
            else:
                outcome, payload = relay.done, value
            with contextlib.suppress(RuntimeError):
                outcome.emit(task_id, payload)
            del relay, outcome
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


_workers: SparkWorkers | None = None
_workers_lock = threading.Lock()


def spark_workers() -> SparkWorkers:
    """The process's one set of Spark worker threads (there is one SparkSession too)."""
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = SparkWorkers()
        return _workers


class SqlService(QObject):
    """Async facade over SqlEngine + QueryHistory for the workbench widgets."""

    starting = Signal()
    ready = Signal(object)  # catalog: {table: [Column]}
    startFailed = Signal(str)
    queryStarted = Signal(str, str)  # query id, sql
    queryFinished = Signal(str, object)  # query id, QueryResult (first page loaded)
    queryFailed = Signal(str, object)  # query id, SqlError (position in the script)
    pageFetched = Signal(str, object)  # query id, list of new rows
    queryProgress = Signal(str, object)  # query id, QueryProgress (≤ 4 a second)
    historyChanged = Signal()

    def __init__(self, settings: Settings, engine: SqlEngine | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.engine = engine or SqlEngine(settings)
        self.history = QueryHistory.for_settings(settings)
        self.catalog: dict[str, list[Any]] = {}
        self.is_ready = False
        self._workers = spark_workers()
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._starting = False
        self._run: _Run | None = None

    # -- plumbing ------------------------------------------------------------------------
    def submit(self, fn: Callable[[], Any], on_done: Callable | None = None,
               on_error: Callable | None = None) -> int:
        """Run ``fn`` on a Spark worker; call on_done(value) / on_error(exc) on the GUI
        thread (never, once this service is gone)."""
        task_id = next(self._ids)
        self._callbacks[task_id] = (on_done, on_error)
        relay = _Relay()
        relay.done.connect(self._on_done)
        relay.failed.connect(self._on_failed)
        self._workers.submit(task_id, fn, relay)
        return task_id

    @Slot(int, object)
    def _on_done(self, task_id: int, value: Any) -> None:
        on_done, _ = self._callbacks.pop(task_id, (None, None))
        if on_done is not None:
            on_done(value)

    @Slot(int, object)
    def _on_failed(self, task_id: int, exc: Any) -> None:
        _, on_error = self._callbacks.pop(task_id, (None, None))
        if on_error is not None:
            on_error(exc)

    def wait_idle(self, msecs: int = -1) -> bool:
        return self._workers.wait_idle(msecs)

    # -- session -------------------------------------------------------------------------
    def start(self) -> None:
        """Start Spark and register the tables in the background (idempotent)."""
        if self.is_ready or self._starting:
            return
        self._starting = True
        self.starting.emit()
        self.submit(self.engine.start, self._started, self._start_failed)

    def refresh_catalog(self) -> None:
        self.submit(self.engine.refresh_catalog, self._started, self._start_failed)

    def _started(self, catalog: dict) -> None:
        self._starting = False
        self.is_ready = True
        self.catalog = catalog
        self.ready.emit(catalog)

    def _start_failed(self, exc: BaseException) -> None:
        self._starting = False
        self.startFailed.emit(f"Spark could not start: {exc}")

    # -- queries -------------------------------------------------------------------------
    def run(self, script: str, args: dict | None = None, base_offset: int = 0,
            full_text: str | None = None) -> str:
        """Run a script's statements in order; the last statement's result is reported.

        ``base_offset``/``full_text`` place error positions in the editor's whole text when
        ``script`` is a part of it (a selection or the statement under the cursor).
        """
        query_id = uuid.uuid4().hex[:12]
        self.queryStarted.emit(query_id, script)
        text = full_text if full_text is not None else script
        run = _Run(query_id, _RunRelay())
        run.relay.progress.connect(self._on_progress)
        run.relay.cancelled.connect(self._on_cancelled)

        def work() -> QueryResult:
            try:
                return run_statements()
            finally:
                run.over.set()

        def run_statements() -> QueryResult:
            result = None
            statements = split_statements(script)
            if not statements:
                raise SqlError("nothing to run")
            for i, stmt in enumerate(statements):
                if run.cancelled:
                    raise QueryCancelledError("cancelled")
                qid = query_id if i == len(statements) - 1 else f"{query_id}-{i}"
                run.statement = qid
                started = time.monotonic()
                try:
                    result = self.engine.execute(stmt.text, args, query_id=qid)
                except SqlError as err:
                    status = ("refused" if isinstance(err, RefusedError) else
                              "cancelled" if isinstance(err, QueryCancelledError) else "error")
                    self.history.add(stmt.text, status, error=err.message)
                    raise shift(err, text, base_offset + stmt.start) from None
                self.history.add(stmt.text, "ok", rows=result.row_count,
                                 elapsed_ms=int((time.monotonic() - started) * 1000))
            if run.cancelled:  # the cancel came as the first page did
                result.close()
                raise QueryCancelledError("cancelled")
            run.emit_progress(self.engine.progress(run.statement))  # the final figures
            return result

        self._run = run
        run.task_id = self.submit(work, lambda r: self._query_done(query_id, r),
                                  lambda e: self._query_failed(query_id, e))
        threading.Thread(target=_watch, args=(self.engine, run), daemon=True,
                         name="lakewatch-sql-progress").start()
        return query_id

    def _query_done(self, query_id: str, result: QueryResult) -> None:
        self._end_run(query_id)
        self.historyChanged.emit()
        self.queryFinished.emit(query_id, result)

    def _query_failed(self, query_id: str, exc: BaseException) -> None:
        self._end_run(query_id)
        self.historyChanged.emit()
        err = exc if isinstance(exc, SqlError) else SqlError(str(exc))
        self.queryFailed.emit(query_id, err)

    def _end_run(self, query_id: str) -> None:
        if self._run is not None and self._run.query_id == query_id:
            self._run = None

    @Slot(str, object)
    def _on_progress(self, query_id: str, progress: QueryProgress) -> None:
        if self._run is not None and self._run.query_id == query_id:
            self.queryProgress.emit(query_id, progress)

    @Slot(str, int)
    def _on_cancelled(self, query_id: str, task_id: int) -> None:
        if self._callbacks.pop(task_id, None) is not None:  # its outcome is not in yet
            self._query_failed(query_id, QueryCancelledError("cancelled"))

    def cancel(self) -> None:
        """Cancel the running script (off the GUI thread: it is a JVM call).

        Its Spark jobs stop at once, but the statement's thread can take seconds more to
        unwind (pyspark converts the JVM's error with many py4j calls), so the run is reported
        cancelled as soon as its jobs have stopped (at most a second after the cancel), and
        its late outcome is dropped.
        """
        run = self._run
        if run is None or run.cancelled:
            return
        run.cancelled = True

        def stop() -> None:
            # the statement may still be in its safety check, not yet known to the engine
            while not run.over.is_set():
                statement = run.statement
                if statement is not None and self.engine.cancel(statement):
                    self.engine.wait_stopped(statement, 1.0)
                    with contextlib.suppress(RuntimeError):
                        run.relay.cancelled.emit(run.query_id, run.task_id)
                    return
                run.over.wait(0.05)

        threading.Thread(target=stop, daemon=True, name="lakewatch-sql-cancel").start()

    def fetch_more(self, query_id: str, result: QueryResult, n: int = 2000) -> None:
        self.submit(lambda: result.fetch(n), lambda rows: self.pageFetched.emit(query_id, rows),
                    lambda e: self.queryFailed.emit(query_id, e))

    def explain(self, sql: str, on_done: Callable[[str], None],
                on_error: Callable[[Any], None]) -> None:
        self.submit(lambda: self.engine.explain(sql), on_done, on_error)

    def export(self, result: QueryResult, path: Path, fmt: str,
               on_done: Callable[[int], None], on_error: Callable[[Any], None]) -> None:
        """Write every row of ``result`` (fetching the rest up to the cap) to ``path``."""
        from desktop_app.sql.export import export_rows

        def work() -> int:
            rows = result.fetch_all()
            export_rows(path, fmt, result.columns, result.types, rows)
            return len(rows)

        self.submit(work, on_done, on_error)

    def table_info(self, name: str, on_done: Callable, on_error: Callable) -> None:
        self.submit(lambda: (self.engine.table_info(name), self.engine.table_history(name, 50)),
                    on_done, on_error)
