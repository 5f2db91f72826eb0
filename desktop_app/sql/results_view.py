"""The results area: the virtualized grid, status line, export, quick chart and EXPLAIN."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sql.chart import ChartPanel
from desktop_app.sql.export import EXPORT_FORMATS
from desktop_app.sql.results_model import ResultModel
from pipeline.sql.engine import QueryResult


class ResultsView(QWidget):
    exportRequested = Signal(object, str)  # path, format

    def __init__(self, parent=None, max_cell_chars: int = 512) -> None:
        super().__init__(parent)
        self.model = ResultModel(self, max_cell_chars=max_cell_chars)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.status = QLabel("No result yet")
        self.export_buttons = {}
        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        for fmt in EXPORT_FORMATS:
            button = QPushButton(f"Export {fmt.upper()}")
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, f=fmt: self._ask_export(f))
            bar.addWidget(button)
            self.export_buttons[fmt] = button
        grid = QWidget()
        grid_layout = QVBoxLayout(grid)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addWidget(self.table, 1)
        grid_layout.addLayout(bar)
        self.chart = ChartPanel()
        self.explain_text = QPlainTextEdit()
        self.explain_text.setReadOnly(True)
        self.explain_text.setFont(QFont("Monospace"))
        self.messages = QPlainTextEdit()
        self.messages.setReadOnly(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(grid, "Results")
        self.tabs.addTab(self.chart, "Chart")
        self.tabs.addTab(self.explain_text, "Explain")
        self.tabs.addTab(self.messages, "Messages")
        self.tabs.currentChanged.connect(self._on_tab)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def show_result(self, result: QueryResult) -> None:
        self.model.set_result(result)
        for button in self.export_buttons.values():
            button.setEnabled(True)
        self.tabs.setCurrentIndex(0)
        self.update_status()

    def update_status(self, extra: str = "") -> None:
        result = self.model.result
        if result is None:
            return
        shown = self.model.rowCount()
        more = "" if result.done else " (more on scroll)"
        cut = f" — cut at the row cap ({result.row_cap})" if result.truncated else ""
        self.status.setText(
            f"{shown} rows{more}{cut} · {len(result.columns)} columns · "
            f"{result.elapsed_s:.2f} s{extra}"
        )

    def show_message(self, text: str) -> None:
        self.messages.appendPlainText(text)

    def show_explain(self, text: str) -> None:
        self.explain_text.setPlainText(text)
        self.tabs.setCurrentWidget(self.explain_text)

    def _on_tab(self, index: int) -> None:
        if self.tabs.widget(index) is self.chart and self.model.result is not None:
            self.chart.set_data(self.model.columns, self.model.rows())

    def _ask_export(self, fmt: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export result", f"result.{fmt}",
                                              EXPORT_FORMATS[fmt])
        if path:
            self.exportRequested.emit(Path(path), fmt)
