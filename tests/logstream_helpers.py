"""Random web-log events and Kafka-like records for the live log stream tests."""

from __future__ import annotations

import random
from typing import Any

import orjson

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
SOURCES = ("web-01", "api-01", "auth-01", "api-02")
ENDPOINTS = ("/", "/api/users", "/api/orders", "/login", "/static/app.js", "/api/users/42")
WORDS = ("timeout", "ok", "Connection reset", "cache miss", "slow query", "retry",
         "user=alice", "user=bob", "ünïcode", "a.b*c")


def make_event(rng: random.Random, i: int, ts0: int = 1_780_000_000_000) -> dict[str, Any]:
    return {
        "event_id": f"e-{i}",
        "ts": ts0 + i * 7,
        "level": rng.choice(LEVELS),
        "source": rng.choice(SOURCES),
        "method": rng.choice(("GET", "POST")),
        "endpoint": rng.choice(ENDPOINTS),
        "status": rng.choice((200, 201, 204, 301, 304, 400, 401, 404, 500, 503)),
        "latency_ms": round(rng.random() * 500, 3),
        "bytes": rng.randint(0, 50_000),
        "client_ip": f"10.0.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        "user_agent": "curl/8.0",
        "message": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) + f" #{i}",
    }


def records_for(events: list[dict[str, Any]], partition: int = 0, first_offset: int = 0):
    return [(orjson.dumps(e), None, partition, first_offset + i, e["ts"])
            for i, e in enumerate(events)]
