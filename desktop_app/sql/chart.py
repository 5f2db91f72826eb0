"""A quick pyqtgraph chart of a result: one X column, one or more numeric Y columns."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

_COLOURS = ("#4FC1FF", "#F9A03F", "#7FD962", "#F45B69", "#C792EA", "#FFD866")


def to_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    return None


class ChartPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._columns: list[str] = []
        self._rows: list[tuple] = []
        self.x_combo = QComboBox()
        self.y_list = QListWidget()
        self.y_list.setMaximumHeight(90)
        self.kind = QComboBox()
        self.kind.addItems(["line", "bar"])
        self.draw_button = QPushButton("Draw")
        self.draw_button.clicked.connect(self.draw)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend()
        controls = QHBoxLayout()
        for w in (QLabel("X"), self.x_combo, QLabel("Y"), self.y_list, QLabel("as"), self.kind,
                  self.draw_button):
            controls.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)

    def set_data(self, columns: list[str], rows: list[tuple]) -> None:
        self._columns, self._rows = list(columns), rows
        self.x_combo.clear()
        self.x_combo.addItem("(row number)")
        self.x_combo.addItems(self._columns)
        self.y_list.clear()
        sample = rows[:50]
        for i, name in enumerate(self._columns):
            numeric = any(to_number(r[i]) is not None for r in sample) and not any(
                isinstance(r[i], datetime | date) for r in sample)
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setHidden(not numeric)
            self.y_list.addItem(item)

    def set_selection(self, x: str | None, ys: list[str], kind: str = "line") -> None:
        self.x_combo.setCurrentText(x or "(row number)")
        for i in range(self.y_list.count()):
            item = self.y_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in ys
                               else Qt.CheckState.Unchecked)
        self.kind.setCurrentText(kind)

    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted (x, y) values per Y column (rows with a missing value are skipped)."""
        xi = self.x_combo.currentIndex() - 1
        out = {}
        for i in range(self.y_list.count()):
            item = self.y_list.item(i)
            if item.checkState() != Qt.CheckState.Checked:
                continue
            yi = self._columns.index(item.text())
            xs, ys = [], []
            for n, row in enumerate(self._rows):
                x = float(n) if xi < 0 else to_number(row[xi])
                y = to_number(row[yi])
                if x is not None and y is not None:
                    xs.append(x)
                    ys.append(y)
            out[item.text()] = (xs, ys)
        return out

    def draw(self) -> None:
        self.plot.clear()
        xi = self.x_combo.currentIndex() - 1
        is_time = xi >= 0 and any(isinstance(r[xi], datetime | date) for r in self._rows[:20])
        self.plot.setAxisItems({"bottom": pg.DateAxisItem() if is_time else pg.AxisItem("bottom")})
        series = self.series()
        width = 0.8 / max(1, len(series))
        for n, (name, (xs, ys)) in enumerate(series.items()):
            colour = _COLOURS[n % len(_COLOURS)]
            if self.kind.currentText() == "bar":
                step = (min(b - a for a, b in zip(xs, xs[1:], strict=False) if b > a)
                        if len(set(xs)) > 1 else 1.0)
                bars = pg.BarGraphItem(x=[x + (n - len(series) / 2 + 0.5) * width * step
                                          for x in xs], height=ys, width=width * step,
                                       brush=colour, name=name)
                self.plot.addItem(bars)
            else:
                self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), name=name)
