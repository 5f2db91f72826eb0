"""The live table model: a view (array of ring seqs) over the columnar ring buffer.

The view is a sorted int64 array of the seqs that pass the filter. Appends insert at the
end (``beginInsertRows``), evictions remove a prefix (``beginRemoveRows``): both O(batch),
amortized. A filter change replaces the whole view (``beginResetModel``). Display strings
are built only for rows Qt asks about and cached per seq (``display_row`` serves the
widget's one-call-per-frame painter; ``data()`` serves everything else).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from desktop_app.logstream.columns import (
    COL_BYTES,
    COL_ENDPOINT,
    COL_LATENCY,
    COL_LEVEL,
    COL_MESSAGE,
    COL_METHOD,
    COL_OFFSET,
    COL_PARTITION,
    COL_SOURCE,
    COL_STATUS,
    COL_TIME,
    COLUMN_COUNT,
    HEADERS,
    NUMERIC_COLUMNS,
)
from desktop_app.logstream.ring import AppendResult, LogRing

SEQ_ROLE = Qt.ItemDataRole.UserRole + 1
_CACHE_ROWS = 20_000

LEVEL_COLORS = {
    "ERROR": QColor("#ef5350"),
    "FATAL": QColor("#ff1744"),
    "CRITICAL": QColor("#ff1744"),
    "WARN": QColor("#ffb300"),
    "WARNING": QColor("#ffb300"),
    "DEBUG": QColor("#8d99a6"),
    "TRACE": QColor("#8d99a6"),
}

_Index = QModelIndex | QPersistentModelIndex
_BOLD_LEVELS = frozenset({"ERROR", "FATAL", "CRITICAL"})
_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
#: role -> 0 display, 1 foreground, 2 font, 3 alignment, 4 seq, 5 tooltip
_ROLE_KIND = {
    _DISPLAY: 0,
    int(Qt.ItemDataRole.ForegroundRole.value): 1,
    int(Qt.ItemDataRole.FontRole.value): 2,
    int(Qt.ItemDataRole.TextAlignmentRole.value): 3,
    int(SEQ_ROLE): 4,
    int(Qt.ItemDataRole.ToolTipRole.value): 5,
}


class LogTableModel(QAbstractTableModel):
    """Rows = ``view`` seqs of ``ring``; see the module docstring."""

    def __init__(self, ring: LogRing, max_cell_chars: int = 512, parent=None) -> None:
        super().__init__(parent)
        self.ring = ring
        self.max_cell_chars = max_cell_chars
        self._buf = np.empty(1024, dtype=np.int64)
        self._lo = 0
        self._hi = 0
        self._cache: dict[int, tuple[str, ...]] = {}
        self._bold = QFont()
        self._bold.setBold(True)
        right = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
        self._align = [right if c in NUMERIC_COLUMNS else None for c in range(COLUMN_COUNT)]

    # -- Qt model interface --------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else self._hi - self._lo

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section] if 0 <= section < COLUMN_COUNT else None
        return None

    def data(self, index: _Index, role: int = _DISPLAY):
        # Hot path: called ~10x per visible cell per paint; plain int compares only.
        kind = _ROLE_KIND.get(role)
        if kind is None:
            return None
        row = index.row()
        if row < 0 or row >= self._hi - self._lo:
            return None
        seq = int(self._buf[self._lo + row])
        if kind == 4:
            return seq
        if kind == 3:
            return self._align[index.column()]
        if seq < self.ring.head:
            return None  # evicted (only possible transiently inside an update)
        cached = self._cache.get(seq)
        if cached is None:
            cached = self._row(seq)
        if kind == 0:
            return cached[0][index.column()]
        if kind == 1:
            return cached[1]
        if kind == 2:
            return self._bold if cached[2] and index.column() == COL_LEVEL else None
        if index.column() == COL_MESSAGE:  # tooltip
            text = self.ring.message(seq)
            return text[:4000] + ("…" if len(text) > 4000 else "")
        return None

    # -- rows ----------------------------------------------------------------------------
    def _row(self, seq: int) -> tuple[tuple[str, ...], QColor | None, bool]:
        if len(self._cache) >= _CACHE_ROWS:
            self._cache.clear()
        rec = self.ring.record(seq)
        msg = rec["message"]
        if len(msg) > self.max_cell_chars:
            msg = msg[:self.max_cell_chars] + f"… [{len(msg):,} chars]"
        msg = msg.replace("\n", " ⏎ ")
        lat = rec["latency_ms"]
        values = [""] * COLUMN_COUNT
        values[COL_TIME] = rec["ts"]
        values[COL_LEVEL] = rec["level"] or ""
        values[COL_SOURCE] = rec["source"] or ""
        values[COL_METHOD] = rec["method"] or ""
        values[COL_ENDPOINT] = rec["endpoint"] or ""
        values[COL_STATUS] = "" if rec["status"] is None else str(rec["status"])
        values[COL_LATENCY] = "" if lat is None else f"{lat:.1f}"
        values[COL_BYTES] = "" if rec["bytes"] is None else str(rec["bytes"])
        values[COL_PARTITION] = str(rec["kafka_partition"])
        values[COL_OFFSET] = str(rec["kafka_offset"])
        values[COL_MESSAGE] = msg
        level = values[COL_LEVEL]
        row = (tuple(values), LEVEL_COLORS.get(level), level in _BOLD_LEVELS)
        self._cache[seq] = row
        return row

    def display_row(self, row: int) -> tuple[tuple[str, ...], QColor | None, bool] | None:
        """Cached display strings, level colour and boldness of view row ``row``."""
        if row < 0 or row >= self._hi - self._lo:
            return None
        seq = int(self._buf[self._lo + row])
        if seq < self.ring.head:
            return None
        cached = self._cache.get(seq)
        return cached if cached is not None else self._row(seq)

    def view(self) -> np.ndarray:
        """The seqs shown, in row order (a copy)."""
        return self._buf[self._lo:self._hi].copy()

    def seq_at(self, row: int) -> int:
        return int(self._buf[self._lo + row])

    def row_of_seq(self, seq: int) -> int | None:
        active = self._buf[self._lo:self._hi]
        i = int(np.searchsorted(active, seq))
        return i if i < len(active) and active[i] == seq else None

    def set_view(self, seqs: np.ndarray) -> None:
        """Replace every row (after a filter change or a jump)."""
        self.beginResetModel()
        seqs = np.asarray(seqs, dtype=np.int64)
        self._buf = np.empty(max(1024, 2 * len(seqs)), dtype=np.int64)
        self._buf[:len(seqs)] = seqs
        self._lo, self._hi = 0, len(seqs)
        self.endResetModel()

    def drop_evicted(self) -> int:
        """Remove rows whose seq left the ring (a prefix); returns how many."""
        active = self._buf[self._lo:self._hi]
        k = int(np.searchsorted(active, self.ring.head))
        if k:
            self.beginRemoveRows(QModelIndex(), 0, k - 1)
            self._lo += k
            self.endRemoveRows()
        return k

    def append_seqs(self, seqs: np.ndarray) -> int:
        m = len(seqs)
        if not m:
            return 0
        n = self._hi - self._lo
        if self._hi + m > len(self._buf):
            new = np.empty(max(1024, 2 * (n + m)), dtype=np.int64) \
                if n + m > len(self._buf) // 2 else self._buf
            new[:n] = self._buf[self._lo:self._hi]
            self._buf, self._lo, self._hi = new, 0, n
        self.beginInsertRows(QModelIndex(), n, n + m - 1)
        self._buf[self._hi:self._hi + m] = seqs
        self._hi += m
        self.endInsertRows()
        return m

    def on_appended(self, result: AppendResult,
                    select: Callable[[int, int], np.ndarray]) -> tuple[int, int]:
        """Update after ``ring.append``: drop evicted rows, add the new rows that ``select``
        keeps. Returns (rows removed, rows inserted)."""
        removed = self.drop_evicted()
        new = select(max(result.first_seq, self.ring.head), self.ring.tail)
        return removed, self.append_seqs(new)

    def clear(self) -> None:
        self._cache.clear()
        self.set_view(np.empty(0, dtype=np.int64))

