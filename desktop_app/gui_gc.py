"""Keep Python's cyclic garbage collection on the GUI thread while a GUI runs.

The collector runs in whichever thread happens to allocate past a threshold. When that is
a worker (Spark starting up, the Kafka tail, a Delta read), it destroys the GUI thread's
Qt objects there; their timers stay registered and later fire on freed memory (the
segfaults and hangs the window tests hit while Spark started in the background). So while
a GUI runs, automatic collection is off and pyqtgraph's GarbageCollector collects on a
GUI-thread timer instead.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

_collector: GarbageCollector | None = None


def collect_on_gui_thread(interval_s: float = 1.0) -> None:
    """Idempotent; needs a QApplication (the timer runs on its event loop)."""
    global _collector
    if _collector is None:
        _collector = GarbageCollector(interval=interval_s)


def restore_automatic_gc() -> None:
    """Back to Python's default (tests that end their GUI part)."""
    global _collector
    if _collector is not None:
        _collector.timer.stop()
        _collector = None
        gc.enable()
        gc.collect()
