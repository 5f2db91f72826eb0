"""``DetailsPane``: the whole event of the selected row, its Kafka lineage, its Delta table
version (looked up on the thread pool, ``lineage.find_delta_version``) and "Open in SQL"
(``sqltext.query_for_row``)."""

from __future__ import annotations

from typing import Any

import orjson
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from desktop_app.logstream.lineage import DeltaLineage, find_delta_version
from desktop_app.logstream.ring import LogRing, format_ts
from desktop_app.logstream.sqltext import query_for_row
from desktop_app.logstream.tasks import TaskRunner
from pipeline.schemas import TABLE_LOGS
from pipeline.settings import Settings

_HINT = "Select a row to see the whole event and its lineage."


class DetailsPane(QWidget):
    """Shows ring row ``seq`` (``show_seq``). ``open_in_sql(sql)``, ``lineage_ready(result)``
    and ``error(message)`` report the buttons' results."""

    open_in_sql = Signal(str)
    lineage_ready = Signal(object)      # DeltaLineage
    error = Signal(str)

    def __init__(self, ring: LogRing, settings: Settings, tasks: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ring = ring
        self.settings = settings
        self.tasks = tasks
        self.seq: int | None = None
        dl = QVBoxLayout(self)
        dl.setContentsMargins(0, 0, 0, 0)
        dbar = QHBoxLayout()
        self.lineage_label = QLabel(_HINT)
        self.lineage_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lineage_label.setWordWrap(True)
        self.delta_button = QPushButton("Delta table version")
        self.delta_button.setToolTip(f"Find this Kafka record in the {TABLE_LOGS} Delta table")
        self.delta_button.clicked.connect(lambda: self.lookup_delta_version())
        self.sql_button = QPushButton("Open in SQL")
        self.sql_button.clicked.connect(lambda: self.request_sql())
        for b in (self.delta_button, self.sql_button):
            b.setEnabled(False)
        dbar.addWidget(self.lineage_label, 1)
        dbar.addWidget(self.delta_button)
        dbar.addWidget(self.sql_button)
        dl.addLayout(dbar)
        self.delta_label = QLabel()
        self.delta_label.setWordWrap(True)
        self.delta_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dl.addWidget(self.delta_label)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        dl.addWidget(self.details, 1)

    def _lineage(self, seq: int) -> tuple[int, int, int]:
        """(partition, offset, event time ms) of buffered row ``seq``."""
        slot = seq % self.ring.capacity
        return (int(self.ring.cols["partition"][slot]), int(self.ring.cols["offset"][slot]),
                int(self.ring.cols["ts"][slot]))

    def show_seq(self, seq: int | None) -> None:
        """Show row ``seq`` (None, or a row no longer buffered: nothing)."""
        self.seq = seq
        self.delta_label.clear()
        enabled = seq is not None and seq >= self.ring.head
        self.delta_button.setEnabled(enabled)
        self.sql_button.setEnabled(enabled)
        if not enabled:
            self.details.clear()
            self.lineage_label.setText(_HINT)
            return
        ev = self.ring.event(seq)
        part, off, ts = self._lineage(seq)
        self.details.setPlainText(
            orjson.dumps(ev, option=orjson.OPT_INDENT_2).decode("utf-8", "replace"))
        self.lineage_label.setText(
            f"Kafka topic <b>{self.ring.topic}</b>, partition <b>{part}</b>, offset "
            f"<b>{off}</b> · event time {format_ts(ts)} UTC")

    def selected_details(self) -> dict[str, Any] | None:
        """The event shown with its Kafka lineage (None if none)."""
        seq = self.seq
        if seq is None or seq < self.ring.head:
            return None
        part, off, _ts = self._lineage(seq)
        return {"event": self.ring.event(seq), "kafka_topic": self.ring.topic,
                "kafka_partition": part, "kafka_offset": off}

    def lookup_delta_version(self, seq: int | None = None) -> bool:
        """Find the row in the Delta ``logs`` table on a worker (``lineage_ready``)."""
        seq = self.seq if seq is None else seq
        if seq is None or seq < self.ring.head:
            return False
        part, off, _ts = self._lineage(seq)
        path = self.settings.table_path(TABLE_LOGS)
        topic = self.ring.topic
        self.delta_label.setText("Looking up the Delta table…")

        def done(result: DeltaLineage) -> None:
            if self.seq == seq:
                self.delta_label.setText(result.describe())
            self.lineage_ready.emit(result)

        def failed(message: str) -> None:
            self.delta_label.setText(f"Delta lookup failed: {message}")
            self.error.emit(message)

        self.tasks.start(lambda _p, _c: find_delta_version(path, topic, part, off),
                         on_done=done, on_error=failed)
        return True

    def request_sql(self, seq: int | None = None) -> str | None:
        """Emit ``open_in_sql`` with a query for the row's source/endpoint around its time."""
        seq = self.seq if seq is None else seq
        if seq is None or seq < self.ring.head:
            return None
        rec = self.ring.record(seq)
        _part, _off, ts = self._lineage(seq)
        sql = query_for_row(ts, rec["source"], rec["endpoint"])
        self.open_in_sql.emit(sql)
        return sql
