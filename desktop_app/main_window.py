"""The main window: Dashboard, Live logs, SQL, Anomalies and Health tabs, a toolbar, keyboard
shortcuts, the health summary in the status bar, and remembered layout.

The log stream and the SQL workbench are built by their own packages; they are imported
guarded so the window still works (with a placeholder saying why) when either fails to load.
Closing the window stops what the app started unless ``app.keep_pipeline_running`` is set.
"""

from __future__ import annotations

import html
import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app import theme
from desktop_app.dashboard.anomalies import AnomalyList, anomaly_filter
from desktop_app.dashboard.metrics_store import Selection
from desktop_app.dashboard.widget import DashboardWidget
from desktop_app.health.controller import PipelineController
from desktop_app.health.panel import COLORS, HealthPanel
from desktop_app.resources import resource_path
from desktop_app.ui_state import UiState
from pipeline.settings import Settings

log = logging.getLogger(__name__)

TABS = ("Dashboard", "Live logs", "SQL", "Anomalies", "Health")
RUN_QUERY_KEYS = ("Ctrl+Return", "Ctrl+Enter")


def _placeholder(what: str, error: str) -> QWidget:
    widget = QWidget()
    widget.setObjectName("placeholder")
    layout = QVBoxLayout(widget)
    label = QLabel(f"<h3>{html.escape(what)} is not available</h3>"
                   f"<pre>{html.escape(error)}</pre>")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    return widget


def _binds(widget: QWidget, keys: list[QKeySequence]) -> bool:
    """Does ``widget`` (or a child) bind any of ``keys`` with its own shortcut or action?"""
    wanted = {k.toString() for k in keys if not k.isEmpty()}
    bound = {s.key().toString() for s in widget.findChildren(QShortcut)}
    for act in [*widget.actions(), *widget.findChildren(QAction)]:
        bound.update(s.toString() for s in act.shortcuts())
    return bool(wanted & bound)


def _guarded(what: str, build: Callable[[], QWidget]) -> tuple[QWidget, bool]:
    """Build an embedded tab; on any failure a placeholder naming the error instead."""
    try:
        return build(), True
    except Exception as exc:  # noqa: BLE001 - another package's failure must not kill the window
        log.warning("%s unavailable: %s", what, exc)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _placeholder(what, detail), False


def _build_logstream(settings: Settings) -> QWidget:
    from desktop_app.logstream import LogStreamWidget

    return LogStreamWidget(settings)


def _build_sql(settings: Settings) -> QWidget:
    from desktop_app.sql import SqlWorkbench

    return SqlWorkbench(settings)


class MainWindow(QMainWindow):
    settingsChanged = Signal(object)

    def __init__(self, settings: Settings, controller: PipelineController | None = None,
                 ui_state: UiState | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.ui_state = ui_state or UiState.for_settings(settings)
        self.setWindowTitle("Lakewatch")
        self.setObjectName("MainWindow")
        try:
            self.setWindowIcon(QIcon(str(resource_path("lakewatch.svg"))))
        except FileNotFoundError:
            log.warning("application icon missing")

        self.dashboard = DashboardWidget(settings)
        self.logstream, self.logstream_ok = _guarded("Live logs",
                                                     lambda: _build_logstream(settings))
        self.sql, self.sql_ok = _guarded("SQL workbench", lambda: _build_sql(settings))
        self.anomalies = AnomalyList()
        self.health = HealthPanel(settings, controller)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        for title, widget in zip(TABS, (self.dashboard, self.logstream, self.sql,
                                        self.anomalies, self.health), strict=True):
            self.tabs.addTab(widget, title)
        # An explicit minimum stops one tab's long unwrapped label from pushing the window
        # wider than the screen (that tab gets clipped instead).
        self.tabs.setMinimumSize(640, 420)
        self.setCentralWidget(self.tabs)

        self.health_summary = QLabel()
        self.health_summary.setObjectName("healthSummary")
        self.health_summary.setTextFormat(Qt.TextFormat.RichText)
        self.statusBar().addPermanentWidget(self.health_summary)

        self.dashboard.snapshotReady.connect(
            lambda snap: self.anomalies.set_records(snap.get("anomalies", [])))
        self.anomalies.anomalySelected.connect(self.focus_anomaly)
        self.anomalies.openInSql.connect(self.open_in_sql)
        self.health.verdictsChanged.connect(self._show_health)
        if self.logstream_ok and hasattr(self.logstream, "open_in_sql"):
            self.logstream.open_in_sql.connect(self.open_in_sql)

        self._build_actions()
        self.restore_layout()
        self.apply_theme(settings.app.theme)

    # -- actions and shortcuts ---------------------------------------------------------
    def _build_actions(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        self.addToolBar(toolbar)
        self.actions_by_name: dict[str, QAction] = {}

        def action(name: str, text: str, keys: str | tuple[str, ...] | None,
                   slot: Callable[[], Any], in_toolbar: bool = True) -> QAction:
            act = QAction(text, self)
            act.setObjectName(name)
            if keys:
                seqs = [QKeySequence(k) for k in ((keys,) if isinstance(keys, str) else keys)]
                act.setShortcuts(seqs)
                act.setToolTip(f"{text} ({seqs[0].toString()})")
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            if in_toolbar:
                toolbar.addAction(act)
            self.actions_by_name[name] = act
            return act

        action("start_pipeline", "Start pipeline", "F5", self.health.start_all)
        action("stop_pipeline", "Stop pipeline", "Shift+F5", self.health.stop_all)
        toolbar.addSeparator()
        focus = action("focus_filter", "Filter logs", "Ctrl+F", self.focus_filter)
        run = action("run_query", "Run query", RUN_QUERY_KEYS, self.run_query)
        # A tab may bind the same keys itself; two active bindings cancel each other, so the
        # window's action steps aside while that tab is showing.
        self._yield_to = [(act, tab, act.shortcuts())
                          for act, tab in ((focus, self.logstream), (run, self.sql))
                          if _binds(tab, act.shortcuts())]
        self.tabs.currentChanged.connect(self._update_shortcut_owners)
        self._update_shortcut_owners()
        toolbar.addSeparator()
        action("settings", "Settings…", QKeySequence(QKeySequence.StandardKey.Preferences)
               .toString() or "Ctrl+,", self.edit_settings)
        action("toggle_theme", "Dark/light", "Ctrl+Shift+T", self.toggle_theme)
        action("quit", "Quit", "Ctrl+Q", self.close, in_toolbar=False)
        for index, title in enumerate(TABS, start=1):
            action(f"tab_{index}", title, f"Ctrl+{index}",
                   lambda *_a, i=index - 1: self.tabs.setCurrentIndex(i), in_toolbar=False)

    def _update_shortcut_owners(self, *_args: object) -> None:
        current = self.tabs.currentWidget()
        for act, tab, keys in self._yield_to:
            act.setShortcuts([] if current is tab else keys)

    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.logstream)
        focus = getattr(self.logstream, "focus_filter", None)
        if callable(focus):
            focus()
        else:
            self.logstream.setFocus()

    def run_query(self) -> None:
        self.tabs.setCurrentWidget(self.sql)
        for name in ("run_statement", "run_query", "run"):
            run = getattr(self.sql, name, None)
            if callable(run):
                run()
                return

    # -- cross-tab links ---------------------------------------------------------------
    def focus_anomaly(self, record: dict[str, Any]) -> None:
        """Filter the log stream and the charts to the anomaly's window and entity."""
        args = anomaly_filter(record)
        self.dashboard.focus(Selection(args["source"], args["endpoint"], args["level"]),
                             args["start_ms"], args["end_ms"])
        apply = getattr(self.logstream, "apply_filter", None)
        if callable(apply):
            apply(**args)

    def open_in_sql(self, sql: str) -> None:
        opener = getattr(self.sql, "open_query", None)
        if callable(opener):
            self.tabs.setCurrentWidget(self.sql)
            try:
                opener(sql, run=False)
                return
            except Exception as exc:  # noqa: BLE001 - the query must not be lost
                log.exception("SqlWorkbench.open_query failed")
                problem = f"SQL workbench failed ({exc})"
        else:
            problem = "SQL workbench unavailable"
        QApplication.clipboard().setText(sql)
        self.statusBar().showMessage(f"{problem}: query copied to the clipboard", 15000)

    def _show_health(self, verdicts: dict[str, tuple[str, str]]) -> None:
        parts = []
        for name, (state, reason) in verdicts.items():
            parts.append(f"<span style='color:{COLORS[state]}' title='{html.escape(reason)}'>"
                         f"●</span>&nbsp;{html.escape(name)}")
        self.health_summary.setText("&nbsp;&nbsp;".join(parts))
        self.health_summary.setToolTip("\n".join(f"{n}: {s} — {r}"
                                                 for n, (s, r) in verdicts.items()))

    # -- settings and theme ------------------------------------------------------------
    def edit_settings(self) -> None:
        from desktop_app.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, parent=self)
        if dialog.exec() and dialog.result_settings is not None:
            old, self.settings = self.settings, dialog.result_settings
            if old.app.theme != self.settings.app.theme:
                self.apply_theme(self.settings.app.theme)
            self.settingsChanged.emit(self.settings)
            self.statusBar().showMessage(
                f"Settings saved to {dialog.saved_to}; Kafka, storage and Spark changes take "
                "effect when the app and pipeline restart", 10000)

    def apply_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, name)
        self.dashboard.apply_theme(name == "dark")
        self.theme_name = name

    def toggle_theme(self) -> None:
        self.apply_theme("light" if getattr(self, "theme_name", "dark") == "dark" else "dark")

    # -- layout memory -----------------------------------------------------------------
    def restore_layout(self) -> None:
        geometry = self.ui_state.get_bytes("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        state = self.ui_state.get_bytes("window_state")
        if state is not None:
            self.restoreState(state)
        tab = self.ui_state.get("tab")
        if isinstance(tab, int) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)
        seconds = self.ui_state.get("dashboard_range_s")
        if isinstance(seconds, int):
            self.dashboard.set_range(seconds)

    def save_layout(self) -> None:
        self.ui_state.set_bytes("geometry", bytes(self.saveGeometry().data()))
        self.ui_state.set_bytes("window_state", bytes(self.saveState().data()))
        self.ui_state.set("tab", self.tabs.currentIndex())
        self.ui_state.set("dashboard_range_s", int(self.dashboard.range_box.currentData()))
        try:
            self.ui_state.save()
        except OSError as exc:
            log.warning("cannot save the window layout: %s", exc)

    # -- shutdown ----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        keep = self.settings.app.keep_pipeline_running
        if not keep and self.health.controller.any_running():
            self.statusBar().showMessage("Stopping the pipeline…")
            QApplication.processEvents()
        self.save_layout()
        self.dashboard.shutdown()
        self.health.shutdown(stop_components=not keep)
        for widget in (self.logstream, self.sql):
            stop = getattr(widget, "shutdown", None)
            if callable(stop):
                try:
                    stop()
                except Exception as exc:  # noqa: BLE001 - keep closing
                    log.warning("%s.shutdown failed: %s", type(widget).__name__, exc)
        event.accept()


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    QTimer.singleShot(0, lambda: QMessageBox.critical(parent, title, text))
