"""Helpers shared by the processor's end-to-end tests: deterministic events, a real producer,
and the exact metrics those events must give."""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.kafka_config import admin_config, producer_config
from pipeline.settings import Settings

SOURCES = ("web", "api", "auth")
ENDPOINTS = ("/", "/products", "/cart", "/login")
LEVELS = ("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG")
STATUSES = (200, 200, 200, 201, 301, 304, 404, 404, 500, 503)


def make_events(n: int, *, seed: int = 7, start_ms: int | None = None,
                span_ms: int = 9 * 60_000, prefix: str = "ev") -> list[dict]:
    """``n`` valid events with ascending timestamps spread over ``span_ms``."""
    rng = random.Random(seed)
    start = start_ms if start_ms is not None else int(time.time() * 1000) - span_ms - 60_000
    out = []
    for i in range(n):
        out.append({
            "event_id": f"{prefix}-{seed}-{i}",
            "ts": start + (i * span_ms) // max(n, 1),
            "level": rng.choice(LEVELS),
            "source": rng.choice(SOURCES),
            "method": rng.choice(("GET", "POST")),
            "endpoint": rng.choice(ENDPOINTS),
            "status": rng.choice(STATUSES),
            "latency_ms": round(rng.lognormvariate(3.5, 0.6), 3),
            "bytes": rng.randint(0, 50_000),
            "client_ip": f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 20)}",
            "user_agent": "test-agent/1.0",
            "message": f"request {i}",
        })
    return out


def create_topic(settings: Settings, partitions: int = 3, config: dict | None = None) -> None:
    admin = AdminClient(admin_config(settings))
    fut = admin.create_topics([NewTopic(settings.kafka.topic, num_partitions=partitions,
                                        replication_factor=1, config=config or {})])
    fut[settings.kafka.topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # metadata visible to clients
        md = admin.list_topics(settings.kafka.topic, timeout=10)
        t = md.topics.get(settings.kafka.topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.2)
    raise TimeoutError("topic metadata did not appear")


def produce(settings: Settings, values: list, *, headers: list | None = None,
            partition: int | None = None, **extra) -> None:
    """Send every value (dict -> JSON) and wait for all acknowledgements."""
    producer = Producer(producer_config(settings, **extra))
    errors: list = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            errors.append(err)

    for i, v in enumerate(values):
        if isinstance(v, dict):
            key = str(v.get("event_id", i)).encode()
            v = json.dumps(v).encode()
        else:
            key = str(i).encode()
        kwargs = {"key": key, "value": v, "on_delivery": on_delivery}
        if headers and headers[i]:
            kwargs["headers"] = [(k, val.encode()) for k, val in headers[i].items()]
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(settings.kafka.topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0 and not errors, (remaining, errors[:3])


def end_offsets(settings: Settings) -> int:
    """Total records in the topic (sum of high watermarks; nothing deleted)."""
    from confluent_kafka import Consumer, TopicPartition

    from pipeline.kafka_config import consumer_config

    c = Consumer(consumer_config(settings, "offsets-probe"))
    try:
        md = c.list_topics(settings.kafka.topic, timeout=10)
        total = 0
        for p in md.topics[settings.kafka.topic].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(settings.kafka.topic, p), timeout=10)
            total += hi - lo
        return total
    finally:
        c.close()


def exact_rank_value(values: list[float], p: float) -> float:
    """The value ``percentile_approx`` returns with enough accuracy: rank ceil(p * n)."""
    s = sorted(values)
    return s[max(0, math.ceil(p * len(s)) - 1)]


def expected_metrics(events: list[dict], size_s: int) -> dict[tuple, dict]:
    """(window_start, source, endpoint, level) -> the metrics row values, from the events."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        start_ms = (e["ts"] // (size_s * 1000)) * size_s * 1000
        start = datetime.fromtimestamp(start_ms / 1000, tz=UTC).replace(tzinfo=None)
        groups[(start, e["source"], e["endpoint"], e["level"].upper())].append(e)
    out = {}
    for key, evs in groups.items():
        errors = sum(1 for e in evs if e["status"] >= 500 or e["level"].upper() == "ERROR")
        lat = [e["latency_ms"] for e in evs]
        out[key] = {
            "requests": len(evs),
            "errors": errors,
            "error_rate": errors / len(evs),
            "bytes": sum(e["bytes"] for e in evs),
            "status_2xx": sum(200 <= e["status"] < 300 for e in evs),
            "status_3xx": sum(300 <= e["status"] < 400 for e in evs),
            "status_4xx": sum(400 <= e["status"] < 500 for e in evs),
            "status_5xx": sum(500 <= e["status"] < 600 for e in evs),
            "status_404": sum(e["status"] == 404 for e in evs),
            "latencies": lat,
        }
    return out
