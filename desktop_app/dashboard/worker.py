"""The dashboard's background worker: refreshes the Delta readers and computes everything the
charts and metric grid draw, on its own QThread, and hands the result to the GUI as one dict.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.dashboard.delta_reader import is_delta_table
from desktop_app.dashboard.metrics_store import (
    AnomalyStore,
    MetricsStore,
    Selection,
    anomaly_records,
)
from pipeline import freshness, schemas
from pipeline.settings import Settings
from pipeline.status import read_processor


@dataclass(frozen=True)
class Request:
    """What the GUI wants drawn: up to two selections over ``[end - range, end)``."""

    selections: tuple[Selection, ...] = (Selection(),)
    range_s: float = 900.0
    end_ms: int | None = None  # None: follow the wall clock


class LogsTableInfo:
    """Row count and last commit of the ``logs`` table from Delta metadata (no data read)."""

    def __init__(self, path) -> None:
        self.path = path
        self._table = None
        self._version: int | None = None
        self.rows = 0

    def refresh(self) -> int:
        from deltalake import DeltaTable

        if self._table is None:
            if not is_delta_table(self.path):
                return 0
            self._table = DeltaTable(str(self.path))
        else:
            self._table.update_incremental()
        version = self._table.version()
        if version != self._version:
            actions = pa.table(self._table.get_add_actions(flatten=True))
            counts = actions.column("num_records").to_pylist() if actions.num_rows else []
            self.rows = int(sum(c or 0 for c in counts))
            self._version = version
        return self.rows


class DashboardWorker(QObject):
    """``refresh(Request)`` (queued) emits ``snapshot(dict)`` or ``failed(str)``."""

    snapshot = Signal(object)
    failed = Signal(str)

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.metrics = MetricsStore(settings.table_path(schemas.TABLE_METRICS))
        self.anomalies = AnomalyStore(settings.table_path(schemas.TABLE_ANOMALIES))
        self.logs = LogsTableInfo(settings.table_path(schemas.TABLE_LOGS))
        self.lag = freshness.LagHistory()
        self.refreshes = 0

    @Slot(object)
    def refresh(self, request: Request) -> None:
        try:
            self.snapshot.emit(self.compute(request))
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, the worker lives on
            self.failed.emit(f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=3)}")

    def compute(self, request: Request) -> dict[str, Any]:
        began = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        now_ms = int(now.timestamp() * 1000)
        self.metrics.refresh(now)
        self.anomalies.refresh(now)
        rows_in_logs = self.logs.refresh()
        end_ms = request.end_ms if request.end_ms is not None else now_ms
        start_ms = int(end_ms - request.range_s * 1000)
        window = self.metrics.pick_window_size(request.range_s)
        series = [self.metrics.series(sel, start_ms, end_ms, window)
                  for sel in request.selections]

        seen = freshness.measure(self.settings, read_processor(self.settings), now_ms / 1000.0)
        self.lag.record(seen)
        lag_t, lag_v = self.lag.since(start_ms / 1000.0)

        anomalies = self.anomalies.frame()
        if not anomalies.empty:
            in_range = anomalies[(anomalies["window_end"] >= start_ms)
                                 & (anomalies["window_start"] < end_ms)]
        else:
            in_range = anomalies
        self.refreshes += 1
        return {
            "request": request,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "window_size": window,
            "watermark_ms": self.metrics.watermark_ms,
            "series": series,
            "grid": [self.metrics.grid(sel, now_ms) for sel in request.selections],
            "lag": (lag_t, lag_v),
            "lag_now": seen.lag,
            "rows_in_logs": rows_in_logs,
            "commit_age_s": seen.commit_age_s,
            "freshness_s": seen.freshness_s,
            "active_anomalies": self.anomalies.active(now_ms),
            "anomalies": anomaly_records(anomalies.head(500)) if not anomalies.empty else [],
            "anomalies_in_range": anomaly_records(in_range) if not in_range.empty else [],
            "choices": self.metrics.choices(),
            "rows_read": self.metrics.reader.rows_read,
            "compute_ms": (time.perf_counter() - began) * 1000.0,
        }
