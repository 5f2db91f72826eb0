"""The dashboard's headline numbers as a grid of tiles."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

TILES = (
    ("events_per_s", "Events/s", "Requests per second over the last minute of ended windows"),
    ("error_rate", "Error rate", "Share of requests with level ERROR or status >= 500"),
    ("latency_p95", "p95 latency",
     "p95 latency of the last minute's requests (merged histograms: within 1 %)"),
    ("active_anomalies", "Active anomalies", "Anomalies whose window ended in the last 5 min"),
    ("lag", "Consumer lag", "Messages in Kafka not yet processed (processor heartbeat)"),
    ("rows_in_logs", "Rows in logs", "Rows in the Delta logs table (from Delta metadata)"),
    ("freshness", "End-to-end freshness",
     "Age of the newest data visible in Delta: time since the last commit + Kafka backlog "
     "at the current processing rate + one trigger interval"),
)


def _fmt_count(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def format_values(snapshot: dict[str, Any], index: int = 0) -> dict[str, str]:
    grid = snapshot["grid"][index] if snapshot.get("grid") else {}
    latency = grid.get("latency_p95", math.nan)
    freshness = snapshot.get("freshness_s")
    return {
        "events_per_s": _fmt_count(grid.get("events_per_s")),
        "error_rate": f"{100 * grid.get('error_rate', 0.0):.2f} %",
        "latency_p95": "–" if latency is None or math.isnan(latency) else f"{latency:.0f} ms",
        "active_anomalies": str(snapshot.get("active_anomalies", 0)),
        "lag": _fmt_count(snapshot.get("lag_now")),
        "rows_in_logs": _fmt_count(snapshot.get("rows_in_logs")),
        "freshness": ("–" if freshness is None else
                      "∞" if math.isinf(freshness) else f"{freshness:.1f} s"),
    }


class MetricTile(QFrame):
    def __init__(self, title: str, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metricTile")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tip)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.title = QLabel(title)
        self.value = QLabel("–")
        font = QFont(self.value.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.value.setFont(font)
        self.value.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.title)
        layout.addWidget(self.value)


class MetricGrid(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tiles: dict[str, MetricTile] = {}
        for i, (key, title, tip) in enumerate(TILES):
            tile = MetricTile(title, tip)
            self.tiles[key] = tile
            layout.addWidget(tile, 0, i)

    def update_from(self, snapshot: dict[str, Any]) -> None:
        values = format_values(snapshot)
        compare = len(snapshot.get("grid", [])) > 1
        second = format_values(snapshot, 1) if compare else {}
        for key, tile in self.tiles.items():
            text = values[key]
            if compare and key in ("events_per_s", "error_rate", "latency_p95"):
                text = f"{text}  |  {second[key]}"
            tile.value.setText(text)

    def text(self, key: str) -> str:
        return self.tiles[key].value.text()
