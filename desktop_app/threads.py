"""The app's one pattern for background work: a QObject worker living on its own QThread.

The GUI talks to the worker only through queued signals (connect them before or after
``start_worker_thread``: Qt picks the queued connection when the signal is emitted).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, SignalInstance


def start_worker_thread(
    owner: QObject,
    worker: QObject,
    name: str,
    *,
    run: Callable[[], None] | None = None,
    done: SignalInstance | None = None,
    delete_worker: bool = True,
) -> QThread:
    """Move ``worker`` to a new thread named ``name`` (a child of ``owner``) and start it.

    ``run`` is called on the thread when it starts (a worker with its own loop); ``done``,
    a signal of the worker, ends the thread's event loop; ``delete_worker`` deletes the
    worker on its thread once the thread has finished.
    """
    thread = QThread(owner)
    thread.setObjectName(name)
    worker.moveToThread(thread)
    if run is not None:
        thread.started.connect(run)
    if done is not None:
        done.connect(thread.quit)
    if delete_worker:
        thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


def stop_worker_thread(thread: QThread, timeout_ms: int) -> bool:
    """End ``thread``'s event loop and wait up to ``timeout_ms``; False if it is still running."""
    thread.quit()
    return thread.wait(timeout_ms)
