"""Run a function on Qt's global thread pool and get its result back on the GUI thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)


class Task(QRunnable):
    """``fn(progress, cancel)`` on a pool thread; signals arrive on the receiver's thread."""

    def __init__(self, fn: Callable[[Callable[[int, int], None], threading.Event], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()
        self.cancel = threading.Event()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            result = self.fn(self.signals.progress.emit, self.cancel)
        except Exception as exc:  # reported to the GUI, which shows it
            log.debug("task failed", exc_info=True)
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}" if not str(exc)
                                     else str(exc))
        else:
            self.signals.done.emit(result)


class TaskRunner(QObject):
    """Keeps running tasks alive until they finish; ``wait`` for clean shutdown/tests."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool.globalInstance()
        self._running: set[Task] = set()

    def start(self, fn, on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> Task:
        task = Task(fn)
        self._running.add(task)
        if on_done is not None:
            task.signals.done.connect(on_done)
        if on_error is not None:
            task.signals.failed.connect(on_error)
        if on_progress is not None:
            task.signals.progress.connect(on_progress)
        task.signals.done.connect(lambda _r, t=task: self._running.discard(t))
        task.signals.failed.connect(lambda _e, t=task: self._running.discard(t))
        self.pool.start(task)
        return task

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel.set()

    @property
    def busy(self) -> bool:
        return bool(self._running)
