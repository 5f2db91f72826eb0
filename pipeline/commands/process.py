"""``lakewatch process --mode stream|analytics|optimize``: the Spark jobs of Lakewatch.

The jobs themselves are in :mod:`pipeline.runners`; this module parses the arguments, prints
the results and returns the exit code (3: Kafka data lost before processing, 4: another
writer holds the tables).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pipeline.runners.batch_jobs import run_analytics, run_optimize
from pipeline.runners.stream_job import run_stream
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("stream", "analytics", "optimize"), default="stream")
    parser.add_argument("--available-now", action="store_true",
                        help="stream mode: process what Kafka holds now, then exit")
    parser.add_argument("--optimize-every", type=float, metavar="SECONDS", default=None,
                        help="stream mode: OPTIMIZE + VACUUM between batches every SECONDS")
    parser.add_argument("--with-detector", action="store_true",
                        help="stream mode: run the anomaly detector in this process")
    parser.add_argument("--wait", type=float, default=900.0, metavar="SECONDS",
                        help="optimize mode: how long to wait for a running processor")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.mode == "stream":
        if settings.sql.connect and not args.available_now:
            _serve_sql(settings)
        every = args.optimize_every or settings.processor.optimize_every_s
        return run_stream(settings, available_now=args.available_now,
                          optimize_every_s=every, with_detector=args.with_detector)
    if args.mode == "optimize":
        return run_optimize(settings, args.wait, report=_print_optimize)
    from pipeline.spark_session_manager import get_spark, stop_spark

    spark = get_spark(settings)
    try:
        written = run_analytics(spark, settings)
        _print_analytics(spark, settings, written)
    finally:
        stop_spark()
    return 0


def _serve_sql(settings: Settings) -> None:
    """The stream job's session also serves read-only SQL to the app (Spark Connect)."""
    from pipeline.jvm.connect_guard import connect_server_conf
    from pipeline.spark_session_manager import configure_next_session
    from pipeline.sql.connect_server import new_token, serve

    token = new_token()
    conf = connect_server_conf(settings, token)
    if conf:
        configure_next_session(conf, lambda spark: serve(spark, settings, token))


def _print_analytics(spark: SparkSession, settings: Settings, written: dict[str, int]) -> None:
    for name, rows in written.items():
        print(f"\n== {name} ({rows} rows) ==", flush=True)
        spark.read.format("delta").load(str(settings.table_path(name))).show(10, truncate=40)


def _print_optimize(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "skipped" in r:
            print(f"{r['table']}: skipped ({r['skipped']})")
            continue
        print(
            f"{r['table']}: files {r['files_before']} -> {r['files_after']}, "
            f"bytes {r['bytes_before']:,} -> {r['bytes_after']:,}"
            f" (z-order {', '.join(r['zorder']) or 'none'}; {r['seconds']} s)"
        )
