"""Run SQL on the process's SparkSession: safety first, then a cancellable, time-limited,
paged execution.

Each statement runs in its own Spark job group, so ``cancel`` (or the time limit) stops
exactly its jobs and leaves the shared session usable. Rows are pulled partition by
partition (``toLocalIterator``), so the first page shows before the whole result exists and
no more than ``sql.row_cap`` rows are ever held.

A partition can be large (a 128 MB file split), so when the plan reads its input in a fixed
order (no shuffle, sort or limit; deterministic), the first page comes from a ``LIMIT`` job,
which stops reading once it has the page; the partition iterator then repeats those rows,
and they are checked to be the same (a table rewritten in between is reported, never mixed).

When the stream processor is up, the session is a Spark Connect session on the processor's own
SparkSession (:mod:`pipeline.sql.remote`): no second JVM. The endpoint checks each statement
with the same rules before planning it; here job tags replace job groups, parameters are
inlined as escaped literals, and results are capped on the server (``LIMIT row_cap + 1``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.settings import Settings
from pipeline.sql import catalog, fast_paths, remote
from pipeline.sql.errors import QueryCancelledError, SqlError, TimeLimitError
from pipeline.sql.errors_spark import from_spark, shift
from pipeline.sql.params import inline_args, sql_with_args
from pipeline.sql.progress import ConnectProgress, JobGroupProgress, QueryProgress
from pipeline.sql.safety import Verdict, check_statement
from pipeline.sql.splitter import Statement, split_statements

log = logging.getLogger(__name__)
# pyspark logs every SQL error with its full JVM stack at ERROR; the engine reports the
# error itself (message + position), so that duplicate is muted.
logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
logging.getLogger("DataFrameQueryContextLogger").setLevel(logging.CRITICAL)

EXPLAIN_MODES = ("simple", "extended", "formatted", "cost", "codegen")
_KEEP_ENDED = 16  # finished statements whose progress can still be read


@dataclass
class QueryResult:
    """One statement's result, fetched in pages. Thread-safe: one thread may fetch while
    another cancels."""

    query_id: str
    sql: str
    columns: list[str]
    types: list[str]
    row_cap: int
    verdict: Verdict | None = None
    rows: list[tuple] = field(default_factory=list)
    done: bool = False
    truncated: bool = False
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0
    first_page_s: float | None = None
    _iter: Iterator[Any] | None = None
    _open: Callable[[], Iterator[Any]] | None = None  # opens ``_iter`` when first needed
    _engine: SqlEngine | None = None
    #: First rows from a LIMIT job, not yet handed out; ``_head_complete``: they are all rows.
    _head: list[tuple] = field(default_factory=list)
    _head_complete: bool = False
    #: Rows handed out from ``_head`` that the iterator must repeat before its new rows.
    _repeat: list[tuple] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def fetch(self, n: int) -> list[tuple]:
        """Pull up to ``n`` more rows (fewer at the end or at the row cap) and return them."""
        with self._lock:
            if self.done or (self._iter is None and self._open is None and not self._head):
                return []
            if self._engine is not None and self._engine._is_cancelled(self.query_id):
                error = self._engine._translate(self.query_id, RuntimeError("cancelled"), "")
                self._finish()
                raise error
            room = self.row_cap - len(self.rows)
            want = max(0, min(n, room))
            try:
                if self._head:
                    batch = self._head[:want]
                    del self._head[:want]
                    self._repeat.extend(batch)
                    complete = not self._head and self._head_complete
                else:
                    self._skip_repeat()
                    batch = [tuple(r) for r in itertools.islice(self._opened(), want)]
                    complete = len(batch) < want
                if complete:
                    self._finish()
                elif len(self.rows) + len(batch) >= self.row_cap:
                    self._skip_repeat()
                    self.truncated = next(self._opened(), None) is not None
                    self._finish()
            except Exception as exc:
                error = self._engine._translate(self.query_id, exc, self.sql)
                self._finish()
                raise error from None
            self.rows.extend(batch)
            if self.first_page_s is None:
                self.first_page_s = time.monotonic() - self.started
            self.elapsed_s = time.monotonic() - self.started
            return batch

    def _opened(self) -> Iterator[Any]:
        if self._iter is None and self._open is not None:
            self._iter, self._open = self._open(), None
        return self._iter

    def _skip_repeat(self) -> None:
        """Consume the rows the LIMIT job already gave; they must be the same rows."""
        if not self._repeat:
            return
        n = len(self._repeat)
        again = [tuple(r) for r in itertools.islice(self._opened(), n)]
        # repr: NaN != NaN, but a NaN read twice is the same value
        if len(again) != n or repr(again) != repr(self._repeat):
            raise SqlError("the table changed while the result was being read (its first rows "
                           "differ on a second read); run the query again")
        self._repeat = []

    def fetch_all(self, page: int = 10_000) -> list[tuple]:
        """Every row up to the cap."""
        while not self.done:
            self.fetch(page)
        return self.rows

    def _finish(self) -> None:
        self.done = True
        self.elapsed_s = time.monotonic() - self.started
        it, self._iter, self._open = self._iter, None, None
        close = getattr(it, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - the JVM side may already be gone
                log.debug("closing result iterator", exc_info=True)
        if self._engine is not None:
            self._engine._forget(self.query_id)

    def close(self) -> None:
        """Stop fetching and free the Spark side (safe to call twice)."""
        with self._lock:
            if not self.done:
                self._finish()


def _returns_rows(sql: str) -> bool:
    """A query (not a command such as DESCRIBE or SHOW), which a LIMIT may wrap."""
    from pipeline.sql.splitter import plain_code

    head = "".join(c if f else " " for c, f in zip(sql, plain_code(sql), strict=True))
    words = head.split(None, 1)
    return bool(words) and words[0].lower() in ("select", "with", "from", "values", "table")


#: Logical operators that keep their input's row order and read partitions independently.
_ORDERED_NODES = frozenset({"Project", "Filter", "Generate", "SubqueryAlias", "View",
                            "LogicalRelation", "LocalRelation", "Range"})


def reads_in_fixed_order(df: Any) -> bool:
    """True when two runs of ``df`` return the same rows in the same order: a deterministic
    plan of scans, filters and projections only (no shuffle, sort, limit, join or aggregate,
    whose output order varies between runs). Read from the analysed plan, which exists
    already: optimising it again would cost a Delta snapshot scan (~0.3 s on 10M rows)."""
    plan = df._jdf.queryExecution().analyzed()
    if not plan.deterministic():
        return False
    stack = [plan]
    while stack:
        node = stack.pop()
        if str(node.getClass().getSimpleName()) not in _ORDERED_NODES:
            return False
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return True


class SqlEngine:
    """The SQL engine of a process: one per SparkSession, shared by CLI or workbench."""

    def __init__(self, settings: Settings, spark: Any = None) -> None:
        self.settings = settings
        self._spark = spark
        self._active: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._session_lock = threading.Lock()
        #: Progress of finished statements: (state, ended, ok), newest last, a few kept.
        self._ended: dict[str, tuple[dict[str, Any], float, bool]] = {}
        self._connect_progress = ConnectProgress()
        self._progress_on: Any = None  # the Connect session the handler is registered on

    # -- session -------------------------------------------------------------------------
    @property
    def spark(self) -> Any:
        """The processor's session through its SQL endpoint when it is up, else this
        process's own (started on first use)."""
        with self._session_lock:
            if self._spark is None:
                self._spark = remote.connect(self.settings)
            if self._spark is None:
                from pipeline.spark_session_manager import get_spark

                self._spark = get_spark(self.settings)
            if self._progress_on is not self._spark and remote.is_remote(self._spark):
                self._spark.registerProgressHandler(self._connect_progress)
                self._progress_on = self._spark
            return self._spark

    @property
    def is_remote(self) -> bool:
        """True when statements run on the processor's session (Spark Connect)."""
        return self._spark is not None and remote.is_remote(self._spark)

    def start(self) -> dict[str, list[catalog.Column]]:
        """Start Spark (slow the first time), register the tables, return the catalog."""
        return self.refresh_catalog()

    def refresh_catalog(self) -> dict[str, list[catalog.Column]]:
        spark = self.spark
        if not remote.is_remote(spark):  # the processor registers them for its endpoint
            catalog.register_tables(spark, self.settings)
        return catalog.catalog_snapshot(spark)

    # -- safety --------------------------------------------------------------------------
    def check(self, sql: str) -> Verdict | None:
        """Apply the safety rules to one statement (raises RefusedError / SqlError). None
        over Spark Connect: the endpoint applies them to what it receives."""
        if remote.is_remote(self.spark):
            return None
        try:
            return check_statement(self.spark, sql, self.settings.sql.allow_writes)
        except SqlError:
            raise
        except Exception as exc:
            raise from_spark(exc, sql) from None

    # -- execution -----------------------------------------------------------------------
    def execute(
        self,
        sql: str,
        args: dict[str, Any] | None = None,
        *,
        query_id: str | None = None,
        first_page: int = 1000,
        row_cap: int | None = None,
    ) -> QueryResult:
        """Check and run one statement; the result holds its first page already.

        Raises RefusedError, QueryCancelledError/TimeLimitError or SqlError (positions are
        within ``sql``).
        """
        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise SqlError("empty statement")
        query_id = query_id or uuid.uuid4().hex
        verdict = self.check(sql)
        group = f"lakewatch-sql-{query_id}"
        state = {"group": group, "cancelled": False, "timed_out": False,
                 "started": time.monotonic()}
        timer = threading.Timer(self.settings.sql.time_limit_s, self._time_out, (query_id,))
        timer.daemon = True
        state["timer"] = timer
        with self._lock:
            self._active[query_id] = state
        spark = self.spark
        started = time.monotonic()
        timer.start()
        cap = row_cap or self.settings.sql.row_cap
        head, head_limit = None, min(first_page, cap)
        try:
            with self._job_group(query_id):
                if remote.is_remote(spark):
                    df = spark.sql(inline_args(sql, args))
                    if _returns_rows(sql):
                        df = df.limit(cap + 1)  # never more on the processor than is shown
                else:
                    df = sql_with_args(spark, sql, args)
                if self.settings.sql.fast_paths:
                    df, head = fast_paths.apply(sql, df, self._builder(spark, args, cap),
                                                head_limit)
                self._raise_if_cancelled(query_id)
                fields = df.schema.fields
                if head is not None:
                    open_rows = None
                elif head_limit > 0 and not remote.is_remote(spark) and reads_in_fixed_order(df):
                    head = [tuple(r) for r in df.limit(head_limit).collect()]
                    self._raise_if_cancelled(query_id)
                    open_rows = None
                elif remote.is_remote(spark):
                    open_rows = remote.StartedRows(df.toLocalIterator())
                else:
                    open_rows = df.toLocalIterator(prefetchPartitions=False)
        except Exception as exc:
            raise self._translate(query_id, exc, sql) from None  # (forgets the query)
        result = QueryResult(
            query_id=query_id,
            sql=sql,
            columns=[f.name for f in fields],
            types=[f.dataType.simpleString() for f in fields],
            row_cap=cap,
            verdict=verdict,
            started=started,
            _iter=open_rows,
            _engine=self,
        )
        if head is not None:
            result._head, result._head_complete = head, len(head) < head_limit
            if not result._head_complete:
                # planned and started only once the first page is out
                result._open = lambda: self._open_rows(query_id, df)
        result.fetch(first_page)
        return result

    @staticmethod
    def _builder(spark: Any, args: dict[str, Any] | None, cap: int) -> Callable[[str], Any]:
        """How ``execute`` makes a DataFrame of a statement (for :mod:`fast_paths`)."""
        if remote.is_remote(spark):
            return lambda text: spark.sql(inline_args(text, args)).limit(cap + 1)
        return lambda text: sql_with_args(spark, text, args)

    @contextlib.contextmanager
    def _job_group(self, query_id: str) -> Iterator[None]:
        """Spark jobs started in this block (on this thread) belong to the query's group
        (over Spark Connect: operations started here carry the query's tag)."""
        if remote.is_remote(self.spark):
            tag = f"lakewatch-sql-{query_id}"
            self.spark.addTag(tag)
            self._connect_progress.running_here(query_id)
            try:
                yield
            finally:
                self._connect_progress.running_here(None)
                self.spark.removeTag(tag)
            return
        sc = self.spark.sparkContext
        sc.setJobGroup(f"lakewatch-sql-{query_id}", f"lakewatch sql {query_id}", True)
        try:
            yield
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
            sc.setLocalProperty("spark.job.description", None)
            sc.setLocalProperty("spark.job.interruptOnCancel", None)

    def _open_rows(self, query_id: str, df: Any) -> Iterator[Any]:
        with self._job_group(query_id):
            return df.toLocalIterator(prefetchPartitions=False)

    def run_script(
        self, script: str, args: dict[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[tuple[Statement, QueryResult]]:
        """Run a script's statements in order; stop at the first error (raised with its
        position in the script)."""
        for stmt in split_statements(script):
            try:
                yield stmt, self.execute(stmt.text, args, **kwargs)
            except SqlError as err:
                raise shift(err, script, stmt.start) from None

    def cancel(self, query_id: str) -> bool:
        """Stop a running statement's jobs; True if it was running."""
        return self._cancel(query_id, timed_out=False)

    def wait_stopped(self, query_id: str, timeout_s: float = 1.0) -> bool:
        """After ``cancel``: wait until none of the statement's Spark jobs runs any more
        (Spark cancels a job group asynchronously); False if some still run after
        ``timeout_s``. Over Spark Connect the interrupt has already reached the server."""
        spark = self._spark
        if spark is None or remote.is_remote(spark):
            return True
        tracker = spark.sparkContext._jsc.statusTracker()
        group = f"lakewatch-sql-{query_id}"
        deadline = time.monotonic() + timeout_s
        while True:
            infos = (tracker.getJobInfo(int(j)) for j in tracker.getJobIdsForGroup(group))
            if not any(i is not None and str(i.status().name()) == "RUNNING" for i in infos):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def progress(self, query_id: str) -> QueryProgress | None:
        """How far a statement has got (stages, tasks), or None for one this engine does not
        know or no longer remembers. Call it from any thread but the statement's own; cheap
        enough to poll a few times a second (finished jobs are read once)."""
        with self._lock:
            state = self._active.get(query_id)
            ended = self._ended.get(query_id)
            spark = self._spark
            if (state is None and ended is None) or spark is None:
                return None
            if state is None:
                state, at, ok = ended
            else:
                at, ok = None, False
            remote_query = remote.is_remote(spark)
            if not remote_query and "progress" not in state:
                state["progress"] = JobGroupProgress(spark.sparkContext, state["group"],
                                                     query_id, state["started"])
        finished = at is not None
        if remote_query:
            return self._connect_progress.snapshot(query_id, state["started"], finished, at,
                                                   complete=finished and ok)
        return state["progress"].snapshot(finished, at)

    def _time_out(self, query_id: str) -> None:
        self._cancel(query_id, timed_out=True)

    def _cancel(self, query_id: str, timed_out: bool) -> bool:
        with self._lock:
            state = self._active.get(query_id)
            if state is None:
                return False
            first = not state["cancelled"]
            state["cancelled"] = True
            state["timed_out"] = state["timed_out"] or timed_out
        self._cancel_group(state["group"])
        if first:
            # A job submitted just after this cancel (the statement was between analysis
            # and its first job) is caught by repeating the cancel while it is active.
            threading.Thread(target=self._keep_cancelling, args=(query_id,), daemon=True).start()
        return True

    def _keep_cancelling(self, query_id: str, every_s: float = 0.25, for_s: float = 30.0) -> None:
        deadline = time.monotonic() + for_s
        while time.monotonic() < deadline:
            time.sleep(every_s)
            with self._lock:
                state = self._active.get(query_id)
            if state is None:
                return
            try:
                self._cancel_group(state["group"])
            except Exception:  # noqa: BLE001 - session stopped: nothing left to cancel
                return

    def _cancel_group(self, group: str) -> None:
        if remote.is_remote(self.spark):
            self.spark.interruptTag(group)
        else:
            self.spark.sparkContext.cancelJobGroup(group)

    def _is_cancelled(self, query_id: str) -> bool:
        with self._lock:
            state = self._active.get(query_id)
        return bool(state and state["cancelled"])

    def _raise_if_cancelled(self, query_id: str) -> None:
        with self._lock:
            state = self._active.get(query_id)
        if state and state["cancelled"]:
            raise self._cancelled_error(state)

    def _cancelled_error(self, state: dict[str, Any]) -> SqlError:
        if state["timed_out"]:
            return TimeLimitError(
                f"stopped: the query ran longer than the time limit "
                f"(sql.time_limit_s = {self.settings.sql.time_limit_s:g} s)"
            )
        return QueryCancelledError("cancelled")

    def _translate(self, query_id: str, exc: BaseException, sql: str) -> SqlError:
        with self._lock:
            state = self._active.get(query_id)
        self._forget(query_id, ok=False)
        if state and state["cancelled"]:
            return self._cancelled_error(state)
        if self.is_remote:
            refused = remote.refusal(exc)
            if refused is not None:
                return refused
            if remote.status_name(exc) == "UNAVAILABLE":  # the processor stopped
                with self._session_lock:
                    self._spark = None  # the next statement finds its own way
        return from_spark(exc, sql)

    def _forget(self, query_id: str, ok: bool = True) -> None:
        """The statement is over (``ok``: it ran to the end); its progress stays readable."""
        gone = []
        with self._lock:
            state = self._active.pop(query_id, None)
            if state is not None:
                self._ended[query_id] = (state, time.monotonic(), ok)
                while len(self._ended) > _KEEP_ENDED:
                    gone.append(next(iter(self._ended)))
                    del self._ended[gone[-1]]
        for old in gone:
            self._connect_progress.forget(old)
        if state is not None:
            state["timer"].cancel()

    # -- explain -------------------------------------------------------------------------
    def explain(self, sql: str, mode: str = "formatted", args: dict[str, Any] | None = None) -> str:
        """The plan of a statement as readable text (never runs it)."""
        if mode not in EXPLAIN_MODES:
            raise SqlError(f"unknown EXPLAIN mode {mode!r}; one of {', '.join(EXPLAIN_MODES)}")
        sql = sql.strip().rstrip(";").strip()
        if not sql.lower().startswith("explain"):
            sql = f"EXPLAIN {mode.upper()} {sql}"
        result = self.execute(sql, args)
        return "\n".join(str(r[0]) for r in result.fetch_all())

    # -- tables --------------------------------------------------------------------------
    def table_info(self, name: str, count_rows: bool = True) -> Any:
        from pipeline.sql.table_info import table_info

        return table_info(self.spark, name, count_rows)

    def table_history(self, name: str, limit: int = 100) -> list[Any]:
        from pipeline.sql.table_info import table_history

        return table_history(self.spark, name, limit)
