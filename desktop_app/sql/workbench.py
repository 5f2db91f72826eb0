"""``SqlWorkbench``: the SQL tab of the main window.

Editor tabs over a results area, with the table browser, query builder, history and saved
queries on the side. Spark starts lazily on a worker thread when the tab is first shown
(or a query is opened); until then the editor works and runs are queued.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sql.builder_panel import BuilderPanel
from desktop_app.sql.history_panel import HistoryPanel, SavedPanel
from desktop_app.sql.results_view import ResultsView
from desktop_app.sql.scintilla_editor import SqlEditor
from desktop_app.sql.service import SqlService
from desktop_app.sql.table_browser import TableBrowser
from pipeline.settings import Settings
from pipeline.sql.engine import QueryResult
from pipeline.sql.errors import QueryCancelledError, RefusedError, SqlError
from pipeline.sql.progress import QueryProgress
from pipeline.sql.splitter import statement_at


class SqlWorkbench(QWidget):
    """The SQL editor tab. ``open_query(sql, run)`` is its public entry point."""

    resultShown = Signal(object)  # QueryResult
    errorShown = Signal(object)  # SqlError

    def __init__(self, settings: Settings, parent=None, service: SqlService | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.service = service or SqlService(settings, parent=self)
        self._pending: tuple[str, dict | None, int, str | None] | None = None
        self._running: str | None = None
        self._run_started = 0.0
        self._progress: QueryProgress | None = None
        self._builder_args: dict[int, tuple[str, dict]] = {}
        dark = settings.app.theme == "dark"
        self._dark = dark

        # toolbar
        self.run_button = QPushButton("Run statement (Ctrl+Enter)")
        self.run_sel_button = QPushButton("Run selection")
        self.run_all_button = QPushButton("Run all (Ctrl+Shift+Enter)")
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.explain_button = QPushButton("Explain")
        self.new_tab_button = QPushButton("New tab")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("Spark not started")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        bar = QHBoxLayout()
        for w in (self.run_button, self.run_sel_button, self.run_all_button, self.cancel_button,
                  self.explain_button, self.new_tab_button):
            bar.addWidget(w)
        bar.addWidget(self.progress)
        bar.addWidget(self.status, 1)

        # editors and results
        self.editors = QTabWidget()
        self.editors.setTabsClosable(True)
        self.editors.tabCloseRequested.connect(self._close_tab)
        self.results = ResultsView(max_cell_chars=settings.app.max_cell_chars)
        center = QSplitter(Qt.Orientation.Vertical)
        center.addWidget(self.editors)
        center.addWidget(self.results)
        center.setSizes([300, 400])

        # side panels
        self.browser = TableBrowser()
        self.builder = BuilderPanel()
        self.history_panel = HistoryPanel(self.service.history)
        self.saved_panel = SavedPanel(self.service.history, lambda: self.editor().text())
        self.side = QTabWidget()
        self.side.addTab(self.browser, "Tables")
        self.side.addTab(self.builder, "Builder")
        self.side.addTab(self.history_panel, "History")
        self.side.addTab(self.saved_panel, "Saved")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.side)
        split.addWidget(center)
        split.setSizes([300, 900])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

        self._elapsed = QTimer(self)
        self._elapsed.setInterval(100)
        self._elapsed.timeout.connect(self._tick)

        # wiring
        self.run_button.clicked.connect(self.run_statement)
        self.run_sel_button.clicked.connect(self.run_selection)
        self.run_all_button.clicked.connect(self.run_all)
        self.cancel_button.clicked.connect(self.cancel)
        self.explain_button.clicked.connect(self.explain)
        self.new_tab_button.clicked.connect(lambda: self.new_tab())
        s = self.service
        s.starting.connect(self._on_starting)
        s.ready.connect(self._on_ready)
        s.startFailed.connect(self._on_start_failed)
        s.queryFinished.connect(self._on_finished)
        s.queryFailed.connect(self._on_failed)
        s.pageFetched.connect(self._on_page)
        s.queryProgress.connect(self._on_progress)
        s.historyChanged.connect(self.history_panel.reload)
        self.results.model.fetchRequested.connect(self._fetch_more)
        self.results.exportRequested.connect(self.export)
        self.browser.tableSelected.connect(self._load_table_info)
        self.browser.insertText.connect(lambda t: self.editor().insert_at_cursor(t))
        self.browser.openQuery.connect(self.open_query)
        self.browser.refreshRequested.connect(self.service.refresh_catalog)
        self.builder.sqlReady.connect(self._from_builder)
        self.history_panel.openQuery.connect(self.open_query)
        self.saved_panel.openQuery.connect(self.open_query)
        self.new_tab("SELECT * FROM logs ORDER BY ts DESC LIMIT 100")

    # -- lifecycle -----------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        QTimer.singleShot(0, self.start)

    def start(self) -> None:
        """Start Spark in the background (no-op once started)."""
        self.service.start()

    def _on_starting(self) -> None:
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText("Starting Spark…")

    def _on_ready(self, catalog: dict) -> None:
        self.progress.hide()
        self.status.setText(f"Ready · {len(catalog)} tables")
        self.browser.set_catalog(catalog)
        self.builder.set_catalog(catalog)
        columns = {c.name for cols in catalog.values() for c in cols}
        for i in range(self.editors.count()):
            self.editors.widget(i).set_completions(catalog, columns)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._submit(*pending)

    def _on_start_failed(self, message: str) -> None:
        self.progress.hide()
        self.status.setText(message)
        self.results.show_message(message)
        self._set_running(None)

    # -- editors -------------------------------------------------------------------------
    def editor(self) -> SqlEditor:
        return self.editors.currentWidget()

    def new_tab(self, sql: str = "", title: str | None = None) -> SqlEditor:
        editor = SqlEditor(dark=self._dark)
        editor.set_text(sql)
        editor.runStatementRequested.connect(self.run_statement)
        editor.runAllRequested.connect(self.run_all)
        editor.cancelRequested.connect(self.cancel)
        catalog = self.service.catalog
        editor.set_completions(catalog, {c.name for cols in catalog.values() for c in cols})
        index = self.editors.addTab(editor, title or f"Query {self.editors.count() + 1}")
        self.editors.setCurrentIndex(index)
        return editor

    def _close_tab(self, index: int) -> None:
        if self.editors.count() > 1:
            widget = self.editors.widget(index)
            self.editors.removeTab(index)
            widget.deleteLater()

    def open_query(self, sql: str, run: bool = False) -> None:
        """Put ``sql`` in a new editor tab (reusing an empty current one); run it if asked."""
        editor = self.editor()
        if editor is None or editor.text().strip():
            editor = self.new_tab(sql)
        else:
            editor.set_text(sql)
        QWidget.setFocus(editor)
        if run:
            self.run_all()
        else:
            self.start()

    def _from_builder(self, sql: str, args: dict, run: bool) -> None:
        editor = self.editor()
        editor.set_text(sql)
        self._builder_args[id(editor)] = (sql, args)
        if run:
            self.run_all()

    def _args_for(self, editor: SqlEditor, sql: str) -> dict | None:
        remembered = self._builder_args.get(id(editor))
        if remembered and remembered[0].strip() == sql.strip():
            return remembered[1]
        return None

    # -- running -------------------------------------------------------------------------
    def run_statement(self) -> None:
        editor = self.editor()
        text = editor.text()
        if editor.selected_text().strip():
            self.run_selection()
            return
        stmt = statement_at(text, editor.cursor_position())
        if stmt is not None:
            self._submit(stmt.text, self._args_for(editor, text), stmt.start, text)

    def run_selection(self) -> None:
        editor = self.editor()
        start, end = editor.selection_range()
        if end > start:
            text = editor.text()
            self._submit(text[start:end], None, start, text)
        else:
            self.run_statement()

    def run_all(self) -> None:
        editor = self.editor()
        text = editor.text()
        self._submit(text, self._args_for(editor, text), 0, text)

    def _submit(self, sql: str, args: dict | None, offset: int, full: str | None) -> None:
        if self._running is not None:
            self.status.setText("A query is already running (Esc cancels it)")
            return
        self.editor().clear_error()
        if not self.service.is_ready:
            self._pending = (sql, args, offset, full)
            self.status.setText("Waiting for Spark to start…")
            self.start()
            return
        self._set_running(self.service.run(sql, args, offset, full))

    def cancel(self) -> None:
        if self._running is not None:
            self.status.setText("Cancelling…")
            self.service.cancel()
        elif self._pending is not None:
            self._pending = None
            self.status.setText("Cancelled before Spark was ready")

    def _set_running(self, query_id: str | None) -> None:
        self._running = query_id
        busy = query_id is not None
        self.cancel_button.setEnabled(busy)
        for b in (self.run_button, self.run_sel_button, self.run_all_button):
            b.setEnabled(not busy)
        self._progress = None
        if busy:
            self._run_started = time.monotonic()
            self._elapsed.start()
            self.progress.setRange(0, 0)  # nothing known yet
            self.progress.show()
        else:
            self._elapsed.stop()
            self.progress.hide()

    def _tick(self) -> None:
        label = self._progress.label() if self._progress is not None else ""
        self.status.setText(f"Running… {time.monotonic() - self._run_started:.1f} s"
                            + (f" · {label}" if label else ""))

    def _on_progress(self, query_id: str, progress: QueryProgress) -> None:
        """Stages and tasks of the running statement; an indeterminate bar until Spark
        has scheduled its tasks."""
        if query_id != self._running:
            return
        self._progress = progress
        self._tick()
        if not progress.known:
            self.progress.setRange(0, 0)
            return
        self.progress.setRange(0, progress.tasks_total)
        self.progress.setValue(progress.tasks_done)
        self.progress.setFormat(progress.label())
        self.progress.setToolTip(f"{progress.tasks_running} tasks running · "
                                 f"{progress.elapsed_s:.1f} s")

    def _on_finished(self, query_id: str, result: QueryResult) -> None:
        if query_id != self._running:
            return
        self._set_running(None)
        previous = self.results.model.result
        if previous is not None and not previous.done:
            self.service.submit(previous.close)  # frees its Spark side, off the GUI thread
        self._result_id = query_id
        self.results.show_result(result)
        self.status.setText(f"{result.row_count} rows{'' if result.done else '+'} in "
                            f"{result.elapsed_s:.2f} s")
        self.resultShown.emit(result)

    def _on_failed(self, query_id: str, err: SqlError) -> None:
        if query_id == getattr(self, "_result_id", None):  # a page fetch failed
            self.results.model.fetch_failed()
            self.results.show_message(f"fetch failed: {err}")
            return
        if query_id != self._running:
            return
        self._set_running(None)
        kind = ("Refused" if isinstance(err, RefusedError) else
                "Cancelled" if isinstance(err, QueryCancelledError) else "Error")
        self.status.setText(f"{kind}: {err.message.splitlines()[0][:200]}")
        self.results.show_message(str(err))
        self.results.tabs.setCurrentWidget(self.results.messages)
        if err.line is not None and not isinstance(err, QueryCancelledError):
            self.editor().mark_error(err.line, err.column, err.message.splitlines()[0])
        self.errorShown.emit(err)

    def _fetch_more(self, n: int) -> None:
        result = self.results.model.result
        if result is not None:
            self.service.fetch_more(getattr(self, "_result_id", ""), result, n)

    def _on_page(self, query_id: str, rows: list) -> None:
        if query_id == getattr(self, "_result_id", None):
            self.results.model.append_rows(rows)
            self.results.update_status()

    # -- other actions -------------------------------------------------------------------
    def explain(self) -> None:
        editor = self.editor()
        text = editor.text()
        stmt = statement_at(text, editor.cursor_position())
        if stmt is None or not self.service.is_ready:
            self.start()
            return
        self.status.setText("Explaining…")
        self.service.explain(
            stmt.text,
            lambda plan: (self.results.show_explain(plan), self.status.setText("Plan shown")),
            lambda err: self.results.show_message(f"EXPLAIN failed: {err}"),
        )

    def export(self, path: Any, fmt: str) -> None:
        result = self.results.model.result
        if result is None:
            return
        self.status.setText(f"Exporting to {path}…")
        self.service.export(
            result, path, fmt,
            lambda n: self._exported(path, n),
            lambda err: self.status.setText(f"Export failed: {err}"),
        )

    def _exported(self, path: Any, n: int) -> None:
        model = self.results.model
        extra = model.result.rows[model.rowCount():] if model.result else []
        model.append_rows(list(extra))
        self.results.update_status()
        self.status.setText(f"Exported {n} rows to {path}")

    def _load_table_info(self, name: str) -> None:
        if not self.service.is_ready:
            return
        self.service.table_info(
            name,
            lambda pair: self.browser.show_info(*pair),
            lambda err: self.browser.show_error(str(err)),
        )
