"""The Anomalies tab: detected anomalies with their explanation; selecting one asks the window
to focus the charts and the log stream on its window and entity, or to open it in SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

SEVERITY_COLORS = {"low": "#f1c40f", "medium": "#e67e22", "high": "#e74c3c",
                   "critical": "#c0392b"}
COLUMNS = ("Window start", "Severity", "Kind", "Entity", "Score", "Explanation")
#: anomaly entity_type -> the metrics / logs column it filters
ENTITY_COLUMN = {"source": "source", "service": "source", "endpoint": "endpoint"}
FOCUS_PAD_MS = 5 * 60 * 1000


def _ts(ms: float | int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def anomaly_filter(record: dict[str, Any]) -> dict[str, Any]:
    """apply_filter() keyword arguments that show an anomaly's window and entity."""
    column = ENTITY_COLUMN.get(str(record.get("entity_type")))
    out: dict[str, Any] = {"source": None, "endpoint": None, "level": None,
                           "start_ms": int(record["window_start"]),
                           "end_ms": int(record["window_end"])}
    if column:
        out[column] = record.get("entity")
    return out


def anomaly_sql(record: dict[str, Any]) -> str:
    """Spark SQL over the ``logs`` table for the anomaly's window and entity."""
    where = [f"ts >= TIMESTAMP {_sql_string(_ts(record['window_start']))}",
             f"ts < TIMESTAMP {_sql_string(_ts(record['window_end']))}"]
    column = ENTITY_COLUMN.get(str(record.get("entity_type")))
    if column:
        where.append(f"{column} = {_sql_string(record.get('entity'))}")
    explanation = str(record.get("explanation") or "").splitlines()
    return (f"-- {record.get('kind')} on {record.get('entity_type')} {record.get('entity')}: "
            f"{explanation[0] if explanation else ''}\n"
            "SELECT *\nFROM logs\nWHERE " + "\n  AND ".join(where) + "\nORDER BY ts\nLIMIT 10000")


class AnomalyList(QWidget):
    """``anomalySelected(record)`` on click; ``openInSql(sql)`` from the button."""

    anomalySelected = Signal(dict)
    openInSql = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list[dict[str, Any]] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.cellClicked.connect(lambda row, _col: self.select_row(row))
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.focus_button = QPushButton("Show in logs and charts")
        self.focus_button.clicked.connect(lambda: self.select_row(self.table.currentRow()))
        self.sql_button = QPushButton("Open in SQL")
        self.sql_button.clicked.connect(self.open_current_in_sql)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.focus_button)
        buttons.addWidget(self.sql_button)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.detail)
        bottom_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(bottom)
        splitter.setSizes([300, 150])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def set_records(self, records: list[dict[str, Any]]) -> None:
        ids = [r.get("anomaly_id") for r in records]
        if ids == [r.get("anomaly_id") for r in self.records]:
            return
        current = self.current()
        self.records = records
        self.table.setRowCount(len(records))
        for row, record in enumerate(records):
            values = (_ts(record.get("window_start")), record.get("severity"), record.get("kind"),
                      f"{record.get('entity_type')}: {record.get('entity')}",
                      f"{record.get('score', 0):.2f}", record.get("explanation"))
            for col, value in enumerate(values):
                item = QTableWidgetItem("" if value is None else str(value))
                if col == 1 and value in SEVERITY_COLORS:
                    item.setForeground(QColor(SEVERITY_COLORS[value]))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        if current is not None and current.get("anomaly_id") in ids:
            self.table.selectRow(ids.index(current.get("anomaly_id")))

    def current(self) -> dict[str, Any] | None:
        row = self.table.currentRow()
        return self.records[row] if 0 <= row < len(self.records) else None

    def select_row(self, row: int) -> None:
        if not 0 <= row < len(self.records):
            return
        self.table.selectRow(row)
        record = self.records[row]
        self.detail.setPlainText(self._describe(record))
        self.anomalySelected.emit(record)

    def open_current_in_sql(self) -> None:
        record = self.current()
        if record is not None:
            self.openInSql.emit(anomaly_sql(record))

    @staticmethod
    def _describe(record: dict[str, Any]) -> str:
        lines = [f"{record.get('kind')} ({record.get('severity')}, score "
                 f"{record.get('score', 0):.2f}, detector {record.get('detector')})",
                 f"{record.get('entity_type')}: {record.get('entity')}",
                 f"window {_ts(record.get('window_start'))} – {_ts(record.get('window_end'))} UTC",
                 "", str(record.get("explanation") or "")]
        features = record.get("features")
        if features:
            lines += ["", "features:", json.dumps(features, indent=1, default=str)]
        contributors = record.get("top_contributors")
        if contributors:
            lines += ["", "top contributors:", json.dumps(contributors, indent=1, default=str)]
        return "\n".join(lines)
