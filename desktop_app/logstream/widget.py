"""``LogStreamWidget``: the live log table with filters, details, jump, export, Open in SQL.

Threads: the Kafka consumer runs in ``TailWorker`` on its own QThread; filtering a full
buffer, export, copy, Delta lookups and filter-file I/O run on the thread pool (``Task``).
The GUI thread only appends decoded batches (vectorized) and paints the visible rows.
"""

from __future__ import annotations

import html
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.logstream.columns import (
    COL_ENDPOINT,
    COL_LEVEL,
    COL_MESSAGE,
    COL_SOURCE,
)
from desktop_app.logstream.decode import EventBatch
from desktop_app.logstream.export import ExportResult, export_rows, rows_as_tsv
from desktop_app.logstream.filter_store import FilterStore, FilterStoreError
from desktop_app.logstream.filters import (
    FilterError,
    FilterSpec,
    evaluate,
    parse_status,
    status_text,
)
from desktop_app.logstream.jump import parse_jump
from desktop_app.logstream.lineage import DeltaLineage, find_delta_version
from desktop_app.logstream.model import LogTableModel
from desktop_app.logstream.ring import LogRing, format_ts
from desktop_app.logstream.sqltext import query_for_row
from desktop_app.logstream.table import LiveTableView
from desktop_app.logstream.tail import BatchQueue, TailWorker
from desktop_app.logstream.tasks import TaskRunner
from desktop_app.logstream.vocab import Vocabs
from pipeline.schemas import LEVELS, TABLE_LOGS
from pipeline.settings import Settings

log = logging.getLogger(__name__)

_STORE_LOCK = threading.Lock()
_STORE_WRITTEN = {"version": 0}


def _write_store(store: FilterStore, version: int) -> None:
    """Write the filters file unless a newer snapshot was written already."""
    with _STORE_LOCK:
        if version < _STORE_WRITTEN["version"]:
            return
        store.save()
        _STORE_WRITTEN["version"] = version


#: Rows reach the view at most this often; slower when painting is slow (see _drain).
MIN_FRAME_S = 1 / 30
MAX_FRAME_S = 0.5


class LogStreamWidget(QWidget):
    """Live tail of ``settings.kafka.topic``; see the package docstring for the parts."""

    open_in_sql = Signal(str)
    filter_applied = Signal(int)        # rows in the view after a filter change
    rows_appended = Signal(int)         # rows inserted into the view by one ingest
    jumped = Signal(int, object)        # epoch, {partition: offset} after a (re)assignment
    export_finished = Signal(object)    # ExportResult
    lineage_ready = Signal(object)      # DeltaLineage
    error = Signal(str)

    def __init__(self, settings: Settings, parent: QWidget | None = None, *,
                 autostart: bool = True) -> None:
        super().__init__(parent)
        self.settings = settings
        self.vocabs = Vocabs()
        self.ring = LogRing(settings.app.buffer_rows, settings.app.buffer_mb * 1024 * 1024,
                            self.vocabs, topic=settings.kafka.topic)
        self.model = LogTableModel(self.ring, settings.app.max_cell_chars, self)
        self.queue = BatchQueue(max(10_000, settings.app.buffer_rows // 4))
        self.tasks = TaskRunner(self)
        self.store = FilterStore.for_settings(settings)
        self._store_version = 0
        self._store_loaded = False
        self._spec = FilterSpec()
        self._gen = 0
        self._epoch = 0
        self._next_epoch = 0
        self._follow = True
        self._paused = False
        self._stats: dict[str, Any] = {}
        self._pending_select: tuple[int, int] | None = None
        self._detail_seq: int | None = None
        self._export_task = None
        self._thread: QThread | None = None
        self._worker: TailWorker | None = None
        self._syncing_ui = False
        self._next_ingest_at = 0.0
        self._drain_timer = QTimer(self)
        self._drain_timer.setSingleShot(True)
        self._drain_timer.timeout.connect(self._drain)
        self._build_ui()
        self._counter_timer = QTimer(self)
        self._counter_timer.setInterval(250)
        self._counter_timer.timeout.connect(self._update_counters)
        self._counter_timer.start()
        self._load_store()
        if autostart:
            self.start()

    # ================================================================== UI construction
    def _build_ui(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        # -- toolbar: follow / pause / jump / counters / export
        bar = QHBoxLayout()
        self.follow_box = QCheckBox("Follow")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Keep the newest row in view (End)")
        self.follow_box.toggled.connect(self.set_follow)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Stop reading Kafka; nothing is lost, resume catches up")
        self.pause_button.toggled.connect(self.set_paused)
        self.jump_edit = QLineEdit()
        self.jump_edit.setPlaceholderText("Jump: partition:offset, UTC time or -5m")
        self.jump_edit.setClearButtonEnabled(True)
        self.jump_edit.setMinimumWidth(280)
        self.jump_edit.returnPressed.connect(self._jump_from_field)
        self.live_button = QPushButton("Live")
        self.live_button.setToolTip("Back to the end of the topic")
        self.live_button.clicked.connect(lambda: self.restart("latest"))
        self.counters = QLabel()
        self.counters.setTextFormat(Qt.TextFormat.RichText)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for scope in ("view", "selection"):
            for fmt in ("csv", "jsonl"):
                menu.addAction(f"{'Filtered view' if scope == 'view' else 'Selection'} as "
                               f"{fmt.upper()}…",
                               lambda s=scope, f=fmt: self._export_dialog(s, f))
        menu.addAction("Copy selection", self.copy_selection)
        self.export_button.setMenu(menu)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_export)
        for w in (self.follow_box, self.pause_button, self.jump_edit, self.live_button):
            bar.addWidget(w)
        bar.addWidget(self.counters, 1)
        for w in (self.progress, self.cancel_button, self.export_button):
            bar.addWidget(w)
        root.addLayout(bar)

        # -- filter bar
        fbar = QHBoxLayout()
        self.level_buttons: dict[str, QToolButton] = {}
        for lv in LEVELS:
            b = QToolButton()
            b.setText(lv)
            b.setCheckable(True)
            b.setToolTip(f"Show {lv} (none checked: every level)")
            b.toggled.connect(self._filter_from_ui)
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
        self.time_clear.clicked.connect(self._clear_time)
        self.time_label.hide()
        self.time_clear.hide()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self._filter_from_ui)
        for e in (self.source_edit, self.endpoint_edit, self.status_edit, self.text_edit):
            e.setClearButtonEnabled(True)
            e.textEdited.connect(lambda _t: self._debounce.start())
            e.returnPressed.connect(self._filter_from_ui)
        self.regex_box.toggled.connect(self._filter_from_ui)
        self.case_box.toggled.connect(self._filter_from_ui)
        self.named_combo = QComboBox()
        self.named_combo.setMinimumWidth(140)
        self.named_combo.setToolTip("Saved filters")
        self.named_combo.activated.connect(
            lambda i: self.use_named_filter(self.named_combo.itemText(i)) if i > 0 else None)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self._save_dialog)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(
            lambda: self.delete_named_filter(self.named_combo.currentText())
            if self.named_combo.currentIndex() > 0 else None)
        for w in (self.source_edit, self.endpoint_edit, self.status_edit):
            fbar.addWidget(w)
        fbar.addWidget(self.text_edit, 2)
        for w in (self.regex_box, self.case_box, self.time_label, self.time_clear,
                  self.named_combo, self.save_button, self.delete_button):
            fbar.addWidget(w)
        root.addLayout(fbar)
        self.filter_error = QLabel()
        self.filter_error.setStyleSheet("color: #ef5350")
        self.filter_error.hide()
        root.addWidget(self.filter_error)

        # -- table + details
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = LiveTableView()
        self.table.setModel(self.model)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(False)
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 4)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((0, 170), (COL_LEVEL, 60), (COL_SOURCE, 90), (3, 55),
                           (COL_ENDPOINT, 160), (5, 50), (6, 75), (7, 65), (8, 40), (9, 80)):
            hh.resizeSection(col, width)
        self.table.verticalScrollBar().actionTriggered.connect(self._user_scrolled)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        split.addWidget(self.table)

        details = QWidget()
        dl = QVBoxLayout(details)
        dl.setContentsMargins(0, 0, 0, 0)
        dbar = QHBoxLayout()
        self.lineage_label = QLabel("Select a row to see the whole event and its lineage.")
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
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)

        # Only while the table has focus: the main window owns the window-wide shortcuts
        # (Ctrl+F calls focus_filter), and editors elsewhere keep their own Ctrl+C.
        for key, slot in ((QKeySequence(QKeySequence.StandardKey.Copy), self.copy_selection),
                          (QKeySequence(Qt.Key.Key_End), lambda: self.set_follow(True))):
            shortcut = QShortcut(key, self.table)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(slot)

    # ================================================================== Kafka worker
    def start(self, where: str | None = None) -> None:
        """Start tailing (idempotent)."""
        if self._thread is not None:
            return
        # The consumer thread decodes in Python; with the default 5 ms GIL switch interval
        # every Python call the GUI makes while painting can wait up to 5 ms for it.
        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)
        self._thread = QThread(self)
        self._thread.setObjectName("logstream-tail")
        self._worker = TailWorker(self.settings, self.vocabs, self.queue, where)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.batchesReady.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self._worker.assigned.connect(self._on_assigned)
        self._worker.stats.connect(self._on_stats)
        self._worker.failed.connect(self._on_worker_failed)
        self._worker.finished.connect(self._thread.quit)
        self._thread.start()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the consumer thread and cancel running exports (the main window calls this)."""
        self._counter_timer.stop()
        self.tasks.cancel_all()
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.quit()
            if not self._thread.wait(timeout_ms):
                log.warning("live tail thread did not stop within %d ms", timeout_ms)
        self._thread = self._worker = None
        self.tasks.pool.waitForDone(timeout_ms)

    def _on_assigned(self, epoch: int, offsets: dict) -> None:
        self._switch_epoch(epoch)
        self.jumped.emit(epoch, offsets)

    def _switch_epoch(self, epoch: int) -> None:
        if epoch > self._epoch:
            self._epoch = epoch
            self.ring.clear()
            self.model.clear()
            self._show_details(None)

    def _on_stats(self, stats: dict) -> None:
        self._stats = stats

    def _on_worker_failed(self, message: str) -> None:
        self._show_error(message)

    @Slot()
    def _drain(self) -> None:
        """Take every queued batch into the view, paced so that painting (which costs the
        same whatever the rate) gets at most about half of the GUI thread."""
        now = time.perf_counter()
        wait = self._next_ingest_at - now
        if wait > 0:
            if not self._drain_timer.isActive():
                self._drain_timer.start(int(wait * 1000) + 1)
            return
        self._next_ingest_at = now + min(MAX_FRAME_S, max(MIN_FRAME_S, 2 * self.table.paint_s))
        batches = self.queue.drain()
        if not batches:
            return
        top = max(b.epoch for b in batches)
        if top > self._epoch:
            self._switch_epoch(top)
        keep = [b for b in batches if b.epoch == self._epoch and len(b)]
        if keep:
            self.ingest(EventBatch.concat(keep))

    def ingest(self, batch: EventBatch) -> int:
        """Append decoded rows to the buffer and the view; returns rows shown."""
        sb = self.table.verticalScrollBar()
        before = sb.value()
        result = self.ring.append(batch)
        removed, inserted = self.model.on_appended(result, self._select)
        if self._follow:
            if inserted:
                self.table.scrollToBottom()
        elif removed:
            sb.setValue(max(0, before - removed))
        if self._pending_select is not None:
            self._try_select_pending()
        self.rows_appended.emit(inserted)
        return inserted

    def _select(self, start: int, stop: int) -> np.ndarray:
        try:
            return evaluate(self._spec, self.ring, start, stop)
        except FilterError as exc:  # validated before use; keep rows flowing regardless
            self._show_error(str(exc))
            return np.arange(start, stop, dtype=np.int64)

    # ================================================================== follow / pause
    @Slot(bool)
    def set_follow(self, on: bool) -> None:
        self._follow = bool(on)
        if self.follow_box.isChecked() != self._follow:
            self.follow_box.setChecked(self._follow)
        if self._follow:
            self.table.scrollToBottom()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        self._paused = bool(paused)
        if self.pause_button.isChecked() != self._paused:
            self.pause_button.setChecked(self._paused)
        self.pause_button.setText("Resume" if self._paused else "Pause")
        if self._worker is not None:
            self._worker.request("pause", self._paused)

    def _user_scrolled(self, _action: int) -> None:
        sb = self.table.verticalScrollBar()
        QTimer.singleShot(0, lambda: self.set_follow(sb.value() >= sb.maximum()))

    # ================================================================== filters
    @property
    def spec(self) -> FilterSpec:
        return self._spec

    def _filter_from_ui(self) -> None:
        if self._syncing_ui:
            return
        self._debounce.stop()
        try:
            lo, hi = parse_status(self.status_edit.text())
            spec = FilterSpec(
                levels=tuple(lv for lv, b in self.level_buttons.items() if b.isChecked()),
                sources=self.source_edit.text(),
                endpoints=self.endpoint_edit.text(),
                status_min=lo, status_max=hi,
                text=self.text_edit.text(), regex=self.regex_box.isChecked(),
                case_sensitive=self.case_box.isChecked(),
                start_ms=self._spec.start_ms, end_ms=self._spec.end_ms)
        except FilterError as exc:
            self._show_filter_error(str(exc))
            return
        if spec != self._spec:
            self.set_filter(spec)

    def _sync_ui(self, spec: FilterSpec) -> None:
        self._syncing_ui = True
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
            self._syncing_ui = False

    def _clear_time(self) -> None:
        d = self._spec.to_dict()
        d.update(start_ms=None, end_ms=None)
        self.set_filter(FilterSpec.from_dict(d))

    def _show_filter_error(self, message: str) -> None:
        self.filter_error.setText(message)
        self.filter_error.setVisible(bool(message))

    def set_filter(self, spec: FilterSpec, persist: bool = True) -> bool:
        """Show only rows matching ``spec`` (evaluated on a worker; ``filter_applied`` when
        done). Returns False (and shows why) if the spec is invalid."""
        try:
            spec.validate()
        except FilterError as exc:
            self._show_filter_error(str(exc))
            return False
        self._show_filter_error("")
        self._spec = spec
        self._gen += 1
        gen = self._gen
        head, tail = self.ring.head, self.ring.tail
        ring = self.ring
        self._sync_ui(spec)
        self.tasks.start(lambda _p, _c: evaluate(spec, ring, head, tail),
                         on_done=lambda seqs: self._filter_done(gen, tail, seqs),
                         on_error=self._show_filter_error)
        if persist:
            self.store.last = spec
            self._persist_store()
        return True

    def _filter_done(self, gen: int, tail: int, seqs: np.ndarray) -> None:
        if gen != self._gen:
            return
        seqs = seqs[seqs >= self.ring.head]
        newer = self.model.view()
        newer = newer[newer >= tail]
        current = self._detail_seq
        self.model.set_view(np.concatenate([seqs, newer]))
        if current is not None:
            row = self.model.row_of_seq(current)
            if row is not None:
                self.table.selectionModel().setCurrentIndex(
                    self.model.index(row, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows)
        if self._follow:
            self.table.scrollToBottom()
        self.filter_applied.emit(self.model.rowCount())

    def apply_filter(self, source: str | None = None, endpoint: str | None = None,
                     level: str | None = None, start_ms: int | None = None,
                     end_ms: int | None = None, *, seek: bool = True) -> bool:
        """Show one entity's rows in a time window (e.g. an anomaly's). When the window
        starts before the oldest buffered row, the consumer seeks to ``start_ms``."""
        spec = FilterSpec(levels=(level,) if level else (),
                          sources=(source,) if source else (),
                          endpoints=(endpoint,) if endpoint else (),
                          start_ms=start_ms, end_ms=end_ms)
        ok = self.set_filter(spec)
        if ok and seek and start_ms is not None:
            ts = self.ring.logical("ts", self.ring.head, self.ring.tail)
            if not len(ts) or int(ts.min()) > start_ms:
                self.jump_to_time(start_ms)
        return ok

    def focus_filter(self) -> None:
        self.text_edit.setFocus()
        self.text_edit.selectAll()

    # ================================================================== named filters
    def _load_store(self) -> None:
        store = self.store

        def load(_p, _c):
            return store.load()

        self.tasks.start(load, on_done=self._store_ready, on_error=self._store_failed)

    def _store_ready(self, store: FilterStore) -> None:
        self._store_loaded = True
        self._refresh_named()
        if self._gen == 0 and not store.last.is_empty:
            self.set_filter(store.last, persist=False)

    def _store_failed(self, message: str) -> None:
        self._store_loaded = False  # never overwrite a file we could not read
        self._show_error(message)

    def _refresh_named(self) -> None:
        current = self.named_combo.currentText()
        self.named_combo.blockSignals(True)
        self.named_combo.clear()
        self.named_combo.addItem("Saved filters…")
        self.named_combo.addItems(sorted(self.store.filters))
        i = self.named_combo.findText(current)
        self.named_combo.setCurrentIndex(max(0, i))
        self.named_combo.blockSignals(False)

    def _persist_store(self) -> None:
        if not self._store_loaded:
            return
        self._store_version += 1
        snapshot = FilterStore(self.store.path)
        snapshot.filters = dict(self.store.filters)
        snapshot.last = self.store.last
        version = self._store_version
        self.tasks.start(lambda _p, _c: _write_store(snapshot, version),
                         on_error=self._show_error)

    def save_named_filter(self, name: str) -> bool:
        try:
            self.store.put(name, self._spec)
        except FilterStoreError as exc:
            self._show_error(str(exc))
            return False
        self._refresh_named()
        self.named_combo.setCurrentIndex(self.named_combo.findText(name.strip()))
        self._persist_store()
        return True

    def use_named_filter(self, name: str) -> bool:
        spec = self.store.filters.get(name)
        if spec is None:
            self._show_error(f"no saved filter named {name!r}")
            return False
        return self.set_filter(spec)

    def delete_named_filter(self, name: str) -> bool:
        if not self.store.remove(name):
            return False
        self._refresh_named()
        self._persist_store()
        return True

    def _save_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save filter", "Name:")
        if ok and name.strip():
            self.save_named_filter(name)

    # ================================================================== jump
    def _jump_from_field(self) -> None:
        try:
            kind, a, b = parse_jump(self.jump_edit.text())
        except ValueError as exc:
            self._show_error(str(exc))
            return
        if kind == "offset":
            self.jump_to_offset(a, b)
        else:
            self.jump_to_time(a)

    def _new_epoch(self) -> int:
        self._next_epoch = max(self._next_epoch, self._epoch) + 1
        return self._next_epoch

    @Slot(int)
    def jump_to_time(self, ts_ms: int) -> None:
        """Re-read every partition from its first message at or after ``ts_ms``."""
        if self._worker is None:
            self._show_error("the live tail is not running")
            return
        self.set_follow(False)
        self._worker.request("seek_time", int(ts_ms), self._new_epoch())

    @Slot(int, int)
    def jump_to_offset(self, partition: int, offset: int) -> None:
        """Re-read ``partition`` from ``offset`` (others from their end); select that row."""
        if self._worker is None:
            self._show_error("the live tail is not running")
            return
        self.set_follow(False)
        self._pending_select = (int(partition), int(offset))
        self._worker.request("seek_offset", int(partition), int(offset), self._new_epoch())

    @Slot(str)
    def restart(self, where: str = "latest") -> None:
        """Back to live (``latest``) or to the start of the topic (``earliest``)."""
        if self._worker is None:
            return
        self._pending_select = None
        self.set_follow(True)
        self._worker.request("restart", where, self._new_epoch())

    def _try_select_pending(self) -> None:
        p, o = self._pending_select
        seq = self.ring.find_offset(p, o)
        if seq is None:
            return
        self._pending_select = None
        row = self.model.row_of_seq(seq)
        if row is None:  # hidden by the filter: show it in the details pane anyway
            self._show_details(seq)
            return
        idx = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)

    # ================================================================== details
    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._show_details(self.model.seq_at(current.row()))

    def _show_details(self, seq: int | None) -> None:
        self._detail_seq = seq
        self.delta_label.clear()
        enabled = seq is not None and seq >= self.ring.head
        self.delta_button.setEnabled(enabled)
        self.sql_button.setEnabled(enabled)
        if not enabled:
            self.details.clear()
            self.lineage_label.setText("Select a row to see the whole event and its lineage.")
            return
        ev = self.ring.event(seq)
        slot = seq % self.ring.capacity
        part = int(self.ring.cols["partition"][slot])
        off = int(self.ring.cols["offset"][slot])
        self.details.setPlainText(
            orjson.dumps(ev, option=orjson.OPT_INDENT_2).decode("utf-8", "replace"))
        self.lineage_label.setText(
            f"Kafka topic <b>{self.ring.topic}</b>, partition <b>{part}</b>, offset "
            f"<b>{off}</b> · event time {format_ts(int(self.ring.cols['ts'][slot]))} UTC")

    def selected_details(self) -> dict[str, Any] | None:
        """The event shown in the details pane with its Kafka lineage (None if none)."""
        seq = self._detail_seq
        if seq is None or seq < self.ring.head:
            return None
        slot = seq % self.ring.capacity
        return {"event": self.ring.event(seq), "kafka_topic": self.ring.topic,
                "kafka_partition": int(self.ring.cols["partition"][slot]),
                "kafka_offset": int(self.ring.cols["offset"][slot])}

    def lookup_delta_version(self, seq: int | None = None) -> bool:
        """Find the selected row in the Delta ``logs`` table on a worker (``lineage_ready``)."""
        seq = self._detail_seq if seq is None else seq
        if seq is None or seq < self.ring.head:
            return False
        slot = seq % self.ring.capacity
        part = int(self.ring.cols["partition"][slot])
        off = int(self.ring.cols["offset"][slot])
        path = self.settings.table_path(TABLE_LOGS)
        topic = self.ring.topic
        self.delta_label.setText("Looking up the Delta table…")

        def done(result: DeltaLineage) -> None:
            if self._detail_seq == seq:
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
        seq = self._detail_seq if seq is None else seq
        if seq is None or seq < self.ring.head:
            return None
        rec = self.ring.record(seq)
        slot = seq % self.ring.capacity
        sql = query_for_row(int(self.ring.cols["ts"][slot]), rec["source"], rec["endpoint"])
        self.open_in_sql.emit(sql)
        return sql

    # ================================================================== export / copy
    def selected_seqs(self) -> np.ndarray:
        view = self.model.view()
        parts = []
        for rng in self.table.selectionModel().selection():
            parts.append(view[rng.top():rng.bottom() + 1])
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))

    def _export_dialog(self, scope: str, fmt: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export rows", str(Path.home() / f"lakewatch-logs.{fmt}"),
            "CSV (*.csv)" if fmt == "csv" else "JSON lines (*.jsonl)")
        if path:
            if scope == "view":
                self.export_view(path, fmt)
            else:
                self.export_selection(path, fmt)

    def export_view(self, path: str | Path, fmt: str) -> bool:
        return self._export(self.model.view(), path, fmt)

    def export_selection(self, path: str | Path, fmt: str) -> bool:
        return self._export(self.selected_seqs(), path, fmt)

    def _export(self, seqs: np.ndarray, path: str | Path, fmt: str) -> bool:
        if self._export_task is not None:
            self._show_error("an export is already running")
            return False
        ring = self.ring
        self.progress.setRange(0, max(1, len(seqs)))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()

        def done(result: ExportResult) -> None:
            self._export_finished()
            msg = f"Exported {result.written:,} rows to {result.path}"
            if result.evicted:
                msg += (f"; {result.evicted:,} rows had left the buffer before they could "
                        "be written")
            self.counters.setToolTip(msg)
            self.export_finished.emit(result)

        def failed(message: str) -> None:
            self._export_finished()
            self._show_error(f"export failed: {message}")

        self._export_task = self.tasks.start(
            lambda progress, cancel: export_rows(ring, seqs, path, fmt, progress, cancel),
            on_done=done, on_error=failed,
            on_progress=lambda d, t: self.progress.setValue(d))
        return True

    def _export_finished(self) -> None:
        self._export_task = None
        self.progress.hide()
        self.cancel_button.hide()

    def cancel_export(self) -> None:
        if self._export_task is not None:
            self._export_task.cancel.set()

    def copy_selection(self) -> None:
        seqs = self.selected_seqs()
        if not len(seqs):
            return
        ring = self.ring
        self.tasks.start(lambda _p, _c: rows_as_tsv(ring, seqs),
                         on_done=lambda text: QGuiApplication.clipboard().setText(text),
                         on_error=self._show_error)

    # ================================================================== status
    def _show_error(self, message: str) -> None:
        log.warning("live log stream: %s", message)
        self.filter_error.setText(message)
        self.filter_error.setVisible(True)
        self.error.emit(message)

    def counts(self) -> dict[str, int]:
        return {"shown": self.model.rowCount(), "buffered": len(self.ring),
                "evicted": self.ring.evicted_total, "dropped": self.queue.dropped}

    def _update_counters(self) -> None:
        c = self.counts()
        s = self._stats
        parts = [f"showing <b>{c['shown']:,}</b> of {c['buffered']:,} buffered "
                 f"(max {self.ring.capacity:,})"]
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
        elif self._thread is None:
            parts.append("not connected")
        self.counters.setText(" · ".join(parts))


__all__ = ["COL_MESSAGE", "LogStreamWidget"]
