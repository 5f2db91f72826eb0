"""The builder's KLL percentiles on the suite's SparkSession: within the stated rank error of
the exact quantiles, one sketch per column, NULL (not an error) for a group without values,
and allowed by the SQL engine's safety check, as are the README's examples."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipeline.schemas import LOGS_DDL
from pipeline.sql.engine import SqlEngine
from pipeline.sql.params import sql_with_args
from pipeline.sql.query_builder import (
    KLL_K,
    Aggregate,
    Filter,
    QuerySpec,
    build_query,
    kll_rank_error,
)

QUANTILES = (0.5, 0.95, 0.99)
N = 100_000


def _latencies() -> np.ndarray:
    """100,000 latencies (ms) from a fixed seed: a log-normal body and a slow tail."""
    rng = np.random.default_rng(20)
    body = rng.lognormal(mean=np.log(40.0), sigma=0.6, size=N - 3_000)
    tail = rng.lognormal(mean=np.log(900.0), sigma=0.5, size=3_000)
    return rng.permutation(np.concatenate([body, tail])).round(3)


@pytest.fixture(scope="module")
def lat(spark):
    """View ``lat``: group ``a`` the 100,000 latencies; ``nulls`` only NULLs; ``nans`` only
    NaN (KLL skips NaN, so its sketch is empty too); ``one`` a single value."""
    values = _latencies()
    rows = [("a", float(v)) for v in values]
    rows += [("nulls", None)] * 3 + [("nans", float("nan"))] * 2 + [("one", 7.5)]
    spark.createDataFrame(rows, "grp STRING, latency_ms DOUBLE").createOrReplaceTempView("lat")
    yield values
    spark.catalog.dropTempView("lat")


CATALOG = {"lat": ["grp", "latency_ms"]}


def _percentiles_sql(**spec) -> str:
    sql, args = build_query(QuerySpec(table="lat", limit=None, aggregates=[
        Aggregate("percentile", "latency_ms", q) for q in QUANTILES], **spec), CATALOG)
    assert not args or spec.get("filters")
    return sql


def test_percentiles_within_the_stated_rank_error_of_the_exact_ones(spark, lat):
    sql = _percentiles_sql(group_by=["grp"], order_by=[("grp", False)])
    rows = {r["grp"]: r for r in spark.sql(sql).collect()}
    eps = kll_rank_error(KLL_K)
    data = np.sort(lat)
    for q in QUANTILES:
        got = rows["a"][f"p{round(q * 100)}_latency_ms"]
        # the returned value's rank: between the share of rows below it and at or below it
        below = np.searchsorted(data, got, side="left") / N
        at_or_below = np.searchsorted(data, got, side="right") / N
        assert below - eps <= q <= at_or_below + eps, (q, got, below, at_or_below, eps)
        # equivalently: between the exact (q - eps) and (q + eps) quantiles
        lo, hi = np.quantile(data, [q - eps, q + eps], method="inverted_cdf")
        assert lo <= got <= hi, (q, got, lo, hi)
    # a single value is every percentile; a group without values gets NULL, not an error
    assert [rows["one"][f"p{round(q * 100)}_latency_ms"] for q in QUANTILES] == [7.5] * 3
    for grp in ("nulls", "nans"):
        assert [rows[grp][f"p{round(q * 100)}_latency_ms"] for q in QUANTILES] == [None] * 3


def test_no_rows_gives_null_or_no_groups(spark, lat):
    none = [Filter("grp", "=", "missing")]
    sql, args = build_query(QuerySpec(table="lat", limit=None, filters=none, aggregates=[
        Aggregate("count"), Aggregate("percentile", "latency_ms", 0.99)]), CATALOG)
    assert [tuple(r) for r in sql_with_args(spark, sql, args).collect()] == [(0, None)]
    sql, args = build_query(QuerySpec(table="lat", limit=None, filters=none, group_by=["grp"],
                                      aggregates=[Aggregate("percentile", "latency_ms", 0.5)]),
                            CATALOG)
    assert sql_with_args(spark, sql, args).collect() == []


def test_the_percentiles_of_a_column_share_one_sketch(spark, lat):
    df = spark.sql(_percentiles_sql(group_by=["grp"]))
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert len(re.findall(r"partial_kll_sketch_agg_double\(", plan)) == 1, plan


@pytest.mark.parametrize("k", sorted({200, KLL_K, 1000}))
def test_stated_rank_error_is_the_one_spark_reports(spark, k):
    summary = spark.sql(f"SELECT kll_sketch_to_string_double(kll_sketch_agg_double("
                        f"CAST(id AS DOUBLE), {k})) FROM range(100000)").first()[0]
    reported = re.search(r"Epsilon\s*:\s*([0-9.]+)%", summary).group(1)
    assert float(reported) == pytest.approx(kll_rank_error(k) * 100, abs=0.001)


# -- through the SQL engine (safety check included), as `lakewatch sql` and the app run it --

def _readme_examples() -> list[str]:
    """The ``lakewatch sql "…"`` examples of the README's section on KLL percentiles."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Percentiles in SQL", 1)[1].split("\n### ", 1)[0]
    return [re.sub(r"\s+", " ", m) for m in re.findall(r'lakewatch sql "(.*?)"', section, re.S)]


@pytest.fixture(scope="module")
def kll_engine(spark, base_settings, tmp_path_factory):
    """``logs`` and ``metrics`` (partials of the same rows) in their own data dir, dated today
    (the README's example reads today's logs): /a gets 1 request per second for 200 s with
    latencies 1..200 ms, /b 3 per second, 5 ms each."""
    from pipeline.transforms.metrics import batch_partials

    settings = base_settings.model_copy(deep=True)
    settings.storage.data_dir = tmp_path_factory.mktemp("sql-kll") / "data"
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    today = spark.sql("SELECT current_date()").first()[0]
    t0 = datetime(today.year, today.month, today.day, 12, 0, 0)  # a day's middle: any tz
    rows = [(f"a{i}", t0 + timedelta(seconds=i), "INFO", "web", "GET", "/a", 200,
             float(i + 1), 10) for i in range(200)]
    rows += [(f"b{i}", t0 + timedelta(seconds=i // 3), "INFO", "api", "GET", "/b", 200, 5.0, 10)
             for i in range(600)]
    df = spark.createDataFrame(
        rows, "event_id STRING, ts TIMESTAMP, level STRING, source STRING, method STRING, "
              "endpoint STRING, status INT, latency_ms DOUBLE, bytes BIGINT")
    cols = [c.strip().split(" ") for c in LOGS_DDL.split(",")]
    logs = df.selectExpr(*[name if name in df.columns else f"CAST(NULL AS {typ}) AS {name}"
                           for name, typ in cols])
    logs = logs.withColumn("date", logs["ts"].cast("date"))
    logs.write.format("delta").save(str(settings.table_path("logs")))
    after = int((t0 + timedelta(hours=1) - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    batch_partials(logs, batch_id=0, watermark_us=after).write.format("delta").save(
        str(settings.table_path("metrics")))
    engine = SqlEngine(settings, spark)
    assert {"logs", "metrics", "metrics_10s"} <= set(engine.start())
    return engine


def test_builder_percentiles_pass_the_engine(kll_engine):
    catalog = {t: [c.name for c in cols] for t, cols in kll_engine.refresh_catalog().items()}
    sql, args = build_query(QuerySpec(
        table="logs", group_by=["endpoint"], order_by=[("endpoint", False)],
        filters=[Filter("status", "=", 200)],
        aggregates=[Aggregate("count"), *(Aggregate("percentile", "latency_ms", q)
                                          for q in QUANTILES)]), catalog)
    kll_engine.check(sql)
    r = kll_engine.execute(sql, args)
    assert r.columns == ["endpoint", "count_all", "p50_latency_ms", "p95_latency_ms",
                         "p99_latency_ms"]
    # 200 rows < k: the sketch still holds every value, so these are exact
    assert r.rows == [("/a", 200, 100.0, 190.0, 198.0), ("/b", 600, 5.0, 5.0, 5.0)]


def test_readme_examples_pass_the_engine(kll_engine):
    logs_sql, metrics_sql = _readme_examples()
    assert "FROM logs" in logs_sql and "FROM metrics_10s" in metrics_sql
    logs = kll_engine.execute(logs_sql)
    assert logs.rows == [("api", [5.0, 5.0, 5.0]), ("web", [100.0, 190.0, 198.0])]
    metrics = kll_engine.execute(metrics_sql)
    assert metrics.columns == ["endpoint", "p50_p95_p99"]
    assert metrics.rows == [("/a", [10.0, 10.0, 10.0]), ("/b", [30.0, 30.0, 30.0])]
