"""A slice of generated events as columns, and their Kafka keys and values.

:class:`EventBatch` is what :class:`~pipeline.sources.events.EventGenerator` yields; it builds
per-event dicts or JSON documents only when asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from pipeline.schemas import EVENT_FIELDS

_SEPARATOR = b'},{"event_id":'


@dataclass
class EventBatch:
    """Events of one slice in event-time order, as columns.

    Numeric columns are numpy arrays; string columns are lists. ``dicts()`` and
    ``serialized()`` build the per-event objects only when asked.
    """

    event_id: list[str]
    ts: np.ndarray
    level: list[str]
    source: list[str]
    method: list[str]
    endpoint: list[str]
    status: np.ndarray
    latency_ms: np.ndarray
    bytes: np.ndarray
    client_ip: list[str]
    user_agent: list[str]
    message: list[str]
    source_index: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.event_id)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Per-event tuples in EVENT_FIELDS order (plain Python values)."""
        return zip(self.event_id, self.ts.tolist(), self.level, self.source, self.method,
                   self.endpoint, self.status.tolist(), self.latency_ms.tolist(),
                   self.bytes.tolist(), self.client_ip, self.user_agent, self.message,
                   strict=True)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(EVENT_FIELDS, row, strict=True)) for row in self.rows()]

    def serialized(self) -> list[bytes]:
        """One compact JSON document per event (the Kafka message value).

        One ``orjson.dumps`` of the whole list, split between objects, costs ~20 % less than
        one call per event. The split is exact: ``},{"event_id":`` can't occur inside a JSON
        string, where every ``"`` is escaped.
        """
        if not len(self):
            return []
        blob = orjson.dumps([
            {"event_id": e, "ts": t, "level": lv, "source": so, "method": me,
             "endpoint": en, "status": st, "latency_ms": la, "bytes": by,
             "client_ip": ip, "user_agent": ua, "message": ms}
            for e, t, lv, so, me, en, st, la, by, ip, ua, ms in self.rows()
        ])
        parts = blob[1:-1].split(_SEPARATOR)
        if len(parts) == 1:
            return parts
        head = _SEPARATOR[2:]
        return [parts[0] + b"}", *[head + p + b"}" for p in parts[1:-1]], head + parts[-1]]

    def keys(self) -> list[bytes]:
        """Kafka keys: the source name, so each source's events stay in order."""
        cache: dict[str, bytes] = {}
        return [cache.get(s) or cache.setdefault(s, s.encode()) for s in self.source]

    def take(self, n: int) -> EventBatch:
        """The first ``n`` events."""
        return self if n >= len(self) else self[:n]

    def __getitem__(self, rows: slice) -> EventBatch:
        return EventBatch(*(getattr(self, f)[rows] for f in EVENT_FIELDS),
                          source_index=self.source_index[rows])
