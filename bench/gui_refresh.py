"""One dashboard refresh of the Delta ``metrics`` table (10 s partials with latency histograms).

Writes a partials table (default 500,000 rows over the last 24 h, 100 commits, ~40 histogram
buckets a row) with delta-rs, then measures
  - deltalake, first load (every file read once),
  - deltalake, incremental refresh after one more commit (only the new file read),
  - compute: what the worker does per refresh for a range (``series`` at the picked window
    size + ``grid``), for the whole table and for one source, per range of the range box,
  - with ``--spark``: Spark (the shared app SparkSession) reading the table filtered to the
    last hour and collecting it to pandas, as a Spark-based dashboard would on every refresh
    (session start-up reported separately, not counted).

    python bench/gui_refresh.py [--rows 500000] [--commits 100] [--buckets 40] [--runs 5] [--spark]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from desktop_app.dashboard.metrics_store import MetricsStore, Selection  # noqa: E402

TS = pa.timestamp("us", tz="UTC")
HIST = pa.list_(pa.struct([("b", pa.int32()), ("n", pa.int64())]))
WINDOWS = 8640  # 24 h of 10 s windows
SOURCES, ENDPOINTS = 4, 5
RANGES = (("15 min", 900), ("1 h", 3600), ("6 h", 6 * 3600), ("24 h", 86400))


def batch(start: dt.datetime, rows_per_window: float, offset: int, n: int, buckets: int,
          batch_id: int) -> pa.Table:
    """Rows ``offset .. offset + n`` of the synthetic table: several partials per (window,
    source, endpoint) (one per micro-batch), each with a lognormal-ish latency histogram."""
    rng = np.random.default_rng(offset)
    i = np.arange(offset, offset + n)
    window = (i / rows_per_window).astype(np.int64)
    starts_us = int(start.timestamp() * 1e6) + window * 10_000_000
    lens = rng.integers(buckets // 2, buckets * 3 // 2 + 1, size=n)
    center = rng.integers(150, 260, size=n)  # bucket ~ 20 .. 180 ms
    b = (np.repeat(center, lens) + np.concatenate([np.arange(k) for k in lens])
         - np.repeat(lens // 2, lens)).astype(np.int32)
    counts = rng.integers(1, 6, size=int(lens.sum())).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(lens))).astype(np.int32)
    hist = pa.ListArray.from_arrays(pa.array(offsets), pa.StructArray.from_arrays(
        [pa.array(b), pa.array(counts)], names=["b", "n"])).cast(HIST)
    requests = np.add.reduceat(counts, offsets[:-1])
    errors = requests // 50
    return pa.table({
        "window_start": pa.array(starts_us, pa.int64()).cast(TS),
        "window_end": pa.array(starts_us + 10_000_000, pa.int64()).cast(TS),
        "window_size": ["10s"] * n,
        "source": [f"web-{k % SOURCES}" for k in i.tolist()],
        "endpoint": [f"/api/{(k // SOURCES) % ENDPOINTS}" for k in i.tolist()],
        "level": ["INFO"] * n,
        "requests": pa.array(requests, pa.int64()),
        "errors": pa.array(errors, pa.int64()),
        "error_rate": errors / requests,
        "latency_p50": [20.0] * n, "latency_p95": [80.0] * n, "latency_p99": [150.0] * n,
        "bytes": pa.array(requests * 900, pa.int64()),
        "status_2xx": pa.array(requests - errors, pa.int64()),
        "status_3xx": pa.array(np.zeros(n, np.int64)),
        "status_4xx": pa.array(np.zeros(n, np.int64)),
        "status_5xx": pa.array(errors, pa.int64()),
        "status_404": pa.array(np.zeros(n, np.int64)),
        "latency_hist": hist,
        # the batch's watermark: 30 s behind the newest event it saw
        "watermark": pa.array(starts_us + 10_000_000 - 30_000_000, pa.int64()).cast(TS),
        "batch_id": pa.array(np.full(n, batch_id, np.int64)),
    })


@contextlib.contextmanager
def timed(into: list[tuple[float, float]]):
    """Appends (wall ms, this thread's CPU ms) of the block to ``into``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    yield
    into.append(((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000))


def median(times: list[tuple[float, float]]) -> str:
    wall = statistics.median(w for w, _ in times)
    cpu = statistics.median(c for _, c in times)
    return f"median {wall:8.1f} ms (cpu {cpu:7.1f})"


def compute(store: MetricsStore, selection: Selection, range_s: float, now: dt.datetime) -> None:
    """What the worker computes for one selection per refresh."""
    end_ms = int(now.timestamp() * 1000)
    size = store.pick_window_size(range_s)
    store.series(selection, int(end_ms - range_s * 1000), end_ms, size)
    store.grid(selection, end_ms)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--buckets", type=int, default=40, help="mean histogram buckets a row")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spark", action="store_true", help="also time a Spark read")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-bench-"))
    path = tmp / "delta" / "metrics"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(seconds=10 * WINDOWS)
    per = args.rows // args.commits
    per_window = (args.rows + args.runs * per) / WINDOWS
    for c in range(args.commits):
        write_deltalake(path, batch(start, per_window, c * per, per, args.buckets, c),
                        mode="append")

    first, incremental, computes = [], [], {}
    store = None
    for run in range(args.runs):
        store = MetricsStore(path)
        with timed(first):
            store.refresh(now)
        c = args.commits + run
        write_deltalake(path, batch(start, per_window, c * per, per, args.buckets, c),
                        mode="append")
        with timed(incremental):
            store.refresh(now)
            compute(store, Selection(), 900, now)
        assert store.reader.rows_read == (args.commits + run + 1) * per
        for label, seconds in RANGES:
            for name, sel in (("all", Selection()), ("web-1", Selection(source="web-1"))):
                with timed(computes.setdefault((label, name), [])):
                    compute(store, sel, seconds, now)

    total = args.rows + args.runs * per
    print(f"metrics table: {total:,} partial rows in {args.commits + args.runs} commits, "
          f"~{args.buckets} histogram buckets a row (wall; cpu = this thread's CPU time)")
    print(f"  deltalake first load       : {median(first)}")
    print(f"  deltalake incremental      : {median(incremental)}  ({per} new rows, then the "
          "15 min compute)")
    for (label, name), times in computes.items():
        print(f"  compute {label:>6} {name:>5}      : {median(times)}  "
              f"(window {store.pick_window_size(dict(RANGES)[label])})")
    med = statistics.median

    if args.spark:
        from pipeline.settings import load_settings
        from pipeline.spark_session_manager import get_spark, stop_spark

        settings = load_settings(None, {"storage.data_dir": str(tmp), "spark.master": "local[2]"})
        began = time.perf_counter()
        spark = get_spark(settings)
        startup = time.perf_counter() - began
        spark_times = []
        try:
            since = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
            for _ in range(args.runs):
                began = time.perf_counter()
                df = (spark.read.format("delta").load(str(path))
                      .where(f"window_start >= TIMESTAMP '{since}'").toPandas())
                spark_times.append((time.perf_counter() - began) * 1000)
            rows = len(df)
        finally:
            stop_spark()
        print(f"  Spark read+filter+toPandas : median {med(spark_times):8.1f} ms  ({rows:,} rows; "
              f"session start {startup:.1f} s not counted)")
        print(f"  ratio Spark / incremental  : "
              f"{med(spark_times) / med(w for w, _ in incremental):8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
