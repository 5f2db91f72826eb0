"""How far a running statement has got, as plain data (stages and tasks), for a progress bar.

Two sources, one shape (:class:`QueryProgress`):

- a local session: Spark's status tracker, read for the statement's job group
  (:class:`JobGroupProgress`); polled from any thread, never from the statement's own;
- Spark Connect: the progress the server pushes with each operation's responses
  (``spark.connect.progress.reportInterval``), collected by a client progress handler
  (:class:`ConnectProgress`) and keyed by operation id, bound to the statement whose thread
  sent the operation.

A stage Spark skips (its shuffle output exists already, e.g. in every ``toLocalIterator`` job
after the first) is not counted: a finished statement ends with done == total.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueryProgress:
    """A statement's progress so far. Totals may grow while it runs (a statement can start
    more jobs); done counts never go down."""

    query_id: str
    stages_done: int = 0
    stages_total: int = 0
    tasks_done: int = 0
    tasks_total: int = 0
    tasks_running: int = 0
    jobs: int = 0
    bytes_read: int | None = None  # only over Spark Connect
    elapsed_s: float = 0.0
    finished: bool = False

    @property
    def known(self) -> bool:
        """False until Spark has scheduled a task: show an indeterminate bar meanwhile."""
        return self.tasks_total > 0

    def label(self) -> str:
        """``stage 2/3 · tasks 37/200`` (empty when nothing is known yet)."""
        if not self.known:
            return ""
        return (f"stage {min(self.stages_done + 1, self.stages_total)}/{self.stages_total}"
                f" · tasks {self.tasks_done}/{self.tasks_total}")


@dataclass(frozen=True)
class _Stage:
    stage_id: int
    submitted: bool
    tasks: int
    completed: int
    active: int


class JobGroupProgress:
    """Progress of one job group on a local SparkContext, from its status tracker.

    Finished jobs are read once and remembered, so a poll costs a few py4j calls for the
    running jobs only. Thread-safe.
    """

    def __init__(self, spark_context: Any, group: str, query_id: str,
                 started: float | None = None) -> None:
        self._sc = spark_context
        self.group = group
        self.query_id = query_id
        self.started = time.monotonic() if started is None else started
        self._final_jobs: dict[int, list[_Stage]] = {}
        self._lock = threading.Lock()
        self._best = (0, 0)  # (stages_done, tasks_done) seen so far: never shown going down

    def snapshot(self, finished: bool = False, ended: float | None = None) -> QueryProgress:
        tracker = self._sc._jsc.statusTracker()
        with self._lock:
            jobs: dict[int, list[_Stage]] = {}
            for job_id in list(tracker.getJobIdsForGroup(self.group)):
                job_id = int(job_id)
                if job_id in self._final_jobs:
                    jobs[job_id] = self._final_jobs[job_id]
                    continue
                info = tracker.getJobInfo(job_id)
                if info is None:
                    continue
                status = str(info.status().name())
                stages = [s for s in (self._stage(tracker, int(sid)) for sid in info.stageIds())
                          if s is not None]
                jobs[job_id] = stages
                if status in ("SUCCEEDED", "FAILED"):
                    self._final_jobs[job_id] = stages
            counted: dict[int, _Stage] = {}
            for stages in jobs.values():
                ran = [s.stage_id for s in stages if s.submitted]
                latest = max(ran, default=-1)
                for s in stages:
                    # a stage not submitted while a later one of its job was: skipped
                    if not s.submitted and s.stage_id < latest:
                        continue
                    old = counted.get(s.stage_id)
                    if old is None or (s.submitted and not old.submitted):
                        counted[s.stage_id] = s
            stages = counted.values()
            stages_done = sum(1 for s in stages if s.submitted and s.completed >= s.tasks)
            tasks_done = sum(min(s.completed, s.tasks) for s in stages)
            stages_done, tasks_done = (max(stages_done, self._best[0]),
                                       max(tasks_done, self._best[1]))
            self._best = (stages_done, tasks_done)
        return QueryProgress(
            query_id=self.query_id,
            stages_done=stages_done,
            stages_total=max(len(counted), stages_done),
            tasks_done=tasks_done,
            tasks_total=max(sum(s.tasks for s in stages), tasks_done),
            tasks_running=0 if finished else sum(s.active for s in stages),
            jobs=len(jobs),
            elapsed_s=(ended if ended is not None else time.monotonic()) - self.started,
            finished=finished,
        )

    @staticmethod
    def _stage(tracker: Any, stage_id: int) -> _Stage | None:
        info = tracker.getStageInfo(stage_id)
        if info is None:  # dropped from the status store (spark.ui.retainedStages)
            return None
        return _Stage(stage_id, int(info.submissionTime()) > 0, int(info.numTasks()),
                      int(info.numCompletedTasks()), int(info.numActiveTasks()))


class ConnectProgress:
    """A Spark Connect progress handler (``SparkSession.registerProgressHandler``) that
    files each operation's progress under the statement that sent it.

    pyspark calls the handler on the thread that reads the operation's responses; the engine
    names the statement running on that thread (:meth:`running_here`), and the first report
    of an operation binds its id to that statement, so later pages read on other threads
    still count. Thread-safe.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owner: dict[str, str] = {}  # operation id -> query id
        self._ops: dict[str, dict[str, tuple[list[Any], int, bool]]] = {}  # query -> op -> …

    def running_here(self, query_id: str | None) -> None:
        """Operations this thread sends from now on belong to ``query_id`` (None: to none)."""
        self._local.query_id = query_id

    def __call__(self, stages: Iterable[Any] | None, inflight_tasks: int,
                 operation_id: str | None, done: bool) -> None:
        if not operation_id:
            return
        stages = list(stages or [])
        with self._lock:
            query_id = self._owner.get(operation_id)
            if query_id is None:
                query_id = getattr(self._local, "query_id", None)
                if query_id is None or not stages:
                    return
                self._owner[operation_id] = query_id
            ops = self._ops.setdefault(query_id, {})
            old = ops.get(operation_id)
            if not stages and old is not None:
                stages = old[0]  # pyspark's closing call repeats no stages
            ops[operation_id] = (stages, 0 if done else int(inflight_tasks), done)

    def snapshot(self, query_id: str, started: float, finished: bool = False,
                 ended: float | None = None, complete: bool = False) -> QueryProgress:
        """``complete``: the statement ran to the end, so every stage it needed is done (the
        server's last report may predate the end; a stage never reported done was skipped)."""
        with self._lock:
            ops = list(self._ops.get(query_id, {}).values())
        stages = [s for op in ops for s in op[0]]
        tasks_total = sum(s.num_tasks for s in stages)
        return QueryProgress(
            query_id=query_id,
            stages_done=len(stages) if complete else sum(1 for s in stages if s.done),
            stages_total=len(stages),
            tasks_done=tasks_total if complete else sum(
                min(s.num_completed_tasks, s.num_tasks) for s in stages),
            tasks_total=tasks_total,
            tasks_running=0 if finished else sum(op[1] for op in ops),
            jobs=len(ops),
            bytes_read=sum(s.num_bytes_read for s in stages),
            elapsed_s=(ended if ended is not None else time.monotonic()) - started,
            finished=finished,
        )

    def forget(self, query_id: str) -> None:
        with self._lock:
            self._ops.pop(query_id, None)
            for op in [op for op, q in self._owner.items() if q == query_id]:
                del self._owner[op]
