"""The one Kafka producer of the log sources (generator and shipper).

Wraps confluent-kafka with the pipeline's producer config (idempotence on, acks=all): a full
local queue (``BufferError``) is handled by serving delivery reports and retrying, every
delivery report is counted (sent / acked / failed), a heartbeat status file is written every
``status_interval_s``, and :meth:`LogProducer.close` flushes and prints the counts. Delivery
callbacks only run inside ``poll``/``flush``, so callers poll between batches.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.kafka_config import ensure_topic, producer_config
from pipeline.settings import Settings
from pipeline.status import write_status

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[KafkaError | None, Message], None]


class ProducerError(RuntimeError):
    """Kafka refused to take or keep our messages (fatal producer error, flush timeout)."""


class LogProducer:
    """Produce log messages to ``settings.kafka.topic`` with delivery accounting.

    ``component`` names the heartbeat file (``generator``, ``shipper``); ``status_fields``
    is called at each heartbeat for extra fields (e.g. the generator's simulated time).
    ``report_successes=False`` (the generator's hot path) asks librdkafka for error reports
    only and derives ``acked`` as sent - failed - still queued, saving a Python callback per
    message; per-message ``on_delivery`` callbacks then only fire for failures.
    """

    def __init__(self, settings: Settings, component: str = "generator",
                 topic: str | None = None, status_interval_s: float = 2.0,
                 status_fields: Callable[[], dict[str, Any]] | None = None,
                 report_successes: bool = True, **extra_conf: Any) -> None:
        self.settings = settings
        self.component = component
        self.topic = topic or settings.kafka.topic
        self.status_interval_s = status_interval_s
        self.status_fields = status_fields
        self.sent = 0
        self._acked = 0
        self._report_successes = report_successes
        self.failed = 0
        self.last_error: str | None = None
        self.fatal_error: str | None = None
        self.events_per_s = 0.0
        conf = producer_config(settings, **extra_conf)
        conf["on_delivery"] = self._on_delivery
        if not report_successes:
            conf["delivery.report.only.error"] = True
        conf["error_cb"] = self._on_error
        self._producer = Producer(conf)
        self._started = time.monotonic()
        self._last_status = 0.0
        self._last_acked = 0
        self._closed = False

    # -- delivery accounting --------------------------------------------------------------
    @property
    def acked(self) -> int:
        """Messages the broker acknowledged (so far)."""
        if self._report_successes:
            return self._acked
        return max(0, self.sent - self.failed - len(self._producer))

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._acked += 1
        else:
            self.failed += 1
            self.last_error = str(err)

    def _on_error(self, err: KafkaError) -> None:
        self.last_error = str(err)
        if err.fatal():
            self.fatal_error = str(err)
            log.error("fatal Kafka producer error: %s", err)
        else:
            log.debug("Kafka producer error: %s", err)

    def _wrap(self, callback: DeliveryCallback) -> DeliveryCallback:
        def both(err: KafkaError | None, msg: Message) -> None:
            self._on_delivery(err, msg)
            callback(err, msg)

        return both

    # -- producing ------------------------------------------------------------------------
    def ensure_topic(self) -> bool:
        """Create the topic if missing (partitions and retention from the settings)."""
        return ensure_topic(self.settings, self.topic)

    def produce(self, value: bytes, key: bytes | None = None,
                headers: Sequence[tuple[str, bytes]] | None = None,
                on_delivery: DeliveryCallback | None = None) -> None:
        """Queue one message; waits (serving delivery reports) while the local queue is full."""
        self._check_fatal()
        kwargs: dict[str, Any] = {}
        if headers:
            kwargs["headers"] = list(headers)
        if on_delivery is not None:
            kwargs["on_delivery"] = self._wrap(on_delivery)
        while True:
            try:
                self._producer.produce(self.topic, value, key, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.05)
                self._check_fatal()
        self.sent += 1

    def produce_many(self, values: Sequence[bytes], keys: Sequence[bytes] | None = None) -> None:
        """Queue many messages (the generator's hot path), then serve delivery reports."""
        self._check_fatal()
        produce, poll, topic = self._producer.produce, self._producer.poll, self.topic
        if keys is None:
            keys = [None] * len(values)  # type: ignore[list-item]
        for value, key in zip(values, keys, strict=True):
            try:
                produce(topic, value, key)
            except BufferError:
                while True:
                    poll(0.05)
                    self._check_fatal()
                    try:
                        produce(topic, value, key)
                        break
                    except BufferError:
                        continue
        self.sent += len(values)
        self.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports; writes the heartbeat when it is due."""
        served = self._producer.poll(timeout)
        now = time.monotonic()
        if now - self._last_status >= self.status_interval_s:
            self.heartbeat(now)
        return served

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every queued message's delivery report; returns how many are still queued."""
        remaining = self._producer.flush(timeout)
        self._check_fatal()
        return remaining

    def _check_fatal(self) -> None:
        if self.fatal_error is not None:
            raise ProducerError(f"Kafka producer failed: {self.fatal_error}")

    @property
    def in_flight(self) -> int:
        return len(self._producer)

    # -- status ---------------------------------------------------------------------------
    def heartbeat(self, now: float | None = None, **extra: Any) -> None:
        now = time.monotonic() if now is None else now
        elapsed = now - self._last_status if self._last_status else now - self._started
        if elapsed > 0:
            self.events_per_s = round((self.acked - self._last_acked) / elapsed, 1)
        self._last_status, self._last_acked = now, self.acked
        fields = dict(self.status_fields() if self.status_fields else {})
        fields.update(extra)
        try:
            write_status(self.settings, self.component, events_per_s=self.events_per_s,
                         sent=self.sent, acked=self.acked, failed=self.failed,
                         in_flight=self.in_flight, topic=self.topic,
                         last_error=self.last_error, **fields)
        except OSError as exc:  # a full disk must not stop the shipping itself
            log.warning("cannot write %s status: %s", self.component, exc)

    def summary(self) -> str:
        return (f"{self.component}: sent={self.sent} acked={self.acked} failed={self.failed}"
                + (f" last_error={self.last_error}" if self.last_error else ""))

    def close(self, timeout: float = 30.0) -> int:
        """Flush, write a final heartbeat (``state=stopped``), print the counts; returns the
        number of messages that could not be delivered within ``timeout``."""
        if self._closed:
            return 0
        self._closed = True
        try:
            remaining = self._producer.flush(timeout)
        except KafkaException as exc:
            self.last_error = str(exc)
            remaining = len(self._producer)
        self.heartbeat(state="stopped")
        print(self.summary(), file=sys.stderr, flush=True)
        return remaining

    def __enter__(self) -> LogProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
