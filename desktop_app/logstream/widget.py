"""``LogStreamWidget``: the live log table with filters, details, jump, export, Open in SQL.

This module wires the parts together, runs the Kafka worker and paces the model updates;
the parts are ``toolbar`` (``StreamToolbar``: follow/pause/jump/counters; ``FilterBar``:
filter controls and saved filters), ``filtering`` (``FilterController``: the current spec,
evaluated off the GUI thread), ``saved_filters`` (the filters file), ``details``
(``DetailsPane``: the event, its lineage, Open in SQL), ``export_actions``
(``ExportControls``: export menu/progress, copy) and ``table`` (``LiveTableView``).

Threads: the Kafka consumer runs in ``TailWorker`` on its own QThread; filtering a full
buffer, export, copy, Delta lookups and filter-file I/O run on the thread pool (``Task``).
The GUI thread only appends decoded batches (vectorized) and paints the visible rows.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QSplitter, QVBoxLayout, QWidget

from desktop_app.logstream.columns import COL_MESSAGE
from desktop_app.logstream.decode import EventBatch
from desktop_app.logstream.details import DetailsPane
from desktop_app.logstream.export import ExportResult
from desktop_app.logstream.export_actions import ExportControls, describe_export
from desktop_app.logstream.filter_store import FilterStore
from desktop_app.logstream.filtering import FilterController
from desktop_app.logstream.filters import FilterError, FilterSpec, evaluate
from desktop_app.logstream.model import LogTableModel
from desktop_app.logstream.ring import LogRing
from desktop_app.logstream.saved_filters import SavedFilters
from desktop_app.logstream.table import build_log_table
from desktop_app.logstream.tail import BatchQueue, TailWorker
from desktop_app.logstream.tasks import TaskRunner
from desktop_app.logstream.toolbar import FilterBar, StreamToolbar, counters_html
from desktop_app.logstream.vocab import Vocabs
from desktop_app.threads import start_worker_thread, stop_worker_thread
from pipeline.settings import Settings

log = logging.getLogger(__name__)

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
        self.saved = SavedFilters(FilterStore.for_settings(settings), self.tasks, self)
        self.store = self.saved.store
        self._epoch = 0
        self._next_epoch = 0
        self._follow = True
        self._paused = False
        self._stats: dict[str, Any] = {}
        self._pending_select: tuple[int, int] | None = None
        self._thread: QThread | None = None
        self._worker: TailWorker | None = None
        self._next_ingest_at = 0.0
        self._drain_timer = QTimer(self)
        self._drain_timer.setSingleShot(True)
        self._drain_timer.timeout.connect(self._drain)
        self._build_ui()
        self._counter_timer = QTimer(self)
        self._counter_timer.setInterval(250)
        self._counter_timer.timeout.connect(self._update_counters)
        self._counter_timer.start()
        self.saved.load()
        if autostart:
            self.start()

    # ================================================================== UI construction
    def _build_ui(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        # -- toolbar: follow / pause / jump / counters / export
        self.toolbar = StreamToolbar()
        self.toolbar.follow_box.toggled.connect(self.set_follow)
        self.toolbar.pause_button.toggled.connect(self.set_paused)
        self.toolbar.jumpToOffset.connect(lambda p, o: self.jump_to_offset(p, o))
        self.toolbar.jumpToTime.connect(lambda ms: self.jump_to_time(ms))
        self.toolbar.jumpFailed.connect(self._show_error)
        self.toolbar.liveRequested.connect(lambda: self.restart("latest"))
        self.exporter = ExportControls(self.ring, self.tasks, self.model.view,
                                       self.selected_seqs)
        self.exporter.finished.connect(self._on_export_finished)
        self.exporter.failed.connect(self._show_error)
        self.toolbar.add_trailing(self.exporter)
        root.addWidget(self.toolbar)

        # -- filter bar (with saved filters) and the error line
        self.filter_bar = FilterBar()
        self.filtering = FilterController(self.ring, self.tasks, self.filter_bar, self.saved,
                                          self)
        self.filtering.matched.connect(self._filter_done)
        self.filtering.error.connect(self._show_error)
        root.addWidget(self.filter_bar)

        # -- table + details
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = build_log_table(self.model, self.fontMetrics().height() + 4)
        self.table.verticalScrollBar().actionTriggered.connect(self._user_scrolled)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        split.addWidget(self.table)
        self.details_pane = DetailsPane(self.ring, self.settings, self.tasks)
        self.details_pane.open_in_sql.connect(self.open_in_sql)
        self.details_pane.lineage_ready.connect(self.lineage_ready)
        self.details_pane.error.connect(self.error)
        split.addWidget(self.details_pane)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)

        # The parts' widgets that callers and tests use, under their old names.
        self.follow_box, self.pause_button = self.toolbar.follow_box, self.toolbar.pause_button
        self.counters = self.toolbar.counters
        self.named_combo, self.time_label = self.filter_bar.named_combo, self.filter_bar.time_label
        self.filter_error = self.filter_bar.filter_error
        self.details = self.details_pane.details
        self.lineage_label = self.details_pane.lineage_label
        self.sql_button = self.details_pane.sql_button

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
        self._worker = TailWorker(self.settings, self.vocabs, self.queue, where)
        self._worker.batchesReady.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self._worker.assigned.connect(self._on_assigned)
        self._worker.stats.connect(self._on_stats)
        self._worker.failed.connect(self._on_worker_failed)
        self._thread = start_worker_thread(self, self._worker, "logstream-tail",
                                           run=self._worker.run, done=self._worker.finished,
                                           delete_worker=False)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the consumer thread and cancel running exports (the main window calls this)."""
        self._counter_timer.stop()
        self.tasks.cancel_all()
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None and not stop_worker_thread(self._thread, timeout_ms):
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
            return evaluate(self.filtering.spec, self.ring, start, stop)
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
        return self.filtering.spec

    def set_filter(self, spec: FilterSpec, persist: bool = True) -> bool:
        """Show only rows matching ``spec`` (evaluated on a worker; ``filter_applied`` when
        done). Returns False (and shows why) if the spec is invalid."""
        return self.filtering.set_filter(spec, persist)

    def _filter_done(self, tail: int, seqs: np.ndarray) -> None:
        seqs = seqs[seqs >= self.ring.head]
        newer = self.model.view()
        newer = newer[newer >= tail]
        current = self._detail_seq
        self.model.set_view(np.concatenate([seqs, newer]))
        if current is not None:
            row = self.model.row_of_seq(current)
            if row is not None:
                self.table.select_row(row)
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
        self.filter_bar.focus_text()

    # ================================================================== named filters
    @property
    def _store_loaded(self) -> bool:
        return self.saved.loaded

    def save_named_filter(self, name: str) -> bool:
        return self.filtering.save_named(name)

    def use_named_filter(self, name: str) -> bool:
        return self.filtering.use_named(name)

    def delete_named_filter(self, name: str) -> bool:
        return self.filtering.delete_named(name)

    # ================================================================== jump
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
        idx = self.table.select_row(row)
        self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)

    # ================================================================== details
    @property
    def _detail_seq(self) -> int | None:
        return self.details_pane.seq

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._show_details(self.model.seq_at(current.row()))

    def _show_details(self, seq: int | None) -> None:
        self.details_pane.show_seq(seq)

    def selected_details(self) -> dict[str, Any] | None:
        """The event shown in the details pane with its Kafka lineage (None if none)."""
        return self.details_pane.selected_details()

    def lookup_delta_version(self, seq: int | None = None) -> bool:
        """Find the selected row in the Delta ``logs`` table on a worker (``lineage_ready``)."""
        return self.details_pane.lookup_delta_version(seq)

    def request_sql(self, seq: int | None = None) -> str | None:
        """Emit ``open_in_sql`` with a query for the row's source/endpoint around its time."""
        return self.details_pane.request_sql(seq)

    # ================================================================== export / copy
    def selected_seqs(self) -> np.ndarray:
        return self.table.selected_seqs()

    def export_view(self, path: str | Path, fmt: str) -> bool:
        return self.exporter.export(self.model.view(), path, fmt)

    def export_selection(self, path: str | Path, fmt: str) -> bool:
        return self.exporter.export(self.selected_seqs(), path, fmt)

    def _on_export_finished(self, result: ExportResult) -> None:
        self.counters.setToolTip(describe_export(result))
        self.export_finished.emit(result)

    def cancel_export(self) -> None:
        self.exporter.cancel()

    def copy_selection(self) -> None:
        self.exporter.copy(self.selected_seqs())

    # ================================================================== status
    def _show_error(self, message: str) -> None:
        log.warning("live log stream: %s", message)
        self.filter_bar.show_error(message)
        self.error.emit(message)

    def counts(self) -> dict[str, int]:
        return {"shown": self.model.rowCount(), "buffered": len(self.ring),
                "evicted": self.ring.evicted_total, "dropped": self.queue.dropped}

    def _update_counters(self) -> None:
        self.counters.setText(counters_html(self.counts(), self.ring.capacity, self._stats,
                                            connected=self._thread is not None))


__all__ = ["COL_MESSAGE", "LogStreamWidget"]
