"""p50/p95/p99 per group: Spark's KLL sketch (the query builder's SQL) against percentile_approx.

Issue 20, item 4. On ``--rows`` latencies in ``--groups`` groups (``spark.range``, log-normal
per group as in ``bench/sketches.py``, cached and counted before timing), each query's
``collect()`` is timed ``--runs`` times and the median printed, with its ratio to
percentile_approx (one summary per group, the three ranks as an array):

- ``avg``: ``avg(latency_ms)`` alone, the floor of a grouped aggregate over these rows;
- ``percentile_approx``: ``percentile_approx(latency_ms, array(0.5, 0.95, 0.99))``;
- ``percentile_approx x3``: three calls (three summaries), what the builder wrote before;
- ``kll k=K (builder)``: the builder's SQL for three percentiles (``build_query``): one
  sketch per group, read three times, guarded against empty groups;
- ``kll k=K (array)``: ``kll_sketch_get_quantile_double(kll_sketch_agg_double(...), array(...))``.

Each KLL row also gives the documented rank error for its k and the largest rank error
measured over all groups and the three ranks (against the exact ranks of the same rows).

Usage: ``python bench/kll_quantiles.py [--rows 5000000] [--groups 500] [--runs 3] [--k 200 1000]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.settings import load_settings  # noqa: E402
from pipeline.sql.query_builder import (  # noqa: E402
    KLL_K,
    Aggregate,
    QuerySpec,
    build_query,
    kll_rank_error,
)

QUANTILES = (0.5, 0.95, 0.99)
RANKS = f"array({', '.join(map(str, QUANTILES))})"


def make_rows(spark, rows: int, groups: int):
    """``grp``, ``latency_ms``: per group a log-normal with its own median and spread; cached."""
    from pyspark.sql import functions as F

    g = (F.col("id") % groups).cast("int")
    median = F.lit(2.0) * F.pow(F.lit(200.0), (F.hash(g) % 1000 + 1000) % 1000 / 1000.0)
    sigma = F.lit(0.3) + ((F.hash(g, F.lit(7)) % 100 + 100) % 100) / 100.0
    df = spark.range(rows).select(g.alias("grp"),
                                  (median * F.exp(F.randn(11) * sigma)).alias("latency_ms"))
    return df.cache()


def queries(ks: list[int]) -> dict[str, str]:
    out = {
        "avg": "SELECT grp, avg(latency_ms) FROM lat GROUP BY grp",
        "percentile_approx": f"SELECT grp, percentile_approx(latency_ms, {RANKS}) FROM lat "
                             "GROUP BY grp",
        "percentile_approx x3": "SELECT grp, " + ", ".join(
            f"percentile_approx(latency_ms, {q})" for q in QUANTILES) + " FROM lat GROUP BY grp",
    }
    for k in ks:
        spec = QuerySpec(table="lat", group_by=["grp"], limit=None, aggregates=[
            Aggregate("percentile", "latency_ms", q) for q in QUANTILES])
        sql, _ = build_query(spec, {"lat": ["grp", "latency_ms"]})
        if k != KLL_K:
            sql = sql.replace(f"AS DOUBLE), {KLL_K})", f"AS DOUBLE), {k})")
        out[f"kll k={k} (builder)"] = sql
        out[f"kll k={k} (array)"] = (
            "SELECT grp, kll_sketch_get_quantile_double(kll_sketch_agg_double(latency_ms, "
            f"{k}), {RANKS}) FROM lat GROUP BY grp")
    return out


def max_rank_error(spark, rows: list) -> float:
    """Largest |rank(v) - q| over groups and ranks, rank(v) = share of the group's rows <= v."""
    from pyspark.sql import functions as F

    vals = spark.createDataFrame(
        [(int(r[0]), i, float(v)) for r in rows for i, v in enumerate(r[1:])],
        "grp INT, qi INT, v DOUBLE")
    data = spark.table("lat")
    ranks = data.join(F.broadcast(vals), "grp").groupBy("grp", "qi").agg(
        (F.sum((F.col("latency_ms") <= F.col("v")).cast("long")) / F.count(F.lit(1)))
        .alias("r")).collect()
    return max(abs(r["r"] - QUANTILES[r["qi"]]) for r in ranks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--k", type=int, nargs="+", default=[KLL_K])
    args = ap.parse_args()

    from pipeline.spark_session_manager import get_spark, stop_spark

    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-kll-"))
    spark = get_spark(load_settings(None, {"storage.data_dir": str(tmp)}))
    try:
        data = make_rows(spark, args.rows, args.groups)
        data.count()
        data.createOrReplaceTempView("lat")
        sqls = queries(args.k)
        times: dict[str, list[float]] = {name: [] for name in sqls}
        last: dict[str, list] = {}
        for sql in sqls.values():  # warm-up: plan, codegen, JIT
            spark.sql(sql).collect()
        for _ in range(args.runs):  # rotated, so drift on a shared machine hits all alike
            for name, sql in sqls.items():
                t0 = time.perf_counter()
                last[name] = spark.sql(sql).collect()
                times[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        base = med["percentile_approx"]
        print(f"{args.rows:,} rows x {args.groups} groups, p50/p95/p99 per group; "
              f"median of {args.runs} runs (warmed); ratio = time / percentile_approx")
        for name, t in med.items():
            extra = ""
            if name.startswith("kll") and name.endswith("(builder)"):
                k = int(name.split("=")[1].split()[0])
                rows = [(r[0], *r[1:]) for r in last[name]]
                extra = (f"  rank error: documented ±{kll_rank_error(k) * 100:.2f} %, "
                         f"largest measured {max_rank_error(spark, rows) * 100:.2f} %")
            runs = ", ".join(f"{x:.2f}" for x in times[name])
            print(f"{name:>22}: {t:6.2f} s  ({t / base:4.2f}x)  runs {runs}{extra}")
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
