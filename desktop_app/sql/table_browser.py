"""The table browser: tables and columns, and for the selected table its row count, size,
files and last compaction, partitioning and Delta history with a time-travel action."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pipeline.sql.table_info import (
    HISTORY_SCAN,
    Compaction,
    HistoryEntry,
    TableInfo,
    quote_ident,
    time_travel_sql,
)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def compaction_text(c: Compaction | None) -> str:
    """When the table was last compacted and how many files that merged."""
    if c is None:
        return f"not in the last {HISTORY_SCAN} commits"
    when = c.timestamp.strftime("%Y-%m-%d %H:%M:%S") if c.timestamp else "?"
    removed = "?" if c.files_removed is None else f"{c.files_removed:,}"
    added = "?" if c.files_added is None else f"{c.files_added:,}"
    return f"{when} (version {c.version}): {removed} → {added} files"


class TableBrowser(QWidget):
    tableSelected = Signal(str)
    insertText = Signal(str)
    openQuery = Signal(str, bool)  # sql, run
    refreshRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Table / column", "Type"])
        self.tree.itemSelectionChanged.connect(self._on_select)
        self.tree.itemDoubleClicked.connect(self._on_double)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refreshRequested)
        self.info_labels = {k: QLabel("–") for k in
                            ("rows", "size", "files", "compacted", "partitions", "version",
                             "location")}
        self.info_labels["compacted"].setWordWrap(True)
        self.info_labels["location"].setWordWrap(True)
        form = QFormLayout()
        for key, label in self.info_labels.items():
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(key.capitalize(), label)
        self.history = QTableWidget(0, 3)
        self.history.setHorizontalHeaderLabels(["Version", "Time", "Operation"])
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.horizontalHeader().setStretchLastSection(True)
        self.travel_button = QPushButton("Query this version")
        self.travel_button.clicked.connect(self._time_travel)
        self.select_button = QPushButton("SELECT * (first 1000)")
        self.select_button.clicked.connect(self._select_top)
        details = QWidget()
        dl = QVBoxLayout(details)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addLayout(form)
        dl.addWidget(self.select_button)
        dl.addWidget(QLabel("History"))
        dl.addWidget(self.history, 1)
        dl.addWidget(self.travel_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(details)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.refresh_button)
        layout.addWidget(split, 1)
        self._current: str | None = None
        self._entries: list[HistoryEntry] = []

    def set_catalog(self, catalog: dict) -> None:
        self.tree.clear()
        for name in sorted(catalog):
            item = QTreeWidgetItem([name, "table"])
            item.setData(0, Qt.ItemDataRole.UserRole, name)
            for col in catalog[name]:
                child = QTreeWidgetItem([col.name, col.type])
                child.setData(0, Qt.ItemDataRole.UserRole, None)
                item.addChild(child)
            self.tree.addTopLevelItem(item)

    def current_table(self) -> str | None:
        return self._current

    def select_table(self, name: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.text(0) == name:
                self.tree.setCurrentItem(item)
                return

    def _on_select(self) -> None:
        item = self.tree.currentItem()
        if item is None:
            return
        name = item.data(0, Qt.ItemDataRole.UserRole) or (item.parent() and item.parent().text(0))
        if name and name != self._current:
            self._current = name
            for label in self.info_labels.values():
                label.setText("…")
            self.history.setRowCount(0)
            self.tableSelected.emit(name)

    def _on_double(self, item: QTreeWidgetItem, _col: int) -> None:
        text = item.text(0)
        self.insertText.emit(quote_ident(text) if not text.isidentifier() else text)

    def show_info(self, info: TableInfo, history: list[HistoryEntry]) -> None:
        if info.name != self._current:
            return
        lab = self.info_labels
        lab["rows"].setText(f"{info.row_count:,}" if info.row_count is not None else "?")
        lab["size"].setText(_size(info.size_bytes))
        lab["files"].setText("?" if info.num_files is None else f"{info.num_files:,}")
        lab["compacted"].setText(compaction_text(info.last_compaction))
        lab["partitions"].setText(", ".join(info.partition_columns) or "(none)")
        lab["version"].setText(str(info.version))
        lab["location"].setText(info.location or "?")
        self._entries = history
        self.history.setRowCount(len(history))
        for r, h in enumerate(history):
            for c, value in enumerate((str(h.version), str(h.timestamp), h.operation)):
                self.history.setItem(r, c, QTableWidgetItem(value))

    def show_error(self, message: str) -> None:
        self.info_labels["location"].setText(message)

    def _time_travel(self) -> None:
        row = self.history.currentRow()
        if self._current and 0 <= row < len(self._entries):
            self.openQuery.emit(time_travel_sql(self._current, self._entries[row].version), True)

    def _select_top(self) -> None:
        if self._current:
            self.openQuery.emit(f"SELECT * FROM {quote_ident(self._current)} LIMIT 1000", True)
