"""Persisted query history and saved queries (sqlite in ``settings.data_dir/sql``).

One short-lived connection per call, so the store is safe to use from any thread.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL, sql TEXT NOT NULL, status TEXT NOT NULL,
    rows INTEGER, elapsed_ms INTEGER, error TEXT
);
CREATE INDEX IF NOT EXISTS history_ts ON history(ts);
CREATE TABLE IF NOT EXISTS saved (
    name TEXT PRIMARY KEY, sql TEXT NOT NULL, updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class HistoryItem:
    id: int
    ts: float
    sql: str
    status: str  # ok | error | refused | cancelled
    rows: int | None
    elapsed_ms: int | None
    error: str | None


@dataclass(frozen=True)
class SavedQuery:
    name: str
    sql: str
    updated: float


def history_path(settings: Settings) -> Path:
    return settings.data_dir / "sql" / "history.sqlite"


class QueryHistory:
    """Every statement run from the workbench or CLI, newest first; plus named queries."""

    def __init__(self, path: Path, keep: int = 10_000) -> None:
        self.path = path
        self.keep = keep
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.executescript(_SCHEMA)

    @classmethod
    def for_settings(cls, settings: Settings) -> QueryHistory:
        return cls(history_path(settings))

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(
        self, sql: str, status: str, rows: int | None = None, elapsed_ms: int | None = None,
        error: str | None = None,
    ) -> int:
        with closing(self._connect()) as con, con:
            cur = con.execute(
                "INSERT INTO history (ts, sql, status, rows, elapsed_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), sql, status, rows, elapsed_ms, error),
            )
            con.execute(
                "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?", (self.keep,)
            )
            return int(cur.lastrowid)

    def search(self, text: str = "", limit: int = 200) -> list[HistoryItem]:
        """Newest first; ``text`` matches anywhere in the SQL (case-insensitive)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT id, ts, sql, status, rows, elapsed_ms, error FROM history "
                "WHERE sql LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
                (pattern, limit),
            ).fetchall()
        return [HistoryItem(*r) for r in rows]

    def clear(self) -> None:
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM history")

    def save(self, name: str, sql: str) -> None:
        if not name.strip():
            raise ValueError("a saved query needs a name")
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT INTO saved (name, sql, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET sql = excluded.sql, updated = excluded.updated",
                (name.strip(), sql, time.time()),
            )

    def saved(self) -> list[SavedQuery]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT name, sql, updated FROM saved ORDER BY name").fetchall()
        return [SavedQuery(*r) for r in rows]

    def delete_saved(self, name: str) -> bool:
        with closing(self._connect()) as con, con:
            return con.execute("DELETE FROM saved WHERE name = ?", (name,)).rowcount > 0
