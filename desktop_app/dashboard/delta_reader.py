"""Incremental reads of a Delta table with delta-rs (``deltalake``), no Spark needed.

Each ``poll()`` brings the table's snapshot up to date and reads only the data files that were
added since the previous poll; files that were removed (compaction, overwrite, merge) are
reported so the caller drops their rows. A refresh therefore costs the new data only, never a
rescan. Files whose ``max(time_column)`` falls before the horizon are skipped unread (their
rows are older than any chart can show). Tables with deletion vectors fall back to one full
read per changed version, since a DV changes a file's rows without changing its path.

Plain Python: called from a worker thread, never from the GUI thread.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable


@dataclass
class Change:
    """What changed since the previous poll: new files' rows, and files that went away."""

    version: int | None
    added: dict[str, pa.Table] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    reset: bool = False  # True: drop everything known, ``added`` is the whole table

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.reset)


def is_delta_table(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


class IncrementalDeltaReader:
    """Tracks one table's version and live files; reads each file at most once."""

    def __init__(
        self,
        path: Path,
        columns: list[str] | None = None,
        time_column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.columns = columns
        self.time_column = time_column
        self.version: int | None = None
        self.files_read = 0
        self.rows_read = 0
        self._table: DeltaTable | None = None
        self._known: set[str] = set()

    def table(self) -> DeltaTable | None:
        """The up-to-date DeltaTable, or None while the table does not exist yet."""
        if self._table is None:
            if not is_delta_table(self.path):
                return None
            self._table = DeltaTable(str(self.path))
        else:
            self._table.update_incremental()
        return self._table

    def poll(self, horizon: dt.datetime | None = None) -> Change:
        table = self.table()
        if table is None:
            return Change(version=None)
        version = table.version()
        if version == self.version:
            return Change(version=version)
        actions = pa.table(table.get_add_actions(flatten=True))
        dv_columns = [n for n in actions.column_names if n.startswith("deletionVector")]
        if dv_columns and _has_values(actions, dv_columns):
            return self._full_read(table, version, actions)
        paths = actions.column("path").to_pylist()
        current = set(paths)
        removed = self._known - current
        added: dict[str, pa.Table] = {}
        skip = self._stale_files(actions, horizon)
        partition_cols = [n for n in actions.column_names if n.startswith("partition.")]
        for index, rel in enumerate(paths):
            if rel in self._known:
                continue
            if rel in skip:
                continue
            partitions = {c[len("partition."):]: actions.column(c)[index].as_py()
                          for c in partition_cols}
            added[rel] = self._read_file(rel, partitions)
        self._known = (self._known - removed) | set(added) | (skip - removed)
        self.version = version
        return Change(version=version, added=added, removed=removed)

    # -- internals ---------------------------------------------------------------------
    def _stale_files(self, actions: pa.Table, horizon: dt.datetime | None) -> set[str]:
        column = f"max.{self.time_column}" if self.time_column else None
        if horizon is None or column is None or column not in actions.column_names:
            return set()
        maxima = actions.column(column)
        if pa.types.is_timestamp(maxima.type) and maxima.type.tz is None:
            horizon = horizon.replace(tzinfo=None)
        elif pa.types.is_timestamp(maxima.type) and horizon.tzinfo is None:
            horizon = horizon.replace(tzinfo=dt.UTC)
        try:
            old = pc.less(maxima, pa.scalar(horizon, type=maxima.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return set()
        paths = actions.column("path")
        return {p for p, is_old in zip(paths.to_pylist(), old.to_pylist(), strict=True) if is_old}

    def _file_path(self, rel: str) -> str:
        if "://" in rel:
            return unquote(urlparse(rel).path)
        return os.path.join(self.path, unquote(rel))

    def _read_file(self, rel: str, partitions: dict[str, object]) -> pa.Table:
        path = self._file_path(rel)
        names = pq.ParquetFile(path).schema_arrow.names
        wanted = [c for c in self.columns if c in names] if self.columns else None
        data = pq.read_table(path, columns=wanted)
        for name, value in partitions.items():
            if (self.columns is None or name in self.columns) and name not in data.column_names:
                data = data.append_column(name, pa.array([value] * data.num_rows))
        self.files_read += 1
        self.rows_read += data.num_rows
        return data

    def _full_read(self, table: DeltaTable, version: int, actions: pa.Table) -> Change:
        data = pa.table(table.to_pyarrow_table(columns=self.columns))
        self.files_read += actions.num_rows
        self.rows_read += data.num_rows
        self._known = set()
        self.version = version
        return Change(version=version, added={"*": data}, reset=True)


def _has_values(table: pa.Table, columns: list[str]) -> bool:
    return any(table.column(c).null_count < table.num_rows for c in columns)
