"""The SQL workbench in a real (offscreen) Qt event loop over real Spark and Delta."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from desktop_app.sql.service import SqlService
from desktop_app.sql.workbench import SqlWorkbench
from pipeline.schemas import LOGS_DDL
from pipeline.sql.engine import SqlEngine
from pipeline.sql.errors import RefusedError


@pytest.fixture(scope="module")
def wb_settings(base_settings, tmp_path_factory):
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path_factory.mktemp("sql-wb") / "data"
    return s


@pytest.fixture(scope="module")
def logs_table(spark, wb_settings):
    from datetime import datetime

    # Delta rebuilds a table snapshot with 50 tasks by default: far too many for 2 cores.
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    rows = [(f"e{i}", datetime(2026, 1, 1, 10, 0, i), ["INFO", "WARN", "ERROR"][i % 3], "web",
             "GET", "/p", 200 + i, float(i), i) for i in range(7)]
    cols = [c.strip().split(" ") for c in LOGS_DDL.split(",")]
    df = spark.createDataFrame(
        rows, "event_id STRING, ts TIMESTAMP, level STRING, source STRING, method STRING, "
              "endpoint STRING, status INT, latency_ms DOUBLE, bytes BIGINT")
    exprs = [name if name in df.columns else f"CAST(NULL AS {typ}) AS {name}"
             for name, typ in cols]
    df.selectExpr(*exprs).write.format("delta").save(str(wb_settings.table_path("logs")))
    return wb_settings


@pytest.fixture
def workbench(qtbot, spark, logs_table):
    service = SqlService(logs_table, engine=SqlEngine(logs_table, spark))
    wb = SqlWorkbench(logs_table, service=service)
    qtbot.addWidget(wb)
    with qtbot.waitSignal(service.ready, timeout=300_000):
        wb.show()
    yield wb
    service.wait_idle(30_000)


def test_type_ctrl_enter_shows_results(qtbot, workbench):
    editor = workbench.editor()
    editor.set_text("")
    QWidget.setFocus(editor)
    qtbot.keyClicks(editor, "SELECT 1 AS one;")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level")
    assert editor.text() == (
        "SELECT 1 AS one;\nSELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level")
    with qtbot.waitSignal(workbench.resultShown, timeout=300_000) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    result = blocker.args[0]
    assert result.sql.startswith("SELECT level")  # the statement under the cursor only
    model = workbench.results.model
    assert model.columnCount() == 2 and model.rowCount() == 3
    cells = [[model.index(r, c).data() for c in range(2)] for r in range(3)]
    assert cells == [["ERROR", "2"], ["INFO", "3"], ["WARN", "2"]]
    assert "3 rows" in workbench.results.status.text()
    assert workbench.service.history.search("GROUP BY level")[0].status == "ok"


def test_autocompletion_offers_logs_columns(qtbot, workbench):
    editor = workbench.editor()
    editor.set_text("SELECT lat")
    editor.set_cursor_position(len("SELECT lat"))
    assert "latency_ms" in editor.show_completions()
    assert editor.autoCActive()
    editor.autoCCancel()
    editor.set_text("SELECT * FROM lo")
    editor.set_cursor_position(len("SELECT * FROM lo"))
    assert "logs" in editor.show_completions()
    editor.autoCCancel()
    cols = {c.strip().split(" ")[0] for c in LOGS_DDL.split(",")}
    editor.set_text("")
    assert cols <= set(editor.completion_candidates(""))


def test_error_is_marked_in_editor(qtbot, workbench):
    editor = workbench.editor()
    editor.set_text("SELECT 1;\nSELECT level,\n  nope FROM logs")
    with qtbot.waitSignal(workbench.errorShown, timeout=300_000) as blocker:
        workbench.run_all()
    err = blocker.args[0]
    assert (err.line, err.column) == (3, 3)
    start, end = editor.error_marked()
    assert editor.text()[start:end] == "nope"
    assert "nope" in workbench.results.messages.toPlainText()


def test_refused_write_is_reported(qtbot, workbench):
    with qtbot.waitSignal(workbench.errorShown, timeout=300_000) as blocker:
        workbench.open_query("DROP TABLE logs", run=True)
    assert isinstance(blocker.args[0], RefusedError)
    assert workbench.status.text().startswith("Refused: refused: DROP")


def test_builder_writes_sql_and_runs_it(qtbot, workbench):
    b = workbench.builder
    b.table.setCurrentText("logs")
    b.set_checked("group_by", ["level"])
    b.add_aggregate("count")
    b.add_filter("status", ">=", "203")
    b.order_column.setCurrentText("level")
    with qtbot.waitSignal(workbench.resultShown, timeout=300_000):
        b.emit_sql(run=True)
    assert workbench.editor().text().startswith("SELECT `level`, count(*) AS `count_all`")
    model = workbench.results.model
    assert [[model.index(r, c).data() for c in range(2)] for r in range(model.rowCount())] == [
        ["ERROR", "1"], ["INFO", "2"], ["WARN", "1"]]


def test_toggle_comment(qtbot, workbench):
    editor = workbench.editor()
    editor.set_text("SELECT 1\nFROM logs")
    editor.setSel(0, editor.length())
    qtbot.keyClick(editor, Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)
    assert editor.text() == "-- SELECT 1\n-- FROM logs"
    editor.setSel(0, editor.length())
    editor.toggle_comment()
    assert editor.text() == "SELECT 1\nFROM logs"


def test_builder_says_percentiles_are_approximate(qtbot):
    from desktop_app.sql.builder_panel import BuilderPanel
    from pipeline.sql.catalog import Column
    from pipeline.sql.query_builder import KLL_K, kll_rank_error

    panel = BuilderPanel()
    qtbot.addWidget(panel)
    panel.set_catalog({"logs": [Column("endpoint", "string"), Column("latency_ms", "double")]})
    err = f"±{kll_rank_error() * 100:.2g} %"
    assert err in panel.aggregates.horizontalHeaderItem(2).toolTip()
    panel.add_aggregate("count")
    assert panel.percentile_note.isHidden()
    panel.add_aggregate("avg", "latency_ms")
    panel.aggregates.cellWidget(1, 0).setCurrentText("percentile")  # the user picks it
    assert not panel.percentile_note.isHidden()
    assert "approximate" in panel.percentile_note.text() and err in panel.percentile_note.text()
    assert f"k = {KLL_K}" in panel.percentile_note.text()
    panel.aggregates.cellWidget(1, 2).setText("0.99")
    sql, _ = panel.build()
    assert "kll_sketch_get_quantile_double(" in sql and "AS `p99_latency_ms`" in sql
    panel.aggregates.cellWidget(1, 0).setCurrentText("max")
    assert panel.percentile_note.isHidden()
    panel.add_aggregate("percentile", "latency_ms")  # p50 by default
    assert not panel.percentile_note.isHidden()
    assert "AS `p50_latency_ms`" in panel.build()[0]
    panel.table.currentTextChanged.emit("logs")  # a new table clears the aggregates
    assert panel.percentile_note.isHidden()
