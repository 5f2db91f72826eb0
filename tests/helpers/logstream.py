"""Random web-log events and Kafka-like records for the live log stream tests."""

from __future__ import annotations

import random
import re
from fnmatch import fnmatchcase
from typing import Any

import orjson

from desktop_app.logstream.filters import FilterSpec

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


def py_filter(spec: FilterSpec, events, seqs):
    out = []
    for s in seqs:
        e = events[s]
        raw = orjson.dumps(e).decode()
        if spec.levels and e["level"] not in spec.levels:
            continue
        if spec.sources and not any(fnmatchcase(e["source"], p) for p in spec.sources):
            continue
        if spec.endpoints and not any(fnmatchcase(e["endpoint"], p) for p in spec.endpoints):
            continue
        if spec.status_min is not None and e["status"] < spec.status_min:
            continue
        if spec.status_max is not None and e["status"] > spec.status_max:
            continue
        if spec.start_ms is not None and e["ts"] < spec.start_ms:
            continue
        if spec.end_ms is not None and e["ts"] > spec.end_ms:
            continue
        if spec.text:
            flags = 0 if spec.case_sensitive else re.IGNORECASE
            pat = spec.text if spec.regex else re.escape(spec.text)
            if not re.search(pat, raw, flags):
                continue
        out.append(s)
    return out
