"""The batch modes of ``lakewatch process``: ``analytics`` and ``optimize``.

``analytics`` overwrites the ``analytics_*`` Delta tables with reports over ``logs``
(:mod:`pipeline.transforms.analytics`). ``optimize`` runs OPTIMIZE + VACUUM on every processor
table: here when no writer runs, else by asking the running stream job (which holds the writer
lock) through ``run_dir/optimize.request`` and waiting for its result file.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline.delta_tables import WriterLock, WriterLockBusy, optimize_all, register_tables
from pipeline.files import atomic_write
from pipeline.runners.stream_job import OPTIMIZE_REQUEST
from pipeline.schemas import TABLE_LOGS
from pipeline.settings import ConfigError, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Receives the per-table results of a successful OPTIMIZE (``optimize_all``'s list).
OptimizeReport = Callable[[list[dict[str, Any]]], None]


def run_analytics(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Batch reports over ``logs`` -> ``analytics_*`` Delta tables (overwritten each run)."""
    from pipeline.delta_tables import ANALYTICS_PREFIX, is_delta_table
    from pipeline.transforms.analytics import reports

    logs_path = settings.table_path(TABLE_LOGS)
    if not is_delta_table(logs_path):
        raise ConfigError(f"no logs table at {logs_path}: run the stream first")
    logs = spark.read.format("delta").load(str(logs_path)).cache()
    written: dict[str, int] = {}
    try:
        for suffix, report in reports().items():
            name = ANALYTICS_PREFIX + suffix
            df = report(logs)
            (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .save(str(settings.table_path(name))))
            written[name] = spark.read.format("delta").load(
                str(settings.table_path(name))).count()
    finally:
        logs.unpersist()
    register_tables(spark, settings)
    return written


def run_optimize(settings: Settings, wait_s: float = 900.0,
                 report: OptimizeReport | None = None) -> int:
    """OPTIMIZE + VACUUM: here if no writer runs, else by asking the running writer.

    Returns an exit code; ``report`` gets the per-table results when it succeeds.
    """
    lock = WriterLock(settings)
    try:
        lock.acquire(timeout=0)
    except WriterLockBusy:
        return _request_optimize(settings, wait_s, report)
    try:
        from pipeline.spark_session_manager import get_spark, stop_spark

        spark = get_spark(settings)
        try:
            results = optimize_all(
                spark, settings,
                vacuum_retention_hours=settings.processor.vacuum_retention_hours,
            )
        finally:
            stop_spark()
    finally:
        lock.release()
    if report is not None:
        report(results)
    return 0


def _request_optimize(settings: Settings, wait_s: float, report: OptimizeReport | None) -> int:
    request_id = uuid.uuid4().hex
    result_path = settings.run_dir / f"optimize.{request_id}.result.json"
    atomic_write(settings.run_dir / OPTIMIZE_REQUEST,
                 json.dumps({"id": request_id, "at": time.time()}, default=str))
    print("the streaming processor is running: asked it to optimize between its batches ...")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if result_path.is_file():
            outcome = json.loads(result_path.read_text())
            result_path.unlink()
            if not outcome.get("ok"):
                print(f"lakewatch process: optimize failed: {outcome.get('error')}",
                      file=sys.stderr)
                return 1
            if report is not None:
                report(outcome["tables"])
            return 0
        time.sleep(0.5)
    print(f"lakewatch process: no answer from the running processor within {wait_s:.0f} s",
          file=sys.stderr)
    return 1
