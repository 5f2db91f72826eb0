"""Reading a test topic back with a real consumer (shared by the sources tests)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline.kafka_config import consumer_config, producer_config
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


def produce(settings: Settings, n: int, topic: str) -> list[bytes]:
    producer = Producer(producer_config(settings))
    payloads = [f'{{"i": {i}, "id": "{uuid.uuid4()}"}}'.encode() for i in range(n)]
    failed: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))

    for i, value in enumerate(payloads):
        while True:
            try:
                producer.produce(
                    topic, value=value, key=str(i % 101).encode(), on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failed == []
    return payloads
