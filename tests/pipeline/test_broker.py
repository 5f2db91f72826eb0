"""The embedded broker against a real client: round trip, restart durability, attach mode."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition

from pipeline.broker import BrokerError, EmbeddedBroker
from pipeline.kafka_config import consumer_config, ensure_topic
from pipeline.settings import Settings
from tests.conftest import free_port
from tests.helpers.kafka import produce

N = 10_000




def consume_all(settings: Settings, topic: str, expected: int, timeout: float = 60.0):
    consumer = Consumer(consumer_config(settings, f"g-{uuid.uuid4().hex}"))
    md = consumer.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    got = []
    import time

    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            assert msg.error() is None, msg.error()
            got.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    consumer.close()
    return got


def test_produce_consume_10k_in_partition_order(kafka_settings: Settings):
    topic = kafka_settings.kafka.topic
    assert ensure_topic(kafka_settings, partitions=3) is True
    assert ensure_topic(kafka_settings, partitions=3) is False  # idempotent
    sent = produce(kafka_settings, N, topic)
    got = consume_all(kafka_settings, topic, N)
    assert len(got) == N
    assert sorted(v for *_, v in got) == sorted(sent)
    assert {p for p, *_ in got} == {0, 1, 2}
    # Within each partition, messages come back in the order they were produced.
    by_part: dict[int, list[int]] = defaultdict(list)
    for _p, _o, _k, v in got:
        by_part[_p].append(sent.index(v))
    for order in by_part.values():
        assert order == sorted(order)
    for p in by_part:
        offsets = [o for pp, o, *_ in got if pp == p]
        assert offsets == list(range(len(offsets)))


def test_broker_restart_keeps_topics_and_messages(base_settings: Settings, tmp_path):
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path / "data"
    s.broker.port = free_port()
    s.broker.controller_port = free_port()
    s.kafka.topic = "durable"
    broker = EmbeddedBroker(s)
    broker.start()
    try:
        ensure_topic(s, partitions=2)
        sent = produce(s, 500, "durable")
    finally:
        assert broker.stop() is True
    assert broker.running_pid() is None
    assert (s.broker_dir / "data" / "meta.properties").is_file()  # under the data dir
    broker = EmbeddedBroker(s)
    broker.start()
    try:
        got = consume_all(s, "durable", 500)
        assert sorted(v for *_, v in got) == sorted(sent)
    finally:
        broker.stop()


def test_port_in_use_is_a_clear_error(base_settings: Settings, broker: Settings, tmp_path):
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path / "data"  # a different broker that wants the taken port
    with pytest.raises(BrokerError, match=rf"port {s.broker.port} .* broker.port"):
        EmbeddedBroker(s).start()


def test_attach_mode_starts_no_broker(broker: Settings, tmp_path):
    attached = broker.model_copy(deep=True)
    attached.storage.data_dir = tmp_path / "attached"
    attached.kafka.bootstrap_servers = broker.bootstrap_servers
    attached.kafka.topic = f"attach-{uuid.uuid4().hex[:8]}"
    assert attached.attached
    with pytest.raises(BrokerError, match="attach mode"):
        EmbeddedBroker(attached)
    env = {**attached.to_env(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "broker", "start"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "attach mode" in proc.stderr
    assert not (attached.broker_dir / "broker.pid").exists()
    # ...and clients use the external cluster.
    ensure_topic(attached, partitions=1)
    sent = produce(attached, 10, attached.kafka.topic)
    assert sorted(v for *_, v in consume_all(attached, attached.kafka.topic, 10)) == sorted(sent)
