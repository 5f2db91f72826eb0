"""The main window offscreen: tabs, charts from a real Delta table, anomalies, layout memory."""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from PySide6.QtCore import Qt

from desktop_app.dashboard.anomalies import anomaly_sql
from desktop_app.main_window import TABS, MainWindow
from desktop_app.ui_state import UiState
from pipeline import latency_hist, schemas

TS = pa.timestamp("us", tz="UTC")
HIST = pa.list_(pa.struct([("b", pa.int32()), ("n", pa.int64())]))


def _aligned_now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now - dt.timedelta(seconds=now.second % 10)


def _hist(i: int, requests: int) -> list[dict]:
    """Window i's latency histogram: p50 in 20 + i's bucket, p95 in 80 + 2i's, p99 in
    150 + 3i's (ranks ceil(q * requests))."""
    below_p50 = math.ceil(0.5 * requests)
    below_p95 = math.ceil(0.95 * requests) - below_p50
    counts = (below_p50, below_p95, requests - below_p50 - below_p95)
    buckets = latency_hist.bucket_of([20.0 + i, 80.0 + 2 * i, 150.0 + 3 * i])
    return [{"b": int(b), "n": n} for b, n in zip(buckets, counts, strict=True)]


def p95_of(i: int) -> float:
    """What the charts show for window i's p95: its bucket's value, within 1 % of 80 + 2i."""
    return float(latency_hist.bucket_value(latency_hist.bucket_of([80.0 + 2 * i])[0]))


def metrics_table(t0: dt.datetime, n: int, source: str, base: int,
                  provisional: int = 2) -> pa.Table:
    """``n`` 10 s partials of ``source`` from ``t0``; the watermark leaves the last
    ``provisional`` windows open."""
    starts = [t0 + dt.timedelta(seconds=10 * i) for i in range(n)]
    requests = [base + 10 * i for i in range(n)]
    hists = [_hist(i, r) for i, r in enumerate(requests)]
    quantiles = [latency_hist.quantiles([(h["b"], h["n"]) for h in hist]) for hist in hists]
    watermark = t0 + dt.timedelta(seconds=10 * (n - provisional))
    return pa.table({
        "window_start": pa.array(starts, TS),
        "window_end": pa.array([s + dt.timedelta(seconds=10) for s in starts], TS),
        "window_size": ["10s"] * n, "source": [source] * n, "endpoint": ["/api/items"] * n,
        "level": ["INFO"] * n,
        "requests": pa.array(requests, pa.int64()),
        "errors": pa.array([i for i in range(n)], pa.int64()),
        "error_rate": [i / (base + 10 * i) for i in range(n)],
        "latency_p50": [q[0] for q in quantiles],
        "latency_p95": [q[1] for q in quantiles],
        "latency_p99": [q[2] for q in quantiles],
        "bytes": pa.array([5000] * n, pa.int64()),
        "status_2xx": pa.array([base] * n, pa.int64()),
        "status_3xx": pa.array([0] * n, pa.int64()),
        "status_4xx": pa.array([10 * i for i in range(n)], pa.int64()),
        "status_5xx": pa.array([0] * n, pa.int64()),
        "status_404": pa.array([0] * n, pa.int64()),
        "latency_hist": pa.array(hists, HIST),
        "watermark": pa.array([watermark] * n, TS),
        "batch_id": pa.array([0] * n, pa.int64()),
    })


def anomalies_table(t0: dt.datetime) -> pa.Table:
    return pa.table({
        "anomaly_id": ["an-1"],
        "window_start": pa.array([t0 + dt.timedelta(seconds=20)], TS),
        "window_end": pa.array([t0 + dt.timedelta(seconds=30)], TS),
        "entity_type": ["source"], "entity": ["web-2"], "kind": ["error_burst"],
        "score": [8.5], "severity": ["high"], "detector": ["baseline"],
        "features": ['{"errors": {"expected": 1.0, "observed": 12.0, "z": 8.5}}'],
        "top_contributors": ['[{"field": "endpoint", "value": "/api/items", "share": 0.9}]'],
        "explanation": ["errors 12x the baseline on web-2"],
        "detected_at": pa.array([t0 + dt.timedelta(seconds=35)], TS),
    })


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_window_shows_all_tabs(window):
    tabs = window.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == list(TABS)
    for i in range(tabs.count()):
        if tabs.widget(i) is window.sql and window.sql_ok:
            continue  # showing it starts the process's SparkSession: the SQL tests cover that
        tabs.setCurrentIndex(i)
        assert tabs.currentWidget().isVisible()
    assert window.logstream_ok, "the log stream failed to load"
    assert window.sql_ok, "the SQL workbench failed to load"
    names = set(window.actions_by_name)
    assert {"start_pipeline", "stop_pipeline", "focus_filter", "settings", "tab_1"} <= names
    assert window.actions_by_name["start_pipeline"].shortcut().toString() == "F5"
    window.actions_by_name["tab_5"].trigger()
    assert tabs.currentWidget() is window.health
    assert set(window.health.indicators) >= {"broker", "generator", "processor", "detector",
                                             "freshness", "lag"}


def test_charts_and_grid_load_exact_values(qtbot, window, settings):
    t0 = _aligned_now() - dt.timedelta(minutes=3)
    path = settings.table_path(schemas.TABLE_METRICS)
    write_deltalake(path, metrics_table(t0, 6, "web-1", 100))
    write_deltalake(path, metrics_table(t0, 6, "web-2", 300), mode="append")
    dash = window.dashboard
    try:
        qtbot.waitUntil(lambda: dash.bar_a.boxes["source"].count() == 3, timeout=30000)
    except Exception:
        print("dashboard:", dash.status.text(), dash.error, dash._busy, dash.worker.refreshes)
        import faulthandler
        import sys
        faulthandler.dump_traceback(sys.stdout, all_threads=True)
        raise
    dash.bar_a.boxes["source"].setCurrentText("web-1")
    expected_t = [t0.timestamp() + 10 * i for i in range(6)]

    def drawn():
        x, y = dash.charts.curve_data("throughput", "throughput")
        return list(x) == expected_t and list(y) == [10.0 + i for i in range(6)]

    qtbot.waitUntil(drawn, timeout=30000)
    _, p95 = dash.charts.curve_data("latency", "latency_p95")
    assert list(p95) == [p95_of(i) for i in range(6)]
    assert np.allclose(p95, [80.0 + 2 * i for i in range(6)], rtol=0.01)
    # the watermark leaves the last two windows open: drawn as the provisional tail
    assert list(dash.charts.provisional_data("throughput", "throughput")[0]) == expected_t[4:]
    assert dash.snapshot["series"][0]["provisional"].tolist() == [False] * 4 + [True] * 2
    assert "6 windows of 10s, 2 provisional" in dash.status.text()
    _, err = dash.charts.curve_data("error_rate", "error_rate")
    assert np.allclose(err, [100 * i / (100 + 10 * i) for i in range(6)])
    _, s4 = dash.charts.curve_data("status", "status_4xx")
    assert list(s4) == [10.0 * i for i in range(6)]

    # compare: web-2 dashed on the same chart
    dash.compare.setChecked(True)
    dash.bar_b.boxes["source"].setCurrentText("web-2")
    qtbot.waitUntil(lambda: list(dash.charts.curve_data("throughput", "throughput", 1)[1])
                    == [30.0 + i for i in range(6)], timeout=30000)
    # grid: last minute of web-1 windows (6 windows = 60 s)
    grid_a = dash.snapshot["grid"][0]
    assert grid_a["events_per_s"] == pytest.approx(sum(100 + 10 * i for i in range(6)) / 60)
    assert "|" in dash.grid.text("events_per_s")
    assert dash.grid.text("rows_in_logs") == "0"


def test_incremental_refresh_in_the_window(qtbot, window, settings):
    t0 = _aligned_now() - dt.timedelta(minutes=3)
    path = settings.table_path(schemas.TABLE_METRICS)
    write_deltalake(path, metrics_table(t0, 4, "web-1", 100))
    dash = window.dashboard
    qtbot.waitUntil(lambda: dash.worker.metrics.reader.rows_read == 4, timeout=30000)
    refreshes = dash.worker.refreshes
    qtbot.waitUntil(lambda: dash.worker.refreshes >= refreshes + 2, timeout=30000)
    assert dash.worker.metrics.reader.rows_read == 4  # no rescans while nothing changed
    write_deltalake(path, metrics_table(t0 + dt.timedelta(seconds=40), 2, "web-1", 500),
                    mode="append")
    qtbot.waitUntil(lambda: dash.worker.metrics.reader.rows_read == 6, timeout=30000)
    qtbot.waitUntil(lambda: len(dash.charts.curve_data("throughput", "throughput")[0]) == 6,
                    timeout=30000)
    assert dash.worker.metrics.reader.files_read == 2


def test_anomaly_click_focuses_charts_and_open_in_sql(qtbot, window, settings):
    t0 = _aligned_now() - dt.timedelta(minutes=3)
    write_deltalake(settings.table_path(schemas.TABLE_METRICS), metrics_table(t0, 6, "web-2", 300))
    write_deltalake(settings.table_path(schemas.TABLE_ANOMALIES), anomalies_table(t0))
    lst = window.anomalies
    qtbot.waitUntil(lambda: lst.table.rowCount() == 1, timeout=30000)
    assert lst.table.item(0, 2).text() == "error_burst"
    assert lst.table.item(0, 5).text() == "errors 12x the baseline on web-2"
    start = t0.timestamp() + 20
    qtbot.waitUntil(lambda: window.dashboard.charts.visible_regions() == [(start, start + 10)],
                    timeout=30000)
    lst.select_row(0)
    assert "observed" in lst.detail.toPlainText()
    dash = window.dashboard
    assert dash.bar_a.selection().source == "web-2"
    assert not dash.live_button.isChecked()
    assert dash.end_ms is not None and dash.end_ms > (start + 10) * 1000
    sql = anomaly_sql(lst.records[0])
    assert "source = 'web-2'" in sql and "FROM logs" in sql
    with qtbot.waitSignal(lst.openInSql, timeout=1000) as blocker:
        lst.sql_button.click()
    assert blocker.args == [sql]


def test_layout_is_remembered(qtbot, settings):
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.show()
    first.resize(780, 700)
    size = (first.width(), first.height())
    first.tabs.setCurrentIndex(3)
    first.dashboard.set_range(3600)
    first.close()
    state = UiState.for_settings(settings)
    assert state.get("tab") == 3
    second = MainWindow(settings)
    qtbot.addWidget(second)
    second.show()
    try:
        assert second.tabs.currentIndex() == 3
        assert (second.width(), second.height()) == size
        assert size[1] == 700
        assert second.dashboard.range_box.currentData() == 3600
    finally:
        second.close()


def test_close_stops_what_the_app_started(qtbot, kafka_settings):
    settings = kafka_settings  # the generator starts only once the broker answers
    import sys

    import psutil

    win = MainWindow(settings)
    qtbot.addWidget(win)
    controller = win.health.controller
    proc = controller.register("generator", [sys.executable, "-c", "import time; time.sleep(60)"])
    controller.start("generator")
    qtbot.waitUntil(lambda: proc.pid() > 0, timeout=5000)
    pid = proc.pid()
    began = time.monotonic()
    win.close()
    assert time.monotonic() - began < 10
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_keep_pipeline_running_leaves_components(qtbot, kafka_settings):
    settings = kafka_settings  # the generator starts only once the broker answers
    import sys

    import psutil

    settings.app.keep_pipeline_running = True
    win = MainWindow(settings)
    qtbot.addWidget(win)
    controller = win.health.controller
    proc = controller.register("generator", [sys.executable, "-c", "import time; time.sleep(60)"])
    controller.start("generator")
    qtbot.waitUntil(lambda: proc.pid() > 0, timeout=5000)
    pid = proc.pid()
    win.close()
    try:
        assert psutil.Process(pid).is_running()
    finally:
        psutil.Process(pid).kill()


def test_theme_toggle(qtbot, window):
    from PySide6.QtWidgets import QApplication

    from desktop_app.theme import current_theme

    assert current_theme(QApplication.instance()) == "dark"
    window.toggle_theme()
    assert current_theme(QApplication.instance()) == "light"
    assert window.dashboard.charts.backgroundBrush().color().name() == "#ffffff"
    window.toggle_theme()
    assert window.windowTitle() == "Lakewatch"
    assert window.testAttribute(Qt.WidgetAttribute.WA_WState_Created)


def test_shortcuts_switch_tabs_and_focus_filter(qtbot, window):
    from PySide6.QtTest import QTest

    window.activateWindow()
    window.tabs.setCurrentIndex(0)
    QTest.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 2
    window.tabs.setCurrentIndex(0)
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.logstream
