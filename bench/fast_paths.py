"""Fast paths (``sql.fast_paths``) on and off, on a live-shaped ``logs`` table.

The table imitates a stream at ~1,400 ev/s: ``--rows`` rows over the last ``--recent-min``
minutes in ``--files`` small time-sliced files (one per micro-batch), plus ``--history`` rows
over three days ending 2 h before them, in 150 files. Times the issue's two queries through
``SqlEngine`` with the fast paths on and off (warm: one unmeasured run, then the median of
``--runs``) and checks that both return the same rows. On a loaded machine read the ratio,
not the seconds.

Usage: ``python bench/fast_paths.py [--rows 1000000] [--files 400] [--runs 5] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.schemas import LOGS_DDL  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

LATEST = "SELECT * FROM logs ORDER BY ts DESC LIMIT 100"
LAST_HOUR = ("SELECT endpoint, count(*), avg(latency_ms) FROM logs "
             "WHERE ts > current_timestamp() - INTERVAL 1 HOUR GROUP BY endpoint")


def generate(spark, path: str, rows: int, span_s: float, files: int, mode: str,
             before_s: float = 0.0) -> None:
    """``rows`` rows evenly over ``span_s`` seconds ending ``before_s`` before now,
    range-partitioned on ``ts`` into ``files`` files (a streaming writer's layout: one time
    slice per file)."""
    spark.range(0, rows, 1, 8).selectExpr(
        "uuid() AS event_id",
        f"current_timestamp() - make_interval(0, 0, 0, 0, 0, 0, {before_s!r} + id * "
        f"{span_s / rows!r}) AS ts",
        "element_at(array('DEBUG','INFO','INFO','INFO','WARN','ERROR'), "
        "  cast(pmod(hash(id, 1), 6) + 1 AS INT)) AS level",
        "concat('svc-', pmod(hash(id, 2), 20)) AS source",
        "element_at(array('GET','GET','GET','POST'), cast(pmod(hash(id, 3), 4) + 1 AS INT)) "
        "  AS method",
        "concat('/api/v1/items/', pmod(hash(id, 4), 50)) AS endpoint",
        "element_at(array(200,200,200,201,404,500), cast(pmod(hash(id, 5), 6) + 1 AS INT)) "
        "  AS status",
        "abs(hash(id, 6)) % 100000 / 100.0 AS latency_ms",
        "CAST(abs(hash(id, 7)) % 50000 AS BIGINT) AS bytes",
    ).selectExpr("*", "to_date(ts) AS date").selectExpr(*(
        f"CAST({name} AS {type_}) AS {name}" if name in (
            "event_id", "ts", "level", "source", "method", "endpoint", "status",
            "latency_ms", "bytes", "date") else f"CAST(NULL AS {type_}) AS {name}"
        for name, type_ in (col.split() for col in LOGS_DDL.split(", "))
    )).repartitionByRange(files, "ts").write.format("delta").partitionBy("date").mode(
        mode).save(path)


def timed(engine, sql: str, runs: int) -> tuple[float, list[tuple]]:
    engine.execute(sql).fetch_all()  # warm-up, not measured
    times, rows = [], []
    for _ in range(runs):
        started = time.perf_counter()
        rows = engine.execute(sql).fetch_all()
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--recent-min", type=float, default=12.0)
    ap.add_argument("--files", type=int, default=400, help="files of the recent rows")
    ap.add_argument("--history", type=int, default=200_000, help="rows over 3 days before")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="data dir to reuse / keep")
    args = ap.parse_args()

    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="lakewatch-bench-fast-"))
    settings = load_settings(None, {"storage.data_dir": str(data_dir)})
    from pipeline.spark_session_manager import get_spark, stop_spark
    from pipeline.sql.engine import SqlEngine

    spark = get_spark(settings)
    try:
        path = str(settings.table_path("logs"))
        if not (Path(path) / "_delta_log").is_dir():
            t0 = time.perf_counter()
            # history: 3 days ending 2 h before the recent rows (so the last hour
            # holds exactly the recent rows whenever the bench runs)
            generate(spark, path, args.history, 3 * 86400.0, 150, "overwrite",
                     before_s=args.recent_min * 60 + 7200)
            generate(spark, path, args.rows, args.recent_min * 60, args.files, "append")
            files = len(list(Path(path).rglob("*.parquet")))
            print(f"generated {args.rows + args.history:,} rows in {files} files in "
                  f"{time.perf_counter() - t0:.1f} s")
        fast = SqlEngine(settings, spark)
        fast.start()
        plain_settings = settings.model_copy(deep=True)
        plain_settings.sql.fast_paths = False
        plain = SqlEngine(plain_settings, spark)
        count = fast.execute("SELECT count(*) FROM logs").rows[0][0]
        print(f"logs: {count:,} rows; median of {args.runs} warm runs (loaded machine: "
              "compare the ratio)")
        for name, sql in (("latest 100", LATEST), ("last-hour group by", LAST_HOUR)):
            off, off_rows = timed(plain, sql, args.runs)
            on, on_rows = timed(fast, sql, args.runs)
            same = (on_rows == off_rows if "ORDER BY" in sql
                    else sorted(on_rows) == sorted(off_rows))
            print(f"{name:20s}: fast path {on:6.3f} s, without {off:6.3f} s "
                  f"(x{off / on:.1f}); same rows: {same}")
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
