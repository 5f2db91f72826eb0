"""Progress, first pages and cancelling on the suite's one local SparkSession (real Spark)."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.sql.engine import SqlEngine
from pipeline.sql.errors import QueryCancelledError, SqlError
from tests.pipeline.sql.test_engine import LONG_QUERY

#: Two shuffles (GROUP BY, ORDER BY): several stages, and jobs whose map stages are skipped.
GROUPED = ("SELECT id % 7 AS k, count(*) AS n FROM range(0, 600000, 1, 6) "
           "GROUP BY k ORDER BY k")
GROUPED_ROWS = [(k, len(range(k, 600000, 7))) for k in range(7)]


@pytest.fixture(scope="module")
def engine(spark, base_settings, tmp_path_factory):
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path_factory.mktemp("sql-progress") / "data"
    return SqlEngine(s, spark)


def _run_in_thread(engine, sql, query_id, **kwargs):
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = engine.execute(sql, query_id=query_id, **kwargs)
        except SqlError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome


def _consistent(snapshots):
    for p in snapshots:
        assert 0 <= p.stages_done <= p.stages_total, p
        assert 0 <= p.tasks_done <= p.tasks_total, p
        assert p.tasks_running >= 0
    for a, b in zip(snapshots, snapshots[1:], strict=False):
        assert b.stages_done >= a.stages_done and b.tasks_done >= a.tasks_done, (a, b)
        assert b.elapsed_s >= a.elapsed_s or b.finished  # (a poll may outlast the end)


def test_progress_is_consistent_and_ends_complete(engine):
    worker, outcome = _run_in_thread(engine, GROUPED, "grouped")
    seen = []
    while worker.is_alive():
        p = engine.progress("grouped")
        if p is not None:
            seen.append(p)
        time.sleep(0.02)
    worker.join()
    assert outcome["result"].rows == GROUPED_ROWS
    final = engine.progress("grouped")
    assert final.finished and final.tasks_running == 0
    assert final.stages_total >= 2 and final.stages_done == final.stages_total
    assert final.tasks_total >= 6 and final.tasks_done == final.tasks_total
    _consistent([*seen, final])
    assert final.label() == f"stage {final.stages_total}/{final.stages_total} · tasks " \
                            f"{final.tasks_total}/{final.tasks_total}"
    assert engine.progress("never-ran") is None


def test_first_page_comes_from_the_first_partitions_only(engine):
    # a scan in fixed order: the first page is a LIMIT job over one of 40 partitions
    r = engine.execute("SELECT id, id * 2 AS d FROM range(0, 4000000, 1, 40)",
                       query_id="scan", first_page=500)
    assert r.rows == [(i, 2 * i) for i in range(500)] and not r.done
    at_first_page = engine.progress("scan")
    assert at_first_page.tasks_done <= 2, at_first_page
    r.close()
    # no fixed order (rand): a partition iterator, one job per partition pulled
    r = engine.execute("SELECT id, rand() AS x FROM range(0, 4000000, 1, 40)",
                       query_id="iter", first_page=500)
    assert [row[0] for row in r.rows] == list(range(500))
    first = engine.progress("iter")
    assert first.jobs == 1 and first.tasks_done == 1, first
    r.fetch(100_000 + 1)  # past the first partition (100,000 rows each)
    later = engine.progress("iter")
    assert later.jobs == 2 and later.tasks_done == 2, later
    r.close()
    assert engine.progress("iter").finished


def test_cancel_ends_the_jobs_within_a_second(engine, spark):
    worker, outcome = _run_in_thread(engine, LONG_QUERY, "long-p")
    tracker = spark.sparkContext.statusTracker()

    def running_jobs():
        return [j for j in tracker.getJobIdsForGroup("lakewatch-sql-long-p")
                if tracker.getJobInfo(j).status == "RUNNING"]

    deadline = time.monotonic() + 120
    while True:  # past the broadcast job, in the long one
        p = engine.progress("long-p")
        if p is not None and p.tasks_running > 0 and running_jobs():
            break
        assert time.monotonic() < deadline, "the long query never ran a task"
        time.sleep(0.05)
    assert p.known and not p.finished and p.tasks_done < p.tasks_total

    asked = time.monotonic()
    assert engine.cancel("long-p")
    returned = time.monotonic() - asked
    assert engine.wait_stopped("long-p", 5.0) and running_jobs() == []
    gone = time.monotonic() - asked
    worker.join(30)
    assert not worker.is_alive()
    raised = outcome["at"] - asked
    print(f"cancel returned in {returned:.3f} s, jobs gone in {gone:.3f} s, "
          f"statement raised in {raised:.3f} s")
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    assert returned < 1.0 and gone < 1.0
    # The statement's own thread unwinds later: pyspark converts the JVM's error with many
    # py4j calls (1.9 s on a loaded 2-core VM); SqlService reports the cancel without it.
    assert raised < 30
    end = engine.progress("long-p")
    assert end.finished and end.tasks_running == 0 and end.tasks_done < end.tasks_total
    assert engine.running() == []
    assert engine.execute("SELECT 41 + 1 AS x").rows == [(42,)]
