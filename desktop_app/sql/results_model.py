"""A virtualized table model over a QueryResult: rows arrive in pages from the engine
(``fetchMore`` asks the service for the next page; the view only paints what is visible)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal

from pipeline.sql.engine import QueryResult
from pipeline.sql.output import cell_text


class ResultModel(QAbstractTableModel):
    fetchRequested = Signal(int)  # how many more rows the view wants

    def __init__(self, parent=None, max_cell_chars: int = 512, page_size: int = 2000) -> None:
        super().__init__(parent)
        self._result: QueryResult | None = None
        self._rows: list[tuple] = []
        self._columns: list[str] = []
        self._types: list[str] = []
        self._fetching = False
        self.max_cell_chars = max_cell_chars
        self.page_size = page_size

    # -- feeding -------------------------------------------------------------------------
    def set_result(self, result: QueryResult | None) -> None:
        self.beginResetModel()
        self._result = result
        self._rows = list(result.rows) if result is not None else []
        self._columns = list(result.columns) if result is not None else []
        self._types = list(result.types) if result is not None else []
        self._fetching = False
        self.endResetModel()

    def append_rows(self, rows: list[tuple]) -> None:
        self._fetching = False
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()

    def fetch_failed(self) -> None:
        self._fetching = False

    @property
    def result(self) -> QueryResult | None:
        return self._result

    @property
    def columns(self) -> list[str]:
        return self._columns

    @property
    def types(self) -> list[str]:
        return self._types

    def rows(self) -> list[tuple]:
        return self._rows

    # -- Qt model ------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = cell_text(value)
            return text if len(text) <= self.max_cell_chars else text[: self.max_cell_chars] + "…"
        if role == Qt.ItemDataRole.ToolTipRole:
            text = cell_text(value)
            return text if len(text) > 40 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, int | float):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and value is None:
            from PySide6.QtGui import QColor

            return QColor("#888888")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._columns[section] if section < len(self._columns) else None
        return section + 1

    def canFetchMore(self, parent: QModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        if parent.isValid() or self._result is None or self._fetching:
            return False
        return not self._result.done

    def fetchMore(self, parent: QModelIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if self.canFetchMore(parent):
            self._fetching = True
            self.fetchRequested.emit(self.page_size)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows loaded so far (the status line says when more exist)."""
        if not self._rows or column >= len(self._columns):
            return
        reverse = order == Qt.SortOrder.DescendingOrder

        def key(row: tuple) -> tuple:
            v = row[column]
            return (v is None, v)

        self.layoutAboutToBeChanged.emit()
        try:
            self._rows.sort(key=key, reverse=reverse)
        except TypeError:
            self._rows.sort(key=lambda r: (r[column] is None, cell_text(r[column])),
                            reverse=reverse)
        self.layoutChanged.emit()
