"""Mergeable latency percentiles for partial windows: KLL sketches against log-bucket histograms.

Issue 14 writes a 10 s window's metrics in several partial rows (one per micro-batch that
touched it) and merges them on read, so the latency percentiles must merge. Two candidates,
measured on the same rows in the same Spark session against the exact percentiles:

- ``kll``: Spark 4.1+'s ``kll_sketch_agg_double(latency_ms, k)`` per partial,
  ``kll_merge_agg_double`` to merge, ``kll_sketch_get_quantile_double`` to read (Apache
  DataSketches KLL: a bound on the *rank* error, ~1.65 % at k = 200);
- ``buckets``: DDSketch-style log buckets, ``floor(ln(x) / ln(gamma))`` with
  ``gamma = (1 + alpha) / (1 - alpha)``, counts summed to merge, a percentile read as the
  bucket's midpoint ``2 gamma^(b+1) / (gamma + 1)`` (a bound on the *relative value* error,
  ``alpha``).

Data: ``--rows`` latencies over ``--groups`` (window, source, endpoint, level) groups, each a
log-normal with its own median (2-400 ms) and spread, written in ``--batches`` partials per
group (micro-batches). Reported per method, medians of ``--runs``: time to build the partials,
time to merge them and read p50/p95/p99, bytes per partial, and against ``percentile_disc``
(exact, a value from the data): the relative value error (median / p99 / max over groups)
and, for KLL, the rank error.
With ``datasketches`` installed (``pip install datasketches``) it also checks that the Python
library reads Spark's serialized KLL sketches and returns the same quantiles.

Usage: ``python bench/sketches.py [--rows 5000000] [--groups 500] [--batches 20] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.settings import load_settings  # noqa: E402

QUANTILES = (0.5, 0.95, 0.99)


def make_rows(spark, rows: int, groups: int, batches: int):
    """Latencies with a group id and a partial (batch) id, cached."""
    from pyspark.sql import functions as F

    g = (F.col("id") % groups).cast("int")
    median = F.lit(2.0) * F.pow(F.lit(200.0), (F.hash(g) % 1000 + 1000) % 1000 / 1000.0)
    sigma = F.lit(0.3) + ((F.hash(g, F.lit(7)) % 100 + 100) % 100) / 100.0
    df = spark.range(rows).select(
        g.alias("grp"), (F.floor(F.col("id") / groups) % batches).cast("int").alias("batch"),
        (median * F.exp(F.randn(11) * sigma)).alias("latency_ms"))
    return df.cache()


def exact(spark, data):
    qs = ", ".join(f"percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) AS q{i}"
                   for i, q in enumerate(QUANTILES))
    data.createOrReplaceTempView("lat")
    return {r["grp"]: [r[f"q{i}"] for i in range(len(QUANTILES))]
            for r in spark.sql(f"SELECT grp, {qs} FROM lat GROUP BY grp").collect()}


def kll(spark, data, k: int) -> dict:
    data.createOrReplaceTempView("lat")
    t0 = time.monotonic()
    partials = spark.sql(f"SELECT grp, batch, kll_sketch_agg_double(latency_ms, {k}) AS s "
                         "FROM lat GROUP BY grp, batch").cache()
    n = partials.count()
    build = time.monotonic() - t0
    size = partials.selectExpr("avg(octet_length(s))").first()[0]
    partials.createOrReplaceTempView("partials")
    qs = ", ".join(f"kll_sketch_get_quantile_double(m, {q}) AS q{i}"
                   for i, q in enumerate(QUANTILES))
    t0 = time.monotonic()
    rows = spark.sql(f"SELECT grp, m, {qs} FROM (SELECT grp, kll_merge_agg_double(s) AS m "
                     "FROM partials GROUP BY grp)").collect()
    merge = time.monotonic() - t0
    partials.unpersist()
    return {"build_s": build, "merge_s": merge, "partials": n, "bytes_per_partial": size,
            "q": {r["grp"]: [r[f"q{i}"] for i in range(len(QUANTILES))] for r in rows},
            "sketches": {r["grp"]: bytes(r["m"]) for r in rows[:20]}}


def buckets(spark, data, alpha: float) -> dict:
    gamma = (1 + alpha) / (1 - alpha)
    data.createOrReplaceTempView("lat")
    t0 = time.monotonic()
    partials = spark.sql(
        "SELECT grp, batch, map_from_entries(collect_list(struct(b, n))) AS h FROM ("
        f"  SELECT grp, batch, CAST(floor(ln(greatest(latency_ms, 1e-3)) / ln({gamma})) AS INT)"
        "   AS b, count(*) AS n FROM lat GROUP BY 1, 2, 3) GROUP BY grp, batch").cache()
    n = partials.count()
    build = time.monotonic() - t0
    size = partials.selectExpr("avg(size(h)) * 12").first()[0]  # int key + bigint count
    partials.createOrReplaceTempView("partials")
    t0 = time.monotonic()
    # merge: sum counts per bucket; a percentile is the first bucket whose cumulative count
    # reaches ceil(q * n) (the exact percentile's rank), read at the bucket's midpoint
    conds = ", ".join(
        f"min(CASE WHEN cum >= greatest(1, ceil({q} * total)) THEN b END) AS b{i}"
        for i, q in enumerate(QUANTILES))
    rows = spark.sql(
        f"SELECT grp, {conds} FROM ("
        "  SELECT grp, b, sum(n) OVER (PARTITION BY grp ORDER BY b) AS cum,"
        "         sum(n) OVER (PARTITION BY grp) AS total FROM ("
        "    SELECT grp, b, sum(n) AS n FROM (SELECT grp, explode(h) AS (b, n) FROM partials)"
        "    GROUP BY grp, b)) GROUP BY grp").collect()
    merge = time.monotonic() - t0
    partials.unpersist()

    def mid(b: int) -> float:  # bucket b holds [gamma^b, gamma^(b+1)): at most alpha off
        return 2 * gamma ** (b + 1) / (gamma + 1)

    return {"build_s": build, "merge_s": merge, "partials": n, "bytes_per_partial": size,
            "q": {r["grp"]: [mid(r[f"b{i}"]) for i in range(len(QUANTILES))] for r in rows}}


def rank_error(spark, data, approx: dict) -> list[float]:
    """|rank(v) - q| for KLL's values v: the fraction of a group's rows at or below v."""
    from pyspark.sql import functions as F

    vals = spark.createDataFrame(
        [(g, i, float(v)) for g, vs in approx.items() for i, v in enumerate(vs)],
        "grp INT, qi INT, v DOUBLE")
    ranks = data.join(F.broadcast(vals), "grp").groupBy("grp", "qi").agg(
        (F.sum((F.col("latency_ms") <= F.col("v")).cast("long")) / F.count(F.lit(1)))
        .alias("r")).collect()
    return [abs(r["r"] - QUANTILES[r["qi"]]) for r in ranks]


def rel_errors(want: dict, got: dict) -> list[float]:
    return [abs(g - w) / w for grp, ws in want.items() for w, g in zip(ws, got[grp], strict=True)
            if w > 0]


def spread(errors: list[float]) -> dict[str, float]:
    s = sorted(errors)
    return {"median": statistics.median(s), "p99": s[min(len(s) - 1, int(0.99 * len(s)))],
            "max": s[-1]}


def check_datasketches(result: dict) -> str:
    try:
        from datasketches import kll_doubles_sketch
    except ImportError:
        return "datasketches not installed: compatibility not checked"
    worst = 0.0
    for grp, blob in result["sketches"].items():
        sk = kll_doubles_sketch.deserialize(blob)
        for q, v in zip(QUANTILES, result["q"][grp], strict=True):
            worst = max(worst, min(abs(sk.get_quantile(q, inclusive) - v)
                                   for inclusive in (True, False)))
    return (f"datasketches reads Spark's KLL sketches: {len(result['sketches'])} merged "
            f"sketches, largest quantile difference {worst:g}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from pipeline.spark_session_manager import get_spark, stop_spark

    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-sketch-"))
    spark = get_spark(load_settings(None, {"storage.data_dir": str(tmp)}))
    try:
        data = make_rows(spark, args.rows, args.groups, args.batches)
        data.count()
        want = exact(spark, data)
        runs: dict[str, list[dict]] = {"kll": [], "buckets": []}
        for _ in range(args.runs):
            runs["kll"].append(kll(spark, data, args.k))
            runs["buckets"].append(buckets(spark, data, args.alpha))
        med = statistics.median
        summary = {}
        for name, rs in runs.items():
            last = rs[-1]
            summary[name] = {
                "build_s": med(r["build_s"] for r in rs), "merge_s": med(r["merge_s"] for r in rs),
                "partials": last["partials"], "bytes_per_partial": last["bytes_per_partial"],
                "relative_error": spread(rel_errors(want, last["q"])),
            }
        summary["kll"]["rank_error"] = spread(rank_error(spark, data, runs["kll"][-1]["q"]))
        print(f"{args.rows:,} latencies, {args.groups} groups x {args.batches} partials; "
              f"medians of {args.runs} runs; errors against exact percentile_disc()")
        for name, s in summary.items():
            extra = (f", rank error median {s['rank_error']['median']:.4f} max "
                     f"{s['rank_error']['max']:.4f}" if "rank_error" in s else "")
            e = s["relative_error"]
            print(f"{name:>8}: partials built {s['build_s']:.2f} s, merged + p50/p95/p99 "
                  f"{s['merge_s']:.2f} s, {s['bytes_per_partial']:.0f} B per partial; relative "
                  f"error median {e['median']:.4f} p99 {e['p99']:.4f} max {e['max']:.4f}{extra}")
        print(check_datasketches(runs["kll"][-1]))
        print(json.dumps({"args": vars(args), "summary": summary}, default=float))
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
