"""Keeping ``logs`` few-filed under a stream: Delta auto compaction against the writer's
scheduled, partition-bounded OPTIMIZE (issue 20, item 2).

A stand-in for the ingest writer appends ``--batches`` batches of ``--rows`` rows (one file
each, the ``logs`` schema, ``ts`` advancing with the batches) to a fresh ``logs`` table every
``--trigger`` seconds, like the stream at ~1,500 ev/s, under each policy:

- ``none``: appends only (the file count grows by one per batch);
- ``auto``: ``delta.autoOptimize.autoCompact = true`` (Delta OSS 3.1+): Delta compacts in a
  post-commit hook *of the writing batch* once a partition has enough small files;
- ``scheduled``: a thread beside the appends runs :func:`pipeline.delta_tables.compact_recent`
  (``OPTIMIZE ... WHERE date >= ...``, files under ``--min-file-mb`` only) every
  ``--compact-every`` seconds, as the processor's maintenance thread does.

Printed per policy: the append (batch commit) latency p50 / p95 / p99 / max, the final file
count, rows and distinct ids against what was appended (nothing lost or doubled), and for
``scheduled`` each round's duration, files removed -> added and bytes rewritten, plus any
failed round (a conflict with the appends would show there).

Usage: ``python bench/compaction.py [--batches 150] [--rows 1500] [--trigger 1.0]
[--compact-every 20] [--min-file-mb 2] [--auto-min-files 50]
[--policies none auto scheduled]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.delta_tables import compact_recent, ensure_tables  # noqa: E402
from pipeline.schemas import TABLE_LOGS  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def batch_frame(spark, batch: int, rows: int, start_us: int, trigger_us: int):
    """``rows`` log rows of batch ``batch``: ids ``batch*rows ...``, ts within its trigger."""
    first = batch * rows
    step = max(trigger_us // rows, 1)
    return spark.range(first, first + rows).selectExpr(
        "concat(uuid(), '-', id) AS event_id",
        f"timestamp_micros({start_us + batch * trigger_us} + (id - {first}) * {step}) AS ts",
        "element_at(array('INFO','INFO','INFO','WARN','ERROR'), cast(id % 5 + 1 AS INT)) AS level",
        "element_at(array('nginx','api','auth','db'), cast(id % 4 + 1 AS INT)) AS source",
        "element_at(array('GET','GET','POST','PUT'), cast(id % 4 + 1 AS INT)) AS method",
        "concat('/api/v1/items/', cast(hash(id) % 500 AS STRING)) AS endpoint",
        "element_at(array(200,200,200,201,304,404,500), cast(id % 7 + 1 AS INT)) AS status",
        "round(exp(rand() * 5), 2) AS latency_ms",
        "cast(rand() * 20000 AS BIGINT) AS bytes",
        "concat('10.0.', cast(id % 200 AS STRING), '.', cast(hash(id, 1) % 250 AS STRING))"
        " AS client_ip",
        "element_at(array('Mozilla/5.0 (X11; Linux x86_64)', 'curl/8.5.0', 'python-requests/2"
        ".32'), cast(id % 3 + 1 AS INT)) AS user_agent",
        "concat('request ', uuid()) AS message",
        "'json' AS raw_format",
        "'logs' AS kafka_topic",
        "cast(id % 3 AS INT) AS kafka_partition",
        "id AS kafka_offset",
        "current_timestamp() AS kafka_timestamp",
        "current_timestamp() AS ingest_ts",
        "to_date(timestamp_micros("
        f"{start_us + batch * trigger_us})) AS date",
    ).coalesce(1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_policy(spark, root: Path, policy: str, args) -> dict:
    settings = load_settings(None, {"storage.data_dir": str(root / policy)})
    ensure_tables(spark, settings)
    path = settings.table_path(TABLE_LOGS)
    target = f"delta.`{path.resolve()}`"
    if policy == "auto":
        # Delta's default waits for 50 small files; fewer lets a short run see its cost
        spark.conf.set("spark.databricks.delta.autoCompact.minNumFiles", str(args.auto_min_files))
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES "
                  "('delta.autoOptimize.autoCompact' = 'true')")
    rounds: list[dict] = []
    failures: list[str] = []
    stop = threading.Event()

    def compactor() -> None:
        while not stop.wait(args.compact_every):
            try:
                rounds.append(compact_recent(
                    spark, path, days=2, min_file_bytes=int(args.min_file_mb * (1 << 20)),
                    max_file_bytes=128 << 20))
            except Exception as exc:  # noqa: BLE001 - a conflict is what we look for
                failures.append(str(exc).splitlines()[0])

    thread = threading.Thread(target=compactor, daemon=True)
    if policy == "scheduled":
        thread.start()
    start_us = int(time.time() * 1_000_000)
    trigger_us = int(args.trigger * 1_000_000)
    latencies: list[float] = []
    next_tick = time.monotonic()
    for b in range(args.batches):
        df = batch_frame(spark, b, args.rows, start_us, trigger_us)
        t0 = time.monotonic()
        df.write.format("delta").mode("append").save(str(path))
        latencies.append(time.monotonic() - t0)
        next_tick += args.trigger
        time.sleep(max(0.0, next_tick - time.monotonic()))
    stop.set()
    thread.join() if policy == "scheduled" else None
    detail = spark.sql(f"DESCRIBE DETAIL {target}").first()
    counts = spark.sql(f"SELECT count(*) AS n, count(DISTINCT kafka_offset) AS ids "
                       f"FROM {target}").first()
    auto_runs = spark.sql(f"DESCRIBE HISTORY {target}").where(
        "operation = 'OPTIMIZE'").count()
    return {
        "policy": policy,
        "p50": statistics.median(latencies), "p95": pct(latencies, 0.95),
        "p99": pct(latencies, 0.99), "max": max(latencies),
        "files": int(detail["numFiles"]), "bytes": int(detail["sizeInBytes"]),
        "rows": int(counts["n"]), "ids": int(counts["ids"]),
        "expected": args.batches * args.rows, "optimize_commits": auto_runs,
        "rounds": rounds, "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--trigger", type=float, default=1.0)
    ap.add_argument("--compact-every", type=float, default=20.0)
    ap.add_argument("--min-file-mb", type=float, default=2.0)
    ap.add_argument("--auto-min-files", type=int, default=50,
                    help="auto: spark.databricks.delta.autoCompact.minNumFiles (Delta: 50)")
    ap.add_argument("--policies", nargs="+", default=["none", "auto", "scheduled"],
                    choices=["none", "auto", "scheduled"])
    args = ap.parse_args(argv)
    from pipeline.spark_session_manager import get_spark, stop_spark

    with tempfile.TemporaryDirectory(prefix="lw-compaction-") as tmp:
        spark = get_spark(load_settings(None, {"storage.data_dir": tmp}))
        try:
            spark.range(10).count()  # warm the JVM before the first policy
            for policy in args.policies:
                r = run_policy(spark, Path(tmp), policy, args)
                print(f"{policy:>9}: append p50 {r['p50']:.2f} s  p95 {r['p95']:.2f} s  "
                      f"p99 {r['p99']:.2f} s  max {r['max']:.2f} s | files {r['files']} "
                      f"({r['bytes'] / r['files'] / 1024:.0f} KiB avg, "
                      f"{r['bytes'] / r['rows']:.0f} B/row) | rows {r['rows']} ids {r['ids']} "
                      f"of {r['expected']} | OPTIMIZE commits {r['optimize_commits']}",
                      flush=True)
                for rd in r["rounds"]:
                    print(f"           round {rd['seconds']:.2f} s: {rd['files_removed']} -> "
                          f"{rd['files_added']} files, {rd['bytes_removed'] / 1024:.0f} KiB "
                          "rewritten", flush=True)
                for failure in r["failures"]:
                    print(f"           FAILED round: {failure}", flush=True)
        finally:
            stop_spark()
    return 0


if __name__ == "__main__":
    sys.exit(main())
