"""Query history (searchable, re-runnable) and saved queries."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pipeline.sql.history import QueryHistory


class HistoryPanel(QWidget):
    openQuery = Signal(str, bool)  # sql, run

    def __init__(self, history: QueryHistory, parent=None) -> None:
        super().__init__(parent)
        self.store = history
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search history…")
        self.search.textChanged.connect(self.reload)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["When", "Status", "Rows", "SQL"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._open(r, False))
        rerun = QPushButton("Run again")
        rerun.clicked.connect(lambda: self._open(self.table.currentRow(), True))
        open_button = QPushButton("Open")
        open_button.clicked.connect(lambda: self._open(self.table.currentRow(), False))
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(rerun)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._items = []
        self.reload()

    def reload(self) -> None:
        self._items = self.store.search(self.search.text(), limit=500)
        self.table.setRowCount(len(self._items))
        for r, item in enumerate(self._items):
            when = datetime.fromtimestamp(item.ts).strftime("%m-%d %H:%M:%S")
            cells = (when, item.status, "" if item.rows is None else str(item.rows),
                     " ".join(item.sql.split()))
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if c == 3:
                    cell.setToolTip(item.sql if item.error is None
                                    else f"{item.sql}\n\n{item.error}")
                self.table.setItem(r, c, cell)

    def _open(self, row: int, run: bool) -> None:
        if 0 <= row < len(self._items):
            self.openQuery.emit(self._items[row].sql, run)


class SavedPanel(QWidget):
    openQuery = Signal(str, bool)

    def __init__(self, history: QueryHistory, current_sql, parent=None) -> None:
        super().__init__(parent)
        self.store = history
        self._current_sql = current_sql
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(lambda it: self.openQuery.emit(
            it.data(Qt.ItemDataRole.UserRole), False))
        save = QPushButton("Save current…")
        save.clicked.connect(self._save_dialog)
        delete = QPushButton("Delete")
        delete.clicked.connect(self._delete)
        buttons = QHBoxLayout()
        buttons.addWidget(save)
        buttons.addWidget(delete)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        self.list.clear()
        for q in self.store.saved():
            item = QListWidgetItem(q.name)
            item.setData(Qt.ItemDataRole.UserRole, q.sql)
            item.setToolTip(q.sql)
            self.list.addItem(item)

    def save(self, name: str, sql: str) -> None:
        self.store.save(name, sql)
        self.reload()

    def _save_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save query", "Name:")
        if ok and name.strip():
            self.save(name, self._current_sql())

    def _delete(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.store.delete_saved(item.text())
            self.reload()
