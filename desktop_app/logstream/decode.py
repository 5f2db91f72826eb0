"""Kafka records -> columnar ``EventBatch`` (runs on the consumer worker, not the GUI).

A JSON event (the generator's format, or the shipper's ``format: json`` lines) fills the typed
columns from its fields. A raw access-log line from the shipper (``format`` header
``combined``/``common``) is parsed with ``pipeline.access_log`` for the columns, but its
message is the raw text. Anything else (bad JSON, unknown format) is still shown: raw text as
the message, format ``text``; bad input never disappears from the live view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from desktop_app.logstream.vocab import MISSING, Vocabs
from pipeline import access_log
from pipeline.schemas import HEADER_EVENT_ID, HEADER_FORMAT, HEADER_SOURCE

#: (value, headers, partition, offset, kafka timestamp ms) - what the worker takes from Kafka.
Record = tuple[bytes | None, Sequence[tuple[str, bytes | None]] | None, int, int, int]

_INT16_MAX = 32767


@dataclass
class EventBatch:
    """Rows of the live view in columns; ``blob`` holds the raw values back to back."""

    ts: np.ndarray          # int64 epoch ms (event time; Kafka time when the event has none)
    level: np.ndarray       # int16 codes
    source: np.ndarray      # int32 codes
    method: np.ndarray      # int16 codes
    endpoint: np.ndarray    # int32 codes
    fmt: np.ndarray         # int16 codes (json | combined | common | text)
    status: np.ndarray      # int16, -1 missing
    latency: np.ndarray     # float32, NaN missing
    nbytes: np.ndarray      # int64, -1 missing
    partition: np.ndarray   # int32
    offset: np.ndarray      # int64
    lengths: np.ndarray     # int32 byte length of each raw value in blob
    blob: bytes
    #: row index -> Kafka headers of non-JSON rows (shown in the details pane).
    extras: dict[int, dict[str, str]] = field(default_factory=dict)
    epoch: int = 0

    COLUMNS = ("ts", "level", "source", "method", "endpoint", "fmt", "status", "latency",
               "nbytes", "partition", "offset", "lengths")

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls) -> EventBatch:
        return _build([], Vocabs())

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        if len(batches) == 1:
            return batches[0]
        cols = {c: np.concatenate([getattr(b, c) for b in batches]) for c in cls.COLUMNS}
        extras: dict[int, dict[str, str]] = {}
        base = 0
        for b in batches:
            for i, h in b.extras.items():
                extras[base + i] = h
            base += len(b)
        return cls(**cols, blob=b"".join(b.blob for b in batches), extras=extras,
                   epoch=batches[-1].epoch)

    def tail(self, n: int) -> EventBatch:
        """The last ``n`` rows."""
        start = len(self) - n
        if start <= 0:
            return self
        cols = {c: getattr(self, c)[start:] for c in self.COLUMNS}
        skip = int(self.lengths[:start].sum())
        extras = {i - start: h for i, h in self.extras.items() if i >= start}
        return EventBatch(**cols, blob=self.blob[skip:], extras=extras, epoch=self.epoch)


def _ts_ms(value: Any, fallback: int) -> int:
    if isinstance(value, bool):
        return fallback
    if isinstance(value, int):
        return value * 1000 if abs(value) < 100_000_000_000 else value
    if isinstance(value, float) and math.isfinite(value):
        return int(value * 1000) if abs(value) < 1e11 else int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return fallback
    return fallback


def _int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _headers(raw: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    if not raw:
        return {}
    return {k: (v.decode("utf-8", "replace") if v is not None else "") for k, v in raw}


def decode_records(records: Iterable[Record], vocabs: Vocabs, epoch: int = 0) -> EventBatch:
    """Decode one poll's worth of records into a batch (codes added to ``vocabs``)."""
    return _build(list(records), vocabs, epoch)


def _build(records: list[Record], v: Vocabs, epoch: int = 0) -> EventBatch:
    # Per-column Python lists, converted once at the end: element-wise numpy stores cost
    # more than the JSON parsing itself.
    ts: list[int] = []
    level: list[int] = []
    source: list[int] = []
    method: list[int] = []
    endpoint: list[int] = []
    fmt: list[int] = []
    status: list[int] = []
    latency: list[float] = []
    nbytes: list[int] = []
    values: list[bytes] = []
    extras: dict[int, dict[str, str]] = {}
    json_code = v.fmt.code("json")
    loads = orjson.loads
    lv_code, src_code, m_code, ep_code = v.level.code, v.source.code, v.method.code, \
        v.endpoint.code
    for i, (value, raw_headers, _part, _off, kts) in enumerate(records):
        value = value or b""
        values.append(value)
        headers = _headers(raw_headers) if raw_headers else {}
        declared = headers.get(HEADER_FORMAT, "json")
        event: Any = None
        if declared == "json":
            try:
                event = loads(value)
            except orjson.JSONDecodeError:
                event = None
            if not isinstance(event, dict):
                event = None
        if event is not None:
            fmt.append(json_code)
            if raw_headers and headers.get(HEADER_SOURCE) and not event.get("source"):
                event["source"] = headers[HEADER_SOURCE]
        else:
            line_fmt = declared if declared in access_log.PATTERNS else "text"
            fmt.append(v.fmt.code(line_fmt))
            headers.setdefault(HEADER_FORMAT, line_fmt)
            extras[i] = headers
            if line_fmt in access_log.PATTERNS:
                event = access_log.parse_line(
                    value, line_fmt, source=headers.get(HEADER_SOURCE),
                    event_id=headers.get(HEADER_EVENT_ID))
            if event is None:
                event = {"source": headers.get(HEADER_SOURCE)}
        get = event.get
        t = get("ts")
        ts.append(t if type(t) is int and t >= 100_000_000_000 else _ts_ms(t, kts))
        lv = get("level")
        level.append(lv_code(lv.upper() if type(lv) is str else _str(lv)))
        s = get("source")
        source.append(src_code(s if s is None or type(s) is str else str(s)))
        m = get("method")
        method.append(m_code(m if m is None or type(m) is str else str(m)))
        e = get("endpoint")
        endpoint.append(ep_code(e if e is None or type(e) is str else str(e)))
        st = get("status")
        st = st if type(st) is int else _int(st, -1)
        status.append(st if -1 <= st <= _INT16_MAX else -1)
        la = get("latency_ms")
        latency.append(float(la) if type(la) in (int, float) else _float(la))
        nb = get("bytes")
        nbytes.append(nb if type(nb) is int else _int(nb, -1))
    n = len(records)
    return EventBatch(
        np.array(ts, np.int64), np.array(level, np.int16), np.array(source, np.int32),
        np.array(method, np.int16), np.array(endpoint, np.int32), np.array(fmt, np.int16),
        np.array(status, np.int16), np.array(latency, np.float32),
        np.array(nbytes, np.int64),
        np.fromiter((r[2] for r in records), np.int32, n),
        np.fromiter((r[3] for r in records), np.int64, n),
        np.fromiter((len(x) for x in values), np.int32, n),
        b"".join(values), extras, epoch)


__all__ = ["MISSING", "EventBatch", "Record", "decode_records"]
