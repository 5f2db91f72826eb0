"""The Qt side of the Kafka tail: ``TailWorker`` runs a ``kafka_tail.TailLoop`` on a QThread.

Everything that does not need Qt (the consumer, seeking, decoding, the bounded
``BatchQueue``, the poll/flush loop) is in ``kafka_tail``; this module only turns the loop's
callbacks into signals for the GUI thread. The ``kafka_tail`` names stay importable from here.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.logstream.kafka_tail import (
    FLUSH_INTERVAL_S,
    METADATA_REFRESH_S,
    OFFSET_END,
    POLL_MAX,
    BatchQueue,
    KafkaTail,
    Position,
    TailError,
    TailLoop,
    unique_group,
)
from desktop_app.logstream.vocab import Vocabs
from pipeline.settings import Settings


class TailWorker(QObject):
    """Runs ``KafkaTail`` on its thread; commands arrive through ``request`` (thread-safe)."""

    batchesReady = Signal()
    assigned = Signal(int, object)      # epoch, {partition: offset}
    stats = Signal(dict)                # events_per_s, lag, dropped, paused, state
    failed = Signal(str)                # a request or the consumer failed (message)
    finished = Signal()

    def __init__(self, settings: Settings, vocabs: Vocabs, out: BatchQueue,
                 start: str | None = None) -> None:
        super().__init__()
        self.loop = TailLoop(settings, vocabs, out, start,
                             on_batches=lambda: self.batchesReady.emit(),
                             on_assigned=lambda epoch, offsets: self.assigned.emit(epoch,
                                                                                   offsets),
                             on_stats=lambda stats: self.stats.emit(stats),
                             on_failed=lambda message: self.failed.emit(message))
        self.settings = settings
        self.vocabs = vocabs
        self.out = out
        self.start_at = self.loop.start_at

    @property
    def epoch(self) -> int:
        return self.loop.epoch

    @property
    def received(self) -> int:
        return self.loop.received

    def request(self, *command: Any) -> None:
        """("seek_time", ms, epoch) | ("seek_offset", p, o, epoch) | ("restart", where,
        epoch) | ("pause", bool)."""
        self.loop.request(*command)

    def stop(self) -> None:
        self.loop.stop()

    @Slot()
    def run(self) -> None:
        try:
            self.loop.run()
        finally:
            self.finished.emit()


__all__ = ["FLUSH_INTERVAL_S", "METADATA_REFRESH_S", "OFFSET_END", "POLL_MAX", "BatchQueue",
           "KafkaTail", "Position", "TailError", "TailLoop", "TailWorker", "unique_group"]
