"""Stop-on-signal handling for long-running commands: SIGTERM (what the supervisor and the
desktop app send) and SIGINT (Ctrl+C) ask the process to stop cleanly instead of killing it.

Handlers can only be installed from the main thread; elsewhere (tests running a loop in a
thread) the helpers install nothing and the caller's stop event is just never set by a signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence

#: the signals that ask a component to stop
STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
#: the same plus SIGHUP (terminal closed) where the platform has it
STOP_SIGNALS_AND_HUP: tuple[int, ...] = STOP_SIGNALS + (
    (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


def on_signals(callback: Callable[[int], None],
               signals: Sequence[int] = STOP_SIGNALS) -> Callable[[], None]:
    """Call ``callback(signum)`` on each of ``signals``; returns ``restore()`` that puts the
    previous handlers back. A no-op (and a no-op restore) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: object) -> None:
        callback(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def set_on_signals(stop: threading.Event, signals: Sequence[int] = STOP_SIGNALS,
                   on_signal: Callable[[int], None] | None = None) -> Callable[[], None]:
    """``stop.set()`` on each of ``signals`` (after ``on_signal(signum)``, e.g. a log line);
    returns ``restore()``."""

    def callback(signum: int) -> None:
        if on_signal is not None:
            on_signal(signum)
        stop.set()

    return on_signals(callback, signals)


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[int] = STOP_SIGNALS, *,
                    stop: threading.Event | None = None,
                    on_signal: Callable[[int], None] | None = None,
                    ) -> Iterator[threading.Event]:
    """An Event set by SIGTERM/SIGINT while the block runs, so a loop can stop, flush and
    exit cleanly; the previous handlers come back afterwards."""
    stop = stop if stop is not None else threading.Event()
    restore = set_on_signals(stop, signals, on_signal)
    try:
        yield stop
    finally:
        restore()
