"""Reading a test topic back with a real consumer (shared by the sources tests)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from pipeline.kafka_config import consumer_config
from pipeline.settings import Settings


def consume_all(settings: Settings, expect: int, timeout: float = 60.0,
                settle: float = 2.0) -> list:
    """Every message of the topic (all partitions, from the start): waits for ``expect``
    messages, then ``settle`` seconds more to catch any extra."""
    consumer = Consumer(consumer_config(settings, f"test-{uuid.uuid4().hex[:8]}"))
    try:
        md = consumer.list_topics(settings.kafka.topic, timeout=10)
        consumer.assign([TopicPartition(settings.kafka.topic, p, 0)
                         for p in md.topics[settings.kafka.topic].partitions])
        out: list = []
        deadline, quiet_until = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            for m in consumer.consume(10_000, timeout=0.5):
                assert m.error() is None, m.error()
                out.append(m)
            if len(out) >= expect:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
        return out
    finally:
        consumer.close()
