"""The bounded columnar ring buffer behind the live table (pure numpy; no Qt).

Rows get consecutive sequence numbers (``seq``) that are never reused; row ``seq`` lives in
slot ``seq % capacity`` of each fixed-size numpy column while ``head <= seq < tail``. Raw
values (the full event as received) are stored back to back in 16 MiB byte chunks addressed
by a monotonically growing byte address, so a row costs ~60 bytes plus its raw size (no
Python object per row) and text search runs in C++ over zero-copy Arrow views of the chunks.

Memory is bounded twice: at most ``capacity`` rows and at most ``max_bytes`` of raw data
(whole head chunks are evicted when the byte budget is exceeded, e.g. by huge messages).

Concurrency contract: only one thread (the GUI) appends. Append advances ``head`` *before*
overwriting any slot and never writes into bytes of a live row, so a reader on another thread
may read rows ``seq`` in ``[head, tail)`` without locks and afterwards keep only the seqs
that are still ``>= head`` (``valid_from``): those were not overwritten while it read them.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from desktop_app.logstream.casefold import has_ascii_folds
from desktop_app.logstream.decode import EventBatch
from desktop_app.logstream.vocab import Vocabs

#: Big enough that a full buffer is a few dozen chunks: Arrow compiles the text regex once per
#: chunk, and that dominated text filters with 1 MiB chunks.
CHUNK_BYTES = 16 << 20

_COLUMN_DTYPES: dict[str, Any] = {
    "ts": np.int64, "level": np.int16, "source": np.int32, "method": np.int16,
    "endpoint": np.int32, "fmt": np.int16, "status": np.int16, "latency": np.float32,
    "nbytes": np.int64, "partition": np.int32, "offset": np.int64, "lengths": np.int32,
    "addr": np.int64,
}


class _Chunk:
    __slots__ = ("base", "data", "folds", "used")

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.data = np.empty(size, dtype=np.uint8)
        self.used = 0
        #: holds a character RE2 folds to an ASCII letter (see ``casefold``)
        self.folds = False

    @property
    def end(self) -> int:
        return self.base + self.used


class ByteStore:
    """Append-only raw bytes in chunks; rows never straddle chunks.

    ``(bases, chunks)`` is replaced as one tuple on every change so that a reader thread
    always sees a consistent pair.
    """

    def __init__(self) -> None:
        self._index: tuple[list[int], list[_Chunk]] = ([], [])
        self.allocated = 0

    @property
    def chunks(self) -> list[_Chunk]:
        return self._index[1]

    def write(self, blob: bytes, lengths: np.ndarray) -> np.ndarray:
        """Append rows (``lengths`` slices of ``blob``); return each row's byte address."""
        n = len(lengths)
        addrs = np.empty(n, dtype=np.int64)
        if n == 0:
            return addrs
        ends = np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        src = np.frombuffer(blob, dtype=np.uint8) if blob else np.empty(0, np.uint8)
        i = 0
        while i < n:
            bases, chunks = self._index
            chunk = chunks[-1] if chunks else None
            k = i
            if chunk is not None:
                room = len(chunk.data) - chunk.used
                k = min(int(np.searchsorted(ends, starts[i] + room, side="right")), n)
            if k <= i:  # start a new chunk
                nxt = chunk.base + len(chunk.data) if chunk is not None else 0
                size = max(CHUNK_BYTES, int(lengths[i]))
                self._index = (bases + [nxt], chunks + [_Chunk(nxt, size)])
                self.allocated += size
                continue
            a, b = int(starts[i]), int(ends[k - 1])
            chunk.data[chunk.used:chunk.used + (b - a)] = src[a:b]
            chunk.folds = chunk.folds or has_ascii_folds(blob, a, b)
            addrs[i:k] = chunk.base + chunk.used + (starts[i:k] - a)
            chunk.used += b - a
            i = k
        return addrs

    def drop_before(self, addr: int) -> None:
        """Free chunks that end at or before ``addr`` (all their rows are evicted)."""
        bases, chunks = self._index
        k = 0
        while k < len(chunks) - 1 and chunks[k].end <= addr:
            self.allocated -= len(chunks[k].data)
            k += 1
        if k:
            self._index = (bases[k:], chunks[k:])

    def clear(self) -> None:
        self._index = ([], [])
        self.allocated = 0

    def get(self, addr: int, length: int) -> bytes:
        bases, chunks = self._index
        i = bisect.bisect_right(bases, addr) - 1
        if i < 0:
            return b""  # evicted
        chunk = chunks[i]
        off = addr - chunk.base
        return chunk.data[off:off + length].tobytes()

    def snapshot(self) -> tuple[list[int], list[_Chunk]]:
        return self._index


@dataclass(frozen=True)
class AppendResult:
    first_seq: int      # seq of the first row written
    written: int        # rows written (the batch's last ``written`` rows)
    evicted: int        # rows evicted by this append (incl. batch rows that never fit)
    head: int           # new head


class LogRing:
    """Columns of the live view; see the module docstring for the contract."""

    def __init__(self, capacity: int, max_bytes: int, vocabs: Vocabs | None = None,
                 topic: str = "") -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.vocabs = vocabs or Vocabs()
        self.topic = topic
        self.cols: dict[str, np.ndarray] = {
            name: np.zeros(capacity, dtype=dt) for name, dt in _COLUMN_DTYPES.items()}
        self.bytes = ByteStore()
        self.head = 0
        self.tail = 0
        self.evicted_total = 0
        self._extras: dict[int, dict[str, str]] = {}
        self._extra_order: deque[int] = deque()

    def __len__(self) -> int:
        return self.tail - self.head

    # -- writing (GUI thread only) -----------------------------------------------------------
    def append(self, batch: EventBatch) -> AppendResult:
        n = len(batch)
        lost = 0
        if n > self.capacity:
            lost = n - self.capacity
            batch = batch.tail(self.capacity)
            n = self.capacity
        over = len(self) + n - self.capacity
        evicted = lost
        if over > 0:
            self._advance_head(self.head + over)
            evicted += over
        addrs = self.bytes.write(batch.blob, batch.lengths)
        first = self.tail
        s = first % self.capacity
        k = min(n, self.capacity - s)
        for name in _COLUMN_DTYPES:
            src = addrs if name == "addr" else getattr(batch, name)
            col = self.cols[name]
            col[s:s + k] = src[:k]
            if k < n:
                col[:n - k] = src[k:]
        for i, headers in batch.extras.items():
            if i >= 0:
                self._extras[first + i] = headers
                self._extra_order.append(first + i)
        self.tail = first + n
        # byte budget: whole head chunks go (rows first, then their chunk)
        while self.bytes.allocated > self.max_bytes and len(self.bytes.chunks) > 1:
            end = self.bytes.chunks[0].end
            new_head = self.seq_at_addr(end)
            evicted += new_head - self.head
            self._advance_head(new_head)
        self.evicted_total += evicted
        return AppendResult(first, n, evicted, self.head)

    def _advance_head(self, new_head: int) -> None:
        new_head = min(new_head, self.tail)
        self.head = new_head
        while self._extra_order and self._extra_order[0] < new_head:
            self._extras.pop(self._extra_order.popleft(), None)
        if self.head < self.tail:
            self.bytes.drop_before(int(self.cols["addr"][self.head % self.capacity]))
        else:
            # keep the open chunk only
            self.bytes.drop_before(self.bytes.chunks[-1].base if self.bytes.chunks else 0)

    def clear(self) -> None:
        """Forget every row (seqs continue; readers see all old seqs as evicted)."""
        self.head = self.tail
        self._extras.clear()
        self._extra_order.clear()
        self.bytes.clear()

    # -- reading --------------------------------------------------------------------------------
    def logical(self, name: str, start: int, stop: int) -> np.ndarray:
        """Column ``name`` for seqs ``[start, stop)`` in seq order (a view when contiguous)."""
        col = self.cols[name]
        n = stop - start
        if n <= 0:
            return col[:0]
        s = start % self.capacity
        if s + n <= self.capacity:
            return col[s:s + n]
        return np.concatenate([col[s:], col[:n - (self.capacity - s)]])

    def take(self, name: str, seqs: np.ndarray) -> np.ndarray:
        return self.cols[name][np.asarray(seqs, dtype=np.int64) % self.capacity]

    def seq_at_addr(self, addr: int) -> int:
        """First live seq whose raw bytes start at or after ``addr`` (tail if none)."""
        addrs = self.logical("addr", self.head, self.tail)
        return self.head + int(np.searchsorted(addrs, addr, side="left"))

    def valid_from(self) -> int:
        return self.head

    def raw(self, seq: int) -> bytes:
        slot = seq % self.capacity
        return self.bytes.get(int(self.cols["addr"][slot]), int(self.cols["lengths"][slot]))

    def headers(self, seq: int) -> dict[str, str] | None:
        return self._extras.get(seq)

    def is_json(self, seq: int) -> bool:
        return seq not in self._extras

    def event(self, seq: int) -> dict[str, Any]:
        """The whole event: the JSON object, or ``{"raw": text, "headers": {...}}``."""
        raw = self.raw(seq)
        headers = self._extras.get(seq)
        if headers is None:
            try:
                value = orjson.loads(raw)
                if isinstance(value, dict):
                    return value
            except orjson.JSONDecodeError:
                pass
        return {"raw": raw.decode("utf-8", "replace"), "headers": headers or {}}

    def message(self, seq: int) -> str:
        """The text of the Message column: the event's message, or the raw line."""
        raw = self.raw(seq)
        if seq not in self._extras:
            try:
                value = orjson.loads(raw)
                if isinstance(value, dict):
                    msg = value.get("message")
                    return msg if isinstance(msg, str) else ("" if msg is None else str(msg))
            except orjson.JSONDecodeError:
                pass
        return raw.decode("utf-8", "replace")

    def record(self, seq: int) -> dict[str, Any]:
        """One row as a flat dict with EXPORT_FIELDS (strings for categoricals, None missing)."""
        slot = seq % self.capacity
        c = self.cols
        v = self.vocabs
        ev = None

        def cat(vocab_attr: str, col: str, field: str) -> str | None:
            nonlocal ev
            code = int(c[col][slot])
            if code >= 0:
                return getattr(v, vocab_attr).values[code]
            if code == -2:  # dictionary overflow: read the event
                ev = ev if ev is not None else self.event(seq)
                val = ev.get(field)
                return None if val is None else str(val)
            return None

        status = int(c["status"][slot])
        lat = float(c["latency"][slot])
        nb = int(c["nbytes"][slot])
        return {
            "ts": format_ts(int(c["ts"][slot])),
            "level": cat("level", "level", "level"),
            "source": cat("source", "source", "source"),
            "method": cat("method", "method", "method"),
            "endpoint": cat("endpoint", "endpoint", "endpoint"),
            "status": status if status >= 0 else None,
            "latency_ms": None if lat != lat else round(lat, 3),
            "bytes": nb if nb >= 0 else None,
            "kafka_partition": int(c["partition"][slot]),
            "kafka_offset": int(c["offset"][slot]),
            "message": self.message(seq),
        }

    def find_offset(self, partition: int, offset: int) -> int | None:
        """Seq of the live row holding Kafka (partition, offset), newest first."""
        parts = self.logical("partition", self.head, self.tail)
        offs = self.logical("offset", self.head, self.tail)
        hits = np.flatnonzero((parts == partition) & (offs == offset))
        return self.head + int(hits[-1]) if len(hits) else None


def format_ts(ms: int) -> str:
    """Epoch ms as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return str(ms)
