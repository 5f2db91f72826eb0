"""One dashboard refresh of the Delta ``metrics`` table: the app's delta-rs path vs Spark.

Writes a metrics table (default 50,000 rows in 50 commits) with delta-rs, then measures
  - deltalake, first load (every file read once),
  - deltalake, incremental refresh after one more commit (only the new file read),
  - Spark (the shared app SparkSession): read the table filtered to the last hour
    and collect it to pandas, as a Spark-based dashboard would on every refresh.
Spark start-up is reported separately and not counted in the per-refresh figure.

    python bench/gui_refresh.py [--rows 50000] [--commits 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from desktop_app.dashboard.metrics_store import MetricsStore, Selection  # noqa: E402

TS = pa.timestamp("us", tz="UTC")


def batch(start: dt.datetime, n: int, offset: int) -> pa.Table:
    starts = [start + dt.timedelta(seconds=10 * ((offset + i) // 20)) for i in range(n)]
    return pa.table({
        "window_start": pa.array(starts, TS),
        "window_end": pa.array([s + dt.timedelta(seconds=10) for s in starts], TS),
        "window_size": ["10s"] * n,
        "source": [f"web-{(offset + i) % 4}" for i in range(n)],
        "endpoint": [f"/api/{(offset + i) % 5}" for i in range(n)],
        "level": ["INFO"] * n,
        "requests": pa.array([100 + i % 50 for i in range(n)], pa.int64()),
        "errors": pa.array([i % 3 for i in range(n)], pa.int64()),
        "error_rate": [0.01] * n,
        "latency_p50": [20.0] * n, "latency_p95": [80.0] * n, "latency_p99": [150.0] * n,
        "bytes": pa.array([5000] * n, pa.int64()),
        "status_2xx": pa.array([90] * n, pa.int64()), "status_3xx": pa.array([2] * n, pa.int64()),
        "status_4xx": pa.array([5] * n, pa.int64()), "status_5xx": pa.array([3] * n, pa.int64()),
        "status_404": pa.array([1] * n, pa.int64()),
    })


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-bench-"))
    path = tmp / "delta" / "metrics"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    per = args.rows // args.commits
    for c in range(args.commits):
        write_deltalake(path, batch(start, per, c * per), mode="append")

    first, incremental = [], []
    for run in range(args.runs):
        store = MetricsStore(path)
        began = time.perf_counter()
        store.refresh()
        first.append((time.perf_counter() - began) * 1000)
        write_deltalake(path, batch(start, per, (args.commits + run) * per), mode="append")
        began = time.perf_counter()
        store.refresh()
        store.series(Selection())
        incremental.append((time.perf_counter() - began) * 1000)
        assert store.reader.rows_read == (args.commits + run + 1) * per

    from pipeline.settings import load_settings
    from pipeline.spark_session_manager import get_spark, stop_spark

    settings = load_settings(None, {"storage.data_dir": str(tmp), "spark.master": "local[2]"})
    began = time.perf_counter()
    spark = get_spark(settings)
    startup = time.perf_counter() - began
    spark_times = []
    try:
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        for _ in range(args.runs):
            began = time.perf_counter()
            df = (spark.read.format("delta").load(str(path))
                  .where(f"window_start >= TIMESTAMP '{since}'").toPandas())
            spark_times.append((time.perf_counter() - began) * 1000)
        rows = len(df)
    finally:
        stop_spark()

    med = statistics.median
    total = args.rows + args.runs * per
    print(f"metrics table: {total:,} rows in {args.commits + args.runs} commits")
    print(f"  deltalake first load       : median {med(first):8.1f} ms")
    print(f"  deltalake incremental      : median {med(incremental):8.1f} ms  ({per} new rows)")
    print(f"  Spark read+filter+toPandas : median {med(spark_times):8.1f} ms  ({rows:,} rows; "
          f"session start {startup:.1f} s not counted)")
    print(f"  ratio Spark / incremental  : {med(spark_times) / med(incremental):8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
