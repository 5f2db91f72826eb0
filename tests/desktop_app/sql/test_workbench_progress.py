"""The workbench's progress bar and Cancel, in a real (offscreen) Qt event loop over the
suite's real local SparkSession."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from desktop_app.sql.service import SqlService
from desktop_app.sql.workbench import SqlWorkbench
from pipeline.sql.engine import SqlEngine
from pipeline.sql.errors import QueryCancelledError
from tests.pipeline.sql.test_engine import LONG_QUERY
from tests.pipeline.sql.test_progress_cancel import GROUPED, GROUPED_ROWS


@pytest.fixture
def workbench(qtbot, spark, base_settings, tmp_path):
    settings = base_settings.model_copy(deep=True)
    settings.storage.data_dir = tmp_path / "data"  # no tables: the queries read range()
    service = SqlService(settings, engine=SqlEngine(settings, spark))
    wb = SqlWorkbench(settings, service=service)
    qtbot.addWidget(wb)
    with qtbot.waitSignal(service.ready, timeout=300_000):
        wb.show()
    yield wb
    service.wait_idle(60_000)


def test_progress_bar_reaches_the_total(qtbot, workbench):
    seen = []
    workbench.service.queryProgress.connect(lambda _qid, p: seen.append(p))
    with qtbot.waitSignal(workbench.resultShown, timeout=300_000) as blocker:
        workbench.open_query(GROUPED, run=True)
    assert blocker.args[0].rows == GROUPED_ROWS
    final = seen[-1]
    assert final.finished and final.tasks_done == final.tasks_total >= 6
    assert final.stages_done == final.stages_total >= 2
    for a, b in zip(seen, seen[1:], strict=False):
        assert a.tasks_done <= a.tasks_total and b.tasks_done >= a.tasks_done
    bar = workbench.progress
    assert (bar.minimum(), bar.maximum(), bar.value()) == (0, final.tasks_total,
                                                           final.tasks_total)
    assert bar.format() == final.label() and bar.isHidden()
    assert workbench.run_button.isEnabled() and not workbench.cancel_button.isEnabled()


def test_cancel_ends_the_query_within_a_second(qtbot, workbench, spark):
    workbench.open_query(LONG_QUERY, run=True)
    query_id = workbench._running
    assert query_id and not workbench.run_button.isEnabled()
    # determinate once Spark runs the long job's tasks (after its broadcast job)
    qtbot.waitUntil(lambda: workbench._progress is not None
                    and workbench._progress.tasks_running > 0
                    and workbench.progress.maximum() > 0, timeout=120_000)
    assert f" · {workbench._progress.label()}" in workbench.status.text()
    assert workbench.progress.format() == workbench._progress.label()
    tracker = spark.sparkContext.statusTracker()
    group = f"lakewatch-sql-{query_id}"

    asked = time.monotonic()
    with qtbot.waitSignal(workbench.errorShown, timeout=10_000) as blocker:
        qtbot.mouseClick(workbench.cancel_button, Qt.MouseButton.LeftButton)
    shown = time.monotonic() - asked
    running = [j for j in tracker.getJobIdsForGroup(group)
               if tracker.getJobInfo(j).status == "RUNNING"]
    print(f"cancel shown in the workbench after {shown:.3f} s")
    assert isinstance(blocker.args[0], QueryCancelledError)
    assert shown < 1.0 and running == []
    assert workbench.run_button.isEnabled() and not workbench.cancel_button.isEnabled()
    assert workbench.status.text().startswith("Cancelled") and workbench.progress.isHidden()
    assert workbench.service.wait_idle(60_000)  # the statement's thread has unwound
    assert workbench.service.engine.running() == []
    with qtbot.waitSignal(workbench.resultShown, timeout=120_000) as blocker:
        workbench.open_query("SELECT 41 + 1 AS x", run=True)
    assert blocker.args[0].rows == [(42,)]
