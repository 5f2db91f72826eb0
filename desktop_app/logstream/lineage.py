"""Where a Kafka record landed in Delta: the file and table version that hold it (no Qt).

Runs on a worker (it reads the Delta log and Parquet files). Candidate files are chosen from
the per-file min/max statistics of ``kafka_partition`` / ``kafka_offset`` in the Delta log,
then read with a filter; the version that added the file is found by binary search over table
versions (a data file path, once added, stays in every later snapshot until removed).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class DeltaLineage:
    table_path: str
    found: bool
    current_version: int | None
    added_version: int | None = None
    file: str | None = None
    row: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def describe(self) -> str:
        if self.current_version is None:
            return f"Delta table {self.table_path}: {self.note}"
        if not self.found:
            return (f"Not in Delta yet (table version {self.current_version}): {self.note}")
        return (f"Delta table version {self.added_version} (current {self.current_version}); "
                f"file {self.file}")


def _paths_of(table_path: str, version: int) -> set[str]:
    from deltalake import DeltaTable

    dt = DeltaTable(table_path, version=version)
    return set(pa.table(dt.get_add_actions()).column("path").to_pylist())


def _first_version_with(table_path: str, file_path: str, current: int) -> int | None:
    lo, hi = 0, current
    result = current
    while lo <= hi:
        mid = (lo + hi) // 2
        try:
            present = file_path in _paths_of(table_path, mid)
        except Exception:  # history before the oldest kept checkpoint cannot be loaded
            lo = mid + 1
            continue
        if present:
            result = mid
            hi = mid - 1
        else:
            lo = mid + 1
    return result


def find_delta_version(table_path: Path | str, topic: str, partition: int,
                       offset: int) -> DeltaLineage:
    """Look up the ``logs`` row written from Kafka ``(topic, partition, offset)``."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    table_path = str(table_path)
    try:
        dt = DeltaTable(table_path)
    except TableNotFoundError:
        return DeltaLineage(table_path, False, None, note="no Delta table there yet")
    current = dt.version()
    actions = pa.table(dt.get_add_actions(flatten=True))
    names = set(actions.column_names)
    mask = pa.array([True] * actions.num_rows)
    for col, value in (("kafka_partition", partition), ("kafka_offset", offset)):
        lo, hi = f"min.{col}", f"max.{col}"
        if lo in names and hi in names:
            lo_ok = pc.fill_null(pc.less_equal(actions[lo], value), True)
            hi_ok = pc.fill_null(pc.greater_equal(actions[hi], value), True)
            mask = pc.and_(mask, pc.and_(lo_ok, hi_ok))
    candidates = actions.filter(mask).column("path").to_pylist()
    flt = ((pc.field("kafka_partition") == partition) & (pc.field("kafka_offset") == offset)
           & (pc.field("kafka_topic") == topic))
    for rel in candidates:
        full = Path(table_path) / unquote(rel)
        try:
            tbl = pq.read_table(full, filters=flt)
        except (OSError, pa.ArrowInvalid) as exc:
            return DeltaLineage(table_path, False, current, note=f"cannot read {rel}: {exc}")
        if tbl.num_rows:
            row = tbl.slice(0, 1).to_pylist()[0]
            for k, v in list(row.items()):
                with contextlib.suppress(AttributeError):
                    row[k] = v.isoformat() if hasattr(v, "isoformat") else v
            added = _first_version_with(table_path, rel, current)
            return DeltaLineage(table_path, True, current, added, rel, row)
    return DeltaLineage(table_path, False, current,
                        note=f"no row with kafka_partition={partition}, kafka_offset={offset} "
                             "(the processor may not have written it yet)")
