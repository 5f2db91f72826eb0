"""``FilterController``: the live view's current filter and its saved filters.

The spec is evaluated over the buffered rows on the thread pool (``filters.evaluate``); the
result arrives as ``matched`` unless a newer spec was set meanwhile. The controller keeps the
``FilterBar`` showing the spec, turns the bar's edits into specs, and remembers the last spec
and the named ones in ``SavedFilters``. ``LogStreamWidget`` applies ``matched`` to its view
and filters newly ingested rows with ``spec``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop_app.logstream.filter_store import FilterStore, FilterStoreError
from desktop_app.logstream.filters import FilterError, FilterSpec, evaluate
from desktop_app.logstream.ring import LogRing
from desktop_app.logstream.saved_filters import SavedFilters
from desktop_app.logstream.tasks import TaskRunner
from desktop_app.logstream.toolbar import FilterBar


class FilterController(QObject):
    """``spec`` over ``ring``, edited through ``bar``, remembered in ``saved``."""

    matched = Signal(int, object)   # ring tail when evaluated, matching seqs (np.ndarray)
    error = Signal(str)             # anything but an invalid spec (shown in the bar itself)

    def __init__(self, ring: LogRing, tasks: TaskRunner, bar: FilterBar, saved: SavedFilters,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ring = ring
        self.tasks = tasks
        self.bar = bar
        self.saved = saved
        self.spec = FilterSpec()
        self.gen = 0
        bar.edited.connect(self._from_ui)
        bar.timeCleared.connect(self._clear_time)
        bar.namedChosen.connect(self.use_named)
        bar.saveRequested.connect(self.save_named)
        bar.deleteRequested.connect(self.delete_named)
        saved.ready.connect(self._store_ready)
        saved.failed.connect(self.error)

    # ------------------------------------------------------------------ the spec
    def set_filter(self, spec: FilterSpec, persist: bool = True) -> bool:
        """Evaluate ``spec`` on a worker (``matched`` when done). Returns False (and shows
        why in the bar) if the spec is invalid."""
        try:
            spec.validate()
        except FilterError as exc:
            self.bar.show_filter_error(str(exc))
            return False
        self.bar.show_filter_error("")
        self.spec = spec
        self.gen += 1
        gen = self.gen
        head, tail = self.ring.head, self.ring.tail
        ring = self.ring
        self.bar.sync(spec)
        self.tasks.start(lambda _p, _c: evaluate(spec, ring, head, tail),
                         on_done=lambda seqs: self._done(gen, tail, seqs),
                         on_error=self.bar.show_filter_error)
        if persist:
            self.saved.set_last(spec)
            self.saved.persist()
        return True

    def _done(self, gen: int, tail: int, seqs: np.ndarray) -> None:
        if gen == self.gen:
            self.matched.emit(tail, seqs)

    def _from_ui(self) -> None:
        try:
            spec = self.bar.spec_from_ui(self.spec)
        except FilterError as exc:
            self.bar.show_filter_error(str(exc))
            return
        if spec != self.spec:
            self.set_filter(spec)

    def _clear_time(self) -> None:
        d = self.spec.to_dict()
        d.update(start_ms=None, end_ms=None)
        self.set_filter(FilterSpec.from_dict(d))

    # ------------------------------------------------------------------ saved filters
    def _store_ready(self, store: FilterStore) -> None:
        self._refresh_named()
        if self.gen == 0 and not store.last.is_empty:
            self.set_filter(store.last, persist=False)

    def _refresh_named(self) -> None:
        self.bar.set_names(self.saved.names)

    def save_named(self, name: str) -> bool:
        """Save the current spec as ``name``."""
        try:
            self.saved.put(name, self.spec)
        except FilterStoreError as exc:
            self.error.emit(str(exc))
            return False
        self._refresh_named()
        self.bar.select_name(name.strip())
        self.saved.persist()
        return True

    def use_named(self, name: str) -> bool:
        spec = self.saved.get(name)
        if spec is None:
            self.error.emit(f"no saved filter named {name!r}")
            return False
        return self.set_filter(spec)

    def delete_named(self, name: str) -> bool:
        if not self.saved.remove(name):
            return False
        self._refresh_named()
        self.saved.persist()
        return True
