"""The Dashboard tab: selection and time-range bar, metric grid and live charts.

A timer asks the ``DashboardWorker`` (own QThread) for a refresh every ``app.refresh_ms``; a
refresh still running is never queued twice. Results arrive as one snapshot dict.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.dashboard.charts import ChartsPanel
from desktop_app.dashboard.grid import MetricGrid
from desktop_app.dashboard.metrics_store import Selection
from desktop_app.dashboard.worker import DashboardWorker, Request
from desktop_app.threads import start_worker_thread, stop_worker_thread
from pipeline.settings import Settings

ALL = "(all)"
RANGES = (("5 min", 300), ("15 min", 900), ("1 h", 3600), ("6 h", 6 * 3600), ("24 h", 86400))
FIELDS = ("source", "endpoint", "level")


def status_windows(snapshot: dict[str, Any]) -> str:
    """'90 windows of 10s, 3 provisional': how many points are drawn and how many may still
    change (their window ends after the table's watermark)."""
    series = snapshot["series"][0] if snapshot["series"] else {}
    points = len(series.get("t", ()))
    if not points:
        return "no data"
    provisional = int(series["provisional"].sum()) if "provisional" in series else 0
    text = f"{points} windows of {snapshot['window_size']}"
    return f"{text}, {provisional} provisional" if provisional else text


class SelectionBar(QWidget):
    """Three combo boxes choosing source, endpoint and level (or all)."""

    changed = Signal()

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(label))
        self.boxes: dict[str, QComboBox] = {}
        for name in FIELDS:
            box = QComboBox()
            box.setObjectName(f"{label}-{name}")
            box.setToolTip(f"Filter by {name}")
            box.addItem(ALL)
            box.setMinimumContentsLength(8)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.currentIndexChanged.connect(lambda _i: self.changed.emit())
            layout.addWidget(box)
            self.boxes[name] = box

    def selection(self) -> Selection:
        values = {n: (b.currentText() if b.currentText() != ALL else None)
                  for n, b in self.boxes.items()}
        return Selection(**values)

    def set_choices(self, choices: dict[str, list[str]]) -> None:
        for name, box in self.boxes.items():
            wanted = [ALL, *choices.get(name, [])]
            current = box.currentText()
            existing = [box.itemText(i) for i in range(box.count())]
            if current not in wanted:
                wanted.append(current)
            if existing != wanted:
                box.blockSignals(True)
                box.clear()
                box.addItems(wanted)
                box.setCurrentText(current)
                box.blockSignals(False)

    def set_selection(self, selection: Selection) -> None:
        for name, box in self.boxes.items():
            value = getattr(selection, name) or ALL
            if box.findText(value) < 0:
                box.addItem(value)
            box.blockSignals(True)
            box.setCurrentText(value)
            box.blockSignals(False)
        self.changed.emit()


class DashboardWidget(QWidget):
    snapshotReady = Signal(dict)
    _requestRefresh = Signal(object)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.snapshot: dict[str, Any] | None = None
        self.error: str | None = None
        self._busy = False
        self._again = False
        self.end_ms: int | None = None  # None: live

        self.bar_a = SelectionBar("A")
        self.bar_b = SelectionBar("B")
        self.compare = QCheckBox("Compare with")
        self.compare.setToolTip("Draw a second selection dashed on the same charts")
        self.compare.toggled.connect(self._compare_toggled)
        self.range_box = QComboBox()
        self.range_box.setObjectName("range")
        for label, seconds in RANGES:
            self.range_box.addItem(label, seconds)
        self.range_box.setCurrentIndex(1)
        self.live_button = QPushButton("Live")
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.setToolTip("Follow the clock (unchecked after focusing an anomaly)")
        self.live_button.toggled.connect(self._live_toggled)
        self.status = QLabel()
        self.status.setObjectName("dashboardStatus")

        top = QHBoxLayout()
        top.addWidget(self.bar_a)
        top.addStretch(1)
        top.addWidget(QLabel("Range"))
        top.addWidget(self.range_box)
        top.addWidget(self.live_button)
        second = QHBoxLayout()
        second.addWidget(self.compare)
        second.addWidget(self.bar_b)
        second.addStretch(1)
        self.grid = MetricGrid()
        self.charts = ChartsPanel()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.grid)
        layout.addWidget(self.charts, 1)
        layout.addWidget(self.status)
        self.bar_b.setEnabled(False)
        for signal in (self.bar_a.changed, self.bar_b.changed):
            signal.connect(self.refresh)
        self.range_box.currentIndexChanged.connect(lambda _i: self.refresh())

        self.worker = DashboardWorker(settings)
        self._requestRefresh.connect(self.worker.refresh)
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.failed.connect(self._on_failed)
        self._thread = start_worker_thread(self, self.worker, "lakewatch-dashboard")
        self.timer = QTimer(self)
        self.timer.setInterval(settings.app.refresh_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    # -- requests ----------------------------------------------------------------------
    def request(self) -> Request:
        selections = (self.bar_a.selection(),)
        if self.compare.isChecked():
            selections += (self.bar_b.selection(),)
        return Request(selections=selections, range_s=float(self.range_box.currentData()),
                       end_ms=self.end_ms)

    def refresh(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        self._requestRefresh.emit(self.request())

    def _on_snapshot(self, snapshot: dict[str, Any]) -> None:
        self._busy = False
        self.snapshot = snapshot
        self.error = None
        self.bar_a.set_choices(snapshot["choices"])
        self.bar_b.set_choices(snapshot["choices"])
        self.grid.update_from(snapshot)
        self.charts.set_snapshot(snapshot)
        self.status.setText(f"{status_windows(snapshot)} · refresh {snapshot['compute_ms']:.0f} ms"
                            f" · {snapshot['rows_read']} metric rows read")
        self.snapshotReady.emit(snapshot)
        if self._again:
            self._again = False
            self.refresh()

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.error = message
        self.status.setText(f"Dashboard refresh failed: {message.splitlines()[0]}")

    # -- interaction -------------------------------------------------------------------
    def _compare_toggled(self, on: bool) -> None:
        self.bar_b.setEnabled(on)
        self.refresh()

    def _live_toggled(self, live: bool) -> None:
        if live:
            self.end_ms = None
        self.refresh()

    def set_range(self, seconds: int) -> None:
        index = self.range_box.findData(seconds)
        if index >= 0:
            self.range_box.setCurrentIndex(index)

    def focus(self, selection: Selection, start_ms: int, end_ms: int,
              pad_ms: int = 5 * 60 * 1000) -> None:
        """Show ``selection`` around ``[start_ms, end_ms)`` (stops following the clock)."""
        span_s = (end_ms - start_ms + 2 * pad_ms) / 1000.0
        seconds = next((s for _, s in RANGES if s >= span_s), RANGES[-1][1])
        self.end_ms = int(end_ms + (seconds * 1000 - (end_ms - start_ms)) / 2)
        self.live_button.blockSignals(True)
        self.live_button.setChecked(False)
        self.live_button.blockSignals(False)
        self.range_box.blockSignals(True)
        self.set_range(seconds)
        self.range_box.blockSignals(False)
        self.bar_a.blockSignals(True)
        self.bar_a.set_selection(selection)
        self.bar_a.blockSignals(False)
        self.refresh()

    def apply_theme(self, dark: bool) -> None:
        self.charts.apply_theme(dark)

    def shutdown(self) -> None:
        self.timer.stop()
        self.charts.timer.stop()
        stop_worker_thread(self._thread, 10000)
