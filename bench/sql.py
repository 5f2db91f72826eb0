"""SQL engine benchmark on a synthetic logs table.

Generates a logs-shaped Delta table with Spark (``range`` + expressions, default 10M rows),
then times through ``SqlEngine`` (warm: one unmeasured run first, then the median of
``--runs``):

* a GROUP BY over the whole table,
* a selective filter (one source + one endpoint + a narrow time window),
* both again after ``OPTIMIZE … ZORDER BY (source, endpoint)`` (ratio vs before),
* time to the first page of a 1M-row result (target ≤ 1 s) vs fetching all of it, and the
  first page again after OPTIMIZE (fewer, larger files: larger partitions).

Usage: ``python bench/sql.py [--rows 10000000] [--runs 3] [--keep DIR]``.
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

# The query, as written there.
GROUP_BY = """SELECT endpoint, count(*), percentile_approx(latency_ms, 0.95)
FROM logs GROUP BY endpoint"""
SELECTIVE = """SELECT event_id, ts, status, latency_ms FROM logs
WHERE source = 'svc-7' AND endpoint = '/api/v1/items/42'
  AND ts >= TIMESTAMP '2026-01-01 02:00:00' AND ts < TIMESTAMP '2026-01-01 03:00:00'"""
# ~10% of the rows (1M of 10M): latency_ms is uniform in [0, 1000).
BIG_RESULT = "SELECT event_id, ts, level, status, latency_ms FROM logs WHERE latency_ms < 100"


def generate(spark, path: str, rows: int, files: int) -> None:
    """A logs-shaped table partitioned by date like the pipeline's, written as ``files``
    small files per date (a streaming writer's layout before OPTIMIZE)."""
    spark.range(0, rows, 1, 8).selectExpr(
        "uuid() AS event_id",
        "TIMESTAMP '2026-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id * 0.01) AS ts",
        "element_at(array('DEBUG','INFO','INFO','INFO','WARN','ERROR'), "
        "  cast(pmod(hash(id, 1), 6) + 1 AS INT)) AS level",
        "concat('svc-', pmod(hash(id, 2), 20)) AS source",
        "element_at(array('GET','GET','GET','POST','PUT','DELETE'), "
        "  cast(pmod(hash(id, 3), 6) + 1 AS INT)) AS method",
        "concat('/api/v1/items/', pmod(hash(id, 4), 500)) AS endpoint",
        "element_at(array(200,200,200,200,201,301,404,500,503), "
        "  cast(pmod(hash(id, 5), 9) + 1 AS INT)) AS status",
        "abs(hash(id, 6)) % 100000 / 100.0 AS latency_ms",
        "CAST(abs(hash(id, 7)) % 50000 AS BIGINT) AS bytes",
        "concat('10.0.', pmod(id, 250), '.', pmod(id, 199)) AS client_ip",
        "'bench/1.0' AS user_agent",
        "'request served' AS message",
        "CAST(NULL AS STRING) AS raw_format", "CAST(NULL AS STRING) AS kafka_topic",
        "CAST(NULL AS INT) AS kafka_partition", "CAST(NULL AS BIGINT) AS kafka_offset",
        "CAST(NULL AS TIMESTAMP) AS kafka_timestamp", "CAST(NULL AS TIMESTAMP) AS ingest_ts",
    ).selectExpr("*", "to_date(ts) AS date").selectExpr(*(
        # The pipeline's column types exactly (the expressions above give DECIMAL latency,
        # which made percentile_approx several times slower than on the real table).
        f"CAST({name} AS {type_}) AS {name}"
        for name, type_ in (col.split() for col in LOGS_DDL.split(", "))
    )).repartition(files).write.format("delta").partitionBy("date").mode("overwrite").save(path)


def timed(engine, sql: str, runs: int) -> tuple[float, int]:
    engine.execute(sql).fetch_all()  # warm-up, not measured
    times, n = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        n = len(engine.execute(sql).fetch_all())
        times.append(time.perf_counter() - started)
    return statistics.median(times), n


def first_page(engine, sql: str, runs: int, fetch_all: bool = True) -> tuple[float, float]:
    firsts, alls = [], []
    engine.execute(sql, first_page=1000).close()
    for _ in range(runs):
        started = time.perf_counter()
        result = engine.execute(sql, first_page=1000)
        firsts.append(time.perf_counter() - started)
        if fetch_all:
            result.fetch_all(50_000)
            alls.append(time.perf_counter() - started)
        result.close()
    return statistics.median(firsts), statistics.median(alls) if alls else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=400, help="files per date before OPTIMIZE")
    ap.add_argument("--keep", type=Path, default=None, help="data dir to reuse / keep")
    args = ap.parse_args()

    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="lakewatch-bench-sql-"))
    settings = load_settings(None, {"storage.data_dir": str(data_dir),
                                    "sql.row_cap": 2_000_000})
    from pipeline.spark_session_manager import get_spark, stop_spark
    from pipeline.sql.engine import SqlEngine

    spark = get_spark(settings)
    try:
        path = str(settings.table_path("logs"))
        if not (Path(path) / "_delta_log").is_dir():
            t0 = time.perf_counter()
            generate(spark, path, args.rows, args.files)
            files = len(list(Path(path).rglob("*.parquet")))
            print(f"generated {args.rows:,} rows in {files} files in "
                  f"{time.perf_counter() - t0:.1f} s")
        engine = SqlEngine(settings, spark)
        engine.start()
        count = engine.execute("SELECT count(*) FROM logs").rows[0][0]
        print(f"logs: {count:,} rows; median of {args.runs} warm runs")

        gb_before, gb_rows = timed(engine, GROUP_BY, args.runs)
        sel_before, sel_rows = timed(engine, SELECTIVE, args.runs)
        first, full = first_page(engine, BIG_RESULT, args.runs)
        print(f"group by            : {gb_before:7.3f} s ({gb_rows} rows)")
        print(f"selective filter    : {sel_before:7.3f} s ({sel_rows} rows)")
        print(f"1M rows, first page : {first:7.3f} s (target <= 1 s: "
              f"{'ok' if first <= 1.0 else 'MISSED'}); all rows {full:.3f} s "
              f"(first page = {first / full:.2%} of full fetch)")

        t0 = time.perf_counter()
        spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY (source, endpoint)").collect()
        print(f"OPTIMIZE ZORDER BY (source, endpoint): {time.perf_counter() - t0:.1f} s")
        engine.refresh_catalog()
        gb_after, _ = timed(engine, GROUP_BY, args.runs)
        sel_after, sel_rows_after = timed(engine, SELECTIVE, args.runs)
        assert sel_rows_after == sel_rows, "OPTIMIZE changed the result"
        print(f"group by after      : {gb_after:7.3f} s (x{gb_before / gb_after:.2f} vs before)")
        print(f"selective after     : {sel_after:7.3f} s (x{sel_before / sel_after:.2f} vs before)")
        first_after, _ = first_page(engine, BIG_RESULT, args.runs, fetch_all=False)
        print(f"first page after    : {first_after:7.3f} s (target <= 1 s: "
              f"{'ok' if first_after <= 1.0 else 'MISSED'})")
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
