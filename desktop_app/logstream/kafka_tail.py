"""The Kafka side of the live view, without Qt: the consumer and the loop that runs it.

``KafkaTail`` holds the consumer logic: a unique consumer group per app instance, no offset
commits, manual assignment of all partitions (new ones are picked up), starting at the end
(or the beginning), seeking to a time or an offset. ``TailLoop`` runs it on one thread: it
decodes there and hands batches to the GUI through a bounded ``BatchQueue`` at most ~30
times a second; when the GUI falls behind the oldest queued rows are dropped and counted, so
memory stays bounded and loss is always visible. It reports through plain callbacks;
``tail.TailWorker`` turns them into Qt signals.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from desktop_app.logstream.decode import EventBatch, decode_records
from desktop_app.logstream.vocab import Vocabs
from pipeline.kafka_config import consumer_config
from pipeline.settings import Settings

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1 / 30
POLL_MAX = 5000
METADATA_REFRESH_S = 10.0


def unique_group() -> str:
    return f"lakewatch-ui-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class BatchQueue:
    """Thread-safe FIFO of batches bounded in rows; overflow drops the oldest rows."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max(1, max_rows)
        self._items: deque[EventBatch] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, batch: EventBatch) -> bool:
        """Add ``batch``; True if the queue was empty (the reader should be woken)."""
        with self._lock:
            was_empty = not self._items
            if len(batch) > self.max_rows:
                self.dropped += len(batch) - self.max_rows
                batch = batch.tail(self.max_rows)
            self._items.append(batch)
            self._rows += len(batch)
            while self._rows > self.max_rows and len(self._items) > 1:
                old = self._items.popleft()
                self._rows -= len(old)
                self.dropped += len(old)
            return was_empty

    def drain(self) -> list[EventBatch]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._rows = 0
            return items

    def __len__(self) -> int:
        return self._rows


class TailError(RuntimeError):
    """A seek or assignment request that cannot be honoured; the message says why."""


@dataclass
class Position:
    partition: int
    offset: int


class KafkaTail:
    """One consumer over all partitions of ``settings.kafka.topic`` (manual assignment)."""

    def __init__(self, settings: Settings, vocabs: Vocabs, group: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.topic = settings.kafka.topic
        self.vocabs = vocabs
        self.group = group or unique_group()
        self.timeout_s = timeout_s
        self.consumer = Consumer(consumer_config(
            settings, self.group, **{"enable.auto.offset.store": False,
                                     "enable.partition.eof": False,
                                     "fetch.wait.max.ms": 20,
                                     "client.id": self.group,
                                     "logger": log}))
        self.assignment: dict[int, int] = {}
        self.paused = False

    def partitions(self, timeout_s: float | None = None) -> list[int]:
        md = self.consumer.list_topics(self.topic, timeout=timeout_s or self.timeout_s)
        t = md.topics.get(self.topic)
        if t is None or t.error is not None or not t.partitions:
            return []
        return sorted(t.partitions)

    def watermarks(self, partition: int) -> tuple[int, int]:
        return self.consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), timeout=self.timeout_s)

    def _assign(self, offsets: dict[int, int]) -> dict[int, int]:
        self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in offsets.items()])
        self.assignment = dict(offsets)
        if self.paused:
            self.consumer.pause(self.consumer.assignment())
        return self.assignment

    def start(self, where: str = "latest") -> dict[int, int]:
        """Assign every partition at its end (``latest``) or start (``earliest``), resolved
        to concrete offsets so that everything produced after this returns is seen."""
        parts = self.partitions(timeout_s=2.0)  # short: shutdown waits for this call
        if not parts:
            return {}
        offsets = {}
        for p in parts:
            lo, hi = self.watermarks(p)
            offsets[p] = hi if where == "latest" else lo
        return self._assign(offsets)

    def add_new_partitions(self) -> list[int]:
        new = [p for p in self.partitions() if p not in self.assignment]
        if new:
            tps = [TopicPartition(self.topic, p, self.watermarks(p)[0]) for p in new]
            self.consumer.incremental_assign(tps)
            for tp in tps:
                self.assignment[tp.partition] = tp.offset
        return new

    def seek_time(self, ts_ms: int) -> dict[int, int]:
        """Every partition at its first message with timestamp >= ts_ms (end if none)."""
        parts = self.partitions()
        if not parts:
            raise TailError(f"topic {self.topic!r} has no partitions yet")
        found = self.consumer.offsets_for_times(
            [TopicPartition(self.topic, p, int(ts_ms)) for p in parts], timeout=self.timeout_s)
        offsets = {}
        for tp in found:
            offsets[tp.partition] = tp.offset if tp.offset >= 0 else self.watermarks(
                tp.partition)[1]
        return self._assign(offsets)

    def seek_offset(self, partition: int, offset: int) -> dict[int, int]:
        """``partition`` at ``offset``; the other partitions continue from their end."""
        parts = self.partitions()
        if partition not in parts:
            raise TailError(f"topic {self.topic!r} has no partition {partition} "
                            f"(partitions: {parts})")
        lo, hi = self.watermarks(partition)
        if not lo <= offset < hi:
            raise TailError(f"offset {offset} is outside partition {partition}'s range "
                            f"[{lo}, {hi})")
        offsets = {p: self.watermarks(p)[1] for p in parts if p != partition}
        offsets[partition] = offset
        return self._assign(offsets)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        tps = self.consumer.assignment()
        if tps:
            (self.consumer.pause if paused else self.consumer.resume)(tps)

    def poll(self, timeout: float = 0.05, epoch: int = 0) -> tuple[EventBatch | None, str | None]:
        """Up to POLL_MAX records decoded; plus the last consumer error text, if any."""
        msgs = self.consumer.consume(num_messages=POLL_MAX, timeout=timeout)
        if not msgs:
            return None, None
        records = []
        error = None
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    error = str(err)
                continue
            records.append((m.value(), m.headers(), m.partition(), m.offset(),
                            m.timestamp()[1]))
        if not records:
            return None, error
        return decode_records(records, self.vocabs, epoch), error

    def lag(self) -> int | None:
        """Messages behind the high watermarks (from the last fetch; no broker round trip)."""
        try:
            positions = self.consumer.position(self.consumer.assignment())
        except KafkaException:
            return None
        total = 0
        for tp in positions:
            try:
                _, hi = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                return None
            if hi < 0 or tp.offset < 0:
                continue
            total += max(0, hi - tp.offset)
        return total

    def close(self) -> None:
        self.consumer.close()


class TailLoop:
    """Runs ``KafkaTail`` on the calling thread until ``stop``; commands arrive through
    ``request`` (thread-safe), results leave through the callbacks (called on that thread):
    ``on_batches()`` when ``out`` became non-empty, ``on_assigned(epoch, {partition: offset})``,
    ``on_stats(dict)`` and ``on_failed(message)``."""

    def __init__(self, settings: Settings, vocabs: Vocabs, out: BatchQueue,
                 start: str | None = None, *,
                 on_batches: Callable[[], None],
                 on_assigned: Callable[[int, dict[int, int]], None],
                 on_stats: Callable[[dict[str, Any]], None],
                 on_failed: Callable[[str], None]) -> None:
        self.settings = settings
        self.vocabs = vocabs
        self.out = out
        self.start_at = start or settings.app.live_start
        self.on_batches = on_batches
        self.on_assigned = on_assigned
        self.on_stats = on_stats
        self.on_failed = on_failed
        self._commands: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.epoch = 0
        self.received = 0

    def request(self, *command: Any) -> None:
        """("seek_time", ms, epoch) | ("seek_offset", p, o, epoch) | ("restart", where,
        epoch) | ("pause", bool)."""
        self._commands.put(command)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        tail = None
        try:
            tail = KafkaTail(self.settings, self.vocabs)
            self._loop(tail)
        except Exception as exc:  # keep the GUI informed; never die silently
            log.exception("live tail failed")
            self.on_failed(f"live tail stopped: {exc}")
        finally:
            if tail is not None:
                try:
                    tail.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the live tail consumer: %s", exc)

    def _loop(self, tail: KafkaTail) -> None:
        pending: list[EventBatch] = []
        last_flush = last_stats = last_meta = time.monotonic()
        count_since = 0
        state = "connecting"
        started = False
        last_error: str | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if not started:
                try:
                    offsets = tail.start(self.start_at)
                except KafkaException as exc:
                    offsets, last_error = {}, str(exc)
                if offsets:
                    started, state = True, "live"
                    last_meta = now
                    self.on_assigned(self.epoch, offsets)
                else:
                    state = f"waiting for topic {tail.topic!r}"
                    self._emit_stats(0.0, None, state, last_error, tail)
                    self._stop.wait(1.0)
                    continue
            while True:
                try:
                    cmd = self._commands.get_nowait()
                except queue.Empty:
                    break
                pending = self._command(tail, cmd, pending)
            batch, err = tail.poll(0.02, self.epoch)
            if err:
                last_error = err
            if batch is not None:
                pending.append(batch)
                self.received += len(batch)
                count_since += len(batch)
            now = time.monotonic()
            if pending and now - last_flush >= FLUSH_INTERVAL_S:
                if self.out.put(EventBatch.concat(pending)):
                    self.on_batches()
                pending = []
                last_flush = now
            if now - last_meta >= METADATA_REFRESH_S:
                last_meta = now
                try:
                    if tail.add_new_partitions():
                        self.on_assigned(self.epoch, dict(tail.assignment))
                except KafkaException as exc:
                    last_error = str(exc)
            if now - last_stats >= 1.0:
                rate = count_since / (now - last_stats)
                self._emit_stats(rate, tail.lag(), "paused" if tail.paused else state,
                                 last_error, tail)
                count_since, last_stats = 0, now

    def _emit_stats(self, rate: float, lag: int | None, state: str, error: str | None,
                    tail: KafkaTail) -> None:
        self.on_stats({"events_per_s": rate, "lag": lag, "dropped": self.out.dropped,
                       "state": state, "last_error": error, "received": self.received,
                       "topic": tail.topic})

    def _command(self, tail: KafkaTail, cmd: tuple[Any, ...],
                 pending: list[EventBatch]) -> list[EventBatch]:
        kind = cmd[0]
        try:
            if kind == "pause":
                tail.set_paused(bool(cmd[1]))
                return pending
            if kind == "seek_time":
                offsets = tail.seek_time(int(cmd[1]))
                epoch = cmd[2]
            elif kind == "seek_offset":
                offsets = tail.seek_offset(int(cmd[1]), int(cmd[2]))
                epoch = cmd[3]
            elif kind == "restart":
                offsets = tail.start(str(cmd[1]))
                epoch = cmd[2]
            else:
                raise TailError(f"unknown command {kind!r}")
        except (TailError, KafkaException) as exc:
            self.on_failed(str(exc))
            return pending
        self.epoch = epoch
        self.on_assigned(epoch, offsets)
        return []  # rows read before the seek belong to the old view


__all__ = ["OFFSET_END", "BatchQueue", "KafkaTail", "Position", "TailError", "TailLoop",
           "unique_group"]
