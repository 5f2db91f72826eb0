"""``ExportControls``: the Export menu, the export progress bar with its Cancel button, and
copying rows to the clipboard. The writing itself is ``export.export_rows`` /
``export.rows_as_tsv``, run on the thread pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QWidget,
)

from desktop_app.logstream.export import ExportResult, export_rows, rows_as_tsv
from desktop_app.logstream.ring import LogRing
from desktop_app.logstream.tasks import Task, TaskRunner


def describe_export(result: ExportResult) -> str:
    msg = f"Exported {result.written:,} rows to {result.path}"
    if result.evicted:
        msg += (f"; {result.evicted:,} rows had left the buffer before they could "
                "be written")
    return msg


class ExportControls(QWidget):
    """Exports ring rows (``view_seqs()`` or ``selected_seqs()`` from the menu, or any via
    ``export``) one at a time; ``finished(ExportResult)`` when written, ``failed(message)``."""

    finished = Signal(object)   # ExportResult
    failed = Signal(str)

    def __init__(self, ring: LogRing, tasks: TaskRunner,
                 view_seqs: Callable[[], np.ndarray],
                 selected_seqs: Callable[[], np.ndarray],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ring = ring
        self.tasks = tasks
        self._view_seqs = view_seqs
        self._selected_seqs = selected_seqs
        self._task: Task | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for scope in ("view", "selection"):
            for fmt in ("csv", "jsonl"):
                menu.addAction(f"{'Filtered view' if scope == 'view' else 'Selection'} as "
                               f"{fmt.upper()}…",
                               lambda s=scope, f=fmt: self._export_dialog(s, f))
        menu.addAction("Copy selection", lambda: self.copy(self._selected_seqs()))
        self.export_button.setMenu(menu)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.progress, self.cancel_button, self.export_button):
            row.addWidget(w)

    @property
    def running(self) -> bool:
        return self._task is not None

    def _export_dialog(self, scope: str, fmt: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export rows", str(Path.home() / f"lakewatch-logs.{fmt}"),
            "CSV (*.csv)" if fmt == "csv" else "JSON lines (*.jsonl)")
        if path:
            self.export(self._view_seqs() if scope == "view" else self._selected_seqs(),
                        path, fmt)

    def export(self, seqs: np.ndarray, path: str | Path, fmt: str) -> bool:
        """Write rows ``seqs`` to ``path`` on a worker; False if an export is running."""
        if self._task is not None:
            self.failed.emit("an export is already running")
            return False
        ring = self.ring
        self.progress.setRange(0, max(1, len(seqs)))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()

        def done(result: ExportResult) -> None:
            self._done()
            self.finished.emit(result)

        def failed(message: str) -> None:
            self._done()
            self.failed.emit(f"export failed: {message}")

        self._task = self.tasks.start(
            lambda progress, cancel: export_rows(ring, seqs, path, fmt, progress, cancel),
            on_done=done, on_error=failed,
            on_progress=lambda d, t: self.progress.setValue(d))
        return True

    def _done(self) -> None:
        self._task = None
        self.progress.hide()
        self.cancel_button.hide()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel.set()

    def copy(self, seqs: np.ndarray) -> None:
        """Rows ``seqs`` as tab-separated text to the clipboard (built on a worker)."""
        if not len(seqs):
            return
        ring = self.ring
        self.tasks.start(lambda _p, _c: rows_as_tsv(ring, seqs),
                         on_done=lambda text: QGuiApplication.clipboard().setText(text),
                         on_error=lambda message: self.failed.emit(message))
