"""Batch reports over the ``logs`` table, each written to a Delta table ``analytics_<name>``.

Pure functions of a ``logs`` DataFrame; :func:`reports` lists them all for the runner.
Definitions of errors and percentiles are the ones of :mod:`pipeline.transforms.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pipeline.transforms.metrics import PERCENTILE_ACCURACY, is_error

TOP_N = 20


def top_endpoints(logs: DataFrame, n: int = TOP_N) -> DataFrame:
    """The ``n`` most requested (source, endpoint) pairs with their error rate and p95."""
    return (
        logs.groupBy("source", "endpoint")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.when(is_error(), 1).otherwise(0)).cast("bigint").alias("errors"),
            F.percentile_approx("latency_ms", 0.95, PERCENTILE_ACCURACY).alias("latency_p95"),
        )
        .withColumn("error_rate", F.col("errors") / F.col("requests"))
        .orderBy(F.desc("requests"), "source", "endpoint")
        .limit(n)
    )


def error_rate_by_source_hour(logs: DataFrame) -> DataFrame:
    return (
        logs.groupBy("source", F.date_trunc("hour", "ts").alias("hour"))
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.when(is_error(), 1).otherwise(0)).cast("bigint").alias("errors"),
        )
        .withColumn("error_rate", F.col("errors") / F.col("requests"))
        .orderBy("source", "hour")
    )


def latency_by_endpoint_hour(logs: DataFrame) -> DataFrame:
    return (
        logs.filter(F.col("latency_ms").isNotNull())
        .groupBy("source", "endpoint", F.date_trunc("hour", "ts").alias("hour"))
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.percentile_approx("latency_ms", [0.5, 0.95, 0.99], PERCENTILE_ACCURACY).alias("p"),
        )
        .select(
            "source", "endpoint", "hour", "requests",
            F.col("p")[0].alias("latency_p50"),
            F.col("p")[1].alias("latency_p95"),
            F.col("p")[2].alias("latency_p99"),
        )
        .orderBy("source", "endpoint", "hour")
    )


def status_distribution(logs: DataFrame) -> DataFrame:
    return (
        logs.groupBy("status")
        .agg(F.count(F.lit(1)).alias("requests"))
        .withColumn("share", F.col("requests") / F.sum("requests").over(Window.partitionBy()))
        .orderBy("status")
    )


def top_client_ips(logs: DataFrame, n: int = TOP_N) -> DataFrame:
    return (
        logs.filter(F.col("client_ip").isNotNull())
        .groupBy("client_ip")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.when(F.col("status") == 404, 1).otherwise(0)).cast("bigint")
            .alias("status_404"),
            F.sum(F.when(is_error(), 1).otherwise(0)).cast("bigint").alias("errors"),
            F.countDistinct("endpoint").alias("distinct_endpoints"),
        )
        .orderBy(F.desc("requests"), "client_ip")
        .limit(n)
    )


def reports() -> dict[str, Callable[[DataFrame], DataFrame]]:
    """Table suffix -> report function (table ``analytics_<suffix>``)."""
    return {
        "top_endpoints": top_endpoints,
        "error_rate_by_source_hour": error_rate_by_source_hour,
        "latency_by_endpoint_hour": latency_by_endpoint_hour,
        "status_distribution": status_distribution,
        "top_client_ips": top_client_ips,
    }
