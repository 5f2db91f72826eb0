"""The live table view: paints the visible rows of a ``LogTableModel`` in one call per frame.

The stock QTableView path makes one or more Python calls per cell (delegate or ``data()``),
and each must take the GIL from the Kafka consumer thread; under load that hand-off, not the
drawing, dominated a frame (measured: 30 ms CPU / 390 ms wall per frame with the stock path
vs 9 ms / 42-105 ms here on the loaded 2-core build machine). Selection, current row,
alternating colours, level colours and bold ERROR are drawn here; everything else (scrolling,
selection logic, headers) is QTableView's.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QFont, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from desktop_app.logstream.columns import (
    COL_ENDPOINT,
    COL_LEVEL,
    COL_SOURCE,
    COLUMN_COUNT,
    NUMERIC_COLUMNS,
)
from desktop_app.logstream.model import LogTableModel


class LiveTableView(QTableView):
    """The live table: paints every visible row in one Python call per frame.

    The stock path makes one or more Python calls per cell (delegate or ``data()``), and
    each call must take the GIL from the consumer thread; under load that hand-off, not the
    drawing, dominated a frame. Here a frame is one GIL acquisition. It also keeps a moving
    average of the paint time for frame pacing.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paint_s = 0.0
        self._bold = QFont()
        self._bold.setBold(True)
        self._flags = [int(((Qt.AlignmentFlag.AlignRight if c in NUMERIC_COLUMNS
                             else Qt.AlignmentFlag.AlignLeft) | Qt.AlignmentFlag.AlignVCenter)
                           .value) for c in range(COLUMN_COUNT)]

    def select_row(self, row: int) -> QModelIndex:
        """Make ``row`` the current row and the only selected one; returns its index."""
        idx = self.model().index(row, 0)
        self.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        return idx

    def selected_seqs(self) -> np.ndarray:
        """Ring sequence numbers of the selected rows, sorted, each once."""
        view = self.model().view()
        parts = []
        for rng in self.selectionModel().selection():
            parts.append(view[rng.top():rng.bottom() + 1])
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        t = time.perf_counter()
        model = self.model()
        if not isinstance(model, LogTableModel):
            super().paintEvent(event)
            return
        viewport = self.viewport()
        painter = QPainter(viewport)
        try:
            self._paint_rows(painter, model, viewport.width(), viewport.height())
        finally:
            painter.end()
        self.paint_s = 0.7 * self.paint_s + 0.3 * (time.perf_counter() - t)

    def _paint_rows(self, painter: QPainter, model: LogTableModel, width: int,
                    height: int) -> None:
        palette = self.palette()
        painter.fillRect(0, 0, width, height, palette.base())
        n = model.rowCount()
        first = self.rowAt(0)
        if n == 0 or first < 0:
            return
        rh = self.rowHeight(first)
        y = self.rowViewportPosition(first)
        hh = self.horizontalHeader()
        cols = [(c, hh.sectionViewportPosition(c), hh.sectionSize(c))
                for c in range(COLUMN_COUNT) if not hh.isSectionHidden(c)]
        cols = [(c, x, w) for c, x, w in cols if x + w > 0 and x < width]
        selection = self.selectionModel()
        root = QModelIndex()
        current = self.currentIndex().row()
        text_color = palette.color(QPalette.ColorRole.Text)
        hl_brush = palette.highlight()
        hl_text = palette.color(QPalette.ColorRole.HighlightedText)
        alt_brush = palette.alternateBase()
        alternate = self.alternatingRowColors()
        flags = self._flags
        normal_font = painter.font()
        row = first
        while row < n and y < height:
            cached = model.display_row(row)
            if cached is not None:
                values, color, bold = cached
                if selection.isRowSelected(row, root):
                    painter.fillRect(0, y, width, rh, hl_brush)
                    painter.setPen(hl_text)
                else:
                    if alternate and row & 1:
                        painter.fillRect(0, y, width, rh, alt_brush)
                    painter.setPen(color or text_color)
                for c, x, w in cols:
                    text = values[c]
                    if len(text) > w // 4:
                        text = text[:w // 4 + 1]
                    if bold and c == COL_LEVEL:
                        painter.setFont(self._bold)
                        painter.drawText(x + 4, y, w - 8, rh, flags[c], text)
                        painter.setFont(normal_font)
                    else:
                        painter.drawText(x + 4, y, w - 8, rh, flags[c], text)
                if row == current:
                    painter.setPen(text_color)
                    painter.drawRect(0, y, width - 1, rh - 1)
            row += 1
            y += rh


def build_log_table(model: LogTableModel, row_height: int) -> LiveTableView:
    """A ``LiveTableView`` over ``model`` set up for the live log: whole-row extended
    selection, fixed rows of ``row_height`` px, no sorting, default column widths."""
    table = LiveTableView()
    table.setModel(model)
    table.setTextElideMode(Qt.TextElideMode.ElideNone)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
    table.setWordWrap(False)
    table.setShowGrid(False)
    table.setAlternatingRowColors(True)
    table.setSortingEnabled(False)
    vh = table.verticalHeader()
    vh.hide()
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(row_height)
    hh = table.horizontalHeader()
    hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    hh.setStretchLastSection(True)
    for col, width in ((0, 170), (COL_LEVEL, 60), (COL_SOURCE, 90), (3, 55),
                       (COL_ENDPOINT, 160), (5, 50), (6, 75), (7, 65), (8, 40), (9, 80)):
        hh.resizeSection(col, width)
    return table
