"""The controls above the live table: ``StreamToolbar`` (follow, pause, jump, back to live,
counters) and ``FilterBar`` (level buttons, source/endpoint/status/text filters, the time
window, saved filters and the filter error line).

The parts only hold widgets and turn them into a ``FilterSpec`` or back; ``LogStreamWidget``
decides what a change means (it owns the spec, the Kafka worker and the saved-filter store).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.logstream.filters import FilterSpec, parse_status, status_text
from desktop_app.logstream.jump import parse_jump
from desktop_app.logstream.ring import format_ts
from pipeline.schemas import LEVELS


class StreamToolbar(QWidget):
    """Follow / Pause / jump field / Live / counters; trailing widgets go on the same row.

    Enter in the jump field emits ``jumpToOffset(partition, offset)`` or ``jumpToTime(ms)``
    (``jumpFailed(message)`` if it cannot be parsed, see ``jump.parse_jump``);
    ``liveRequested`` is the Live button. Follow and Pause are checkable; their owner
    connects ``toggled``."""

    jumpToOffset = Signal(object, object)   # Python ints: offsets and ms exceed 32 bits
    jumpToTime = Signal(object)
    jumpFailed = Signal(str)
    liveRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._row = bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        self.follow_box = QCheckBox("Follow")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Keep the newest row in view (End)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Stop reading Kafka; nothing is lost, resume catches up")
        self.jump_edit = QLineEdit()
        self.jump_edit.setPlaceholderText("Jump: partition:offset, UTC time or -5m")
        self.jump_edit.setClearButtonEnabled(True)
        self.jump_edit.setMinimumWidth(280)
        self.jump_edit.returnPressed.connect(self._jump_from_field)
        self.live_button = QPushButton("Live")
        self.live_button.setToolTip("Back to the end of the topic")
        self.live_button.clicked.connect(lambda: self.liveRequested.emit())
        self.counters = QLabel()
        self.counters.setTextFormat(Qt.TextFormat.RichText)
        for w in (self.follow_box, self.pause_button, self.jump_edit, self.live_button):
            bar.addWidget(w)
        bar.addWidget(self.counters, 1)

    def _jump_from_field(self) -> None:
        try:
            kind, a, b = parse_jump(self.jump_edit.text())
        except ValueError as exc:
            self.jumpFailed.emit(str(exc))
            return
        if kind == "offset":
            self.jumpToOffset.emit(a, b)
        else:
            self.jumpToTime.emit(a)

    def add_trailing(self, widget: QWidget) -> None:
        """Put ``widget`` at the right end of the row (after the counters)."""
        self._row.addWidget(widget)


def counters_html(counts: dict[str, int], capacity: int, stats: dict[str, Any],
                  connected: bool) -> str:
    """The counters line: rows shown/buffered/evicted/dropped plus the consumer's stats."""
    c = counts
    s = stats
    parts = [f"showing <b>{c['shown']:,}</b> of {c['buffered']:,} buffered "
             f"(max {capacity:,})"]
    parts.append(f"evicted {c['evicted']:,}")
    dropped = f"dropped {c['dropped']:,}"
    parts.append(f"<span style='color:#ef5350'><b>{dropped}</b></span>"
                 if c["dropped"] else dropped)
    if s:
        parts.append(f"{s.get('events_per_s', 0):,.0f} ev/s")
        if s.get("lag") is not None:
            parts.append(f"lag {s['lag']:,}")
        state = str(s.get("state", ""))
        parts.append(html.escape(state))
        if state != "live" and s.get("last_error"):
            parts.append(f"<span style='color:#ef5350'>{html.escape(s['last_error'])}</span>")
    elif not connected:
        parts.append("not connected")
    return " · ".join(parts)


class FilterBar(QWidget):
    """The filter controls (one row) and, below them, the error line.

    ``edited`` fires when the user changed a control (text fields after a 300 ms pause or
    Enter); read the new spec with ``spec_from_ui``. ``sync`` shows a spec without firing.
    Saved filters: ``namedChosen`` / ``saveRequested`` / ``deleteRequested`` carry a name;
    ``set_names`` fills the combo box."""

    edited = Signal()
    timeCleared = Signal()
    namedChosen = Signal(str)
    saveRequested = Signal(str)
    deleteRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._syncing = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        fbar = QHBoxLayout()
        self.level_buttons: dict[str, QToolButton] = {}
        for lv in LEVELS:
            b = QToolButton()
            b.setText(lv)
            b.setCheckable(True)
            b.setToolTip(f"Show {lv} (none checked: every level)")
            b.toggled.connect(self._edited)
            self.level_buttons[lv] = b
            fbar.addWidget(b)
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("source (a, b, web-*)")
        self.endpoint_edit = QLineEdit()
        self.endpoint_edit.setPlaceholderText("endpoint (/api/*)")
        self.status_edit = QLineEdit()
        self.status_edit.setPlaceholderText("status 5xx, 400-499")
        self.status_edit.setMaximumWidth(120)
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("text in the event (Ctrl+F)")
        self.regex_box = QCheckBox("Regex")
        self.case_box = QCheckBox("Aa")
        self.case_box.setToolTip("Case sensitive")
        self.time_label = QLabel()
        self.time_clear = QToolButton()
        self.time_clear.setText("✕")
        self.time_clear.setToolTip("Clear the time window")
        self.time_clear.clicked.connect(lambda: self.timeCleared.emit())
        self.time_label.hide()
        self.time_clear.hide()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self._edited)
        for e in (self.source_edit, self.endpoint_edit, self.status_edit, self.text_edit):
            e.setClearButtonEnabled(True)
            e.textEdited.connect(lambda _t: self._debounce.start())
            e.returnPressed.connect(self._edited)
        self.regex_box.toggled.connect(self._edited)
        self.case_box.toggled.connect(self._edited)
        self.named_combo = QComboBox()
        self.named_combo.setMinimumWidth(140)
        self.named_combo.setToolTip("Saved filters")
        self.named_combo.activated.connect(
            lambda i: self.namedChosen.emit(self.named_combo.itemText(i)) if i > 0 else None)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_dialog)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(
            lambda: self.deleteRequested.emit(self.named_combo.currentText())
            if self.named_combo.currentIndex() > 0 else None)
        for w in (self.source_edit, self.endpoint_edit, self.status_edit):
            fbar.addWidget(w)
        fbar.addWidget(self.text_edit, 2)
        for w in (self.regex_box, self.case_box, self.time_label, self.time_clear,
                  self.named_combo, self.save_button, self.delete_button):
            fbar.addWidget(w)
        outer.addLayout(fbar)
        self.filter_error = QLabel()
        self.filter_error.setStyleSheet("color: #ef5350")
        self.filter_error.hide()
        outer.addWidget(self.filter_error)

    # ------------------------------------------------------------------ spec <-> controls
    def _edited(self) -> None:
        if self._syncing:
            return
        self._debounce.stop()
        self.edited.emit()

    def spec_from_ui(self, current: FilterSpec) -> FilterSpec:
        """The spec the controls show; the time window (not editable here) from ``current``.
        Raises ``FilterError`` for an unparsable status field."""
        lo, hi = parse_status(self.status_edit.text())
        return FilterSpec(
            levels=tuple(lv for lv, b in self.level_buttons.items() if b.isChecked()),
            sources=self.source_edit.text(),
            endpoints=self.endpoint_edit.text(),
            status_min=lo, status_max=hi,
            text=self.text_edit.text(), regex=self.regex_box.isChecked(),
            case_sensitive=self.case_box.isChecked(),
            start_ms=current.start_ms, end_ms=current.end_ms)

    def sync(self, spec: FilterSpec) -> None:
        """Show ``spec`` in the controls (without firing ``edited``)."""
        self._syncing = True
        try:
            for lv, b in self.level_buttons.items():
                b.setChecked(lv in spec.levels)
            self.source_edit.setText(", ".join(spec.sources))
            self.endpoint_edit.setText(", ".join(spec.endpoints))
            self.status_edit.setText(status_text(spec))
            self.text_edit.setText(spec.text)
            self.regex_box.setChecked(spec.regex)
            self.case_box.setChecked(spec.case_sensitive)
            timed = spec.start_ms is not None or spec.end_ms is not None
            self.time_label.setText(
                f"time {format_ts(spec.start_ms) if spec.start_ms is not None else '…'} → "
                f"{format_ts(spec.end_ms) if spec.end_ms is not None else '…'}")
            self.time_label.setVisible(timed)
            self.time_clear.setVisible(timed)
        finally:
            self._syncing = False

    def show_filter_error(self, message: str) -> None:
        """Show ``message`` under the controls; an empty one hides the line."""
        self.filter_error.setText(message)
        self.filter_error.setVisible(bool(message))

    def show_error(self, message: str) -> None:
        """Show ``message`` under the controls (any error, not only the filter's)."""
        self.filter_error.setText(message)
        self.filter_error.setVisible(True)

    def focus_text(self) -> None:
        self.text_edit.setFocus()
        self.text_edit.selectAll()

    # ------------------------------------------------------------------ saved filters
    def set_names(self, names: Iterable[str]) -> None:
        """Fill the saved-filter box with ``names``, keeping the current choice if listed."""
        current = self.named_combo.currentText()
        self.named_combo.blockSignals(True)
        self.named_combo.clear()
        self.named_combo.addItem("Saved filters…")
        self.named_combo.addItems(list(names))
        i = self.named_combo.findText(current)
        self.named_combo.setCurrentIndex(max(0, i))
        self.named_combo.blockSignals(False)

    def select_name(self, name: str) -> None:
        self.named_combo.setCurrentIndex(self.named_combo.findText(name))

    def _save_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save filter", "Name:")
        if ok and name.strip():
            self.saveRequested.emit(name)
