"""``SavedFilters``: the named-filter file (``filter_store.FilterStore``) read and written on
the thread pool, so that the GUI thread never waits for the disk.

Writes are snapshots numbered in order; a snapshot never overwrites a newer one that was
written first, and nothing is written until the file has been read (a file that could not
be read is never overwritten).
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from desktop_app.logstream.filter_store import FilterStore
from desktop_app.logstream.filters import FilterSpec
from desktop_app.logstream.tasks import TaskRunner

_STORE_LOCK = threading.Lock()
_STORE_WRITTEN = {"version": 0}


def _write_store(store: FilterStore, version: int) -> None:
    """Write the filters file unless a newer snapshot was written already."""
    with _STORE_LOCK:
        if version < _STORE_WRITTEN["version"]:
            return
        store.save()
        _STORE_WRITTEN["version"] = version


class SavedFilters(QObject):
    """Owns ``store``; ``ready(store)`` once it is loaded, ``failed(message)`` if a load or a
    write failed. ``put``/``remove`` change the store in memory (then ``persist``)."""

    ready = Signal(object)      # FilterStore
    failed = Signal(str)

    def __init__(self, store: FilterStore, tasks: TaskRunner,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.tasks = tasks
        self.loaded = False
        self._version = 0

    def load(self) -> None:
        store = self.store

        def load(_p, _c):
            return store.load()

        self.tasks.start(load, on_done=self._loaded, on_error=self._load_failed)

    def _loaded(self, store: FilterStore) -> None:
        self.loaded = True
        self.ready.emit(store)

    def _load_failed(self, message: str) -> None:
        self.loaded = False  # never overwrite a file we could not read
        self.failed.emit(message)

    @property
    def names(self) -> list[str]:
        return sorted(self.store.filters)

    def get(self, name: str) -> FilterSpec | None:
        return self.store.filters.get(name)

    def put(self, name: str, spec: FilterSpec) -> None:
        """Raises ``FilterStoreError`` for an invalid name."""
        self.store.put(name, spec)

    def remove(self, name: str) -> bool:
        return self.store.remove(name)

    def set_last(self, spec: FilterSpec) -> None:
        self.store.last = spec

    def persist(self) -> None:
        """Write a snapshot of the store on the thread pool (once it has been loaded)."""
        if not self.loaded:
            return
        self._version += 1
        snapshot = FilterStore(self.store.path)
        snapshot.filters = dict(self.store.filters)
        snapshot.last = self.store.last
        version = self._version
        self.tasks.start(lambda _p, _c: _write_store(snapshot, version),
                         on_error=lambda message: self.failed.emit(message))
