"""The dashboard's Delta readers against real Delta tables written with delta-rs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from desktop_app.dashboard.metrics_store import AnomalyStore, MetricsStore, Selection

T0 = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
TS = pa.timestamp("us", tz="UTC")


def metrics_rows(start: int, count: int, source: str = "web-1", endpoint: str = "/api",
                 level: str = "INFO", requests: int = 100) -> pa.Table:
    starts = [T0 + dt.timedelta(seconds=10 * (start + i)) for i in range(count)]
    n = count
    return pa.table({
        "window_start": pa.array(starts, TS),
        "window_end": pa.array([s + dt.timedelta(seconds=10) for s in starts], TS),
        "window_size": ["10s"] * n, "source": [source] * n, "endpoint": [endpoint] * n,
        "level": [level] * n,
        "requests": pa.array([requests + i for i in range(n)], pa.int64()),
        "errors": pa.array([i for i in range(n)], pa.int64()),
        "error_rate": [i / (requests + i) for i in range(n)],
        "latency_p50": [10.0 + i for i in range(n)], "latency_p95": [50.0 + i for i in range(n)],
        "latency_p99": [90.0 + i for i in range(n)],
        "bytes": pa.array([1000] * n, pa.int64()),
        "status_2xx": pa.array([requests] * n, pa.int64()),
        "status_3xx": pa.array([0] * n, pa.int64()),
        "status_4xx": pa.array([i for i in range(n)], pa.int64()),
        "status_5xx": pa.array([0] * n, pa.int64()),
        "status_404": pa.array([0] * n, pa.int64()),
    })


@pytest.fixture
def metrics_path(tmp_path):
    return tmp_path / "delta" / "metrics"


def test_series_exact_values(metrics_path):
    write_deltalake(metrics_path, metrics_rows(0, 3))
    write_deltalake(metrics_path, metrics_rows(0, 3, source="web-2", requests=200), mode="append")
    store = MetricsStore(metrics_path)
    assert store.refresh(T0)
    s = store.series(Selection(source="web-1"), window_size="10s")
    assert s["t"].tolist() == [T0.timestamp() + 10 * i for i in range(3)]
    assert s["requests"].tolist() == [100, 101, 102]
    assert s["throughput"].tolist() == [10.0, 10.1, 10.2]
    assert s["latency_p95"].tolist() == [50.0, 51.0, 52.0]
    assert s["error_rate"].tolist() == [0 / 100, 1 / 101, 2 / 102]
    both = store.series(Selection(), window_size="10s")
    assert both["requests"].tolist() == [300, 302, 304]
    assert both["errors"].tolist() == [0, 2, 4]
    # request-weighted latency of the two rows of a window
    assert both["latency_p50"][1] == pytest.approx((11 * 101 + 11 * 201) / 302)
    assert store.choices()["source"] == ["web-1", "web-2"]


def test_incremental_refresh_reads_only_new_rows(metrics_path):
    write_deltalake(metrics_path, metrics_rows(0, 5))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    assert store.reader.rows_read == 5
    assert not store.refresh(T0)  # same version: nothing read
    assert store.reader.rows_read == 5
    write_deltalake(metrics_path, metrics_rows(5, 2), mode="append")
    assert store.refresh(T0)
    assert store.reader.rows_read == 7  # only the two new rows
    assert store.reader.files_read == 2
    assert len(store.frame()) == 7
    assert store.series(Selection())["requests"].tolist() == [100, 101, 102, 103, 104, 100, 101]


def test_removed_files_drop_their_rows(metrics_path):
    write_deltalake(metrics_path, metrics_rows(0, 4))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    write_deltalake(metrics_path, metrics_rows(0, 2, requests=7), mode="overwrite")
    store.refresh(T0)
    assert store.series(Selection())["requests"].tolist() == [7, 8]
    assert store.reader.rows_read == 6


def test_files_older_than_horizon_are_not_read(metrics_path):
    write_deltalake(metrics_path, metrics_rows(0, 3))
    store = MetricsStore(metrics_path)
    store.refresh(T0 + dt.timedelta(days=2))
    assert store.reader.rows_read == 0
    assert store.frame().empty


def test_sub_millisecond_and_naive_timestamps(tmp_path):
    path = tmp_path / "m"
    rows = metrics_rows(0, 2)
    micro = pa.array([T0.replace(tzinfo=None) + dt.timedelta(microseconds=1500),
                      T0.replace(tzinfo=None) + dt.timedelta(seconds=10, microseconds=999)],
                     pa.timestamp("us"))
    rows = rows.set_column(0, "window_start", micro)
    write_deltalake(path, rows)
    store = MetricsStore(path)
    store.refresh(T0)
    assert store.frame()["window_start"].tolist() == [
        int(T0.timestamp() * 1000) + 1, int(T0.timestamp() * 1000) + 10_000]


def test_missing_table_is_empty(tmp_path):
    store = MetricsStore(tmp_path / "nope")
    assert not store.refresh(T0)
    assert store.series(Selection())["t"].size == 0


def test_grid_numbers(metrics_path):
    write_deltalake(metrics_path, metrics_rows(0, 6))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    now_ms = int((T0 + dt.timedelta(seconds=70)).timestamp() * 1000)
    grid = store.grid(Selection(), now_ms, span_s=30)
    # last three windows: 103, 104, 105 requests over 30 s
    assert grid["events_per_s"] == pytest.approx((103 + 104 + 105) / 30)
    assert grid["error_rate"] == pytest.approx((3 + 4 + 5) / (103 + 104 + 105))
    assert grid["age_s"] == pytest.approx(10.0)


def test_anomalies_latest_detection_wins(tmp_path):
    path = tmp_path / "anomalies"

    def rows(score, detected):
        return pa.table({
            "anomaly_id": ["a1", "a2"],
            "window_start": pa.array([T0, T0 + dt.timedelta(minutes=1)], TS),
            "window_end": pa.array([T0 + dt.timedelta(seconds=10),
                                    T0 + dt.timedelta(minutes=1, seconds=10)], TS),
            "entity_type": ["source", "endpoint"], "entity": ["web-1", "/login"],
            "kind": ["error_burst", "scan_404"], "score": [score, 2.0],
            "severity": ["high", "low"], "detector": ["baseline", "baseline"],
            "features": ['{"errors": {"expected": 1, "observed": 9, "z": 8}}', "{}"],
            "top_contributors": ["[]", "[]"], "explanation": ["errors up", "404s"],
            "detected_at": pa.array([detected, detected], TS),
        })

    write_deltalake(path, rows(5.0, T0))
    write_deltalake(path, rows(9.0, T0 + dt.timedelta(seconds=5)), mode="append")
    store = AnomalyStore(path)
    store.refresh(T0)
    df = store.frame()
    assert df["anomaly_id"].tolist() == ["a2", "a1"]
    assert df.set_index("anomaly_id").loc["a1", "score"] == 9.0
    assert DeltaTable(str(path)).version() == 1
    now_ms = int((T0 + dt.timedelta(minutes=2)).timestamp() * 1000)
    assert store.active(now_ms, within_s=60) == 1
    assert np.isfinite(df["score"]).all()
