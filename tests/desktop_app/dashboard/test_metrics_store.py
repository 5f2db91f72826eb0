"""The dashboard's Delta readers against real Delta tables written with delta-rs."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from desktop_app.dashboard.metrics_store import (
    METRIC_COLUMNS,
    AnomalyStore,
    MetricsStore,
    Selection,
)
from pipeline import latency_hist, schemas

T0 = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
TS = pa.timestamp("us", tz="UTC")
HIST = pa.list_(pa.struct([("b", pa.int32()), ("n", pa.int64())]))
QS = latency_hist.QUANTILES


def partial_rows(parts: list[dict]) -> pa.Table:
    """Partial rows of the ``metrics`` table: each dict gives ``window`` (10 s index from T0),
    ``latencies`` (ms) and optionally source, endpoint, level, errors, watermark (seconds
    from T0, None = null), batch_id and no_hist (a null ``latency_hist``); counts and
    percentiles follow from the latencies."""
    def ts(seconds):
        return None if seconds is None else T0 + dt.timedelta(seconds=seconds)

    rows = []
    for part in parts:
        lat = list(part["latencies"])
        p50, p95, p99 = latency_hist.quantiles(latency_hist.histogram(lat))
        errors = part.get("errors", 0)
        rows.append({
            "window_start": ts(10 * part["window"]), "window_end": ts(10 * part["window"] + 10),
            "window_size": "10s", "source": part.get("source", "web-1"),
            "endpoint": part.get("endpoint", "/api"), "level": part.get("level", "INFO"),
            "requests": len(lat), "errors": errors, "error_rate": errors / max(len(lat), 1),
            "latency_p50": p50, "latency_p95": p95, "latency_p99": p99, "bytes": 100 * len(lat),
            "status_2xx": len(lat) - errors, "status_3xx": 0, "status_4xx": 0,
            "status_5xx": errors, "status_404": 0,
            "latency_hist": (None if part.get("no_hist") else
                             [{"b": b, "n": n} for b, n in latency_hist.histogram(lat)]),
            "watermark": ts(part.get("watermark")), "batch_id": part.get("batch_id", 0),
        })
    types = {"window_start": TS, "window_end": TS, "watermark": TS, "latency_hist": HIST,
             "requests": pa.int64(), "errors": pa.int64(), "bytes": pa.int64(),
             "batch_id": pa.int64(), **{c: pa.int64() for c in METRIC_COLUMNS
                                         if c.startswith("status_")}}
    schema = pa.schema([(c, types.get(c, pa.float64() if c.startswith(("latency_p", "error_"))
                                      else pa.string())) for c in METRIC_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def exact(latencies, q: float) -> float:
    """The exact percentile: the value of rank ceil(q * n)."""
    values = sorted(latencies)
    return values[max(math.ceil(q * len(values)), 1) - 1]


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


def test_legacy_rows_without_histograms_use_request_weighted_means(metrics_path):
    """Tables written before ``latency_hist`` (and ``watermark``) still chart."""
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
    assert both["provisional"].all()  # no watermark known: nothing is final


def test_partials_of_one_window_merge_to_exact_counts_and_percentiles(metrics_path):
    rng = np.random.default_rng(3)
    fast, slow = rng.lognormal(3.0, 0.6, 400), rng.lognormal(4.5, 0.3, 250)
    write_deltalake(metrics_path, partial_rows([
        {"window": 0, "latencies": fast, "errors": 4, "batch_id": 1, "watermark": -25}]))
    write_deltalake(metrics_path, partial_rows([
        {"window": 0, "latencies": slow, "errors": 1, "batch_id": 2, "watermark": -20}]),
        mode="append")
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    s = store.series(Selection(), window_size="10s")
    assert s["t"].tolist() == [T0.timestamp()]
    assert s["requests"].tolist() == [650] and s["errors"].tolist() == [5]
    assert s["status_5xx"].tolist() == [5] and s["throughput"].tolist() == [65.0]
    union = np.concatenate([fast, slow])
    for q, column in zip(QS, ("latency_p50", "latency_p95", "latency_p99"), strict=True):
        assert s[column][0] == pytest.approx(exact(union, q), rel=0.01)
    # the old request-weighted mean of the partials' own p95 would be far off
    own = [latency_hist.quantiles(latency_hist.histogram(x))[1] for x in (fast, slow)]
    assert abs((own[0] * 400 + own[1] * 250) / 650 / exact(union, 0.95) - 1) > 0.2
    grid = store.grid(Selection(), int((T0 + dt.timedelta(seconds=15)).timestamp() * 1000))
    assert grid["latency_p95"] == pytest.approx(exact(union, 0.95), rel=0.01)
    assert grid["events_per_s"] == pytest.approx(65.0)


def test_coarse_windows_are_the_merge_of_their_10s_partials(metrics_path):
    rng = np.random.default_rng(5)
    parts = [{"window": w, "source": source, "latencies": rng.lognormal(3 + w / 10, 0.5, k),
              "errors": w % 3, "batch_id": batch}
             for w in range(3, 15) for source in ("web-1", "web-2")
             for batch, k in enumerate(rng.integers(5, 60, size=1 + w % 2))]
    write_deltalake(metrics_path, partial_rows(parts[::2]))
    write_deltalake(metrics_path, partial_rows(parts[1::2]), mode="append")
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    tens = store.series(Selection(), window_size="10s")
    minutes = store.series(Selection(), window_size="1m")
    # windows from T0+30 s: minutes floor to T0, T0+60 and T0+120 (3, 6 and 3 windows)
    assert minutes["t"].tolist() == [T0.timestamp() + m for m in (0, 60, 120)]
    for i, t in enumerate(minutes["t"]):
        inside = (tens["t"] >= t) & (tens["t"] < t + 60)
        assert inside.sum() == (3, 6, 3)[i]
        for key in ("requests", "errors", "status_2xx", "status_5xx"):
            assert minutes[key][i] == tens[key][inside].sum()
        assert minutes["throughput"][i] == tens["requests"][inside].sum() / 60
        latencies = np.concatenate([p["latencies"] for p in parts
                                    if t <= T0.timestamp() + 10 * p["window"] < t + 60])
        merged = latency_hist.quantiles(latency_hist.histogram(latencies))
        got = [minutes[c][i] for c in ("latency_p50", "latency_p95", "latency_p99")]
        assert got == pytest.approx(merged, rel=1e-12)
        assert got == pytest.approx([exact(latencies, q) for q in QS], rel=0.01)
    # a range starting mid-minute still gets whole minutes
    start = int((T0 + dt.timedelta(seconds=65)).timestamp() * 1000)
    clipped = store.series(Selection(), start, start + 60_000, "1m")
    assert clipped["t"].tolist() == minutes["t"][1:].tolist()
    assert clipped["requests"].tolist() == minutes["requests"][1:].tolist()
    one = store.series(Selection(source="web-2"), window_size="1m")
    assert one["requests"].tolist() == [
        sum(len(p["latencies"]) for p in parts if p["source"] == "web-2"
            and t <= T0.timestamp() + 10 * p["window"] < t + 60) for t in minutes["t"]]


def test_provisional_points_follow_the_table_watermark(metrics_path):
    lat = [10.0, 20.0, 30.0]
    write_deltalake(metrics_path, partial_rows(
        [{"window": w, "latencies": lat, "watermark": 20} for w in range(3)]
        + [{"window": w, "latencies": lat, "watermark": None} for w in range(3, 6)]))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    assert store.series(Selection(), window_size="10s")["provisional"].tolist() == [
        False, False, True, True, True, True]  # ends 10, 20 <= watermark 20 s
    write_deltalake(metrics_path, partial_rows([{"window": 5, "latencies": lat,
                                                 "watermark": 40, "batch_id": 1}]),
                    mode="append")
    store.refresh(T0)
    assert store.watermark_ms == (T0.timestamp() + 40) * 1000
    tens = store.series(Selection(), window_size="10s")
    assert tens["provisional"].tolist() == [False] * 4 + [True] * 2
    assert tens["requests"].tolist() == [3, 3, 3, 3, 3, 6]
    # one watermark for the whole table, whichever selection is drawn
    assert store.series(Selection(source="web-1"), window_size="10s")["provisional"].sum() == 2
    assert store.series(Selection(), window_size="1m")["provisional"].tolist() == [True]
    write_deltalake(metrics_path, partial_rows([{"window": 5, "latencies": lat,
                                                 "watermark": 60, "batch_id": 2}]),
                    mode="append")
    store.refresh(T0)
    assert not store.series(Selection(), window_size="1m")["provisional"].any()


def test_no_watermark_known_means_provisional(metrics_path):
    write_deltalake(metrics_path, partial_rows(
        [{"window": w, "latencies": [5.0], "watermark": None} for w in range(3)]))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    assert store.watermark_ms is None
    assert store.series(Selection())["provisional"].tolist() == [True] * 3


def test_rows_with_a_null_histogram_fall_back_to_their_percentiles(metrics_path):
    write_deltalake(metrics_path, partial_rows([
        {"window": 0, "latencies": [10.0] * 9, "watermark": 30},
        {"window": 0, "latencies": [500.0], "no_hist": True},  # histogram present wins
        {"window": 1, "latencies": [100.0] * 3, "no_hist": True},
        {"window": 1, "latencies": [200.0], "no_hist": True},
    ]))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    s = store.series(Selection(), window_size="10s")
    assert s["requests"].tolist() == [10, 4]
    assert s["latency_p95"][0] == pytest.approx(10.0, rel=0.01)
    own = [latency_hist.quantiles([(int(latency_hist.bucket_of([x])[0]), 1)])[1]
           for x in (100.0, 200.0)]  # each row's own p95
    assert s["latency_p95"][1] == pytest.approx((3 * own[0] + own[1]) / 4)


def test_window_size_gives_at_most_about_400_points(metrics_path):
    store = MetricsStore(metrics_path)
    assert [store.pick_window_size(r) for r in (300, 3600, 4001, 6 * 3600, 86400, 2 * 86400)] \
        == ["10s", "10s", "1m", "1m", "5m", "1h"]
    assert set(schemas.WINDOW_SIZES) == {"10s", "1m", "5m", "1h"}


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


def test_merge_paths_agree_and_follow_rewrites(metrics_path, monkeypatch):
    """Dense or sorted merge, one chunk or many, consecutive rows or gathered: one answer;
    a rewrite (compaction, overwrite) drops the old files' histograms with their rows."""
    from desktop_app.dashboard import metrics_store

    rng = np.random.default_rng(9)
    parts = [{"window": w, "source": f"web-{k % 3}", "latencies": rng.lognormal(3, 1, 40)}
             for w in range(30) for k in range(4)]
    write_deltalake(metrics_path, partial_rows(parts))
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    selections = (Selection(), Selection(source="web-1"))
    want = [store.series(sel, window_size=size) for sel in selections for size in ("10s", "1m")]
    monkeypatch.setattr(metrics_store, "_CHUNK_PAIRS", 7)
    monkeypatch.setattr(metrics_store, "_DENSE_CELLS", 0)
    got = [store.series(sel, window_size=size) for sel in selections for size in ("10s", "1m")]
    for a, b in zip(want, got, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    write_deltalake(metrics_path, partial_rows([{"window": 0, "latencies": [1000.0] * 5}]),
                    mode="overwrite")
    store.refresh(T0)
    s = store.series(Selection())
    assert s["requests"].tolist() == [5]
    assert s["latency_p50"][0] == pytest.approx(1000.0, rel=0.01)
    assert len(store.partials.b) == 1


def test_old_layout_1m_rows_are_not_counted_twice(metrics_path):
    """Version-1 tables hold complete 10 s and 1 m windows: minutes come from the 10 s ones."""
    minute = metrics_rows(0, 1, requests=9999)
    minute = minute.set_column(minute.schema.get_field_index("window_size"), "window_size",
                               pa.array(["1m"]))
    write_deltalake(metrics_path, metrics_rows(0, 6))
    write_deltalake(metrics_path, minute, mode="append")
    store = MetricsStore(metrics_path)
    store.refresh(T0)
    assert store.series(Selection(), window_size="1m")["requests"].tolist() == [
        sum(100 + i for i in range(6))]
    assert store.series(Selection(), window_size="10s")["t"].size == 6
